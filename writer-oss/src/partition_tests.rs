use super::*;
use serde_json::json;

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap()
}

/// Epoch milliseconds of an RFC 3339 instant.
fn at(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .timestamp_millis()
}

const HIVE: &str = "lake/orders/dt=$yyyy$MM$dd/hour=$HH/part";

#[test]
fn renders_hive_segments_in_the_zone() {
    let t = Template::parse(HIVE).unwrap();
    assert!(t.has_fields());
    assert_eq!(t.literal_prefix(), "lake/orders/dt=");
    let ms = at("2024-11-21T02:20:00Z");
    assert_eq!(
        t.render(ms, &zone("UTC")).unwrap(),
        "lake/orders/dt=20241121/hour=02/part"
    );
    assert_eq!(
        t.render(ms, &zone("Asia/Shanghai")).unwrap(),
        "lake/orders/dt=20241121/hour=10/part"
    );
    assert_eq!(
        t.render(ms, &zone("GMT-8")).unwrap(),
        "lake/orders/dt=20241120/hour=18/part"
    );
    let t = Template::parse("x/$yyyy/$MM/$dd/$HH/$mm/cost$$/").unwrap();
    assert_eq!(
        t.render(at("2024-01-02T03:04:59.999Z"), &zone("UTC"))
            .unwrap(),
        "x/2024/01/02/03/04/cost$/"
    );
}

#[test]
fn midnight_and_month_ends_roll_every_field() {
    let t = Template::parse("p/$yyyy-$MM-$dd/$HH$mm").unwrap();
    let utc = zone("UTC");
    let render = |s: &str| t.render(at(s), &utc).unwrap();
    assert_eq!(render("2024-12-31T23:59:59.999Z"), "p/2024-12-31/2359");
    assert_eq!(render("2025-01-01T00:00:00Z"), "p/2025-01-01/0000");
    assert_eq!(render("2024-02-29T23:59:00Z"), "p/2024-02-29/2359");
    assert_eq!(render("2024-03-01T00:00:00Z"), "p/2024-03-01/0000");
    assert_eq!(render("2023-02-28T23:59:59Z"), "p/2023-02-28/2359");
    assert_eq!(render("2023-03-01T00:00:00Z"), "p/2023-03-01/0000");
    assert_eq!(render("2024-04-30T23:00:00Z"), "p/2024-04-30/2300");
    // Midnight in Shanghai is 16:00 UTC the day before.
    let sh = zone("Asia/Shanghai");
    assert_eq!(
        t.render(at("2024-05-31T15:59:59Z"), &sh).unwrap(),
        "p/2024-05-31/2359"
    );
    assert_eq!(
        t.render(at("2024-05-31T16:00:00Z"), &sh).unwrap(),
        "p/2024-06-01/0000"
    );
}

#[test]
fn daylight_saving_renders_wall_clock_hours() {
    let t = Template::parse("d=$yyyy$MM$dd/h=$HH/").unwrap();
    let ny = zone("America/New_York");
    let render = |s: &str| t.render(at(s), &ny).unwrap();
    // Spring forward 2024-03-10: 01:59:59 EST, then 03:00 EDT; hour 02 never exists.
    assert_eq!(render("2024-03-10T06:59:59Z"), "d=20240310/h=01/");
    assert_eq!(render("2024-03-10T07:00:00Z"), "d=20240310/h=03/");
    // Fall back 2024-11-03: 01:30 EDT and 01:30 EST, an hour apart, share hour 01.
    assert_eq!(render("2024-11-03T05:30:00Z"), "d=20241103/h=01/");
    assert_eq!(render("2024-11-03T06:30:00Z"), "d=20241103/h=01/");
    assert_eq!(render("2024-11-03T07:00:00Z"), "d=20241103/h=02/");
    // Before 1970 and out of range.
    assert_eq!(
        t.render(at("1969-12-31T23:00:00Z"), &zone("UTC")).unwrap(),
        "d=19691231/h=23/"
    );
    assert_eq!(t.render(253_402_300_800_000, &zone("UTC")), None);
}

