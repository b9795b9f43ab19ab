//! Placeholders in job files: `${name}`, `$name`, `$[expression]` and `$$`.
//!
//! DataX pastes a variable's value into the job's text before parsing it, so a value
//! holding `"` breaks the job and one holding `","x": "` adds keys. Here the text is
//! read as JSON while it is substituted, and a value can never change the document's
//! structure:
//!
//! * **Inside a JSON string** (`"path": "a/${day}/b"`) a value is inserted JSON-escaped:
//!   a `"`, a `\` or a newline in it stays that character in the parsed string.
//! * **Outside a string** (`"channel": ${n}`) a value must be exactly one JSON scalar —
//!   a number, `true`, `false`, `null` or a quoted string — and is inserted as written;
//!   anything else (`1, "x": 2`, `{…}`, bare text) is an error naming the placeholder
//!   and where it is. Quote the placeholder to insert text.
//! * `$$` is a literal `$`. Text a substituted value brings in is never substituted
//!   again.
//!
//! Errors name the placeholder and its line and column but never show a variable's
//! value (it may be a secret).

use serde_json::Value;

use crate::jobfile::JobFileError;

/// Evaluates one `$[expression]` (without the brackets), or says why it cannot.
pub type EvaluateExpression<'a> = &'a dyn Fn(&str) -> Result<String, String>;

/// How the placeholders of one job file are resolved.
pub struct Resolver<'a> {
    /// `${name}` / `$name`: the value, or `None` when the variable is not set.
    pub variable: &'a dyn Fn(&str) -> Option<String>,
    /// `$[expression]`: the value, or why the expression is wrong. `None` refuses every
    /// expression (a standalone plugin cannot evaluate DataWorks expressions).
    pub expression: Option<EvaluateExpression<'a>>,
}

/// Replaces every placeholder of `text` (comments already removed; see
/// [`crate::jobfile::strip_comments_and_trailing_commas`]).
pub fn substitute(
    text: &str,
    source_name: &str,
    resolver: &Resolver<'_>,
) -> Result<String, JobFileError> {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string && b == b'\\' {
            i += 2;
            continue;
        }
        if b == b'"' {
            in_string = !in_string;
            i += 1;
            continue;
        }
        if b != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&text[copied..i]);
        let at = Position::of(text, i, source_name);
        let after = &text[i + 1..];
        let consumed = if after.starts_with('$') {
            out.push('$');
            2
        } else if let Some(body) = after.strip_prefix('[') {
            let end = body
                .find([']', '"', '\n'])
                .filter(|&e| body.as_bytes()[e] == b']')
                .ok_or_else(|| at.error("$[", "is not closed by ] on the same line"))?;
            let expr = &body[..end];
            let shown = format!("$[{}]", clip(expr));
            let value = match resolver.expression {
                Some(evaluate) => evaluate(expr).map_err(|reason| at.error(&shown, &reason))?,
                None => {
                    return Err(at.error(
                        &shown,
                        "DataWorks expressions are evaluated by the engine only; run the job \
                         with `engine run`, or give the value with -p",
                    ))
                }
            };
            insert(&mut out, &value, in_string, &shown, &at)?;
            end + 3
        } else if let Some((name, len)) = variable_at(after) {
            match (resolver.variable)(name) {
                Some(value) => {
                    insert(&mut out, &value, in_string, &format!("${{{name}}}"), &at)?;
                }
                // writer-oss's path template (`dt=$yyyy$MM$dd/hour=$HH`) reaches the
                // plugin as written unless a variable of that name is set.
                None if in_string && !after.starts_with('{') && is_path_time_token(name) => {
                    out.push('$');
                    out.push_str(name);
                }
                None => {
                    return Err(JobFileError::UnsetVariable {
                        source_name: source_name.to_owned(),
                        name: name.to_owned(),
                    })
                }
            }
            len + 1
        } else {
            out.push('$');
            1
        };
        i += consumed;
        copied = i;
    }
    out.push_str(&text[copied.min(text.len())..]);
    Ok(out)
}

/// DataWorks' built-in parameters written `$name` (`$bizdate`, `$cyctime`, …). In a `-p`
/// value they must be evaluated (the engine does so for the first three) or refused,
/// never passed on as text.
pub const DATAWORKS_SHORTHANDS: &[&str] = &[
    "bizdate", "cyctime", "gmtdate", "bizmonth", "jobid", "nodeid", "taskid",
];

