//! Property tests of the DataWorks expression evaluator against the documented
//! semantics (engine README, "Variables"; DataWorks user guide "Supported formats of
//! scheduling parameters" and "Impact of daylight saving time on scheduling"):
//!
//! * `$[pattern±N]` and `±7*N` move the schedule time by calendar days: the same
//!   wall-clock time N days away, whatever daylight saving time did in between
//!   (DataWorks schedules by the clock);
//! * `±N/24` and `±N/24/60` move it by elapsed hours and minutes (on the day the clocks
//!   go forward at 02:00, ten minutes before 03:00 is 01:50);
//! * `add_months(pattern,±N)` moves it by calendar months, a day past the end of the
//!   target month becoming its last day (leap years included);
//! * the business date (`${…}`, `$bizdate`, `${bdp.system.bizdate}`) is the calendar
//!   day before the schedule time's.
//!
//! The expected values are computed here with plain calendar arithmetic on the wall
//! clock, independently of the evaluator.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use engine::job::variables::Variables;
use proptest::prelude::*;

const ZONES: &[&str] = &[
    "UTC",
    "Asia/Shanghai",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Pacific/Chatham",
    "Asia/Kolkata",
];

fn vars(schedule: DateTime<Tz>) -> Variables {
    Variables::new(Vec::new(), schedule).expect("no parameters")
}

fn last_day(year: i32, month: u32) -> u32 {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .expect("a month")
}