#[test]
fn bad_templates_say_what_and_where() {
    let e = Template::parse("lake/$yy/x").unwrap_err();
    assert!(e.contains("unknown placeholder \"$yy/x\" at byte 5"), "{e}");
    assert!(e.contains("$yyyy, $MM, $dd, $HH, $mm"), "{e}");
    let e = Template::parse("lake/$HH$").unwrap_err();
    assert!(e.contains("unterminated $ at the end"), "{e}");
    assert!(Template::parse("lake/${start_time}").is_err());
    assert!(Template::parse("lake/$hh").is_err());
    assert!(!Template::parse("a$$b").unwrap().has_fields());
}

#[test]
fn job_keys_match_the_template_and_the_window() {
    let t = Template::parse(HIVE).unwrap();
    let hex = "0123456789abcdef01234567";
    let key = format!("lake/orders/dt=20241121/hour=10/part__{hex}00000003_1.csv");
    assert!(t.matches_job_key(&key, hex));
    assert!(!t.matches_job_key(&key, "fedcba9876543210fedcba98"));
    assert!(!t.matches_job_key(
        &format!("lake/orders/dt=2024112/hour=10/part__{hex}00000003"),
        hex
    ));
    assert!(!t.matches_job_key(&format!("lake/orders/dt=20241121/hour=1x/part__{hex}"), hex));
    assert!(!t.matches_job_key(&format!("lake/other/part__{hex}"), hex));
    assert!(!t.matches_job_key("lake/orders/dt=20241121/hour=10/part", hex));
}

fn parse(p: Json) -> Result<Option<Partitioning>, PluginError> {
    let map = p.as_object().unwrap().clone();
    let object = map["object"].as_str().unwrap().to_owned();
    let mode = match map.get("writeMode").and_then(Json::as_str) {
        Some("truncate") => WriteMode::Truncate,
        Some("nonConflict") => WriteMode::NonConflict,
        _ => WriteMode::Append,
    };
    from_parameter(&map, &object, zone("UTC"), "Asia/Shanghai", false, mode)
}

fn error(p: Json) -> String {
    let e = parse(p).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    e.message
}

#[test]
fn window_time_takes_epoch_ms_or_the_windows_time_string() {
    // The string is read in the job's zone (Asia/Shanghai here), as the reader reads
    // startTimeString; partitions render in the writer's zone (UTC here).
    let p = parse(json!({"object": HIVE, "windowTime": "20241121102000"}))
        .unwrap()
        .unwrap();
    assert_eq!(p.source, TimeSource::Window(at("2024-11-21T02:20:00Z")));
    let ms = at("2024-11-21T02:20:00Z");
    for value in [json!(ms), json!(ms.to_string())] {
        let p = parse(json!({"object": HIVE, "windowTime": value}))
            .unwrap()
            .unwrap();
        assert_eq!(p.source, TimeSource::Window(ms));
        assert_eq!(
            base_object(HIVE, Some(&p)),
            "lake/orders/dt=20241121/hour=02/part"
        );
        let scope = Scope::new(HIVE, Some(&p), "0123456789abcdef01234567");
        assert_eq!(
            scope.prefix,
            "lake/orders/dt=20241121/hour=02/part__0123456789abcdef01234567"
        );
    }
    assert_eq!(p_max_open(json!({"object": HIVE, "windowTime": ms})), 16);
    for bad in [json!("2024-11-21"), json!("tomorrow"), json!(true)] {
        let e = error(json!({"object": HIVE, "windowTime": bad}));
        assert!(e.contains("windowTime must be epoch milliseconds"), "{e}");
    }
}

fn p_max_open(p: Json) -> usize {
    parse(p).unwrap().unwrap().max_open
}

