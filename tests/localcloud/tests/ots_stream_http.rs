//! Stream fields the Python SDK's proto does not know (Java/Go `GetShardIterator`
//! timestamp), DescribeStream paging, and stream time following the emulator clock.

#![allow(clippy::unwrap_used)] // test helpers, like the tests themselves, may unwrap

use localcloud::ots::pb;
use localcloud::ots::plainbuffer::{self, Cell, PkValue, Row, Value};
use localcloud::ServiceOptions;

mod ots_common;
use ots_common::Client;

async fn stream_table(client: &Client, name: &str) -> String {
    let create = pb::CreateTableRequest {
        table_meta: Some(pb::TableMeta {
            table_name: Some(name.into()),
            primary_key: vec![pb::PrimaryKeySchema {
                name: Some("id".into()),
                r#type: Some(1),
                option: None,
            }],
            defined_column: vec![],
        }),
        reserved_throughput: Some(pb::ReservedThroughput {
            capacity_unit: Some(pb::CapacityUnit::default()),
        }),
        stream_spec: Some(pb::StreamSpecification {
            enable_stream: Some(true),
            expiration_time: Some(24),
            columns_to_get: vec![],
        }),
        ..Default::default()
    };
    let _: pb::Empty = client.ok("CreateTable", create).await;
    let list: pb::ListStreamResponse = client
        .ok(
            "ListStream",
            pb::ListStreamRequest {
                table_name: Some(name.into()),
            },
        )
        .await;
    list.streams[0].stream_id.clone()
}

async fn put(client: &Client, table: &str, id: i64) {
    let row = Row {
        primary_key: vec![("id".into(), PkValue::Integer(id))],
        cells: vec![Cell {
            name: "v".into(),
            value: Some(Value::Integer(id * 10)),
            op: None,
            timestamp_ms: None,
        }],
        ..Row::default()
    };
    let req = pb::WriteRowRequest {
        table_name: Some(table.into()),
        row: Some(plainbuffer::encode_row(&row)),
        condition: Some(pb::Condition {
            row_existence: Some(0),
            column_condition: None,
        }),
        return_content: None,
        transaction_id: None,
    };
    let _: pb::WriteRowResponse = client.ok("PutRow", req).await;
}

async fn shards(client: &Client, stream_id: &str, limit: Option<i32>) -> Vec<pb::StreamShard> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let resp: pb::DescribeStreamResponse = client
            .ok(
                "DescribeStream",
                pb::DescribeStreamRequest {
                    stream_id: Some(stream_id.into()),
                    inclusive_start_shard_id: start.clone(),
                    shard_limit: limit,
                    support_timeseries_data_table: None,
                },
            )
            .await;
        out.extend(resp.shards);
        match resp.next_shard_id {
            Some(next) => start = Some(next),
            None => return out,
        }
    }
}

async fn iterator(client: &Client, stream_id: &str, shard: &str, ts: Option<i64>) -> String {
    let resp: pb::GetShardIteratorResponse = client
        .ok(
            "GetShardIterator",
            pb::GetShardIteratorRequest {
                stream_id: Some(stream_id.into()),
                shard_id: Some(shard.into()),
                timestamp: ts,
                token: None,
            },
        )
        .await;
    assert_eq!(resp.next_token, None);
    resp.shard_iterator
}

async fn read(client: &Client, it: &str) -> pb::GetStreamRecordResponse {
    client
        .ok(
            "GetStreamRecord",
            pb::GetStreamRecordRequest {
                shard_iterator: Some(it.into()),
                limit: None,
                table_name: None,
            },
        )
        .await
}

fn seq(record: &pb::StreamRecord) -> (i64, i64) {
    let row = plainbuffer::decode_row(&record.record).unwrap();
    let PkValue::Integer(id) = row.primary_key[0].1 else {
        panic!("integer key expected")
    };
    (id, row.sequence_info.unwrap().timestamp_us)
}

