//! Time zones and DataX's (Java `SimpleDateFormat`) date patterns.
//!
//! Job files carry Java patterns such as `yyyy-MM-dd HH:mm:ss` (`dateFormat`) and zone
//! names such as `Asia/Shanghai` or `GMT+8` (`timeZone`). [`DatePattern`] translates a
//! pattern once and then formats and parses epoch milliseconds in a [`Zone`].
//!
//! Supported pattern letters: `y` (`yyyy`, `yy`), `M` (`M`, `MM`, `MMM`), `d`, `H`,
//! `h`, `m`, `s`, `S` (1–9 digits of fraction), `a`, `E` (`EEE`), `Z`, `X`/`XXX`,
//! `z`, and text in single quotes (`''` is a quote). Other letters are refused.

use std::fmt::Write as _;

use chrono::format::{Item, StrftimeItems};
use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
};

/// A time zone: the machine's, a named IANA zone, or a fixed offset.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Zone {
    Local,
    Named(chrono_tz::Tz),
    Fixed(FixedOffset),
}

impl Zone {
    /// Parses `""`/`local` (the machine's zone), `UTC`, an IANA name, `GMT+8`,
    /// `GMT+08:00`, `UTC-5`, `+08:00`.
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() || name.eq_ignore_ascii_case("local") {
            return Ok(Zone::Local);
        }
        if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
            return Ok(Zone::Named(tz));
        }
        let offset_text = ["GMT", "UTC"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .unwrap_or(name);
        parse_offset(offset_text).map(Zone::Fixed).ok_or_else(|| {
            format!("unknown time zone {name:?} (use an IANA name such as Asia/Shanghai, or GMT+8)")
        })
    }

    /// The UTC offset at an instant.
    pub fn offset_at(&self, ms: i64) -> FixedOffset {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        match self {
            Zone::Local => utc.with_timezone(&chrono::Local).offset().fix(),
            Zone::Named(tz) => utc.with_timezone(tz).offset().fix(),
            Zone::Fixed(f) => *f,
        }
    }

    /// Epoch milliseconds of a wall-clock time in this zone (the earlier instant when
    /// the time is ambiguous, `None` when it does not exist).
    pub fn to_epoch_ms(&self, local: NaiveDateTime) -> Option<i64> {
        fn pick<T: TimeZone>(r: LocalResult<DateTime<T>>) -> Option<i64> {
            r.earliest().map(|t| t.timestamp_millis())
        }
        match self {
            Zone::Local => pick(chrono::Local.from_local_datetime(&local)),
            Zone::Named(tz) => pick(tz.from_local_datetime(&local)),
            Zone::Fixed(f) => pick(f.from_local_datetime(&local)),
        }
    }

    /// A display name.
    pub fn name(&self) -> String {
        match self {
            Zone::Local => match iana_name() {
                Some(n) => n,
                None => "local".to_owned(),
            },
            Zone::Named(tz) => tz.name().to_owned(),
            Zone::Fixed(f) => f.to_string(),
        }
    }
}

fn iana_name() -> Option<String> {
    tz_env_zone().ok().flatten().or_else(localtime_zone_name)
}

/// The machine's zone as a name [`Zone::parse`] and `chrono_tz` both take: the `TZ`
/// environment variable when it is set (see [`tz_env_zone`]), else the zone
/// `/etc/localtime` links to (or `/etc/timezone` names), else `UTC`.
pub fn machine_zone_name() -> Result<String, String> {
    Ok(match tz_env_zone()? {
        Some(name) => name,
        None => localtime_zone_name().unwrap_or_else(|| "UTC".to_owned()),
    })
}

/// The zone the `TZ` environment variable names, `None` when it is unset.
///
/// Taken: an IANA name (`Asia/Shanghai`), with or without the POSIX leading colon
/// (`:Asia/Shanghai`); a path into a zoneinfo directory
/// (`/usr/share/zoneinfo/Asia/Shanghai`); the empty string (UTC, as in C); a POSIX
/// zone without daylight saving whose offset is whole hours (`CST-8`, `UTC0`,
/// `<+08>-8`), as the `Etc/GMT…` zone of that offset. Refused, with an error naming
/// `TZ`: POSIX rules with daylight saving (`CET-1CEST,M3.5.0,M10.5.0/3`) and anything
/// else this program cannot read as the C library would.
pub fn tz_env_zone() -> Result<Option<String>, String> {
    match std::env::var("TZ") {
        Ok(value) => tz_value_zone(&value).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err("the TZ environment variable is not valid UTF-8".to_owned())
        }
    }
}