#[test]
fn event_time_column_by_index_or_name() {
    let p = parse(
        json!({"object": HIVE, "writeMode": "append", "eventTimeColumn": 3,
                          "maxOpenPartitions": 2}),
    )
    .unwrap()
    .unwrap();
    assert_eq!(p.max_open, 2);
    assert_eq!(
        p.source,
        TimeSource::Column {
            index: 3,
            name: "column 3".into()
        }
    );
    let scope = Scope::new(HIVE, Some(&p), "0123456789abcdef01234567");
    assert_eq!(scope.prefix, "lake/orders/dt=");
    assert!(scope.owns("lake/orders/dt=20240101/hour=00/part__0123456789abcdef0123456700000000"));
    assert!(!scope.owns("lake/orders/dt=20240101/hour=00/part__ffffff6789abcdef0123456700000000"));
    for names in [
        json!({"header": ["id", "ts"]}),
        json!({"column": [{"name": "id"}, {"name": "ts"}]}),
    ] {
        let mut p = json!({"object": HIVE, "eventTimeColumn": "ts"});
        p.as_object_mut()
            .unwrap()
            .extend(names.as_object().unwrap().clone());
        let source = parse(p).unwrap().unwrap().source;
        assert_eq!(
            source,
            TimeSource::Column {
                index: 1,
                name: "column \"ts\"".into()
            }
        );
    }
    let e = error(json!({"object": HIVE, "eventTimeColumn": "when", "header": ["id", "ts"]}));
    assert!(
        e.contains("eventTimeColumn \"when\" is not a column: the columns are id, ts"),
        "{e}"
    );
    let e = error(json!({"object": HIVE, "eventTimeColumn": "ts"}));
    assert!(e.contains("neither column nor header"), "{e}");
    let e = error(json!({"object": HIVE, "eventTimeColumn": -1}));
    assert!(e.contains("eventTimeColumn must be a column index"), "{e}");
}

#[test]
fn parameter_mistakes_exit_2_naming_the_parameter() {
    let e = error(json!({"object": HIVE}));
    assert!(
        e.contains("give windowTime") && e.contains("eventTimeColumn"),
        "{e}"
    );
    let e = error(json!({"object": HIVE, "windowTime": 1, "eventTimeColumn": 1}));
    assert!(e.contains("not both"), "{e}");
    let e = error(json!({"object": "plain/x", "windowTime": 1}));
    assert!(
        e.contains("windowTime needs an object with time placeholders"),
        "{e}"
    );
    let e = error(json!({"object": "lake/$yy", "windowTime": 1}));
    assert!(
        e.starts_with("writer-oss: object: unknown placeholder"),
        "{e}"
    );
    for mode in ["truncate", "nonConflict"] {
        let e = error(json!({"object": HIVE, "eventTimeColumn": 0, "writeMode": mode}));
        assert!(
            e.contains(&format!(
                "writeMode {mode} cannot be used with eventTimeColumn"
            )),
            "{e}"
        );
    }
    // With the window's time, truncate acts on the window's partition only.
    assert!(parse(json!({"object": HIVE, "windowTime": 1, "writeMode": "truncate"})).is_ok());
    let e = error(json!({"object": HIVE, "eventTimeColumn": 0, "maxOpenPartitions": 0}));
    assert!(
        e.contains("maxOpenPartitions must be an integer from 1 to 4096"),
        "{e}"
    );
    let map = json!({"object": HIVE, "windowTime": 1})
        .as_object()
        .unwrap()
        .clone();
    let e = from_parameter(&map, HIVE, zone("UTC"), "UTC", true, WriteMode::Truncate).unwrap_err();
    assert!(e.message.contains("writeSingleObject"), "{}", e.message);
    assert!(parse(json!({"object": "plain/x"})).unwrap().is_none());
}

#[test]
fn event_time_values() {
    let ms = at("2024-11-21T02:20:00Z");
    let record = vec![
        Value::Long(1),
        Value::Date(ms),
        Value::Long(ms),
        Value::Null,
        Value::String("x".into()),
    ];
    assert_eq!(event_time(&record, 1, "column 1"), Ok(ms));
    assert_eq!(event_time(&record, 2, "column 2"), Ok(ms));
    let e = event_time(&record, 3, "column \"ts\"").unwrap_err();
    assert!(e.contains("column \"ts\" is null"), "{e}");
    let e = event_time(&record, 4, "column 4").unwrap_err();
    assert!(e.contains("column 4 holds a string value"), "{e}");
    let e = event_time(&record, 9, "column 9").unwrap_err();
    assert!(
        e.contains("the record has no column 9 (it has 5 columns)"),
        "{e}"
    );
    let e = event_time(&[Value::Long(i64::MAX)], 0, "column 0").unwrap_err();
    assert!(e.contains("not a time"), "{e}");
}
