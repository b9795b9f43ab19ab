//! The ECS RAM role and AssumeRole providers against localcloud's STS and metadata
//! emulator, and the refresh of expiring credentials.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use std::time::{Duration, SystemTime};

use credentials::{AssumeRole, Credentials, Imds, Provider};
use localcloud::common::{StsCheck, StsRegistry};
use localcloud::{sts, ServiceHandle, ServiceOptions};

async fn emulator(ttl_ms: Option<i64>) -> (ServiceHandle, StsRegistry) {
    let options = ServiceOptions::loopback();
    let registry = options.sts.clone();
    let handle = sts::start(
        options,
        sts::StsOptions {
            role_name: "EcsRole".into(),
            ttl_ms,
        },
    )
    .await
    .unwrap();
    (handle, registry)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn accepted(registry: &StsRegistry, c: &Credentials) -> bool {
    matches!(
        registry.check(&c.access_key_id, c.security_token.as_deref(), now_ms()),
        StsCheck::Valid(ref s) if *s == c.access_key_secret
    )
}

async fn settings(endpoint: &str, body: serde_json::Value) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{endpoint}/-/sts/settings"))
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn ecs_ram_role_discovers_the_role_with_an_imdsv2_token() {
    let (handle, registry) = emulator(None).await;
    let endpoint = handle.endpoint();
    // Requests without a session token are refused: the provider must use one.
    settings(&endpoint, serde_json::json!({"imds_v2_required": true})).await;
    let imds = Imds::at(&endpoint, None, true).unwrap();
    let c = imds.fetch().await.unwrap();
    assert!(c.access_key_id.starts_with("STS."));
    assert!(accepted(&registry, &c));
    let left = c
        .expiration
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(left > Duration::from_secs(5 * 3600), "{left:?}");

    let wrong = Imds::at(&endpoint, Some("NoSuchRole".into()), false)
        .unwrap()
        .fetch()
        .await
        .unwrap_err();
    assert!(!wrong.is_temporary());
    assert!(wrong.to_string().contains("HTTP 404"), "{wrong}");
    handle.shutdown().await;
}

#[tokio::test]
async fn expiring_credentials_are_fetched_again_ahead_of_expiry() {
    let (handle, registry) = emulator(Some(2000)).await;
    let provider = Provider::from_imds(Imds::at(&handle.endpoint(), None, false).unwrap(), true);
    let first = provider.get().await.unwrap();
    assert_eq!(provider.get().await.unwrap(), first, "cached while fresh");
    // Half the lifetime (1 s) before expiry the provider fetches again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = provider.get().await.unwrap();
    assert_ne!(second.access_key_id, first.access_key_id);
    assert!(accepted(&registry, &second));
    // Past the first one's expiry, only the new one is accepted.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!accepted(&registry, &first));
    let third = provider.get().await.unwrap();
    assert!(
        accepted(&registry, &third),
        "the provider hands out valid credentials"
    );

    // With refreshing off, the first credentials are kept until they expire.
    let stuck = Provider::from_imds(Imds::at(&handle.endpoint(), None, false).unwrap(), false);
    let a = stuck.get().await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let b = stuck.get().await.unwrap();
    assert_eq!(a, b);
    assert!(matches!(
        registry.check(&b.access_key_id, b.security_token.as_deref(), now_ms()),
        StsCheck::Expired
    ));
    handle.shutdown().await;
}

#[tokio::test]
async fn a_failed_refresh_keeps_valid_credentials_and_fails_once_they_expire() {
    // Expiration travels in whole seconds: 4 s tokens end 3-4 s after they are issued.
    let (handle, _registry) = emulator(Some(4000)).await;
    let provider = Provider::from_imds(Imds::at(&handle.endpoint(), None, false).unwrap(), true);
    let first = provider.get().await.unwrap();
    handle.shutdown().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(provider.get().await.unwrap(), first, "still valid: kept");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let e = provider.get().await.unwrap_err();
    assert!(e.is_temporary(), "{e}");
    assert!(e.to_string().contains("ECS metadata service"), "{e}");
}

#[tokio::test]
async fn assume_role_with_a_permanent_key_and_with_temporary_credentials() {
    let (handle, registry) = emulator(None).await;
    let endpoint = handle.endpoint();
    let key = localcloud::Credentials::test_default();
    let role = |duration| {
        AssumeRole::new(
            "acs:ram::1234567890123456:role/Exporter".into(),
            Some("streamport-test".into()),
            duration,
            None,
            None,
            Some(endpoint.clone()),
        )
        .unwrap()
    };
    let base = Provider::fixed(Credentials::fixed(
        &key.access_key_id,
        &key.access_key_secret,
        None,
    ));
    let assumed = Provider::from_assume_role(role(900), base).unwrap();
    let c = assumed.get().await.unwrap();
    assert!(accepted(&registry, &c));
    let left = c
        .expiration
        .unwrap()
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(left > Duration::from_secs(890) && left <= Duration::from_secs(900));

    // A role assumed with temporary credentials (SecurityToken in the request).
    let chained = Provider::from_assume_role(role(3600), Provider::fixed(c.clone())).unwrap();
    assert!(accepted(&registry, &chained.get().await.unwrap()));

    // A wrong secret is refused by the signature check, not retried.
    let wrong = Provider::fixed(Credentials::fixed(
        &key.access_key_id,
        "not-the-secret",
        None,
    ));
    let e = Provider::from_assume_role(role(900), wrong)
        .unwrap()
        .get()
        .await
        .unwrap_err();
    assert!(!e.is_temporary());
    assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
    assert!(!e.to_string().contains("not-the-secret"));
    handle.shutdown().await;
}
