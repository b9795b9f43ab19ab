//! Variables in job files.
//!
//! * `${name}` and `$name` take the value of `-p name=value` (or DataX's
//!   `-p "-Dname=value"`). An unset variable is an error naming it.
//! * DataWorks scheduling parameters, evaluated against the schedule time (the
//!   `--schedule-time`, default now) in the job's time zone:
//!   `${bdp.system.cyctime}` (the schedule time, `yyyymmddhh24miss`),
//!   `${bdp.system.bizdate}` (the day before the schedule time, `yyyymmdd`), and
//!   `$[pattern]` / `$[pattern±N]` / `$[pattern±N/24]` / `$[pattern±N/24/60]`
//!   (the schedule time formatted with `yyyy yy mm dd hh24 hh mi ss`, shifted by N days,
//!   hours or minutes), plus `$[add_months(pattern,±N)]`. A `-p` value may itself be
//!   such an expression (`-p start_time='$[yyyymmddhh24miss-10/24/60]'`).

use chrono::{DateTime, Duration, Months, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::error::EngineError;

/// The variables of one run: `-p` parameters and the schedule time.
#[derive(Clone, Debug)]
pub struct Variables {
    params: Vec<(String, String)>,
    schedule: DateTime<Tz>,
}

impl Variables {
    /// `params` as given with `-p`; their values may hold `$[...]` expressions.
    pub fn new(params: Vec<(String, String)>, schedule: DateTime<Tz>) -> Result<Self, EngineError> {
        let mut vars = Self {
            params: Vec::new(),
            schedule,
        };
        let mut evaluated = Vec::with_capacity(params.len());
        for (name, value) in params {
            let mut value = vars
                .evaluate_brackets(&value)
                .map_err(|e| EngineError::config(format!("-p {name}: {e}")))?;
            // A scheduling parameter may be given as a system variable
            // (`-p date='${bdp.system.bizdate}'`).
            for system in ["bdp.system.bizdate", "bdp.system.cyctime"] {
                let placeholder = format!("${{{system}}}");
                if value.contains(&placeholder) {
                    let v = vars.lookup(system).unwrap_or_default();
                    value = value.replace(&placeholder, &v);
                }
            }
            evaluated.push((name, value));
        }
        vars.params = evaluated;
        Ok(vars)
    }

    pub fn schedule(&self) -> DateTime<Tz> {
        self.schedule
    }

    /// The value of `${name}`; a later `-p` of the same name wins.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.params.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        match name {
            "bdp.system.cyctime" => Some(format_pattern(&self.schedule, "yyyymmddhh24miss")),
            "bdp.system.bizdate" => Some(format_pattern(
                &(self.schedule - Duration::days(1)),
                "yyyymmdd",
            )),
            _ => None,
        }
    }

    /// Replaces every `$[...]` in `text` with its value.
    pub fn evaluate_brackets(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(pos) = rest.find("$[") {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 2..];
            let end = after
                .find(']')
                .ok_or_else(|| format!("unterminated $[ in {:?}", truncate(rest)))?;
            out.push_str(&self.evaluate(&after[..end])?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// One `$[...]` expression (without the brackets).
    pub fn evaluate(&self, expr: &str) -> Result<String, String> {
        let expr = expr.trim();
        if let Some(inner) = expr
            .strip_prefix("add_months(")
            .and_then(|s| s.strip_suffix(')'))
        {
            let (pattern, months) = inner
                .rsplit_once(',')
                .ok_or_else(|| format!("$[{expr}]: add_months needs (pattern, months)"))?;
            let months: i32 = months
                .trim()
                .parse()
                .map_err(|_| format!("$[{expr}]: {months:?} is not a number of months"))?;
            let shifted = if months >= 0 {
                self.schedule
                    .checked_add_months(Months::new(months.unsigned_abs()))
            } else {
                self.schedule
                    .checked_sub_months(Months::new(months.unsigned_abs()))
            }
            .ok_or_else(|| format!("$[{expr}]: out of range"))?;
            return Ok(format_pattern(&shifted, pattern.trim()));
        }
        let (pattern, offset) = split_offset(expr)
            .ok_or_else(|| format!("$[{expr}]: not a DataWorks time expression"))?;
        if pattern.is_empty() || !pattern.chars().any(|c| c.is_ascii_alphabetic()) {
            return Err(format!("$[{expr}]: no date pattern"));
        }
        Ok(format_pattern(&(self.schedule + offset), pattern))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Splits `yyyymmdd-1/24` into the pattern and the offset (days, `/24` hours,
/// `/24/60` minutes).
fn split_offset(expr: &str) -> Option<(&str, Duration)> {
    if let Some(pos) = expr.rfind(['+', '-']) {
        let (pattern, tail) = expr.split_at(pos);
        let sign = if tail.starts_with('-') { -1 } else { 1 };
        let parts: Vec<&str> = tail[1..].split('/').map(str::trim).collect();
        let all_digits = parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if all_digits {
            let n: i64 = parts[0].parse().ok()?;
            let offset = match parts[1..] {
                [] => Duration::days(n),
                ["24"] => Duration::hours(n),
                ["24", "60"] => Duration::minutes(n),
                _ => return None,
            };
            return Some((pattern.trim(), offset * sign));
        }
    }
    Some((expr, Duration::zero()))
}

/// Formats with the DataWorks pattern letters: `yyyy yy mm dd hh24 hh mi ss`.
pub fn format_pattern<T: TimeZone>(time: &DateTime<T>, pattern: &str) -> String
where
    T::Offset: std::fmt::Display,
{
    let lower = pattern.to_ascii_lowercase();
    let mut out = String::new();
    let mut i = 0;
    let tokens: [(&str, &str); 8] = [
        ("yyyy", "%Y"),
        ("yy", "%y"),
        ("mm", "%m"),
        ("dd", "%d"),
        ("hh24", "%H"),
        ("hh", "%I"),
        ("mi", "%M"),
        ("ss", "%S"),
    ];
    'outer: while i < lower.len() {
        for (token, spec) in tokens {
            if lower[i..].starts_with(token) {
                out.push_str(&time.format(spec).to_string());
                i += token.len();
                continue 'outer;
            }
        }
        let c = lower[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
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
        assert_eq!(
            v.evaluate("yyyymmddhh24miss-10/24/60").unwrap(),
            "20240229235500"
        );
        assert_eq!(
            v.evaluate("yyyymmddhh24miss+1/24").unwrap(),
            "20240301010500"
        );
        assert_eq!(v.evaluate("yyyy-mm-dd").unwrap(), "2024-03-01");
        assert_eq!(v.evaluate("add_months(yyyymm,-1)").unwrap(), "202402");
        assert!(v.evaluate("-1").is_err());
        assert_eq!(v.lookup("bdp.system.bizdate").unwrap(), "20240229");
        assert_eq!(v.lookup("bdp.system.cyctime").unwrap(), "20240301000500");
        assert_eq!(
            v.evaluate_brackets("from $[yyyymmdd-1] to $[yyyymmdd]")
                .unwrap(),
            "from 20240229 to 20240301"
        );
    }

    #[test]
    fn params_may_hold_expressions_and_later_ones_win() {
        let v = vars(&[
            ("date", "${bdp.system.bizdate}"),
            ("start", "$[yyyymmddhh24miss-5/24/60]"),
            ("n", "1"),
            ("n", "2"),
        ]);
        assert_eq!(v.lookup("start").unwrap(), "20240301000000");
        assert_eq!(v.lookup("date").unwrap(), "20240229");
        assert_eq!(v.lookup("n").unwrap(), "2");
        assert_eq!(v.lookup("missing"), None);
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
