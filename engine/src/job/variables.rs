//! Variables in job files.
//!
//! * `${name}` and `$name` take the value of `-p name=value` (or DataX's
//!   `-p "-Dname=value -Dother=v"`). An unset variable is an error naming it. How a value
//!   is inserted (escaped inside strings, one JSON scalar outside) is
//!   [`protocol::placeholders`]'s business.
//! * DataWorks scheduling parameters, evaluated against the schedule time (the
//!   `--schedule-time`, default now) in the job's time zone:
//!   `${bdp.system.cyctime}` (the schedule time, `yyyymmddhh24miss`),
//!   `${bdp.system.bizdate}` (the business date: the day before the schedule time,
//!   `yyyymmdd`), and `$[pattern]` / `$[pattern±N]` / `$[pattern±7*N]` /
//!   `$[pattern±N/24]` / `$[pattern±N/24/60]` (the schedule time formatted with
//!   `yyyy yy mm dd hh24 hh mi ss`, shifted by N days, weeks, hours or minutes), plus
//!   `$[add_months(pattern,±N)]` (N may be `12*K`). Anything else inside `$[…]` is an
//!   error naming the expression: a letter that is not a pattern letter, a malformed
//!   offset, `mm` (month) after an hour where `mi` (minutes) was meant.
//! * A `-p` value may itself be a DataWorks parameter value: `$[…]` as above,
//!   `${pattern}` / `${pattern±N}` (the business date formatted with `yyyy yy mm dd`,
//!   N days or `7*N` weeks; on a year-only pattern N years), `$bizdate` (= `${yyyymmdd}`),
//!   `$cyctime` (= `$[yyyymmddhh24miss]`), `$gmtdate` (the schedule time's date,
//!   `yyyymmdd`) and the two `${bdp.system.…}`. Other DataWorks built-ins (`$bizmonth`,
//!   `$jobid`, `$nodeid`, `$taskid`) and other `${…}` are refused; `$$` is a literal `$`.

use chrono::{
    DateTime, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, Offset as _, TimeZone,
};
use chrono_tz::Tz;

use crate::error::EngineError;

/// The variables of one run: `-p` parameters and the schedule time.
#[derive(Clone, Debug)]
pub struct Variables {
    params: Vec<(String, String)>,
    schedule: DateTime<Tz>,
}

impl Variables {
    /// `params` as given with `-p`; their values may hold DataWorks expressions (see the
    /// module documentation), evaluated here.
    pub fn new(params: Vec<(String, String)>, schedule: DateTime<Tz>) -> Result<Self, EngineError> {
        let mut vars = Self {
            params: Vec::new(),
            schedule,
        };
        let mut evaluated = Vec::with_capacity(params.len());
        for (name, value) in params {
            let value = vars
                .evaluate_value(&value)
                .map_err(|e| EngineError::config(format!("-p {name}: {e}")))?;
            evaluated.push((name, value));
        }
        vars.params = evaluated;
        Ok(vars)
    }

    pub fn schedule(&self) -> DateTime<Tz> {
        self.schedule
    }

    /// The business date: the day before the schedule time (on the calendar: the same
    /// wall-clock time a day earlier).
    fn business_date(&self) -> DateTime<Tz> {
        shift_days(self.schedule, -1).unwrap_or(self.schedule)
    }