/// A schedule time: a wall-clock time that exists exactly once in its zone.
fn schedule() -> impl Strategy<Value = DateTime<Tz>> {
    (
        0..ZONES.len(),
        1971i32..2099,
        1u32..=12,
        1u32..=31,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_filter_map("no such wall-clock time", |(z, y, mo, d, h, mi, s)| {
            let zone: Tz = ZONES[z].parse().ok()?;
            let naive =
                NaiveDate::from_ymd_opt(y, mo, d.min(last_day(y, mo)))?.and_hms_opt(h, mi, s)?;
            match zone.from_local_datetime(&naive) {
                LocalResult::Single(t) => Some(t),
                _ => None,
            }
        })
}

fn wall(t: &NaiveDateTime) -> String {
    t.format("%Y%m%d%H%M%S").to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn day_and_week_offsets_are_calendar_days(at in schedule(), n in -1500i64..1500) {
        let v = vars(at);
        let local = at.naive_local();
        let target = local + Duration::days(n);
        let sign = if n < 0 { "-" } else { "+" };
        prop_assert_eq!(
            v.evaluate(&format!("yyyymmdd{sign}{}", n.abs())).unwrap(),
            target.format("%Y%m%d").to_string()
        );
        // The wall-clock time is kept where it exists once on the target day.
        if let LocalResult::Single(_) = at.timezone().from_local_datetime(&target) {
            prop_assert_eq!(
                v.evaluate(&format!("yyyymmddhh24miss{sign}{}", n.abs())).unwrap(),
                wall(&target)
            );
        }
        let weeks = n / 7;
        prop_assert_eq!(
            v.evaluate(&format!("yyyy-mm-dd{sign}7*{}", weeks.abs())).unwrap(),
            (local + Duration::days(7 * weeks)).format("%Y-%m-%d").to_string()
        );
    }

    #[test]
    fn hour_and_minute_offsets_are_elapsed_time(at in schedule(), n in -5000i64..5000) {
        let v = vars(at);
        let sign = if n < 0 { "-" } else { "+" };
        let hours = (at + Duration::hours(n)).naive_local();
        prop_assert_eq!(
            v.evaluate(&format!("yyyymmddhh24miss{sign}{}/24", n.abs())).unwrap(),
            wall(&hours)
        );
        let minutes = (at + Duration::minutes(n)).naive_local();
        prop_assert_eq!(
            v.evaluate(&format!("yyyymmddhh24miss{sign}{}/24/60", n.abs())).unwrap(),
            wall(&minutes)
        );
    }

    #[test]
    fn add_months_clamps_to_the_month_end(at in schedule(), n in -600i64..600) {
        let v = vars(at);
        let local = at.naive_local();
        let months = i64::from(local.year()) * 12 + i64::from(local.month0()) + n;
        let year = i32::try_from(months.div_euclid(12)).unwrap();
        let month = u32::try_from(months.rem_euclid(12)).unwrap() + 1;
        let day = local.day().min(last_day(year, month));
        prop_assert_eq!(
            v.evaluate(&format!("add_months(yyyymmdd,{n})")).unwrap(),
            format!("{year:04}{month:02}{day:02}")
        );
        if n % 12 == 0 {
            prop_assert_eq!(
                v.evaluate(&format!("add_months(yyyy-mm-dd,{}12*{})", if n < 0 { "-" } else { "" }, (n / 12).abs())).unwrap(),
                format!("{year:04}-{month:02}-{day:02}")
            );
        }
    }

    #[test]
    fn the_business_date_is_the_calendar_day_before(at in schedule(), n in 0i64..400) {
        let day_before = (at.naive_local() - Duration::days(1)).date();
        let v = vars(at);
        prop_assert_eq!(
            v.lookup("bdp.system.bizdate").unwrap(),
            day_before.format("%Y%m%d").to_string()
        );
        prop_assert_eq!(v.evaluate_value("$bizdate").unwrap(), day_before.format("%Y%m%d").to_string());
        prop_assert_eq!(
            v.evaluate_value(&format!("${{yyyymmdd-{n}}}")).unwrap(),
            (day_before - Duration::days(n)).format("%Y%m%d").to_string()
        );
        prop_assert_eq!(
            v.evaluate_value(&format!("${{yyyy-{}}}", n % 50)).unwrap(),
            format!("{:04}", day_before.year() - i32::try_from(n % 50).unwrap())
        );
    }
}

fn at(zone: &str, wall: &str) -> DateTime<Tz> {
    let zone: Tz = zone.parse().unwrap();
    let naive = NaiveDateTime::parse_from_str(wall, "%Y-%m-%d %H:%M:%S").unwrap();
    zone.from_local_datetime(&naive).single().unwrap()
}

#[test]
fn days_across_the_clocks_going_forward_are_calendar_days() {
    // New York moved from 02:00 EST to 03:00 EDT on 2024-03-10; 24 hours before
    // 2024-03-11 00:30 EDT is 2024-03-09 23:30 EST, but the day before is the 10th.
    let v = vars(at("America/New_York", "2024-03-11 00:30:00"));
    assert_eq!(v.evaluate("yyyymmdd-1").unwrap(), "20240310");
    assert_eq!(v.lookup("bdp.system.bizdate").unwrap(), "20240310");
    assert_eq!(v.evaluate_value("$bizdate").unwrap(), "20240310");
    assert_eq!(v.evaluate("yyyymmddhh24miss-1").unwrap(), "20240310003000");
    // Elapsed hours: 3 hours before 00:30 EDT on the 11th is 20:30 EDT on the 10th.
    assert_eq!(
        v.evaluate("yyyymmddhh24miss-3/24").unwrap(),
        "20240310213000"
    );
    // Ten minutes before 03:00 on the day the clocks go forward is 01:50.
    let v = vars(at("America/New_York", "2024-03-10 03:00:00"));
    assert_eq!(v.evaluate("hh24:mi-10/24/60").unwrap(), "01:50");
}

#[test]
fn a_shift_into_the_skipped_hour_lands_after_it() {
    // 2024-03-10 02:30 does not exist in New York: a month after 2024-02-10 02:30 is
    // 03:30 EDT (the same instant a clock that was not moved would show as 02:30),
    // not an error.
    let v = vars(at("America/New_York", "2024-02-10 02:30:00"));
    assert_eq!(
        v.evaluate("add_months(yyyymmddhh24miss,1)").unwrap(),
        "20240310033000"
    );
    let v = vars(at("America/New_York", "2024-03-09 02:30:00"));
    assert_eq!(v.evaluate("yyyymmddhh24miss+1").unwrap(), "20240310033000");
}

#[test]
fn month_ends_and_leap_days() {
    let v = vars(at("Asia/Shanghai", "2024-01-31 08:00:00"));
    assert_eq!(v.evaluate("add_months(yyyymmdd,1)").unwrap(), "20240229");
    assert_eq!(v.evaluate("add_months(yyyymmdd,13)").unwrap(), "20250228");
    let v = vars(at("Asia/Shanghai", "2024-02-29 08:00:00"));
    assert_eq!(v.evaluate("add_months(yyyymmdd,12)").unwrap(), "20250228");
    assert_eq!(
        v.evaluate("add_months(yyyymmdd,-12*4)").unwrap(),
        "20200229"
    );
    assert_eq!(v.evaluate("yyyymmdd+1").unwrap(), "20240301");
    let v = vars(at("Asia/Shanghai", "2023-03-01 00:00:00"));
    assert_eq!(v.lookup("bdp.system.bizdate").unwrap(), "20230228");
}

#[test]
fn huge_offsets_are_errors_not_panics() {
    let v = vars(at("UTC", "2024-03-01 00:00:00"));
    // `${pattern±N}` multiplied N days without a bound check and panicked.
    let err = v.evaluate_value("${yyyymmdd-99999999999999}").unwrap_err();
    assert!(err.contains("${yyyymmdd-99999999999999}"), "{err}");
    // What the `expressions` fuzz target found against that code within seconds
    // (fuzz/seeds/expressions/regression-huge-business-offset).
    assert!(v.evaluate_value("${yyyyyyyymmdd-174444444444*2}").is_err());
    assert!(v.evaluate("yyyymmdd-99999999999999").is_err());
    assert!(v.evaluate("yyyymmdd+9223372036854775807/24").is_err());
    assert!(v.evaluate("add_months(yyyymmdd,-99999999999)").is_err());
}
