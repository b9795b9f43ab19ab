//! Fuzzes how the localcloud emulators decode requests: Tablestore actions run against
//! an in-memory instance (protobuf bodies, PlainBuffer rows, conditions, streams),
//! MaxCompute Tunnel upload blocks (whole and as they stream in, in pieces) and column
//! types and SQL, and OSS XML bodies (Delete, CompleteMultipartUpload) and query
//! strings. A test emulator that panics hides the plugin bug it was meant to show.
//!
//! Invariants beyond "no panic": a decoded Tunnel block re-encodes to a block that
//! decodes to the same rows; a block decoded as it streams in, in pieces, gives what
//! decoding it whole gives; a decoded PlainBuffer row re-encodes canonically; a parsed
//! column type prints as a type string that parses to the same type; a parsed
//! Delete/Complete body's keys and ETags write back as XML that parses to the same.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use localcloud::odps::block_decoder::{decode_block, BlockDecoder};
use localcloud::odps::types::OdpsType;
use localcloud::odps::wire::encode_block;
use localcloud::oss::wire::{parse_complete, parse_delete};
use localcloud::ots::{pb, plainbuffer, FuzzInstance};
use prost::Message;

const ACTIONS: &[&str] = &[
    "PutRow",
    "UpdateRow",
    "DeleteRow",
    "BatchWriteRow",
    "GetRow",
    "BatchGetRow",
    "GetRange",
    "ListStream",
    "DescribeStream",
    "GetShardIterator",
    "GetStreamRecord",
    "DescribeTable",
    "UpdateTable",
    "CreateTable",
    "DeleteTable",
    "ListTable",
];

const TYPES: &[&str] = &[
    "bigint",
    "string",
    "double",
    "boolean",
    "datetime",
    "decimal(10,2)",
    "int",
    "float",
    "timestamp",
    "binary",
    "varchar(5)",
    "array<bigint>",
    "map<string,int>",
    "struct<a:int,b:string>",
    "date",
    "tinyint",
];

/// A table `t` with the keys of the SDK test vectors (pk_str STRING, pk_int INTEGER)
/// and a stream.
fn create_table() -> Vec<u8> {
    let key = |name: &str, t: i32| pb::PrimaryKeySchema {
        name: Some(name.into()),
        r#type: Some(t),
        option: None,
    };
    pb::CreateTableRequest {
        table_meta: Some(pb::TableMeta {
            table_name: Some("t".into()),
            primary_key: vec![key("pk_str", 2), key("pk_int", 1)],
            defined_column: Vec::new(),
        }),
        reserved_throughput: Some(pb::ReservedThroughput {
            capacity_unit: Some(pb::CapacityUnit {
                read: Some(0),
                write: Some(0),
            }),
        }),
        table_options: Some(pb::TableOptions {
            time_to_live: Some(-1),
            max_versions: Some(2),
            ..Default::default()
        }),
        stream_spec: Some(pb::StreamSpecification {
            enable_stream: Some(true),
            expiration_time: Some(24),
            columns_to_get: Vec::new(),
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Up to eight actions, each `[action, len_hi, len_lo, body…]`, against one instance.
fn ots(data: &[u8]) {
    let mut instance = FuzzInstance::default();
    let now = 1_700_000_000_000;
    instance
        .run("CreateTable", &create_table(), now)
        .expect("the fixed table is created");
    let mut rest = data;
    for step in 0..8 {
        let [action, hi, lo, tail @ ..] = rest else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (body, next) = tail.split_at(len);
        let action = ACTIONS[usize::from(*action) % ACTIONS.len()];
        let _ = instance.run(action, body, now + step * 1000);
        rest = next;
    }
}

fn odps(data: &[u8]) {
    let [count, split, rest @ ..] = data else {
        return;
    };
    let columns: Vec<OdpsType> = rest
        .iter()
        .take(usize::from(count % 6) + 1)
        .map(|b| OdpsType::parse(TYPES[usize::from(*b) % TYPES.len()]).expect("known type"))
        .collect();
    let block = Bytes::copy_from_slice(rest.get(columns.len()..).unwrap_or_default());
    let whole = decode_block(&block, &columns);
    let mut streamed = BlockDecoder::new(columns.clone());
    for piece in block.chunks(usize::from(*split).max(1)) {
        streamed.push(Bytes::copy_from_slice(piece));
    }
    let streamed = streamed.finish();
    assert_eq!(
        format!("{streamed:?}"),
        format!("{whole:?}"),
        "streamed != whole"
    );
    if let Ok(rows) = whole {
        let encoded = Bytes::from(encode_block(&rows, &columns));
        let again = decode_block(&encoded, &columns).expect("own block decodes");
        assert_eq!(format!("{again:?}"), format!("{rows:?}"));
    }
}

fn text(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(t) = OdpsType::parse(&text) {
        let printed = t.to_string();
        assert_eq!(OdpsType::parse(&printed).as_ref(), Ok(&t), "{printed}");
    }
    let _ = localcloud::odps::sql::parse(&text);
    let _ = localcloud::oss::addressing::parse_query(Some(&text));
    if let Ok(rows) = plainbuffer::decode_rows(data) {
        for row in rows {
            let encoded = plainbuffer::encode_row(&row);
            let again = plainbuffer::decode_row(&encoded).expect("own row decodes");
            assert_eq!(plainbuffer::encode_row(&again), encoded, "not canonical");
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn oss(data: &[u8]) {
    if let Ok(request) = parse_delete(data) {
        let mut body = String::from("<Delete>");
        body.push_str(if request.quiet {
            "<Quiet>true</Quiet>"
        } else {
            ""
        });
        for key in &request.keys {
            body.push_str(&format!("<Object><Key>{}</Key></Object>", escape(key)));
        }
        body.push_str("</Delete>");
        assert_eq!(
            parse_delete(body.as_bytes()).expect("own body"),
            request,
            "{body}"
        );
    }
    if let Ok(parts) = parse_complete(data) {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (number, etag) in &parts {
            body.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
                escape(etag)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        assert_eq!(
            parse_complete(body.as_bytes()).expect("own body"),
            parts,
            "{body}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => ots(rest),
        1 => odps(rest),
        2 => text(rest),
        _ => oss(rest),
    }
});
