//! Golden frames: one sample of every message type, kept in `testdata/golden/` as the
//! frame in hex (`<type>.hex`: length, MessagePack body, CRC-32) beside a readable JSON
//! rendering (`<type>.json`). The test checks that encoding the sample gives the hex,
//! that decoding the hex gives the sample, and that the JSON matches.
//!
//! After an intended change of the wire format, rewrite the files with
//! `UPDATE_GOLDEN=1 cargo test -p protocol --test golden` and review the diff.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::path::PathBuf;

use protocol::frame::{decode_message, encode_frame, encode_message, FrameDecoder};
use protocol::jsonl::record_to_line;
use protocol::message::*;
use protocol::Value;
use serde_json::json;

fn samples() -> Vec<Message> {
    let record = vec![
        Value::Null,
        Value::Bool(true),
        Value::Long(-42),
        Value::Double(2.5),
        Value::Decimal("12.3400".into()),
        Value::String("héllo, \"world\"".into()),
        Value::Bytes(vec![0, 1, 254, 255]),
        Value::Date(1_705_307_400_000),
    ];
    let context = JobContext {
        job_id: "job-1".into(),
        fingerprint: "0123456789abcdef0123456789abcdef".into(),
        time_zone: "Asia/Shanghai".into(),
        task_index: 1,
        task_count: 4,
    };
    vec![
        Message::Hello(Hello::new(Role::Reader, "reader-otsstream", "0.1.0")),
        Message::Configure(Configure {
            task: json!({"dataTable": "orders", "shards": ["s1"]}),
            context,
        }),
        Message::Batch(Batch::from_records(&[record.clone(), vec![Value::Long(7)]])),
        Message::Dirty(Dirty::new(
            &[Value::String("abc".into())],
            "column 1: cannot convert string value \"abc\" to long",
        )),
        Message::Checkpoint(Checkpoint {
            state: json!({"shard": "s1", "iterator": "it-9", "records": 120}),
        }),
        Message::Progress(Progress {
            records: 1000,
            bytes: 26000,
            total_records: None,
        }),
        Message::Log(Log {
            level: "warn".into(),
            message: "retrying GetStreamRecord".into(),
        }),
        Message::Output(Output {
            data: b"DataX\t19890604\n".to_vec(),
        }),
        Message::Eos(Eos {
            records: 2,
            bytes: 79,
        }),
        Message::Done(Done {
            records: 2,
            written: 1,
            dirty: 1,
            report: json!({"uploads": [{"key": "a__0", "uploadId": "u1"}]}),
        }),
        Message::Cancel(Cancel {
            reason: "error limit exceeded".into(),
        }),
        Message::Error(ErrorMessage {
            kind: ErrorKind::Service,
            retryable: true,
            message: "GetStreamRecord on shard s1: OTSServerBusy".into(),
        }),
    ]
}

/// The message as JSON, with records shown as JSON lines and output as text.
fn readable(message: &Message) -> serde_json::Value {
    let mut value = serde_json::to_value(message).unwrap();
    match message {
        Message::Batch(b) => {
            let lines: Vec<String> = b
                .decode()
                .unwrap()
                .iter()
                .map(|r| record_to_line(r))
                .collect();
            value["records"] = json!(lines);
        }
        Message::Dirty(d) => value["record"] = json!(record_to_line(&d.decode().unwrap())),
        Message::Output(o) => value["data"] = json!(String::from_utf8_lossy(&o.data)),
        _ => {}
    }
    value
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
}

#[test]
fn golden_frames_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let dir = golden_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let mut seen = Vec::new();
    for message in samples() {
        let name = message.type_name();
        seen.push(name);
        let mut frame = Vec::new();
        encode_frame(&encode_message(&message).unwrap(), &mut frame);
        let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
        let json_text = serde_json::to_string_pretty(&readable(&message)).unwrap() + "\n";
        let hex_path = dir.join(format!("{name}.hex"));
        let json_path = dir.join(format!("{name}.json"));
        if update {
            std::fs::write(&hex_path, format!("{hex}\n")).unwrap();
            std::fs::write(&json_path, &json_text).unwrap();
            continue;
        }
        let stored_hex = std::fs::read_to_string(&hex_path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", hex_path.display()));
        assert_eq!(
            stored_hex.trim(),
            hex,
            "{name}: encoding changed (UPDATE_GOLDEN=1 rewrites)"
        );
        assert_eq!(
            std::fs::read_to_string(&json_path).unwrap(),
            json_text,
            "{name}: readable form changed"
        );
        // Decode the stored bytes back.
        let bytes: Vec<u8> = (0..stored_hex.trim().len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&stored_hex.trim()[i..i + 2], 16).unwrap())
            .collect();
        let mut buf = bytes::BytesMut::from(bytes.as_slice());
        let body = FrameDecoder::after_preamble(1 << 20)
            .decode_frame(&mut buf)
            .unwrap()
            .unwrap();
        assert!(buf.is_empty());
        assert_eq!(
            decode_message(&body).unwrap(),
            message,
            "{name}: stored frame decodes differently"
        );
    }
    let mut all = seen.clone();
    all.dedup();
    assert_eq!(all.len(), 12, "one sample per message type");
}
