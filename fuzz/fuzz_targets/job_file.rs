//! Fuzzes reading a job file: comment and trailing-comma stripping, placeholders, the
//! lenient parse, key normalisation, settings and data sources (`engine::job`).
//!
//! Invariants beyond "no panic":
//! * stripping comments keeps the text's length and every newline where it was;
//! * a normalised document written back in DataX form (`to_datax_json`) reads back to
//!   the same sections and setting: parse(serialise(parse(x))) == parse(x);
//! * an error is a configuration error (exit code 2) with a message.
#![no_main]

use engine::job::datasources::DataSources;
use engine::job::normalise::normalise;
use engine::job::{resolve_text, LoadOptions, Settings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let stripped = protocol::jobfile::strip_comments_and_trailing_commas(text);
    assert_eq!(stripped.len(), text.len(), "stripping changed the length");
    assert!(
        stripped
            .bytes()
            .zip(text.bytes())
            .all(|(a, b)| (a == b'\n') == (b == b'\n')),
        "stripping moved a newline"
    );

    // The whole of reading, with a few variables set and a fixed schedule time.
    let options = LoadOptions {
        params: vec![
            "n=3".into(),
            "day=20240301".into(),
            "-Dname=x -Dq=\"a\\\"b\"".into(),
        ],
        schedule_time: Some("2024-03-31 02:30:00".into()),
        datasources: None,
    };
    let sources = DataSources::parse(
        r#"{"ds": {"endpoint": "http://ds", "k": [1, "x"]}}"#,
        "ds.json",
    )
    .expect("fixed data sources");
    match resolve_text(text, "job.json", &options, &sources) {
        Ok(job) => {
            assert_eq!(job.fingerprint.len(), 32);
            assert!(!job.reader.name.is_empty() && !job.writer.name.is_empty());
        }
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(!e.to_string().is_empty());
        }
    }

    // Round trip of the parsed, normalised document (placeholders are not substituted
    // here: what matters is the structure).
    let Ok(doc) = protocol::jobfile::parse_lenient(text, "job.json") else {
        return;
    };
    let Ok(first) = normalise(doc, "job.json") else {
        return;
    };
    let written = first.to_datax_json().to_string();
    let again = protocol::jobfile::parse_lenient(&written, "again.json")
        .unwrap_or_else(|e| panic!("the serialised job does not parse: {e}\n{written}"));
    let second = normalise(again, "again.json")
        .unwrap_or_else(|e| panic!("the serialised job does not normalise: {e}\n{written}"));
    assert_eq!(first.reader, second.reader);
    assert_eq!(first.writer, second.writer);
    assert_eq!(first.setting, second.setting);
    let settings = |s| format!("{:?}", Settings::parse(s, "j").map_err(|e| e.to_string()));
    assert_eq!(settings(&first.setting), settings(&second.setting));
});
