//! Committing a window safely: `truncate` deletes only after the new objects are
//! complete, `nonConflict` lets a window run again, and `abort` says which reported
//! uploads were completed. Against an in-process localcloud OSS.

#![allow(clippy::unwrap_used)] // tests unwrap freely

mod common;

use common::{cloud, run_window, write_tasks, Cloud, WINDOW};
use localcloud::common::faults::{FaultAction, FaultRule};
use protocol::runtime::Plugin;
use serde_json::{json, Value as Json};
use writer_oss::writer::TaskReport;
use writer_oss::OssWriter;

const OTHER_WINDOW: &str = "ffeeddccbbaa99887766554433221100";

fn fail_for_good(cloud: &Cloud, operation: &str, times: Option<u32>) {
    cloud
        .handle
        .faults
        .add(FaultRule {
            operation: Some(operation.into()),
            times,
            skip: 0,
            rate: None,
            after_apply: false,
            action: FaultAction::Error {
                status: 403,
                code: "AccessDenied".into(),
                message: None,
            },
        })
        .unwrap();
}

fn open_uploads(cloud: &Cloud, prefix: &str) -> Vec<(String, String)> {
    cloud
        .rt
        .block_on(cloud.client().list_uploads(prefix))
        .unwrap()
}

#[test]
fn a_failed_truncate_run_leaves_the_previous_output_intact() {
    let cloud = cloud();
    let parameter = cloud.parameter("trunc/out", json!({"writeMode": "truncate"}));
    run_window(&parameter, WINDOW, &[10, 20]).unwrap();
    let previous = cloud.objects("trunc/");
    assert_eq!(previous.len(), 2);

    // Another window whose tasks fail: nothing deleted.
    fail_for_good(&cloud, "UploadPart", None);
    let big = cloud.parameter(
        "trunc/out",
        json!({"writeMode": "truncate", "blockSizeInMB": 1}),
    );
    run_window(&big, OTHER_WINDOW, &[40_000, 5]).unwrap_err();
    assert_eq!(cloud.objects("trunc/"), previous);
    cloud.handle.faults.clear();

    // Another window whose post fails at a Complete: rolled back, nothing deleted.
    fail_for_good(&cloud, "CompleteMultipartUpload", Some(1));
    run_window(&parameter, OTHER_WINDOW, &[5, 6, 7]).unwrap_err();
    assert_eq!(cloud.objects("trunc/"), previous);
    assert!(open_uploads(&cloud, "trunc/").is_empty());

    // Another window that succeeds: only its objects are left.
    run_window(&parameter, OTHER_WINDOW, &[5, 6, 7]).unwrap();
    let now = cloud.objects("trunc/");
    assert_eq!(now.len(), 3, "{now:?}");
    assert!(now
        .iter()
        .all(|(k, _)| !previous.iter().any(|(p, _)| p == k)));
}

#[test]
fn a_killed_post_in_truncate_mode_deleted_nothing() {
    let cloud = cloud();
    let parameter = cloud.parameter("killed/out", json!({"writeMode": "truncate"}));
    run_window(&parameter, WINDOW, &[10]).unwrap();
    let previous = cloud.objects("killed/");
    // A new window's tasks wrote; its post never ran (killed before its first
    // Complete): abort with the reports says none, and the previous output is there.
    let (ctx, reports) = write_tasks(&parameter, OTHER_WINDOW, &[3, 4]).unwrap();
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "none", "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("writeMode truncate did not delete the 1 other objects"),
        "{detail}"
    );
    assert_eq!(cloud.objects("killed/"), previous);
    assert!(open_uploads(&cloud, "killed/").is_empty());
}

#[test]
fn non_conflict_lets_the_same_window_run_again() {
    let cloud = cloud();
    let parameter = cloud.parameter("nc/out", json!({"writeMode": "nonConflict"}));
    run_window(&parameter, WINDOW, &[10, 20]).unwrap();
    let first = cloud.objects("nc/");
    // The same window again converges to the same output.
    run_window(&parameter, WINDOW, &[10, 20]).unwrap();
    assert_eq!(cloud.objects("nc/"), first);
    // Another window is a conflict, as in DataX.
    let err = run_window(&parameter, OTHER_WINDOW, &[1]).unwrap_err();
    assert!(err.contains("writeMode nonConflict"), "{err}");

    // Single-object mode: the object carries its window.
    let single = cloud.parameter(
        "ncs/all.csv",
        json!({"writeMode": "nonConflict", "writeSingleObject": true}),
    );
    run_window(&single, WINDOW, &[10, 3]).unwrap();
    let first = cloud.objects("ncs/");
    run_window(&single, WINDOW, &[10, 3]).unwrap();
    assert_eq!(cloud.objects("ncs/"), first);
    let err = run_window(&single, OTHER_WINDOW, &[1]).unwrap_err();
    assert!(err.contains("already exists"), "{err}");
}