    /// The value of `${name}`; a later `-p` of the same name wins.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.params.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        match name {
            "bdp.system.cyctime" => Some(format_pattern(&self.schedule, "yyyymmddhh24miss")),
            "bdp.system.bizdate" => Some(format_pattern(&self.business_date(), "yyyymmdd")),
            _ => None,
        }
    }

    /// Evaluates the DataWorks parameter values in one `-p` value. Errors name the
    /// expression, never the rest of the value (it may be a secret).
    pub fn evaluate_value(&self, value: &str) -> Result<String, String> {
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let at = value[..value.len() - rest.len() + pos].chars().count() + 1;
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(body) = after.strip_prefix('[') {
                let end = body
                    .find(']')
                    .ok_or_else(|| format!("the $[ at character {at} is not closed by ]"))?;
                let expr = &body[..end];
                let value = self
                    .evaluate(expr)
                    .map_err(|e| format!("$[{}]: {e}", protocol::placeholders::clip(expr)))?;
                out.push_str(&value);
                rest = &body[end + 1..];
            } else if let Some(body) = after.strip_prefix('{') {
                let end = body
                    .find('}')
                    .ok_or_else(|| format!("the ${{ at character {at} is not closed by }}"))?;
                let expr = &body[..end];
                let value = self
                    .evaluate_business(expr)
                    .map_err(|e| format!("${{{}}}: {e}", protocol::placeholders::clip(expr)))?;
                out.push_str(&value);
                rest = &body[end + 1..];
            } else if let Some(word) = protocol::placeholders::shorthand_at(after) {
                out.push_str(&self.shorthand(word)?);
                rest = &after[word.len()..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        Ok(out)
    }

    /// `$bizdate`, `$cyctime`, `$gmtdate`; the other DataWorks built-ins are refused.
    fn shorthand(&self, word: &str) -> Result<String, String> {
        match word {
            "bizdate" => Ok(format_pattern(&self.business_date(), "yyyymmdd")),
            "cyctime" => Ok(format_pattern(&self.schedule, "yyyymmddhh24miss")),
            "gmtdate" => Ok(format_pattern(&self.schedule, "yyyymmdd")),
            other => Err(format!(
                "${other} is a DataWorks built-in the engine does not know (it evaluates \
                 $bizdate, $cyctime and $gmtdate); give the value itself"
            )),
        }
    }

    /// `${…}` in a `-p` value: a system variable or a business-date pattern.
    fn evaluate_business(&self, expr: &str) -> Result<String, String> {
        if let Some(v) = self.lookup_system(expr.trim()) {
            return Ok(v);
        }
        let (pattern, offset) = split_offset(expr)?;
        let tokens = tokenize(pattern)?;
        if let Some(t) = tokens.iter().find(|t| t.is_time_of_day()) {
            return Err(format!(
                "{} is a time of day, and ${{…}} is the business date (a day); use $[…] for the schedule time",
                t.text()
            ));
        }
        let date = self.business_date();
        let shifted = match offset {
            None => Some(date),
            Some(Offset::Days(n)) if tokens.contains(&Token::Day) => shift_days(date, n),
            Some(Offset::Days(n)) if !tokens.contains(&Token::Month) => {
                shift_months(date, n.checked_mul(12).ok_or("out of range")?)
            }
            Some(_) => {
                return Err(
                    "${…} takes day offsets (±N, ±7*N) on a pattern with dd, or year \
                     offsets on a year-only pattern; for months use $[add_months(pattern,±N)], \
                     for hours $[…]"
                        .to_owned(),
                )
            }
        }
        .ok_or("out of range")?;
        Ok(render(&shifted, &tokens))
    }

    fn lookup_system(&self, name: &str) -> Option<String> {
        name.starts_with("bdp.system.")
            .then(|| self.lookup(name))
            .flatten()
    }

    /// One `$[...]` expression (without the brackets); an error says why, and the caller
    /// names the expression.
    pub fn evaluate(&self, expr: &str) -> Result<String, String> {
        let trimmed = expr.trim();
        if let Some(inner) = trimmed
            .strip_prefix("add_months(")
            .and_then(|s| s.strip_suffix(')'))
        {
            let (pattern, months) = inner
                .rsplit_once(',')
                .ok_or("add_months needs (pattern, months)")?;
            let months = parse_count(months.trim()).ok_or_else(|| {
                format!("{:?} is not a number of months (N or 12*N)", months.trim())
            })?;
            let tokens = tokenize(pattern)?;
            let shifted = shift_months(self.schedule, months).ok_or("out of range")?;
            return Ok(render(&shifted, &tokens));
        }
        let (pattern, offset) = split_offset(trimmed)?;
        let tokens = tokenize(pattern)?;
        // Days on the calendar; hours and minutes as elapsed time (DataWorks: on the day
        // the clocks go forward at 02:00, ten minutes before 03:00 is 01:50).
        let elapsed =
            |delta: Option<Duration>| delta.and_then(|d| self.schedule.checked_add_signed(d));
        let shifted = match offset {
            None => Some(self.schedule),
            Some(Offset::Days(n)) => shift_days(self.schedule, n),
            Some(Offset::Hours(n)) => elapsed(Duration::try_hours(n)),
            Some(Offset::Minutes(n)) => elapsed(Duration::try_minutes(n)),
        }
        .ok_or("out of range")?;
        Ok(render(&shifted, &tokens))
    }
}

/// `time` moved by whole calendar days: the same wall-clock time `days` later, whatever
/// daylight saving time did in between (DataWorks schedules by the clock).
fn shift_days(time: DateTime<Tz>, days: i64) -> Option<DateTime<Tz>> {
    let naive = time
        .naive_local()
        .checked_add_signed(Duration::try_days(days)?)?;
    on_the_clock(time.timezone(), naive)
}

/// `time` moved by whole months on the calendar; a day past the end of the target
/// month becomes its last day (Jan 31 + 1 month = Feb 28 or 29).
fn shift_months(time: DateTime<Tz>, months: i64) -> Option<DateTime<Tz>> {
    let n = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let naive = if months >= 0 {
        time.naive_local().checked_add_months(n)
    } else {
        time.naive_local().checked_sub_months(n)
    }?;
    on_the_clock(time.timezone(), naive)
}

/// A wall-clock time in `zone`: a time repeated when the clocks went back is its first
/// occurrence; one skipped when they went forward is read with the offset before the
/// gap (02:30 in a gap from 02:00 to 03:00 is 03:30), as a clock that was not moved
/// would show it.
fn on_the_clock(zone: Tz, naive: NaiveDateTime) -> Option<DateTime<Tz>> {
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t),
        LocalResult::None => {
            let before = zone
                .offset_from_utc_datetime(&naive.checked_sub_signed(Duration::try_days(1)?)?)
                .fix();
            let utc = naive
                .checked_sub_signed(Duration::try_seconds(i64::from(before.local_minus_utc()))?)?;
            Some(zone.from_utc_datetime(&utc))
        }
    }
}

