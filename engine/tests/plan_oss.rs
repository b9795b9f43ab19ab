//! An OSS plan location against an in-process localcloud OSS: files written whole,
//! "create if absent" through `x-oss-forbid-overwrite` (409 `FileAlreadyExists`),
//! including a PutObject whose answer was lost after it took effect.

// Tests (and their helpers) may unwrap.
#![allow(clippy::unwrap_used)]

use engine::plan::{Created, OssAccess, PlanStore};
use localcloud::common::faults::{FaultAction, FaultRule};
use localcloud::ServiceOptions;

const ID: &str = "LTAI5tLocalCloudTestKey";
const SECRET: &str = "localcloud-test-secret-0123456789";

fn access(endpoint: String, secret: &str) -> Option<OssAccess> {
    Some(OssAccess {
        endpoint,
        credentials: credentials::Source::Static(credentials::Credentials::fixed(ID, secret, None)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oss_plan_creates_each_report_once() {
    let cloud = localcloud::oss::start(ServiceOptions::loopback())
        .await
        .unwrap();
    let store = PlanStore::open(
        "oss://localcloud/plans/w1",
        access(cloud.endpoint(), SECRET),
    )
    .unwrap();
    assert_eq!(store.get("plan.json").await.unwrap(), None);
    store.put("plan.json", b"{\"a\": 1}").await.unwrap();
    store.put("plan.json", b"{\"a\": 2}").await.unwrap();
    assert_eq!(
        store.get("plan.json").await.unwrap(),
        Some(b"{\"a\": 2}".to_vec())
    );
    assert_eq!(
        store.put_new("reports/0.json", b"first").await.unwrap(),
        Created::Created
    );
    assert_eq!(
        store.put_new("reports/0.json", b"second").await.unwrap(),
        Created::Exists(b"first".to_vec())
    );

    // The first PutObject takes effect but its answer is lost: the retry meets 409,
    // and the content found is this caller's own.
    cloud
        .faults
        .add(FaultRule {
            operation: Some("PutObject".into()),
            times: Some(1),
            skip: 0,
            rate: None,
            after_apply: true,
            action: FaultAction::Drop,
        })
        .unwrap();
    assert_eq!(
        store.put_new("reports/1.json", b"mine").await.unwrap(),
        Created::Exists(b"mine".to_vec())
    );
    assert_eq!(cloud.faults.injected().len(), 1);

    // Two callers at once: exactly one creates.
    let (a, b) = tokio::join!(
        store.put_new("reports/2.json", b"a"),
        store.put_new("reports/2.json", b"b")
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert_eq!(
        outcomes.iter().filter(|o| **o == Created::Created).count(),
        1,
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_fail_without_showing_the_secret() {
    let cloud = localcloud::oss::start(ServiceOptions::loopback())
        .await
        .unwrap();
    let store = PlanStore::open(
        "oss://localcloud/plans/w2",
        access(cloud.endpoint(), "not-the-secret-42"),
    )
    .unwrap();
    let e = store.put("plan.json", b"{}").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("plan.json") && text.contains("SignatureDoesNotMatch"),
        "{text}"
    );
    assert!(!text.contains("not-the-secret-42"), "{text}");
}
