//! Time-partitioned paths through the plugin's steps: a task's records spread over
//! several partitions, `post` commits every partition's object, and `abort` with the
//! task reports says which of them are visible. Against an in-process localcloud OSS.
//! The records' first column (`task * 1_000_000 + i`) serves as epoch milliseconds, so
//! with `$mm` task 0 lies in minute 00 and task 1 in minutes 16 and 17.

#![allow(clippy::unwrap_used)] // tests unwrap freely

mod common;

use common::{cloud, run_window, write_tasks, Cloud, WINDOW};
use protocol::runtime::Plugin;
use serde_json::{json, Value as Json};
use writer_oss::writer::TaskReport;
use writer_oss::OssWriter;

fn reports_of(reports: &[Json]) -> Vec<TaskReport> {
    reports
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect()
}

fn partitioned(cloud: &Cloud, object: &str) -> Json {
    cloud.parameter(
        object,
        json!({"writeMode": "append", "eventTimeColumn": 0, "fileFormat": "csv"}),
    )
}

fn open_uploads(cloud: &Cloud, prefix: &str) -> Vec<(String, String)> {
    cloud
        .rt
        .block_on(cloud.client().list_uploads(prefix))
        .unwrap()
}

/// The partition (`m=NN`) of each key, checking the name's shape.
fn partitions(keys: &[(String, String)], root: &str) -> Vec<String> {
    keys.iter()
        .map(|(k, _)| {
            let rest = k.strip_prefix(root).unwrap();
            let (partition, name) = rest.split_once("/out__").unwrap();
            assert_eq!(name.len(), 32, "{k}");
            partition.to_owned()
        })
        .collect()
}

#[test]
fn a_task_writes_one_object_per_partition_and_post_commits_them_all() {
    let cloud = cloud();
    let parameter = partitioned(&cloud, "pp/m=$mm/out");
    run_window(&parameter, WINDOW, &[3, 25_000]).unwrap();
    let objects = cloud.objects("pp/");
    assert_eq!(partitions(&objects, "pp/"), ["m=00", "m=16", "m=17"]);
    // Every record in the object of its minute.
    let ids: Vec<Vec<i64>> = objects
        .iter()
        .map(|(_, text)| {
            common::data_rows(text)
                .iter()
                .map(|r| r[0].parse().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(ids[0], [0, 1, 2]);
    assert_eq!(ids[1], (1_000_000..1_020_000).collect::<Vec<_>>());
    assert_eq!(ids[2], (1_020_000..1_025_000).collect::<Vec<_>>());
    // Task 1's two objects carry its index; the same window again changes nothing.
    assert!(objects[1].0.ends_with("00000001") && objects[2].0.ends_with("00000001"));
    run_window(&parameter, WINDOW, &[3, 25_000]).unwrap();
    assert_eq!(cloud.objects("pp/"), objects);
    assert!(open_uploads(&cloud, "pp/").is_empty());
}

#[test]
fn abort_with_reports_finds_every_partitions_objects() {
    let cloud = cloud();
    let parameter = partitioned(&cloud, "pa/m=$mm/out");
    let (ctx, reports) = write_tasks(&parameter, WINDOW, &[3, 25_000]).unwrap();
    let uploads: Vec<_> = reports_of(&reports)
        .into_iter()
        .flat_map(|r| r.uploads)
        .collect();
    assert_eq!(uploads.len(), 3);
    assert_eq!(open_uploads(&cloud, "pa/").len(), 3);
    // A post killed after one Complete (minute 17's object): partial, naming it.
    let client = cloud.client();
    let done = uploads.iter().find(|u| u.key.contains("/m=17/")).unwrap();
    cloud
        .rt
        .block_on(client.complete(&done.key, &done.upload_id, &done.parts))
        .unwrap();
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "partial", "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("1 of the 3 reported objects"), "{detail}");
    assert!(detail.contains(&done.key), "{detail}");
    // The other partitions' uploads are aborted, the completed object stays.
    assert!(open_uploads(&cloud, "pa/").is_empty());
    assert_eq!(partitions(&cloud.objects("pa/"), "pa/"), ["m=17"]);

    // Without reports (post never started): every partition's upload is aborted.
    let (ctx, _) = write_tasks(&parameter, WINDOW, &[3, 25_000]).unwrap();
    assert_eq!(open_uploads(&cloud, "pa/").len(), 3);
    let answer = OssWriter.abort_answer(&ctx, &[]).unwrap();
    assert_eq!(answer["committed"], "none", "{answer}");
    assert!(open_uploads(&cloud, "pa/").is_empty());
    // An upload of another window under the same template is not this job's.
    let other = cloud.parameter(
        "pa/m=$mm/out",
        json!({"writeMode": "append", "eventTimeColumn": 0, "fileFormat": "csv", "suffix": "x"}),
    );
    let (other_ctx, _) = write_tasks(&other, "ffeeddccbbaa99887766554433221100", &[2]).unwrap();
    let (ctx, _) = write_tasks(&parameter, WINDOW, &[2]).unwrap();
    OssWriter.abort_answer(&ctx, &[]).unwrap();
    let left = open_uploads(&cloud, "pa/");
    assert_eq!(left.len(), 1);
    assert!(left[0].0.ends_with(".x"), "{left:?}");
    OssWriter.abort_answer(&other_ctx, &[]).unwrap();
    assert!(open_uploads(&cloud, "pa/").is_empty());
}

#[test]
fn the_window_time_partition_is_the_truncate_scope() {
    let cloud = cloud();
    let client = cloud.client();
    for key in ["pw/h=09/out_other", "pw/h=10/out_older"] {
        cloud.rt.block_on(async {
            let id = client.initiate(key, "text/plain", false).await.unwrap();
            let part = client
                .upload_part(key, &id, 1, bytes::Bytes::from_static(b"x\n"))
                .await
                .unwrap();
            client.complete(key, &id, &[part]).await.unwrap();
        });
    }
    // 10:20 in the job's zone (UTC in these tests).
    let parameter = cloud.parameter(
        "pw/h=$HH/out",
        json!({"writeMode": "truncate", "windowTime": "20241121102000"}),
    );
    run_window(&parameter, WINDOW, &[4, 0]).unwrap();
    let keys: Vec<String> = cloud.objects("pw/").into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys[0], "pw/h=09/out_other");
    // Both tasks (one without records: generateEmptyFile) in the window's partition.
    assert!(
        keys[1..].iter().all(|k| k.starts_with("pw/h=10/out__")),
        "{keys:?}"
    );
}
