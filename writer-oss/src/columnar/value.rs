//! A record value to a column's type. Every conversion is exact or refused: a value that
//! does not fit its column makes the record dirty, with a reason naming the column.

use protocol::timefmt::{DatePattern, Zone};
use protocol::value::{double_plain, Value};

use super::schema::{Target, Unit};

/// A value ready for its column's storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Bytes(Vec<u8>),
    /// INT96: nanoseconds of the day (low, high) and the Julian day.
    I96([u32; 3]),
    /// A decimal's unscaled value.
    Dec(i128),
}

/// What conversion needs besides the value.
pub struct Context<'a> {
    pub zone: &'a Zone,
    pub date_format: &'a DatePattern,
}

const MS_PER_DAY: i64 = 86_400_000;
const JULIAN_DAY_OF_EPOCH: i64 = 2_440_588;

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Long(_) => "long",
        Value::Double(_) => "double",
        Value::Decimal(_) => "decimal",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Date(_) => "date",
    }
}

/// Parses decimal text (`-12.3400`, `1E+3`) into its unscaled value at `scale`;
/// `None` when it is not a number or has non-zero digits beyond `scale`.
pub fn parse_decimal(text: &str, scale: u32) -> Option<i128> {
    let t = text.trim();
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], t[i + 1..].parse::<i32>().ok()?),
        None => (t, 0),
    };
    let (negative, digits) = match mantissa.as_bytes().first()? {
        b'-' => (true, &mantissa[1..]),
        b'+' => (false, &mantissa[1..]),
        _ => (false, mantissa),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = all_digits × 10^(exponent − frac_len); wanted: value × 10^scale.
    let shift = i64::from(exponent) - frac_part.len() as i64 + i64::from(scale);
    let all = int_part.bytes().chain(frac_part.bytes());
    let mut unscaled: i128 = 0;
    let kept = if shift >= 0 {
        int_part.len() + frac_part.len()
    } else {
        let dropped = (-shift) as usize;
        let total = int_part.len() + frac_part.len();
        let keep = total.saturating_sub(dropped);
        // The dropped digits must all be zero (no silent rounding).
        if int_part
            .bytes()
            .chain(frac_part.bytes())
            .skip(keep)
            .any(|b| b != b'0')
        {
            return None;
        }
        keep
    };
    for b in all.take(kept) {
        unscaled = unscaled
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    if shift > 0 {
        unscaled = unscaled.checked_mul(10i128.checked_pow(u32::try_from(shift).ok()?)?)?;
    }
    Some(if negative { -unscaled } else { unscaled })
}

fn fits_precision(unscaled: i128, precision: u32) -> bool {
    10i128
        .checked_pow(precision)
        .is_some_and(|limit| unscaled.abs() < limit)
}

fn local_ms(ms: i64, zone: &Zone) -> i64 {
    ms + i64::from(zone.offset_at(ms).local_minus_utc()) * 1000
}

fn timestamp(ms: i64, unit: Unit, utc: bool, zone: &Zone) -> Option<i64> {
    let base = if utc { ms } else { local_ms(ms, zone) };
    match unit {
        Unit::Millis => Some(base),
        Unit::Micros => base.checked_mul(1_000),
        Unit::Nanos => base.checked_mul(1_000_000),
    }
}

fn int96(ms: i64) -> [u32; 3] {
    let day = ms.div_euclid(MS_PER_DAY) + JULIAN_DAY_OF_EPOCH;
    let nanos = ms.rem_euclid(MS_PER_DAY) * 1_000_000;
    [nanos as u32, (nanos >> 32) as u32, day as u32]
}

fn integer(v: i64, target: Target) -> Option<Cell> {
    match target {
        Target::Int32 { bits } => {
            let limit = 1i64 << (bits - 1);
            (-limit..limit).contains(&v).then_some(Cell::I32(v as i32))
        }
        _ => Some(Cell::I64(v)),
    }
}

/// Converts `value` for `target`; `Err` is the reason the record is dirty.
pub fn convert(value: &Value, target: Target, ctx: &Context<'_>) -> Result<Cell, String> {
    let refused = || {
        format!(
            "a {} value {} does not fit {}",
            kind(value),
            preview(value),
            describe(target)
        )
    };
    let cell = match (value, target) {
        (Value::Null, _) => Some(Cell::Null),
        (Value::Bool(b), Target::Bool) => Some(Cell::Bool(*b)),
        (Value::Bool(b), Target::Utf8) => Some(Cell::Bytes(b.to_string().into_bytes())),
        (Value::Long(v), Target::Int32 { .. } | Target::Int64) => integer(*v, target),
        (Value::Long(v), Target::Float64) => {
            let d = *v as f64;
            (d as i64 == *v && d.abs() < 9.007_199_254_740_992e15).then_some(Cell::F64(d))
        }
        (Value::Long(v), Target::Float32) => {
            let f = *v as f32;
            (f as i64 == *v && f.abs() < 16_777_216.0).then_some(Cell::F32(f))
        }
        (
            Value::Long(v),
            Target::Decimal {
                precision, scale, ..
            },
        ) => 10i128
            .checked_pow(scale)
            .and_then(|m| i128::from(*v).checked_mul(m))
            .filter(|u| fits_precision(*u, precision))
            .map(Cell::Dec),
        (Value::Long(v), Target::Utf8) => Some(Cell::Bytes(v.to_string().into_bytes())),
        (Value::Long(v), Target::Bool) => Some(Cell::Bool(*v != 0)),
        (Value::Double(d), Target::Float64) => Some(Cell::F64(*d)),
        (Value::Double(d), Target::Float32) => Some(Cell::F32(*d as f32)),
        (Value::Double(d), Target::Int32 { .. } | Target::Int64) => {
            let exact = d.is_finite() && d.fract() == 0.0 && d.abs() < 9.2e18;
            exact.then(|| integer(*d as i64, target)).flatten()
        }
        (
            Value::Double(d),
            Target::Decimal {
                precision, scale, ..
            },
        ) => d
            .is_finite()
            .then(|| parse_decimal(&double_plain(*d), scale))
            .flatten()
            .filter(|u| fits_precision(*u, precision))
            .map(Cell::Dec),
        (Value::Double(d), Target::Utf8) => Some(Cell::Bytes(double_plain(*d).into_bytes())),
        (
            Value::Decimal(s) | Value::String(s),
            Target::Decimal {
                precision, scale, ..
            },
        ) => parse_decimal(s, scale)
            .filter(|u| fits_precision(*u, precision))
            .map(Cell::Dec),
        (Value::Decimal(s) | Value::String(s), Target::Int32 { .. } | Target::Int64) => {
            parse_decimal(s, 0)
                .and_then(|u| i64::try_from(u).ok())
                .and_then(|v| integer(v, target))
        }
        (Value::Decimal(s) | Value::String(s), Target::Float64) => {
            s.trim().parse::<f64>().ok().map(Cell::F64)
        }
        (Value::Decimal(s) | Value::String(s), Target::Float32) => {
            s.trim().parse::<f32>().ok().map(Cell::F32)
        }
        (Value::Decimal(s) | Value::String(s), Target::Utf8 | Target::Binary) => {
            Some(Cell::Bytes(s.clone().into_bytes()))
        }
        (Value::String(s), Target::Bool) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(Cell::Bool(true)),
            "false" => Some(Cell::Bool(false)),
            _ => None,
        },
        (Value::String(s), Target::Date | Target::Timestamp { .. } | Target::Int96) => ctx
            .date_format
            .parse(s, ctx.zone)
            .ok()
            .and_then(|ms| convert(&Value::Date(ms), target, ctx).ok()),
        (Value::String(s), Target::Fixed(n)) if s.len() == n => {
            Some(Cell::Bytes(s.clone().into_bytes()))
        }
        (Value::Bytes(b), Target::Binary) => Some(Cell::Bytes(b.clone())),
        (Value::Bytes(b), Target::Fixed(n)) if b.len() == n => Some(Cell::Bytes(b.clone())),
        (Value::Bytes(b), Target::Utf8) => std::str::from_utf8(b)
            .is_ok()
            .then(|| Cell::Bytes(b.clone())),
        (Value::Date(ms), Target::Date) => {
            i32::try_from(local_ms(*ms, ctx.zone).div_euclid(MS_PER_DAY))
                .ok()
                .map(Cell::I32)
        }
        (Value::Date(ms), Target::Timestamp { unit, utc }) => {
            timestamp(*ms, unit, utc, ctx.zone).map(Cell::I64)
        }
        (Value::Date(ms), Target::Int96) => Some(Cell::I96(int96(*ms))),
        (Value::Date(ms), Target::Int64) => Some(Cell::I64(*ms)),
        (Value::Date(ms), Target::Utf8) => Some(Cell::Bytes(
            ctx.date_format.format(*ms, ctx.zone).into_bytes(),
        )),
        _ => None,
    };
    cell.ok_or_else(refused)
}