fn tz_value_zone(value: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        format!(
            "the TZ environment variable {value:?} {why}; set TZ to an IANA zone name such as \
             Asia/Shanghai (or UTC), or set the job's setting.timeZone"
        )
    };
    let name = value.trim();
    let name = name.strip_prefix(':').unwrap_or(name);
    if name.is_empty() {
        return Ok("UTC".to_owned());
    }
    let name = match name.split_once("zoneinfo/") {
        Some((_, zone)) if name.starts_with('/') => zone,
        _ if name.starts_with('/') => {
            return Err(refuse("is a file outside a zoneinfo directory"));
        }
        _ => name,
    };
    if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
        return Ok(tz.name().to_owned());
    }
    // A POSIX zone: a name of 3+ letters (or `<...>`), then hours west of UTC.
    let rest = if let Some(quoted) = name.strip_prefix('<') {
        quoted.split_once('>').map(|(_, rest)| rest)
    } else {
        let letters = name.len()
            - name
                .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                .len();
        (letters >= 3).then(|| &name[letters..])
    };
    let Some(rest) = rest.filter(|r| !r.is_empty()) else {
        return Err(refuse("is not a known time zone"));
    };
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => (1, rest),
    };
    let end = digits
        .find(|c: char| !c.is_ascii_digit() && c != ':')
        .unwrap_or(digits.len());
    if end < digits.len() {
        return Err(refuse(
            "is a POSIX rule with daylight saving, which this program does not evaluate",
        ));
    }
    let mut parts = digits.split(':');
    let hours: i32 = parts
        .next()
        .and_then(|h| h.parse().ok())
        .filter(|h| *h <= 14)
        .ok_or_else(|| refuse("is not a known time zone"))?;
    if parts.any(|p| p.parse::<u32>() != Ok(0)) {
        return Err(refuse("has an offset that is not whole hours"));
    }
    // POSIX counts hours west of UTC, as the Etc/GMT zones do: CST-8 is Etc/GMT-8.
    let west = sign * hours;
    Ok(if west == 0 {
        "UTC".to_owned()
    } else {
        format!("Etc/GMT{west:+}")
    })
}

