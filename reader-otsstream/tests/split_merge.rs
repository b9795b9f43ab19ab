//! Acceptance 4: a shard split and a merge during the window: parents before
//! children, nothing lost, per-row order kept; also across two windows.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use reader_otsstream::plainbuffer::{Cell, CellValue};
use serde_json::{json, Value as Json};

const KEYS: [&str; 6] = ["a", "e", "i", "m", "q", "u"];

fn write(cloud: &Cloud, table: &str, round: i64) {
    for (n, k) in KEYS.iter().enumerate() {
        cloud.put(
            table,
            key2(k, 0),
            vec![Cell::put(
                "v",
                CellValue::Integer(round * 100 + n as i64),
                None,
            )],
        );
    }
}

/// Shard id of each line (from sequenceInfo) and the value of its `U` lines by key.
fn analyse(lines: &[Json]) -> (Vec<String>, BTreeMap<String, Vec<i64>>) {
    let mut shards = Vec::new();
    let mut by_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for l in lines {
        let seq = l[6].as_str().unwrap();
        let shard = seq
            .splitn(4, '_')
            .nth(3)
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .0;
        shards.push(shard.to_owned());
        if l[5] == "U" {
            by_key
                .entry(l[0].as_str().unwrap().to_owned())
                .or_default()
                .push(l[4].as_i64().unwrap());
        }
    }
    (shards, by_key)
}

fn position(shards: &[String], id: &str) -> (usize, usize) {
    let first = shards.iter().position(|s| s == id).unwrap();
    let last = shards.iter().rposition(|s| s == id).unwrap();
    (first, last)
}

#[test]
fn split_then_merge_reads_parents_first() {
    let cloud = Cloud::start();
    cloud.create_table("sm", Some(24));
    write(&cloud, "sm", 1);
    let split = cloud.control("/-/ots/split", json!({"table": "sm", "split_point": "k"}));
    let root = split["parent"].as_str().unwrap().to_owned();
    write(&cloud, "sm", 2);
    let merge = cloud.control("/-/ots/merge", json!({"table": "sm"}));
    let merged = merge["child"].as_str().unwrap().to_owned();
    write(&cloud, "sm", 3);
    cloud.backdate("sm", 20 * MINUTE);
    let now = now_ms();
    let mut params = cloud.params("sm", "st_sm", now - 60 * MINUTE, now - 10 * MINUTE);
    params["isExportSequenceInfo"] = json!(true);
    let lines = cloud.read_ok(&params);
    assert_eq!(lines.len(), 3 * KEYS.len() * 2);
    let (shards, by_key) = analyse(&lines);
    for (n, k) in KEYS.iter().enumerate() {
        let n = n as i64;
        assert_eq!(by_key[*k], vec![100 + n, 200 + n, 300 + n], "key {k}");
    }
    let children: Vec<String> = split["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let (_, root_last) = position(&shards, &root);
    let mut children_last = 0;
    for c in &children {
        let (first, last) = position(&shards, c);
        assert!(first > root_last, "child {c} read before its parent");
        children_last = children_last.max(last);
    }
    let (merged_first, _) = position(&shards, &merged);
    assert!(
        merged_first > children_last,
        "merged shard read before its parents"
    );
}

#[test]
fn a_split_between_two_windows_loses_nothing() {
    let cloud = Cloud::start();
    cloud.create_table("sw", Some(24));
    write(&cloud, "sw", 1);
    cloud.backdate("sw", 20 * MINUTE);
    write(&cloud, "sw", 2);
    cloud.control("/-/ots/split", json!({"table": "sw", "split_point": "k"}));
    write(&cloud, "sw", 3);
    cloud.control("/-/ots/merge", json!({"table": "sw"}));
    write(&cloud, "sw", 4);
    cloud.backdate("sw", 20 * MINUTE);
    let now = now_ms();
    let (t0, t1, t2) = (now - 60 * MINUTE, now - 30 * MINUTE, now - 10 * MINUTE);
    let run = |status: &str, a: i64, b: i64| {
        let mut p = cloud.params("sw", status, a, b);
        p["isExportSequenceInfo"] = json!(true);
        cloud.read_ok(&p)
    };
    let w1 = run("st_sw", t0, t1);
    let w2 = run("st_sw", t1, t2);
    let (_, k1) = analyse(&w1);
    let (_, k2) = analyse(&w2);
    for (n, k) in KEYS.iter().enumerate() {
        let n = n as i64;
        assert_eq!(k1[*k], vec![100 + n], "window 1, key {k}");
        assert_eq!(k2[*k], vec![200 + n, 300 + n, 400 + n], "window 2, key {k}");
    }
    let mut joined: Vec<Json> = w1.into_iter().chain(w2).collect();
    let mut whole = run("st_sw_fresh", t0, t2);
    let key = |l: &Json| l[6].as_str().unwrap().to_owned();
    joined.sort_by_key(key);
    whole.sort_by_key(key);
    assert_eq!(joined, whole);
}
