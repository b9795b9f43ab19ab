use super::steps::{batch_of, split, trimmed_error};
use super::*;
use serde_json::json;

fn shard(id: &str, parent: Option<&str>, sibling: Option<&str>) -> ShardInfo {
    ShardInfo {
        shard_id: id.into(),
        parent_id: parent.map(Into::into),
        parent_sibling_id: sibling.map(Into::into),
    }
}

fn planned(id: &str, start: &str) -> PlanShard {
    PlanShard {
        shard_id: id.into(),
        start: start.into(),
        skip_before_ms: None,
        start_position_ms: Some(1_000),
        task: 0,
    }
}

fn state() -> FollowState {
    let shards = vec![
        shard("a", None, None),
        shard("b", Some("a"), None),
        shard("c", Some("a"), None),
        shard("d", None, None),
        shard("e", None, None),
    ];
    FollowState {
        follow: true,
        stream_id: "s1".into(),
        expiration_hours: 24,
        shards,
        plan: Plan {
            stream_id: "s1".into(),
            base: "follow:v1".into(),
            shards: vec![
                planned("a", "SHARD_END"),
                planned("b", "it-b"),
                planned("c", "it-c"),
                planned("d", "it-d"),
                planned("e", "TRIM_HORIZON"),
            ],
        },
        replay: None,
    }
}

fn tasks(values: &[serde_json::Value]) -> Vec<FollowTask> {
    values
        .iter()
        .map(|v| serde_json::from_value(v.clone()).unwrap())
        .collect()
}