#[tokio::test]
async fn shard_iterator_seeks_by_timestamp() {
    let client = Client::start(ServiceOptions::loopback()).await;
    let stream_id = stream_table(&client, "seek").await;
    for id in 0..5 {
        put(&client, "seek", id).await;
    }
    let shard = shards(&client, &stream_id, None).await[0].shard_id.clone();
    let all = read(&client, &iterator(&client, &stream_id, &shard, None).await).await;
    let recs: Vec<(i64, i64)> = all.stream_records.iter().map(seq).collect();
    assert_eq!(
        recs.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    let from_third = iterator(&client, &stream_id, &shard, Some(recs[2].1)).await;
    let page = read(&client, &from_third).await;
    let ids: Vec<i64> = page.stream_records.iter().map(|r| seq(r).0).collect();
    assert_eq!(ids, vec![2, 3, 4]);
    let past_end = iterator(&client, &stream_id, &shard, Some(recs[4].1 + 1)).await;
    let page = read(&client, &past_end).await;
    assert!(page.stream_records.is_empty());
    assert_eq!(page.next_shard_iterator.as_deref(), Some(past_end.as_str()));
    client.handle.shutdown().await;
}

#[tokio::test]
async fn describe_stream_pages_through_split_shards() {
    let client = Client::start(ServiceOptions::loopback()).await;
    let stream_id = stream_table(&client, "paged").await;
    for id in 0..8 {
        put(&client, "paged", id).await;
    }
    for body in [
        r#"{"table":"paged","split_point":4}"#.to_owned(),
        r#"{"table":"paged","shard_id":"SHARD","split_point":2}"#.to_owned(),
    ] {
        let first_child = shards(&client, &stream_id, None)
            .await
            .iter()
            .find(|s| s.parent_id.is_some())
            .map(|s| s.shard_id.clone());
        let body = body.replace("SHARD", first_child.as_deref().unwrap_or(""));
        let resp = client
            .http
            .post(format!("{}/-/ots/split", client.endpoint))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "{}",
            resp.text().await.unwrap()
        );
    }
    let all = shards(&client, &stream_id, None).await;
    let paged = shards(&client, &stream_id, Some(1)).await;
    assert_eq!(all.len(), 5);
    assert_eq!(all, paged);
    let mut ids: Vec<&str> = all.iter().map(|s| s.shard_id.as_str()).collect();
    let listed = ids.clone();
    ids.sort();
    assert_eq!(ids, listed, "shards are listed in id order");
    assert_eq!(all.iter().filter(|s| s.parent_id.is_none()).count(), 1);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn record_times_follow_the_emulator_clock() {
    let options = ServiceOptions::loopback();
    let clock = options.clock.clone();
    let client = Client::start(options).await;
    let stream_id = stream_table(&client, "clock").await;
    put(&client, "clock", 1).await;
    clock.advance_ms(3_600_000);
    let wall_plus_hour_us = (chrono::Utc::now().timestamp_millis() + 3_600_000) * 1000;
    put(&client, "clock", 2).await;
    let shard = shards(&client, &stream_id, None).await[0].shard_id.clone();
    let page = read(&client, &iterator(&client, &stream_id, &shard, None).await).await;
    let times: Vec<i64> = page.stream_records.iter().map(|r| seq(r).1).collect();
    assert!(times[1] >= wall_plus_hour_us - 1_000_000);
    assert!(times[1] - times[0] >= 3_600_000_000 - 1_000_000);
    client.handle.shutdown().await;
}

#[tokio::test]
async fn tables_streams_and_iterators_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let options = || ServiceOptions {
        data_dir: Some(dir.path().to_path_buf()),
        ..ServiceOptions::loopback()
    };
    let client = Client::start(options()).await;
    let stream_id = stream_table(&client, "kept").await;
    put(&client, "kept", 1).await;
    put(&client, "kept", 2).await;
    let shard = shards(&client, &stream_id, None).await[0].shard_id.clone();
    let first = read(&client, &iterator(&client, &stream_id, &shard, None).await).await;
    assert_eq!(first.stream_records.len(), 2);
    let resume = first.next_shard_iterator.unwrap();
    client.handle.shutdown().await;

    let client = Client::start(options()).await;
    put(&client, "kept", 3).await;
    let page = read(&client, &resume).await;
    let ids: Vec<i64> = page.stream_records.iter().map(|r| seq(r).0).collect();
    assert_eq!(ids, vec![3]);
    let list: pb::ListTableResponse = client.ok("ListTable", pb::Empty {}).await;
    assert_eq!(list.table_names, vec!["kept".to_owned()]);
    client.handle.shutdown().await;
}