fn preview(value: &Value) -> String {
    let text = match value {
        Value::Bytes(b) => format!("of {} bytes", b.len()),
        Value::String(s) | Value::Decimal(s) => format!("{s:?}"),
        Value::Long(v) => v.to_string(),
        Value::Double(d) => double_plain(*d),
        Value::Bool(b) => b.to_string(),
        Value::Date(ms) => format!("{ms} ms"),
        Value::Null => String::new(),
    };
    protocol::placeholders::clip(&text)
}

/// The column type in words, for dirty-record reasons.
pub fn describe(target: Target) -> String {
    match target {
        Target::Bool => "boolean".into(),
        Target::Int32 { bits } => format!("a {bits}-bit integer"),
        Target::Int64 => "a 64-bit integer".into(),
        Target::Float32 => "float".into(),
        Target::Float64 => "double".into(),
        Target::Utf8 => "string (UTF-8)".into(),
        Target::Binary => "binary".into(),
        Target::Fixed(n) => format!("fixed_len_byte_array({n})"),
        Target::Date => "date".into(),
        Target::Timestamp { unit, utc } => {
            format!("timestamp({unit:?}, {})", if utc { "UTC" } else { "local" })
        }
        Target::Int96 => "int96 timestamp".into(),
        Target::Decimal {
            precision, scale, ..
        } => format!("decimal({precision},{scale})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(parse_decimal("12.34", 4), Some(123_400));
        assert_eq!(parse_decimal("-0.5", 1), Some(-5));
        assert_eq!(parse_decimal("12.3400", 2), Some(1234));
        assert_eq!(parse_decimal("12.345", 2), None);
        assert_eq!(parse_decimal("1E+3", 0), Some(1000));
        assert_eq!(parse_decimal("1.5e-1", 2), Some(15));
        assert_eq!(parse_decimal("abc", 0), None);
        assert_eq!(parse_decimal("", 0), None);
        assert_eq!(parse_decimal("1e99", 0), None);
        assert!(fits_precision(99_999, 5) && !fits_precision(100_000, 5));
    }

    #[test]
    fn dates_and_timestamps_follow_the_zone_rules() {
        let zone = Zone::parse("Asia/Shanghai").unwrap();
        let pattern = DatePattern::new("yyyy-MM-dd HH:mm:ss").unwrap();
        let ctx = Context {
            zone: &zone,
            date_format: &pattern,
        };
        // 2024-01-01T20:00:00Z is 2024-01-02 04:00 in Shanghai.
        let ms = 1_704_139_200_000;
        let date = convert(&Value::Date(ms), Target::Date, &ctx).unwrap();
        assert_eq!(date, Cell::I32(19_724));
        let utc = Target::Timestamp {
            unit: Unit::Micros,
            utc: true,
        };
        assert_eq!(
            convert(&Value::Date(ms), utc, &ctx).unwrap(),
            Cell::I64(ms * 1000)
        );
        let local = Target::Timestamp {
            unit: Unit::Millis,
            utc: false,
        };
        assert_eq!(
            convert(&Value::Date(ms), local, &ctx).unwrap(),
            Cell::I64(ms + 8 * 3_600_000)
        );
        let Cell::I96(v) = convert(&Value::Date(ms), Target::Int96, &ctx).unwrap() else {
            panic!()
        };
        assert_eq!(i64::from(v[2]), 19_723 + JULIAN_DAY_OF_EPOCH);
        assert_eq!(
            (i64::from(v[1]) << 32) + i64::from(v[0]),
            72_000 * 1_000_000_000
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        let zone = Zone::parse("UTC").unwrap();
        let pattern = DatePattern::new("yyyy-MM-dd").unwrap();
        let ctx = Context {
            zone: &zone,
            date_format: &pattern,
        };
        let small = Target::Int32 { bits: 8 };
        assert!(convert(&Value::Long(128), small, &ctx).is_err());
        assert_eq!(
            convert(&Value::Long(-128), small, &ctx),
            Ok(Cell::I32(-128))
        );
        let dec = Target::Decimal {
            precision: 5,
            scale: 2,
            store: super::super::schema::DecimalStore::I32,
        };
        assert_eq!(
            convert(&Value::Decimal("123.45".into()), dec, &ctx),
            Ok(Cell::Dec(12_345))
        );
        let reason = convert(&Value::Decimal("1234.5".into()), dec, &ctx).unwrap_err();
        assert!(reason.contains("decimal(5,2)"), "{reason}");
        assert!(convert(&Value::Bytes(vec![0xff]), Target::Utf8, &ctx).is_err());
        assert!(convert(&Value::String("x".into()), Target::Int64, &ctx).is_err());
        assert!(convert(&Value::Double(1.5), Target::Int64, &ctx).is_err());
        assert_eq!(convert(&Value::Null, Target::Int64, &ctx), Ok(Cell::Null));
    }
}
