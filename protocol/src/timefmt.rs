//! Time zones and DataX's (Java `SimpleDateFormat`) date patterns.
//!
//! Job files carry Java patterns such as `yyyy-MM-dd HH:mm:ss` (`dateFormat`) and zone
//! names such as `Asia/Shanghai` or `GMT+8` (`timeZone`). [`DatePattern`] translates a
//! pattern once and then formats and parses epoch milliseconds in a [`Zone`].
//!
//! Supported pattern letters: `y` (`yyyy`, `yy`), `M` (`M`, `MM`, `MMM`), `d`, `H`,
//! `h`, `m`, `s`, `S` (milliseconds, zero-padded to the letter count, as Java), `a`, `E`
//! (`EEE`), `Z`, `X`/`XX`/`XXX`, `z`, and text in single quotes (`''` is a quote). Other
//! letters are refused. Formatting follows `SimpleDateFormat` field by field (vectors
//! observed with Java 17 in the tests); parsing goes through chrono and needs `SSS` for
//! milliseconds.

use std::fmt::Write as _;

use chrono::format::{Item, ParseErrorKind, StrftimeItems};
use chrono::{
    DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike, Utc,
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
    /// How `format` renders it, field by field as Java's `SimpleDateFormat`.
    fields: Vec<Field>,
    /// chrono items for `parse`, or why this pattern can only format.
    parse_items: Result<Vec<Item<'static>>, String>,
}

/// One field of a pattern, rendered as `SimpleDateFormat.subFormat` renders it
/// (English names, as the `Locale.US` default).
#[derive(Clone, Debug)]
enum Field {
    Literal(String),
    /// A number zero-padded to `width` digits, never cut.
    Number(NumberField, usize),
    /// `yy`: the year of era modulo 100, two digits.
    TwoDigitYear,
    MonthName {
        full: bool,
    },
    DayName {
        full: bool,
    },
    AmPm,
    /// `Z`: `+HHMM`, the offset truncated to whole minutes.
    Rfc822Zone,
    /// `X`, `XX`, `XXX`: `Z` for a zero offset, else `+HH`, `+HHMM`, `+HH:MM`.
    IsoZone(usize),
    /// `z`: the offset as chrono's `%Z` writes it.
    ZoneName,
}

#[derive(Clone, Copy, Debug)]
enum NumberField {
    /// Year of era: Java prints year 0 as 1 (BC), year 10000 as `10000`.
    Year,
    Month,
    Day,
    Hour24,
    Hour12,
    Minute,
    Second,
    /// `S` is the count of milliseconds (`SSSSSS` of .123 s is `000123`).
    Millisecond,
}

impl DatePattern {
    pub fn new(java: &str) -> Result<Self, String> {
        let tokens = tokenize(java)?;
        let fields = tokens
            .iter()
            .map(|t| field(t, java))
            .collect::<Result<Vec<_>, _>>()?;
        let parse_items = strftime(&tokens, java).and_then(|text| {
            let items: Vec<Item<'static>> =
                StrftimeItems::new(&text).map(|i| i.to_owned()).collect();
            if items.iter().any(|i| matches!(i, Item::Error)) {
                return Err(format!("date pattern {java:?} cannot be used to parse"));
            }
            Ok(items)
        });
        Ok(Self {
            java: java.to_owned(),
            fields,
            parse_items,
        })
    }

    /// The Java pattern it came from.
    pub fn java(&self) -> &str {
        &self.java
    }

    /// Formats epoch milliseconds in `zone`, as Java's `SimpleDateFormat` does in the
    /// proleptic Gregorian calendar.
    pub fn format(&self, ms: i64, zone: &Zone) -> String {
        let offset = zone.offset_at(ms);
        let t = DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&offset);
        let mut out = String::new();
        for f in &self.fields {
            render(f, &t, ms, &mut out);
        }
        out
    }

    /// Parses text in `zone` (a date-only pattern means midnight; a time-only pattern
    /// means 1970-01-01). The whole text must match, and be a real date and time:
    /// `2024-02-30` is an error (Java's lenient parsers roll it over to March 1).
    pub fn parse(&self, text: &str, zone: &Zone) -> Result<i64, String> {
        let items = self.parse_items.as_ref().map_err(Clone::clone)?;
        let mut parsed = chrono::format::Parsed::new();
        chrono::format::parse(&mut parsed, text, items.iter()).map_err(|e| {
            format!(
                "{text:?} does not match the date pattern {:?}: {e}",
                self.java
            )
        })?;
        if let Ok(t) = parsed.to_datetime() {
            return Ok(t.timestamp_millis());
        }
        let impossible =
            |e: chrono::format::ParseError| format!("{text:?} is not a valid date and time: {e}");
        let date = match parsed.to_naive_date() {
            Ok(d) => d,
            Err(e) if e.kind() == ParseErrorKind::NotEnough && parsed.year().is_none() => {
                NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
            }
            Err(e) => return Err(impossible(e)),
        };
        let time = match parsed.to_naive_time() {
            Ok(t) => t,
            Err(e) if e.kind() == ParseErrorKind::NotEnough && parsed.hour_mod_12().is_none() => {
                NaiveTime::MIN
            }
            Err(e) => return Err(impossible(e)),
        };
        zone.to_epoch_ms(date.and_time(time))
            .ok_or_else(|| format!("{text:?} does not exist in the time zone {}", zone.name()))
    }
}

