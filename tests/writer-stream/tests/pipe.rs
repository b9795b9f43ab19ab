//! reader-stream piped into writer-stream with no engine in between.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A workspace binary, built if the test run did not build it already.
fn binary(name: &str) -> PathBuf {
    test_support::workspace_binary(name)
}

fn write_config(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn jsonl_prints_the_configured_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        "r.json",
        r#"{"sliceRecordCount": 2, "column": [
        {"type": "string", "value": "DataX"}, {"type": "long", "sequence": 5},
        {"type": "date", "value": "1989-06-04 00:00:00"}, {"type": "bool", "value": "true"},
        {"type": "bytes", "value": "test"}, {"type": "double", "value": "1.5"}, {"type": "decimal", "value": "3.10"}]}"#,
    );
    let out = Command::new(binary("reader-stream"))
        .args(["read", "--config"])
        .arg(&config)
        .args(["--format", "jsonl", "--time-zone", "Asia/Shanghai"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // China kept daylight saving time in the summer of 1989 (UTC+9): midnight in
    // Asia/Shanghai was 15:00 UTC, which the zone database knows.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "[\"DataX\",5,{\"date\":\"1989-06-03T15:00:00.000Z\"},true,{\"bytes\":\"dGVzdA==\"},1.5,{\"decimal\":\"3.10\"}]\n\
         [\"DataX\",6,{\"date\":\"1989-06-03T15:00:00.000Z\"},true,{\"bytes\":\"dGVzdA==\"},1.5,{\"decimal\":\"3.10\"}]\n"
    );
}

/// Runs `reader-stream read --config r | writer-stream write --config w` and returns
/// the writer's stdout and stderr.
fn pipe(reader_config: &PathBuf, writer_config: &PathBuf) -> (String, String) {
    let mut reader = Command::new(binary("reader-stream"))
        .args(["read", "--config"])
        .arg(reader_config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let writer = Command::new(binary("writer-stream"))
        .args(["write", "--config"])
        .arg(writer_config)
        .stdin(reader.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = writer.wait_with_output().unwrap();
    assert!(reader.wait().unwrap().success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

#[test]
fn a_million_records_move_through_a_direct_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let r = write_config(
        &dir,
        "r.json",
        r#"{"sliceRecordCount": 1000000, "column": [
        {"type": "long", "sequence": 0}, {"type": "string", "value": "constant text of the record"}]}"#,
    );
    let w = write_config(&dir, "w.json", r#"{"print": false}"#);
    let (stdout, stderr) = pipe(&r, &w);
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("write finished records=1000000 dirty=0"),
        "{stderr}"
    );
}

#[test]
fn text_output_matches_datax_streamwriter() {
    let dir = tempfile::tempdir().unwrap();
    let job = write_config(
        &dir,
        "job.json",
        r#"{"job": {"content": [{
        "reader": {"name": "streamreader", "parameter": {"sliceRecordCount": 3, "seed": 7,
            "column": [{"type": "long", "sequence": 1}, {"type": "string", "random": "4, 4"}, {"type": "string", "value": "x,y"}]}},
        "writer": {"name": "streamwriter", "parameter": {"print": true, "fieldDelimiter": "|"}}}]}}"#,
    );
    let (stdout, _) = pipe(&job, &job);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3);
    for (i, line) in lines.iter().enumerate() {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields[0], (i + 1).to_string());
        assert_eq!(fields[1].len(), 4);
        assert!(fields[1].chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(fields[2], "x,y");
    }
    // Same seed, same output.
    assert_eq!(pipe(&job, &job).0, stdout);
}

#[test]
fn a_truncated_stream_fails_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let w = write_config(&dir, "w.json", r#"{"print": false}"#);
    // A hello and a batch but no eos: what a reader that crashed mid-stream leaves.
    let mut stream = protocol::frame::PREAMBLE.to_vec();
    for m in [
        protocol::Message::Hello(protocol::message::Hello::new(
            protocol::Role::Reader,
            "reader-x",
            "0",
        )),
        protocol::Message::Batch(protocol::message::Batch::from_records(&[vec![
            protocol::Value::Long(1),
        ]])),
    ] {
        protocol::frame::encode_frame(&protocol::frame::encode_message(&m).unwrap(), &mut stream);
    }
    let input = write_config(&dir, "in.bin", "");
    std::fs::write(&input, &stream).unwrap();
    let out = Command::new(binary("writer-stream"))
        .args(["write", "--config"])
        .arg(&w)
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ended without eos after 1 records"),
        "{stderr}"
    );
}

/// Runs `writer-stream write` on `input` and returns its exit code, stdout and stderr.
fn write_input(writer_config: &PathBuf, input: Stdio) -> (Option<i32>, String, String) {
    let out = Command::new(binary("writer-stream"))
        .args(["write", "--config"])
        .arg(writer_config)
        .stdin(input)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_reader_that_fails_after_its_hello_stops_the_writer_committing() {
    let dir = tempfile::tempdir().unwrap();
    // reader-stream refuses the column when it splits, after its hello went out.
    let r = write_config(
        &dir,
        "r.json",
        r#"{"sliceRecordCount": 1, "column": [{"type": "nope", "value": "1"}]}"#,
    );
    let w = write_config(&dir, "w.json", r#"{"print": true}"#);
    let mut reader = Command::new(binary("reader-stream"))
        .args(["read", "--config"])
        .arg(&r)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (code, stdout, stderr) = write_input(&w, Stdio::from(reader.stdout.take().unwrap()));
    assert_eq!(reader.wait().unwrap().code(), Some(2));
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the reader failed: column[0]") && stderr.contains("nothing was committed"),
        "{stderr}"
    );
    assert_eq!(stdout, "");
}

#[test]
fn an_input_that_ends_without_eos_is_not_committed() {
    use protocol::frame::{encode_frame, encode_message, PREAMBLE};
    use protocol::message::{Batch, Hello, Message};
    use protocol::{Role, Value};
    let dir = tempfile::tempdir().unwrap();
    let w = write_config(&dir, "w.json", r#"{"print": true}"#);
    // A reader killed after its hello, and one killed after a batch.
    let hello = Message::Hello(Hello::new(Role::Reader, "killed", "0"));
    let batch = Message::Batch(Batch::from_records(&[vec![Value::Long(1)]]));
    for messages in [vec![hello.clone()], vec![hello, batch]] {
        let mut bytes = PREAMBLE.to_vec();
        for m in &messages {
            encode_frame(&encode_message(m).unwrap(), &mut bytes);
        }
        let input = dir.path().join("input.bin");
        std::fs::write(&input, bytes).unwrap();
        let file = std::fs::File::open(&input).unwrap();
        let (code, _, stderr) = write_input(&w, Stdio::from(file));
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("ended without eos"), "{stderr}");
        assert!(stderr.contains("nothing was committed"), "{stderr}");
    }
}