/// The DataWorks shorthand (`bizdate` for `$bizdate`) at the start of `after`, the text
/// after a `$`.
pub fn shorthand_at(after: &str) -> Option<&'static str> {
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let word = &after[..end];
    DATAWORKS_SHORTHANDS
        .iter()
        .find(|s| s.eq_ignore_ascii_case(word))
        .copied()
}

/// A `-p` value where nothing evaluates DataWorks expressions (a standalone plugin):
/// `$$` becomes `$`; `$[…]`, `${…}` and the [`DATAWORKS_SHORTHANDS`] are refused, so
/// none of them reaches the job as text.
pub fn literal_param_value(name: &str, value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let refused = if after.starts_with('[') {
            Some("$[…]".to_owned())
        } else if after.starts_with('{') {
            Some("${…}".to_owned())
        } else {
            shorthand_at(after).map(|s| format!("${s}"))
        };
        if let Some(what) = refused {
            return Err(format!(
                "-p {name}: its value holds the DataWorks expression {what}, which only the \
                 engine evaluates: run the job with `engine run`, or give the value itself \
                 (write $$ for a literal $)"
            ));
        }
        out.push('$');
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// `${name}` or `$name` at the start of `after` (the text after the `$`): the name and
/// how many bytes the placeholder takes after the `$`.
fn variable_at(after: &str) -> Option<(&str, usize)> {
    if let Some(inner) = after.strip_prefix('{') {
        let end = inner.find('}')?;
        let name = &inner[..end];
        return is_name(name).then_some((name, end + 2));
    }
    let end = after
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    let name = &after[..end];
    (end > 0 && is_name(name)).then_some((name, end))
}

/// The time placeholders of an object path template (`$yyyy`, `$MM`, `$dd`, `$HH`,
/// `$mm`, as Tablestore's data delivery writes them). Written bare inside a string and
/// not set as variables, they are left for the plugin instead of being refused.
pub const PATH_TIME_TOKENS: &[&str] = &["yyyy", "MM", "dd", "HH", "mm"];

fn is_path_time_token(name: &str) -> bool {
    PATH_TIME_TOKENS.contains(&name)
}

/// A variable name: letters, digits, `_`, `.`, `-`, starting with a letter or `_`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn insert(
    out: &mut String,
    value: &str,
    in_string: bool,
    placeholder: &str,
    at: &Position<'_>,
) -> Result<(), JobFileError> {
    if in_string {
        let quoted = Value::String(value.to_owned()).to_string();
        out.push_str(&quoted[1..quoted.len() - 1]);
        return Ok(());
    }
    let trimmed = value.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) if !v.is_object() && !v.is_array() => {
            out.push_str(trimmed);
            Ok(())
        }
        _ => Err(at.error(
            placeholder,
            "stands outside a JSON string, so its value must be one JSON number, true, \
             false, null or quoted string, and the value given is not (the value is not \
             shown; put the placeholder in quotes to insert it as text)",
        )),
    }
}

/// At most 40 characters of an expression, for messages.
pub fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Where a placeholder starts (line and column count from 1, columns in characters).
struct Position<'a> {
    source_name: &'a str,
    line: usize,
    column: usize,
}