/// An offset at the end of an expression.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Offset {
    Days(i64),
    Hours(i64),
    Minutes(i64),
}

/// `N` or `A*B` (e.g. `7*2` weeks, `12*3` months), with an optional sign.
fn parse_count(text: &str) -> Option<i64> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut product: i64 = 1;
    for factor in digits.split('*') {
        let factor = factor.trim();
        if factor.is_empty() || !factor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        product = product.checked_mul(factor.parse().ok()?)?;
    }
    Some(sign * product)
}

/// Splits `yyyymmdd-1/24` into the pattern and its offset: `±N` or `±A*B` days,
/// `±N/24` hours, `±N/24/60` minutes. A `+` or `-` followed by digits is an offset and
/// must be well formed; one followed by pattern letters is a separator (`yyyy-mm-dd`).
fn split_offset(expr: &str) -> Result<(&str, Option<Offset>), String> {
    let Some(pos) = expr.rfind(['+', '-']) else {
        return Ok((expr, None));
    };
    let (pattern, tail) = expr.split_at(pos);
    let body = tail[1..].trim();
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok((expr, None));
    }
    let sign = if tail.starts_with('-') { "-" } else { "" };
    let mut parts = body.split('/').map(str::trim);
    let count = parts.next().unwrap_or_default();
    let divisors: Vec<&str> = parts.collect();
    let n = parse_count(&format!("{sign}{count}")).ok_or_else(|| {
        format!("{tail:?} is not an offset (±N days, ±7*N weeks, ±N/24 hours, ±N/24/60 minutes)")
    })?;
    let offset = match divisors.as_slice() {
        [] => Offset::Days(n),
        ["24"] => Offset::Hours(n),
        ["24", "60"] => Offset::Minutes(n),
        _ => {
            return Err(format!(
                "{tail:?} is not an offset (±N days, ±7*N weeks, ±N/24 hours, ±N/24/60 minutes)"
            ))
        }
    };
    Ok((pattern.trim(), Some(offset)))
}

/// One element of a DataWorks date pattern.
#[derive(Clone, Debug, PartialEq)]
enum Token {
    Year4,
    Year2,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    Separator(char),
}

impl Token {
    const LETTERS: [(&'static str, Token); 8] = [
        ("hh24", Token::Hour24),
        ("yyyy", Token::Year4),
        ("yy", Token::Year2),
        ("mm", Token::Month),
        ("dd", Token::Day),
        ("hh", Token::Hour12),
        ("mi", Token::Minute),
        ("ss", Token::Second),
    ];

    fn is_time_of_day(&self) -> bool {
        matches!(
            self,
            Token::Hour24 | Token::Hour12 | Token::Minute | Token::Second
        )
    }

    fn text(&self) -> &'static str {
        Self::LETTERS
            .iter()
            .find(|(_, t)| t == self)
            .map_or("", |(s, _)| s)
    }