/// A piece of a Java pattern: literal text, or a run of one pattern letter.
enum Token {
    Literal(String),
    Letter(char, usize),
}

fn tokenize(java: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = java.chars().collect();
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            if chars.get(i + 1) == Some(&'\'') {
                literal.push('\'');
                i += 2;
                continue;
            }
            let end = chars[i + 1..]
                .iter()
                .position(|&q| q == '\'')
                .ok_or_else(|| format!("date pattern {java:?}: unclosed quote"))?;
            literal.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            literal.push(c);
            i += 1;
            continue;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        tokens.push(Token::Letter(c, run));
        i += run;
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn field(token: &Token, java: &str) -> Result<Field, String> {
    let (c, n) = match token {
        Token::Literal(text) => return Ok(Field::Literal(text.clone())),
        Token::Letter(c, n) => (*c, *n),
    };
    Ok(match (c, n) {
        ('y', 2) => Field::TwoDigitYear,
        ('y', _) => Field::Number(NumberField::Year, n),
        ('M', 1 | 2) => Field::Number(NumberField::Month, n),
        ('M', _) => Field::MonthName { full: n >= 4 },
        ('d', _) => Field::Number(NumberField::Day, n),
        ('H', _) => Field::Number(NumberField::Hour24, n),
        ('h', _) => Field::Number(NumberField::Hour12, n),
        ('m', _) => Field::Number(NumberField::Minute, n),
        ('s', _) => Field::Number(NumberField::Second, n),
        ('S', _) => Field::Number(NumberField::Millisecond, n),
        ('a', _) => Field::AmPm,
        ('E', _) => Field::DayName { full: n >= 4 },
        ('Z', _) => Field::Rfc822Zone,
        ('X', 1..=3) => Field::IsoZone(n),
        ('X', _) => return Err(format!("date pattern {java:?}: at most 3 X letters")),
        ('z', _) => Field::ZoneName,
        (other, _) => {
            return Err(format!(
                "date pattern {java:?}: letter {other:?} is not supported"
            ))
        }
    })
}

/// The strftime text chrono parses with.
fn strftime(tokens: &[Token], java: &str) -> Result<String, String> {
    let mut out = String::new();
    for token in tokens {
        let (c, n) = match token {
            Token::Literal(text) => {
                text.chars().for_each(|c| push_literal(&mut out, c));
                continue;
            }
            Token::Letter(c, n) => (*c, *n),
        };
        out.push_str(match (c, n) {
            ('y', 2) => "%y",
            ('y', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 3) => "%3f",
            ('S', _) => {
                return Err(format!(
                    "date pattern {java:?}: {n} S letters can format but not parse (use SSS)"
                ))
            }
            ('a', _) => "%p",
            ('E', 1..=3) => "%a",
            ('E', _) => "%A",
            ('Z', _) | ('X', 1 | 2) => "%z",
            ('X', _) => "%:z",
            _ => "%Z",
        });
    }
    Ok(out)
}

fn render(field: &Field, t: &DateTime<FixedOffset>, ms: i64, out: &mut String) {
    let pad = |out: &mut String, value: i64, width: usize| {
        let _ = write!(out, "{value:0width$}");
    };
    let era_year = |year: i32| i64::from(if year <= 0 { 1 - year } else { year });
    match field {
        Field::Literal(text) => out.push_str(text),
        Field::Number(which, width) => {
            let value = match which {
                NumberField::Year => era_year(t.year()),
                NumberField::Month => t.month().into(),
                NumberField::Day => t.day().into(),
                NumberField::Hour24 => t.hour().into(),
                NumberField::Hour12 => t.hour12().1.into(),
                NumberField::Minute => t.minute().into(),
                NumberField::Second => t.second().into(),
                NumberField::Millisecond => ms.rem_euclid(1000),
            };
            pad(out, value, *width);
        }
        Field::TwoDigitYear => pad(out, era_year(t.year()) % 100, 2),
        Field::MonthName { full } => {
            let _ = write!(out, "{}", t.format(if *full { "%B" } else { "%b" }));
        }
        Field::DayName { full } => {
            let _ = write!(out, "{}", t.format(if *full { "%A" } else { "%a" }));
        }
        Field::AmPm => out.push_str(if t.hour12().0 { "PM" } else { "AM" }),
        Field::Rfc822Zone | Field::IsoZone(_) => {
            let seconds = t.offset().local_minus_utc();
            if seconds == 0 && matches!(field, Field::IsoZone(_)) {
                out.push('Z');
                return;
            }
            // Java divides the offset in ms by 60 000: seconds are truncated.
            let minutes = seconds / 60;
            out.push(if minutes >= 0 { '+' } else { '-' });
            let minutes = i64::from(minutes.abs());
            pad(out, minutes / 60, 2);
            match field {
                Field::IsoZone(1) => {}
                Field::IsoZone(3) => {
                    out.push(':');
                    pad(out, minutes % 60, 2);
                }
                _ => pad(out, minutes % 60, 2),
            }
        }
        Field::ZoneName => {
            let _ = write!(out, "{}", t.format("%Z"));
        }
    }
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

    /// Test vectors observed with Java 17's `SimpleDateFormat` (`Locale.US`), e.g.
    /// `new SimpleDateFormat("XXX").format(new Date(1705307400123L))` in UTC is `Z`.
    #[test]
    fn formats_as_java_simple_date_format() {
        let t = 1_705_307_400_123; // 2024-01-15T08:30:00.123Z
        for (pattern, zone, ms, java) in [
            ("X|XX|XXX|Z", "UTC", t, "Z|Z|Z|+0000"),
            ("X|XX|XXX|Z", "Asia/Shanghai", t, "+08|+0800|+08:00|+0800"),
            (
                "X|XX|XXX|Z",
                "America/St_Johns",
                t,
                "-03|-0330|-03:30|-0330",
            ),
            ("X|XX|XXX|Z", "Asia/Kolkata", t, "+05|+0530|+05:30|+0530"),
            ("X|XX|XXX|Z", "GMT+8", t, "+08|+0800|+08:00|+0800"),
            (
                "ss.S|ss.SS|ss.SSS|ss.SSSS",
                "UTC",
                t,
                "00.123|00.123|00.123|00.0123",
            ),
            (
                "ss.S|ss.SS|ss.SSS|ss.SSSS",
                "UTC",
                t - 118,
                "00.5|00.05|00.005|00.0005",
            ),
            ("ss.SSSSSS|ss.SSSSSSSSS", "UTC", t, "00.000123|00.000000123"),
            ("ss.SSSSSS", "UTC", t - 123, "00.000000"),
            // Offsets with seconds (local mean times) are truncated to minutes.
            (
                "yyyy-MM-dd HH:mm:ss Z|X|XX|XXX",
                "Africa/Monrovia",
                -315_619_200_000,
                "1959-12-31 23:15:30 -0044|-00|-0044|-00:44",
            ),
            (
                "yyyy-MM-dd HH:mm:ss Z|X|XX|XXX",
                "Asia/Shanghai",
                -2_208_988_800_000,
                "1900-01-01 08:05:43 +0805|+08|+0805|+08:05",
            ),
            (
                "yyyy-MM-dd HH:mm:ss Z|XXX",
                "Europe/Dublin",
                -1_700_000_000_000,
                "1916-02-18 01:21:19 -0025|-00:25",
            ),
            (
                "yyyy-MM-dd HH:mm:ss",
                "UTC",
                253_402_300_800_000,
                "10000-01-01 00:00:00",
            ),
            ("yy-M-d H:m:s", "UTC", t, "24-1-15 8:30:0"),
            ("yyyyy|y|yyy", "UTC", t, "02024|2024|2024"),
            (
                "EEE, d MMM yyyy hh:mm a",
                "UTC",
                t,
                "Mon, 15 Jan 2024 08:30 AM",
            ),
            ("EEEE MMMM", "UTC", t, "Monday January"),
            // Java prints "GMT+08:00" or "CST" here: a documented difference.
            ("z", "GMT+8", t, "+08:00"),
            ("yyyy'T'''%", "UTC", t, "2024T'%"),
        ] {
            let p = DatePattern::new(pattern).unwrap();
            let z = Zone::parse(zone).unwrap();
            assert_eq!(p.format(ms, &z), java, "{pattern} in {zone}");
        }
        assert!(DatePattern::new("XXXX").is_err());
    }

    #[test]
    fn impossible_dates_are_errors_not_1970() {
        let utc = Zone::parse("UTC").unwrap();
        for (pattern, text) in [
            ("yyyy-MM-dd", "2024-02-30"),
            ("yyyyMMdd", "20240230"),
            ("yyyy-MM-dd HH:mm:ss", "2023-02-29 00:00:00"),
        ] {
            let e = DatePattern::new(pattern)
                .unwrap()
                .parse(text, &utc)
                .unwrap_err();
            assert!(e.contains("not a valid date"), "{e}");
        }
        let time = DatePattern::new("HH:mm:ss").unwrap();
        assert_eq!(time.parse("01:00:00", &utc), Ok(3_600_000));
        let leap = DatePattern::new("yyyyMMdd").unwrap();
        assert_eq!(leap.parse("20240229", &utc), Ok(1_709_164_800_000));
        // S other than SSS formats but cannot parse.
        let micro = DatePattern::new("ss.SSSSSS").unwrap();
        assert!(micro.parse("00.000123", &utc).unwrap_err().contains("SSS"));
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
