//! Distributed mode (`streamport task` on many machines, then one `streamport commit`):
//! two attempts of one window's tasks (a retried index, two pods at once) each write
//! their own uploads; `post` with one attempt's reports commits exactly those and
//! aborts the other's, and a second `post` with the same reports (a commit re-run after
//! a kill, or run twice) changes nothing and succeeds.

#![allow(clippy::unwrap_used)] // tests unwrap freely

mod common;

use common::{cloud, write_tasks, WINDOW};
use protocol::runtime::Plugin;
use serde_json::json;
use writer_oss::OssWriter;

#[test]
fn post_commits_only_the_reported_attempt_and_is_idempotent() {
    let cloud = cloud();
    let parameter = cloud.parameter("dist/out", json!({"writeMode": "truncate"}));
    // Attempt A and attempt B of the same window and tasks, with different content.
    let (ctx, winner) = write_tasks(&parameter, WINDOW, &[10, 20]).unwrap();
    let (_, loser) = write_tasks(&parameter, WINDOW, &[11, 21]).unwrap();
    assert_eq!(
        cloud
            .rt
            .block_on(cloud.client().list_uploads("dist/"))
            .unwrap()
            .len(),
        4,
        "both attempts' uploads are open"
    );
    OssWriter.post(&ctx, &winner).unwrap();
    let committed = cloud.objects("dist/");
    assert_eq!(committed.len(), 2);
    // Each record holds one line break in a quoted value: two lines a record.
    let lines: usize = committed.iter().map(|(_, text)| text.lines().count()).sum();
    assert_eq!(
        lines,
        2 * 30,
        "the winning attempt's 30 records, not the loser's 32"
    );
    assert!(
        cloud
            .rt
            .block_on(cloud.client().list_uploads("dist/"))
            .unwrap()
            .is_empty(),
        "the losing attempt's uploads are aborted"
    );
    // The commit again, with the same reports: nothing changes, and it succeeds.
    OssWriter.post(&ctx, &winner).unwrap();
    assert_eq!(cloud.objects("dist/"), committed);
    // The loser's reports can no longer be committed: their uploads are gone.
    assert!(OssWriter.post(&ctx, &loser).is_err());
    assert_eq!(cloud.objects("dist/"), committed);
}