    fn spec(&self) -> &'static str {
        match self {
            Token::Year4 => "%Y",
            Token::Year2 => "%y",
            Token::Month => "%m",
            Token::Day => "%d",
            Token::Hour24 => "%H",
            Token::Hour12 => "%I",
            Token::Minute => "%M",
            Token::Second => "%S",
            Token::Separator(_) => "",
        }
    }
}

/// Characters a pattern may hold between its letters.
const SEPARATORS: &[char] = &['-', '/', ':', ' ', '_', '.'];

/// Reads a pattern (letters case-insensitive). Anything that is neither a pattern letter
/// nor a separator is an error, as is `mm` after an hour (DataWorks' minutes are `mi`).
fn tokenize(pattern: &str) -> Result<Vec<Token>, String> {
    let pattern = pattern.trim();
    let lower = pattern.to_ascii_lowercase();
    let mut tokens = Vec::new();
    let mut i = 0;
    'outer: while i < lower.len() {
        for (text, token) in Token::LETTERS {
            if lower[i..].starts_with(text) {
                if token == Token::Month
                    && tokens
                        .iter()
                        .any(|t: &Token| matches!(t, Token::Hour24 | Token::Hour12))
                {
                    return Err(
                        "mm after an hour is the month; DataWorks writes minutes mi".to_owned()
                    );
                }
                tokens.push(token);
                i += text.len();
                continue 'outer;
            }
        }
        let c = pattern[i..].chars().next().unwrap_or(' ');
        if !SEPARATORS.contains(&c) {
            return Err(format!(
                "{:?} is not a date pattern (letters yyyy yy mm dd hh24 hh mi ss, separators - / : _ . and space; \
                 offsets ±N, ±7*N, ±N/24, ±N/24/60 at the end)",
                pattern[i..].chars().take(10).collect::<String>()
            ));
        }
        tokens.push(Token::Separator(c));
        i += c.len_utf8();
    }
    if !tokens.iter().any(|t| !matches!(t, Token::Separator(_))) {
        return Err("no date pattern (yyyy yy mm dd hh24 hh mi ss)".to_owned());
    }
    Ok(tokens)
}

fn render(time: &DateTime<Tz>, tokens: &[Token]) -> String {
    let mut out = String::new();
    for t in tokens {
        match t {
            Token::Separator(c) => out.push(*c),
            other => out.push_str(&time.format(other.spec()).to_string()),
        }
    }
    out
}

/// Formats `time` with a DataWorks pattern (`yyyymmddhh24miss`); an invalid pattern
/// gives an empty string (callers pass fixed, valid patterns).
pub fn format_pattern(time: &DateTime<Tz>, pattern: &str) -> String {
    tokenize(pattern)
        .map(|tokens| render(time, &tokens))
        .unwrap_or_default()
}