impl<'a> Position<'a> {
    fn of(text: &str, offset: usize, source_name: &'a str) -> Self {
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |p| p + 1);
        Self {
            source_name,
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    fn error(&self, placeholder: &str, message: &str) -> JobFileError {
        JobFileError::Placeholder {
            source_name: self.source_name.to_owned(),
            line: self.line,
            column: self.column,
            placeholder: placeholder.to_owned(),
            message: message.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, vars: &[(&str, &str)]) -> Result<String, JobFileError> {
        let lookup = |n: &str| {
            vars.iter()
                .rev()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        };
        let evaluate = |e: &str| match e {
            "yyyymmdd" => Ok("20240301".to_owned()),
            other => Err(format!("{other:?} is not an expression")),
        };
        substitute(
            text,
            "job.json",
            &Resolver {
                variable: &lookup,
                expression: Some(&evaluate),
            },
        )
    }

    fn parsed(text: &str, vars: &[(&str, &str)]) -> Value {
        serde_json::from_str(&run(text, vars).unwrap()).unwrap()
    }

    #[test]
    fn values_inside_strings_are_escaped_and_cannot_add_keys() {
        let doc = r#"{"v": "<${v}>", "w": "$w"}"#;
        let quote = parsed(doc, &[("v", "a\"b"), ("w", "x")]);
        assert_eq!(quote, serde_json::json!({"v": "<a\"b>", "w": "x"}));
        let backslash = parsed(doc, &[("v", r"a\nb"), ("w", "x")]);
        assert_eq!(backslash["v"], "<a\\nb>", "a backslash stays a backslash");
        let newline = parsed(doc, &[("v", "a\nb"), ("w", "x")]);
        assert_eq!(newline["v"], "<a\nb>");
        let injection = parsed(doc, &[("v", r#"x", "extra": "y"#), ("w", "x")]);
        assert_eq!(injection.as_object().unwrap().len(), 2, "{injection}");
        assert_eq!(injection["v"], r#"<x", "extra": "y>"#);
    }

    #[test]
    fn values_outside_strings_must_be_one_scalar() {
        let doc = "{\"n\": ${n},\n  \"m\": $n}";
        for ok in ["3", " 3 ", "-1.5e3", "true", "null", "\"text\""] {
            let v = parsed(doc, &[("n", ok)]);
            assert_eq!(v["n"], serde_json::from_str::<Value>(ok.trim()).unwrap());
        }
        for bad in ["3, \"x\": 1", "{}", "[1]", "abc", "", "1 2", "\"a\" \"b\""] {
            let err = run(doc, &[("n", bad)]).unwrap_err().to_string();
            assert!(err.contains("line 1, column 7: ${n}"), "{bad:?}: {err}");
            assert!(err.contains("outside a JSON string"), "{err}");
        }
    }

    #[test]
    fn expressions_are_evaluated_or_refused_with_their_place() {
        assert_eq!(
            parsed(r#"{"d": "p=$[yyyymmdd]", "n": $[yyyymmdd]}"#, &[]),
            serde_json::json!({"d": "p=20240301", "n": 20240301})
        );
        let err = run("{\n  \"d\": \"$[yyyymmdd-l]\"}", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.json: line 2, column 9: $[yyyymmdd-l]: \"yyyymmdd-l\" is not an expression"
        );
        let err = run(r#"{"d": "$[yyyymmdd", "e": "]"}"#, &[]).unwrap_err();
        assert!(
            err.to_string().contains("column 8: $[: is not closed"),
            "{err}"
        );
        let lookup = |_: &str| None;
        let standalone = Resolver {
            variable: &lookup,
            expression: None,
        };
        let err = substitute(r#"{"d": "$[yyyymmdd]"}"#, "j", &standalone).unwrap_err();
        assert!(
            err.to_string()
                .contains("$[yyyymmdd]: DataWorks expressions are evaluated by the engine only"),
            "{err}"
        );
    }

    #[test]
    fn standalone_param_values_are_literal_or_refused() {
        assert_eq!(literal_param_value("p", "a$$b $5 $x").unwrap(), "a$b $5 $x");
        for bad in [
            "$[yyyymmdd]",
            "${yyyymmdd}",
            "$bizdate",
            "x$CYCTIME",
            "$gmtdate-1",
        ] {
            let err = literal_param_value("p", bad).unwrap_err();
            assert!(
                err.starts_with("-p p: its value holds the DataWorks expression"),
                "{err}"
            );
        }
        assert_eq!(literal_param_value("p", "$bizdates").unwrap(), "$bizdates");
    }

    #[test]
    fn dollars_and_what_values_bring_in_are_left_alone() {
        let v = parsed(
            r#"{"a": "$$[x] $$ $ $5 ${not a name}", "b": "${v}"}"#,
            &[("v", "${w} $[yyyymmdd] $$")],
        );
        assert_eq!(v["a"], "$[x] $ $ $5 ${not a name}");
        assert_eq!(v["b"], "${w} $[yyyymmdd] $$");
        let err = run(r#"{"a": "${missing}"}"#, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.json: variable ${missing} is not set (give it with -p missing=VALUE)"
        );
    }

    #[test]
    fn path_time_tokens_pass_through_unless_set() {
        let v = parsed(
            r#"{"o": "dt=$yyyy$MM$dd/hour=$HH/m=$mm/$$yyyy", "p": "$yyyy"}"#,
            &[("yyyy", "2024")],
        );
        assert_eq!(v["o"], "dt=2024$MM$dd/hour=$HH/m=$mm/$yyyy");
        let v = parsed(r#"{"o": "dt=$yyyy$MM$dd/hour=$HH"}"#, &[]);
        assert_eq!(v["o"], "dt=$yyyy$MM$dd/hour=$HH");
        // Braced, outside a string, or another name: still a variable that must be set.
        for text in [r#"{"o": "${yyyy}"}"#, r#"{"o": $HH}"#, r#"{"o": "$yy"}"#] {
            assert!(run(text, &[]).is_err(), "{text}");
        }
        let err = run(r#"{"a": "$HHx"}"#, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.json: variable ${HHx} is not set (give it with -p HHx=VALUE)"
        );
    }
}