/// The reports the tasks of `values` would send after reading `records` from each shard.
fn reports(values: &[serde_json::Value], records: u64) -> Vec<serde_json::Value> {
    tasks(values)
        .into_iter()
        .flat_map(|t| {
            t.shards
                .iter()
                .map(|s| {
                    serde_json::to_value(FollowReport {
                        follow_batch: t.follow_batch.clone(),
                        stream_id: t.stream_id.clone(),
                        base: t.base.clone(),
                        shard: s.clone(),
                        end: ShardEnd {
                            records,
                            checkpoint: format!("{}-end", s.shard_id),
                            position_ms: 2_000,
                            end_skip_before_ms: None,
                        },
                    })
                    .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn the_batch_id_depends_on_the_start_plan_only() {
    let s = state();
    let one = split(&s, &json!({"p": 1}), 2).unwrap();
    let again = split(&s, &json!({"p": 1}), 2).unwrap();
    assert_eq!(one, again);
    let ids: Vec<String> = tasks(&one).iter().map(|t| t.follow_batch.clone()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| i == &ids[0] && i.len() == 32));
    for v in &one {
        assert_eq!(v["followBatch"], json!(ids[0]));
    }
    // Another start checkpoint, another base or another assignment: another id.
    let mut moved = s.clone();
    moved.plan.shards[3].start = "it-d2".into();
    let moved_id = tasks(&split(&moved, &json!({}), 2).unwrap())[0]
        .follow_batch
        .clone();
    assert_ne!(moved_id, ids[0]);
    let mut rebased = s.clone();
    rebased.plan.base = "follow:v2".into();
    assert_ne!(
        tasks(&split(&rebased, &json!({}), 2).unwrap())[0].follow_batch,
        ids[0]
    );
    assert_ne!(
        tasks(&split(&s, &json!({}), 1).unwrap())[0].follow_batch,
        ids[0]
    );
}

#[test]
fn families_stay_in_one_task() {
    let s = state();
    let t = tasks(&split(&s, &json!({}), 8).unwrap());
    // a, b, c form one family; d and e are alone.
    assert_eq!(t.len(), 3);
    let family: Vec<&str> = t[0].shards.iter().map(|s| s.shard_id.as_str()).collect();
    assert_eq!(family, vec!["a", "b", "c"]);
    assert!(t.iter().all(|x| x.task_count == 3));
}

#[test]
fn reports_rebuild_the_plan_and_a_replay_gives_the_same_plan_and_id() {
    let s = state();
    let values = split(&s, &json!({"k": "v"}), 2).unwrap();
    let batch = batch_of(&reports(&values, 3)).unwrap();
    let first = tasks(&values);
    assert_eq!(batch.id, first[0].follow_batch);
    assert_eq!(batch.plan.id(), batch.id);
    assert_eq!(batch.ends["d"].records, 3);
    // The pending row, replayed: exactly the same task configs, with the recorded ends.
    let mut replay_state = s.clone();
    replay_state.replay = Some(batch.clone());
    let replayed = tasks(&split(&replay_state, &json!({"k": "v"}), 7).unwrap());
    assert_eq!(replayed.len(), first.len());
    for (r, f) in replayed.iter().zip(&first) {
        assert_eq!(
            (&r.follow_batch, &r.shards, &r.base),
            (&f.follow_batch, &f.shards, &f.base)
        );
        let ends = r.replay.as_ref().unwrap();
        assert_eq!(ends.len(), r.shards.len());
        assert!(ends.values().all(|e| e.records == 3));
    }
}

#[test]
fn reports_that_do_not_add_up_are_refused() {
    let s = state();
    let values = split(&s, &json!({}), 2).unwrap();
    let mut all = reports(&values, 1);
    all.pop();
    let e = batch_of(&all).unwrap_err();
    assert!(e.message.contains("do not add up"), "{}", e.message);
    let mut twice = reports(&values, 1);
    twice.push(twice[0].clone());
    assert!(batch_of(&twice).unwrap_err().message.contains("twice"));
    assert!(batch_of(&[]).is_err());
    assert!(batch_of(&[json!({"shard_id": "x"})]).is_err());
}

fn pending(base: &str, starts: &[(&str, &str)]) -> PendingBatch {
    let plan = Plan {
        stream_id: "s1".into(),
        base: base.into(),
        shards: starts.iter().map(|(s, c)| planned(s, c)).collect(),
    };
    PendingBatch {
        id: plan.id(),
        plan,
        ends: BTreeMap::new(),
    }
}

fn checkpoint(version: &str, shards: &[(&str, &str)]) -> FollowCheckpoint {
    FollowCheckpoint {
        stream_id: "s1".into(),
        version: version.into(),
        shards: shards
            .iter()
            .map(|(s, c)| {
                (
                    s.to_string(),
                    StoredShard {
                        checkpoint: c.to_string(),
                        position_ms: 1,
                        skip_before_ms: None,
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn a_pending_row_is_replayed_only_while_it_continues_the_stored_checkpoint() {
    let p = pending("follow:v1", &[("a", "it-a")]);
    let c1 = checkpoint("v1", &[("a", "it-a")]);
    assert_eq!(
        replayable(Some(p.clone()), Some(&c1), "s1"),
        Some(p.clone())
    );
    // post stored the batch's checkpoint (version = the batch id) but did not delete
    // the pending row: stale.
    let c2 = checkpoint(&p.id, &[("a", "it-a2")]);
    assert_eq!(replayable(Some(p.clone()), Some(&c2), "s1"), None);
    // Same base but other starts: not this checkpoint's batch.
    let c3 = checkpoint("v1", &[("a", "it-other")]);
    assert_eq!(replayable(Some(p.clone()), Some(&c3), "s1"), None);
    // Another stream, or a row whose id does not match its plan.
    assert_eq!(replayable(Some(p.clone()), Some(&c1), "s2"), None);
    let mut forged = p.clone();
    forged.id = "0".repeat(32);
    assert_eq!(replayable(Some(forged), Some(&c1), "s1"), None);
    // No follow checkpoint yet: the first batch of a follow run is replayed.
    let first = pending("oldest:5", &[("a", "TRIM_HORIZON")]);
    assert_eq!(replayable(Some(first.clone()), None, "s1"), Some(first));
    assert_eq!(replayable(None, Some(&c1), "s1"), None);
}

#[test]
fn follow_rows_cannot_collide_with_datax_rows() {
    for t in [store::FOLLOW_CHECKPOINT, store::FOLLOW_PENDING] {
        assert!(![
            crate::status::JOB_DESC,
            crate::status::CHECKPOINT,
            crate::status::TIME_CHECKPOINT
        ]
        .contains(&t));
        assert!(!t.starts_with("Datax") && !t.contains("ForDataxReader"));
    }
}

#[test]
fn the_trimmed_error_names_shard_time_retention_and_restart() {
    let e = trimmed_error("0001-abc", Some(1_705_278_600_000), 24, "orders");
    assert_eq!(e.exit_code(), 2);
    for needle in [
        "0001-abc",
        "2024-01-15T00:30:00.000Z",
        "24 h",
        "--from oldest",
        "\"orders\"",
        "OTSTrimmedDataAccess",
    ] {
        assert!(e.message.contains(needle), "{needle}: {}", e.message);
    }
}

#[test]
fn follow_parameter_makes_window_keys_optional() {
    let zone = protocol::timefmt::Zone::parse("UTC").unwrap();
    let base = json!({"endpoint": "http://127.0.0.1:1", "accessId": "id", "accessKey": "secret",
                      "instanceName": "i", "dataTable": "t", "statusTable": "s"});
    let mut follow = base.clone();
    follow["follow"] = json!({"commitIntervalSeconds": 2, "from": "oldest"});
    let c = crate::config::Config::from_parameter(&follow, &zone).unwrap();
    assert_eq!(c.follow.unwrap().commit_interval_ms, 2_000);
    // Window keys are ignored (with a warning), even malformed ones.
    follow["date"] = json!("not a date");
    assert!(crate::config::Config::from_parameter(&follow, &zone).is_ok());
    // Without follow, the window is still required.
    let e = crate::config::Config::from_parameter(&base, &zone).unwrap_err();
    assert!(e.message.contains("time range"), "{}", e.message);
    let mut bad = base.clone();
    bad["follow"] = json!({"commitRecords": 0});
    let e = crate::config::Config::from_parameter(&bad, &zone).unwrap_err();
    assert!(e.message.contains("follow.commitRecords") && e.exit_code() == 2);
}