/// Parses `--schedule-time`: RFC 3339, `yyyyMMddHHmmss`, `yyyy-MM-dd HH:mm:ss`,
/// `yyyy-MM-ddTHH:mm:ss`, `yyyyMMdd` or `yyyy-MM-dd` (the last four in the job's zone).
pub fn parse_schedule_time(text: &str, zone: Tz) -> Result<DateTime<Tz>, EngineError> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&zone));
    }
    let naive = ["%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            ["%Y%m%d", "%Y-%m-%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| {
            EngineError::config(format!(
                "--schedule-time {text:?}: expected RFC 3339, yyyyMMddHHmmss or yyyy-MM-dd HH:mm:ss"
            ))
        })?;
    zone.from_local_datetime(&naive).earliest().ok_or_else(|| {
        EngineError::config(format!(
            "--schedule-time {text:?} does not exist in time zone {zone}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(params: &[(&str, &str)]) -> Variables {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let schedule = parse_schedule_time("20240301 00:05:00", zone)
            .or_else(|_| parse_schedule_time("2024-03-01 00:05:00", zone))
            .unwrap();
        Variables::new(
            params
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            schedule,
        )
        .unwrap()
    }

    #[test]
    fn dataworks_expressions() {
        let v = vars(&[]);
        assert_eq!(v.evaluate("yyyymmdd").unwrap(), "20240301");
        assert_eq!(v.evaluate("yyyymmdd-1").unwrap(), "20240229");
        assert_eq!(v.evaluate("yyyymmdd-7*1").unwrap(), "20240223");
        assert_eq!(
            v.evaluate("yyyymmddhh24miss-10/24/60").unwrap(),
            "20240229235500"
        );
        assert_eq!(
            v.evaluate("yyyymmddhh24miss+1/24").unwrap(),
            "20240301010500"
        );
        assert_eq!(v.evaluate("yyyy-mm-dd").unwrap(), "2024-03-01");
        assert_eq!(
            v.evaluate("YYYY-MM-DD hh24:mi:ss").unwrap(),
            "2024-03-01 00:05:00"
        );
        assert_eq!(v.evaluate("yyyy-mm-dd-1").unwrap(), "2024-02-29");
        assert_eq!(v.evaluate("add_months(yyyymm,-1)").unwrap(), "202402");
        assert_eq!(
            v.evaluate("add_months(yyyymmdd,-12*1)").unwrap(),
            "20230301"
        );
        assert_eq!(v.lookup("bdp.system.bizdate").unwrap(), "20240229");
        assert_eq!(v.lookup("bdp.system.cyctime").unwrap(), "20240301000500");
    }

    #[test]
    fn malformed_expressions_say_why() {
        let v = vars(&[]);
        for (expr, needle) in [
            ("yyyymmdd-l", "\"l\" is not a date pattern"),
            ("yyyymmdd+abc", "\"+abc\" is not a date pattern"),
            ("yyyymmdd-1x", "\"-1x\" is not an offset"),
            ("yyyymmdd-1/12", "\"-1/12\" is not an offset"),
            ("-1", "no date pattern"),
            ("", "no date pattern"),
            ("yyyymmdd1", "\"1\" is not a date pattern"),
            ("hh24mmss", "mm after an hour is the month"),
            ("add_months(yyyymm,x)", "is not a number of months"),
            ("add_months(yyyyq,1)", "\"q\" is not a date pattern"),
        ] {
            let err = v.evaluate(expr).unwrap_err();
            assert!(err.contains(needle), "{expr}: {err}");
        }
    }

    #[test]
    fn params_may_hold_dataworks_values_and_later_ones_win() {
        let v = vars(&[
            ("date", "${bdp.system.bizdate}"),
            ("start", "$[yyyymmddhh24miss-5/24/60]"),
            ("biz", "$bizdate"),
            ("cyc", "$cyctime"),
            ("gmt", "$gmtdate"),
            ("day", "${yyyymmdd}"),
            ("week", "${yyyy-mm-dd-7*1}"),
            ("year", "${yyyy-1}"),
            ("mixed", "pt=$bizdate/$[hh24mi]/$$bizdate/$x"),
            ("n", "1"),
            ("n", "2"),
        ]);
        for (name, value) in [
            ("start", "20240301000000"),
            ("date", "20240229"),
            ("biz", "20240229"),
            ("cyc", "20240301000500"),
            ("gmt", "20240301"),
            ("day", "20240229"),
            ("week", "2024-02-22"),
            ("year", "2023"),
            ("mixed", "pt=20240229/0005/$bizdate/$x"),
            ("n", "2"),
        ] {
            assert_eq!(v.lookup(name).unwrap(), value, "{name}");
        }
        assert_eq!(v.lookup("missing"), None);
    }

    #[test]
    fn params_with_unknown_or_malformed_dataworks_values_are_refused() {
        let zone: Tz = "UTC".parse().unwrap();
        let schedule = parse_schedule_time("20240301000500", zone).unwrap();
        for (value, needle) in [
            (
                "$bizmonth",
                "$bizmonth is a DataWorks built-in the engine does not know",
            ),
            ("$jobid", "$jobid"),
            ("${yyyymmddhh24}", "is a time of day"),
            ("${yyyymm-1}", "for months use $[add_months"),
            ("${other}", "\"other\" is not a date pattern"),
            (
                "$[yyyymmdd-l]",
                "$[yyyymmdd-l]: \"l\" is not a date pattern",
            ),
            ("SECRET$[yyyy", "the $[ at character 7 is not closed"),
        ] {
            let err = Variables::new(vec![("p".into(), value.into())], schedule)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("-p p: "), "{value}: {err}");
            assert!(err.contains(needle), "{value}: {err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
    }

    #[test]
    fn schedule_time_forms() {
        let zone: Tz = "UTC".parse().unwrap();
        let a = parse_schedule_time("20240301120000", zone).unwrap();
        let b = parse_schedule_time("2024-03-01T20:00:00+08:00", zone).unwrap();
        assert_eq!(a, b);
        assert!(parse_schedule_time("yesterday", zone).is_err());
    }
}
