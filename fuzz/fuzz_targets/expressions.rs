//! Fuzzes variables and DataWorks expressions: `$[…]` in a job file, `-p` values with
//! `$[…]`, `${…}`, `$bizdate` and friends (`engine::job::variables`), and their
//! substitution into the job text (`protocol::placeholders`), at schedule times
//! across 1875–2147 in zones with and without daylight saving time.
//!
//! Invariants beyond "no panic":
//! * an expression evaluates to digits and pattern separators, or its error names it
//!   (`$[expression]` with its line and column);
//! * a `-p` value can never change the job's structure: in a string it arrives as
//!   exactly the evaluated value; outside a string it is one JSON scalar or an error
//!   naming the placeholder;
//! * a `-p` error names the parameter.
#![no_main]

use chrono::TimeZone;
use chrono_tz::Tz;
use engine::job::variables::Variables;
use libfuzzer_sys::fuzz_target;
use protocol::jobfile::{parse_lenient, substitute, Resolver};
use protocol::placeholders::clip;
use serde_json::Value;

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

fn render(vars: &Variables, text: &str) -> Result<Value, String> {
    let resolver = Resolver {
        variable: &|name| vars.lookup(name),
        expression: Some(&|expr| vars.evaluate(expr)),
    };
    let out = substitute(text, "job.json", &resolver).map_err(|e| e.to_string())?;
    Ok(parse_lenient(&out, "job.json")
        .unwrap_or_else(|e| panic!("substitution broke the JSON: {e}\n{text}\n{out}")))
}

fn check_expression(vars: &Variables, expr: &str) {
    let evaluated = vars.evaluate(expr);
    match &evaluated {
        Ok(value) => assert!(
            value
                .chars()
                .all(|c| c.is_ascii_digit() || "-/:_. +".contains(c)),
            "$[{expr}] gave {value:?}"
        ),
        Err(reason) => assert!(!reason.is_empty()),
    }
    if expr.contains([']', '"', '\n']) {
        return;
    }
    let text = format!("{{\"a\": \"$[{expr}]\"}}");
    match render(vars, &text) {
        Ok(doc) => assert_eq!(
            doc["a"].as_str(),
            evaluated.as_deref().ok(),
            "$[{expr}] in a string"
        ),
        Err(e) => {
            assert!(
                evaluated.is_err(),
                "$[{expr}] evaluates but substitution fails: {e}"
            );
            assert!(e.contains(&format!("$[{}]", clip(expr))), "{e}");
            assert!(e.contains("line 1, column 8"), "{e}");
        }
    }
}

fn check_param(schedule: chrono::DateTime<Tz>, value: &str) {
    let vars = match Variables::new(vec![("v".into(), value.into())], schedule) {
        Ok(vars) => vars,
        Err(e) => {
            assert!(e.to_string().starts_with("-p v: "), "{e}");
            return;
        }
    };
    let evaluated = vars.lookup("v").expect("v is set");
    let doc = render(&vars, r#"{"s": "${v}", "t": "x$v-$$"}"#).expect("a string takes any value");
    assert_eq!(doc["s"].as_str(), Some(evaluated.as_str()));
    assert_eq!(doc["t"].as_str(), Some(format!("x{evaluated}-$").as_str()));
    match render(&vars, r#"{"n": ${v}}"#) {
        Ok(doc) => {
            let scalar: Value = serde_json::from_str(evaluated.trim()).expect("a JSON scalar");
            assert_eq!(doc["n"], scalar);
            assert!(!scalar.is_object() && !scalar.is_array());
        }
        Err(e) => assert!(e.contains("${v}"), "{e}"),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let zone: Tz = ZONES[usize::from(data[0]) % ZONES.len()]
        .parse()
        .expect("known zone");
    let seconds = i64::from(u32::from_le_bytes([data[1], data[2], data[3], data[4]]));
    let Some(schedule) = zone.timestamp_opt(seconds * 2 - 3_000_000_000, 0).single() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(&data[5..]) else {
        return;
    };
    let (expr, value) = text.split_once('\n').unwrap_or((text, text));
    let vars = Variables::new(Vec::new(), schedule).expect("no parameters");
    check_expression(&vars, expr);
    check_param(schedule, value);
});