fn reports_of(reports: &[Json]) -> Vec<TaskReport> {
    reports
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect()
}

#[test]
fn abort_says_which_reported_uploads_were_completed() {
    let cloud = cloud();
    let parameter = cloud.parameter("ab/out", json!({"writeMode": "append"}));
    let (ctx, reports) = write_tasks(&parameter, WINDOW, &[10, 20, 30]).unwrap();
    // A post killed after its first Complete.
    let first = &reports_of(&reports)[1].uploads[0];
    let client = cloud.client();
    cloud
        .rt
        .block_on(client.complete(&first.key, &first.upload_id, &first.parts))
        .unwrap();
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "partial", "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(detail.contains("1 of the 3 reported objects"), "{detail}");
    assert!(detail.contains(&first.key), "{detail}");
    assert!(open_uploads(&cloud, "ab/").is_empty());
    assert_eq!(cloud.objects("ab/").len(), 1);

    // A post killed after its last Complete: all.
    let (ctx, reports) = write_tasks(&parameter, OTHER_WINDOW, &[4, 5]).unwrap();
    for u in reports_of(&reports).iter().flat_map(|r| r.uploads.clone()) {
        cloud
            .rt
            .block_on(client.complete(&u.key, &u.upload_id, &u.parts))
            .unwrap();
    }
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");

    // Without reports (post never started): none.
    let (ctx, _) = write_tasks(&parameter, WINDOW, &[1]).unwrap();
    let answer = OssWriter.abort_answer(&ctx, &[]).unwrap();
    assert_eq!(answer["committed"], "none", "{answer}");
    assert!(open_uploads(&cloud, "ab/").is_empty());
}

#[test]
fn single_object_abort_says_whether_the_object_was_completed() {
    let cloud = cloud();
    let parameter = cloud.parameter(
        "sa/all.csv",
        json!({"writeSingleObject": true, "header": ["n", "s", "z"]}),
    );
    let (ctx, reports) = write_tasks(&parameter, WINDOW, &[10, 3]).unwrap();
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "none", "{answer}");
    assert!(cloud.objects("sa/").is_empty());

    let (ctx, reports) = write_tasks(&parameter, WINDOW, &[10, 3]).unwrap();
    let posted = OssWriter.post_answer(&ctx, &reports).unwrap();
    assert_eq!(posted["committed"], "all", "{posted}");
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");
    assert_eq!(cloud.objects("sa/").len(), 1);
}

/// The kill matrix's "commit applied, answer slow" case: a truncate `post` stopped after
/// its last Complete but before it deleted the older objects. `abort` finishes those
/// deletions, so the window shows exactly the new output and the answer "all" is true;
/// after only some Completes, the older objects stay and the answer is "partial".
#[test]
fn abort_finishes_truncate_deletions_only_when_every_object_is_complete() {
    let cloud = cloud();
    let client = cloud.client();
    let parameter = cloud.parameter("tf/out", json!({"writeMode": "truncate"}));
    run_window(&parameter, WINDOW, &[10]).unwrap();
    let previous = cloud.objects("tf/");
    assert_eq!(previous.len(), 1);

    // Only the first of two Completes landed: partial, the older object is kept.
    let (ctx, reports) = write_tasks(&parameter, OTHER_WINDOW, &[3, 4]).unwrap();
    let uploads: Vec<_> = reports_of(&reports)
        .iter()
        .flat_map(|r| r.uploads.clone())
        .collect();
    let first = &uploads[0];
    cloud
        .rt
        .block_on(client.complete(&first.key, &first.upload_id, &first.parts))
        .unwrap();
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "partial", "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("writeMode truncate did not delete the 1 other objects"),
        "{detail}"
    );
    let now = cloud.objects("tf/");
    assert!(now.contains(&previous[0]), "{now:?}");
    assert_eq!(now.len(), 2, "{now:?}");

    // Every Complete landed: abort deletes what truncate replaces, and says all.
    let (ctx, reports) = write_tasks(&parameter, OTHER_WINDOW, &[3, 4]).unwrap();
    let uploads: Vec<_> = reports_of(&reports)
        .iter()
        .flat_map(|r| r.uploads.clone())
        .collect();
    for u in &uploads {
        cloud
            .rt
            .block_on(client.complete(&u.key, &u.upload_id, &u.parts))
            .unwrap();
    }
    let answer = OssWriter.abort_answer(&ctx, &reports).unwrap();
    assert_eq!(answer["committed"], "all", "{answer}");
    let keys: Vec<String> = cloud.objects("tf/").into_iter().map(|(k, _)| k).collect();
    let mut reported: Vec<String> = uploads.iter().map(|u| u.key.clone()).collect();
    reported.sort();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort();
    assert_eq!(keys_sorted, reported);
}