fn localtime_zone_name() -> Option<String> {
    std::fs::read_link("/etc/localtime")
        .ok()
        .and_then(|p| {
            p.to_str()
                .and_then(|s| s.split("zoneinfo/").nth(1).map(str::to_owned))
        })
        .or_else(|| {
            std::fs::read_to_string("/etc/timezone")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|name| name.parse::<chrono_tz::Tz>().is_ok())
}

fn parse_offset(text: &str) -> Option<FixedOffset> {
    if text.is_empty() {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = match rest.split_once(':') {
        Some((h, m)) => (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?),
        None if rest.len() == 4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        None => (rest.parse().ok()?, 0),
    };
    if hours > 18 || minutes >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// A translated Java date pattern.
#[derive(Clone, Debug)]
pub struct DatePattern {
    java: String,
    items: Vec<Item<'static>>,
}

impl DatePattern {
    pub fn new(java: &str) -> Result<Self, String> {
        let strftime = translate(java)?;
        let items: Vec<Item<'static>> = StrftimeItems::new(&strftime)
            .map(|i| i.to_owned())
            .collect();
        if items.iter().any(|i| matches!(i, Item::Error)) {
            return Err(format!("date pattern {java:?} cannot be used"));
        }
        Ok(Self {
            java: java.to_owned(),
            items,
        })
    }

    /// The Java pattern it came from.
    pub fn java(&self) -> &str {
        &self.java
    }

    /// Formats epoch milliseconds in `zone`.
    pub fn format(&self, ms: i64, zone: &Zone) -> String {
        let offset = zone.offset_at(ms);
        let t = DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&offset);
        let mut out = String::new();
        let _ = write!(out, "{}", t.format_with_items(self.items.iter()));
        out
    }

    /// Parses text in `zone` (a date-only pattern means midnight; a time-only pattern
    /// means 1970-01-01). The whole text must match.
    pub fn parse(&self, text: &str, zone: &Zone) -> Result<i64, String> {
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, text, self.items.iter()).map_err(|e| {
            format!(
                "{text:?} does not match the date pattern {:?}: {e}",
                self.java
            )
        })?;
        if let Ok(t) = parsed.to_datetime() {
            return Ok(t.timestamp_millis());
        }
        let date = parsed
            .to_naive_date()
            .unwrap_or(NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default());
        let time = parsed.to_naive_time().unwrap_or(NaiveTime::MIN);
        zone.to_epoch_ms(date.and_time(time))
            .ok_or_else(|| format!("{text:?} does not exist in the time zone {}", zone.name()))
    }
}

fn translate(java: &str) -> Result<String, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            let end = chars[i + 1..]
                .iter()
                .position(|&q| q == '\'')
                .ok_or_else(|| format!("date pattern {java:?}: unclosed quote"))?;
            for &q in &chars[i + 1..i + 1 + end] {
                push_literal(&mut out, q);
            }
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let spec = match (c, run) {
            ('y', 2) => "%y".to_owned(),
            ('y', _) => "%Y".to_owned(),
            ('M', 1) => "%-m".to_owned(),
            ('M', 2) => "%m".to_owned(),
            ('M', 3) => "%b".to_owned(),
            ('M', _) => "%B".to_owned(),
            ('d', 1) => "%-d".to_owned(),
            ('d', _) => "%d".to_owned(),
            ('H', 1) => "%-H".to_owned(),
            ('H', _) => "%H".to_owned(),
            ('h', 1) => "%-I".to_owned(),
            ('h', _) => "%I".to_owned(),
            ('m', 1) => "%-M".to_owned(),
            ('m', _) => "%M".to_owned(),
            ('s', 1) => "%-S".to_owned(),
            ('s', _) => "%S".to_owned(),
            ('S', n @ (3 | 6 | 9)) => format!("%{n}f"),
            ('S', n) => {
                return Err(format!(
                    "date pattern {java:?}: {n} S letters (use 3, 6 or 9)"
                ))
            }
            ('a', _) => "%p".to_owned(),
            ('E', 1..=3) => "%a".to_owned(),
            ('E', _) => "%A".to_owned(),
            ('Z', _) => "%z".to_owned(),
            ('X', 1 | 2) => "%z".to_owned(),
            ('X', _) => "%:z".to_owned(),
            ('z', _) => "%Z".to_owned(),
            (other, _) => {
                return Err(format!(
                    "date pattern {java:?}: letter {other:?} is not supported"
                ))
            }
        };
        out.push_str(&spec);
        i += run;
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datax_default_pattern_round_trips_in_a_zone() {
        let p = DatePattern::new("yyyy-MM-dd HH:mm:ss").unwrap();
        let shanghai = Zone::parse("Asia/Shanghai").unwrap();
        assert_eq!(
            p.format(1_705_307_400_000, &shanghai),
            "2024-01-15 16:30:00"
        );
        assert_eq!(
            p.parse("2024-01-15 16:30:00", &shanghai).unwrap(),
            1_705_307_400_000
        );
        let gmt8 = Zone::parse("GMT+8").unwrap();
        assert_eq!(p.format(1_705_307_400_000, &gmt8), "2024-01-15 16:30:00");
    }

    #[test]
    fn compact_and_quoted_patterns() {
        let utc = Zone::parse("UTC").unwrap();
        let p = DatePattern::new("yyyyMMddHHmmss").unwrap();
        assert_eq!(p.parse("20240115083000", &utc).unwrap(), 1_705_307_400_000);
        let q = DatePattern::new("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").unwrap();
        assert_eq!(
            q.format(1_705_307_400_123, &utc),
            "2024-01-15T08:30:00.123Z"
        );
        let d = DatePattern::new("yyyy-MM-dd").unwrap();
        assert_eq!(d.parse("2024-01-15", &utc).unwrap(), 1_705_276_800_000);
    }

    #[test]
    fn bad_patterns_zones_and_texts_are_errors() {
        assert!(DatePattern::new("yyyy-QQ").is_err());
        assert!(DatePattern::new("'open").is_err());
        assert!(Zone::parse("Mars/Olympus").is_err());
        let p = DatePattern::new("yyyy-MM-dd HH:mm:ss").unwrap();
        assert!(p.parse("2024-13-01 00:00:00", &Zone::Local).is_err());
        assert!(p.parse("2024-01-01", &Zone::Local).is_err());
    }

    #[test]
    fn tz_values_as_the_c_library_reads_them() {
        let ok = |v: &str| tz_value_zone(v).unwrap();
        assert_eq!(ok("Asia/Shanghai"), "Asia/Shanghai");
        assert_eq!(ok(":Asia/Shanghai"), "Asia/Shanghai");
        assert_eq!(ok("/usr/share/zoneinfo/Asia/Shanghai"), "Asia/Shanghai");
        assert_eq!(ok(":/usr/share/zoneinfo/Europe/Paris"), "Europe/Paris");
        assert_eq!(ok(""), "UTC");
        assert_eq!(ok("UTC"), "UTC");
        assert_eq!(ok("UTC0"), "UTC");
        assert_eq!(ok("CST-8"), "Etc/GMT-8");
        assert_eq!(ok("<+08>-8"), "Etc/GMT-8");
        assert_eq!(ok("EST+5"), "Etc/GMT+5");
        assert_eq!(ok("EST5EDT"), "EST5EDT");
        for bad in [
            "CET-1CEST,M3.5.0,M10.5.0/3",
            "IST-5:30",
            "Mars/Olympus",
            "/etc/elsewhere",
            "X-8",
        ] {
            let e = tz_value_zone(bad).unwrap_err();
            assert!(e.contains("TZ") && e.contains(bad), "{e}");
        }
        // Every accepted name is one both Zone::parse and chrono_tz take.
        for v in ["CST-8", "EST+5", "UTC0", ":Asia/Shanghai"] {
            assert!(Zone::parse(&ok(v)).is_ok());
            assert!(ok(v).parse::<chrono_tz::Tz>().is_ok());
        }
    }
}
