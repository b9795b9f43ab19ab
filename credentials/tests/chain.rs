//! The default chain (environment, aliyun CLI profile file, ECS RAM role named by
//! `ALIBABA_CLOUD_ECS_METADATA`), in one test because it changes the process
//! environment.

#![allow(clippy::unwrap_used)] // tests unwrap freely

use credentials::{Provider, Source};

const VARS: &[&str] = &[
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_SECURITY_TOKEN",
    "ALIBABACLOUD_ACCESS_KEY_ID",
    "ALIBABACLOUD_ACCESS_KEY_SECRET",
    "ALICLOUD_ACCESS_KEY_ID",
    "ALICLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_PROFILE",
    "ALIBABA_CLOUD_CLI_PROFILE_DISABLED",
    "ALIBABA_CLOUD_ECS_METADATA",
    "ALIBABA_CLOUD_ECS_METADATA_DISABLED",
    "STREAMPORT_ECS_METADATA_ENDPOINT",
];

fn describe(source: &Source) -> String {
    match Provider::new(source) {
        Ok(p) => p.describe().to_owned(),
        Err(e) => format!("error: {e}"),
    }
}

#[tokio::test]
async fn the_default_chain_in_order() {
    let home = tempfile::tempdir().unwrap();
    for v in VARS {
        std::env::remove_var(v);
    }
    std::env::set_var("HOME", home.path());

    // Nothing anywhere: a configuration error that says what was looked at.
    let e = describe(&Source::Default);
    for needle in [
        "no credentials",
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "no aliyun CLI profile file",
        "ALIBABA_CLOUD_ECS_METADATA",
    ] {
        assert!(e.contains(needle), "{e}");
    }

    // The profile file: the current profile, then ALIBABA_CLOUD_PROFILE.
    std::fs::create_dir(home.path().join(".aliyun")).unwrap();
    std::fs::write(
        home.path().join(".aliyun/config.json"),
        serde_json::json!({
            "current": "main",
            "profiles": [
                {"name": "main", "mode": "AK", "access_key_id": "PROFILEID", "access_key_secret": "PSECRET"},
                {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "Role"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let p = Provider::new(&Source::Default).unwrap();
    assert!(
        p.describe().contains("aliyun CLI profile"),
        "{}",
        p.describe()
    );
    assert_eq!(p.get().await.unwrap().access_key_id, "PROFILEID");
    std::env::set_var("ALIBABA_CLOUD_PROFILE", "ecs");
    std::env::set_var("STREAMPORT_ECS_METADATA_ENDPOINT", "http://127.0.0.1:9");
    assert!(describe(&Source::Default).contains("ECS RAM role \"Role\""));
    std::env::set_var("ALIBABA_CLOUD_PROFILE", "missing");
    assert!(describe(&Source::Profile { name: None }).contains("no such profile"));
    std::env::set_var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true");
    assert!(describe(&Source::Default).contains("profile file is disabled"));

    // ALIBABA_CLOUD_ECS_METADATA puts the instance's role in the chain.
    std::env::set_var("ALIBABA_CLOUD_ECS_METADATA", "EnvRole");
    assert!(describe(&Source::Default).contains("ECS RAM role \"EnvRole\""));
    std::env::set_var("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true");
    assert!(describe(&Source::Default).contains("disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED"));

    // The environment comes first; the aliyun CLI's names are accepted too.
    std::env::set_var("ALICLOUD_ACCESS_KEY_ID", "CLIID");
    std::env::set_var("ALICLOUD_ACCESS_KEY_SECRET", "CLISECRET");
    let p = Provider::new(&Source::Default).unwrap();
    assert_eq!(p.get().await.unwrap().access_key_id, "CLIID");
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENVID");
    std::env::set_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ENVSECRET");
    std::env::set_var("ALIBABA_CLOUD_SECURITY_TOKEN", "ENVTOKEN");
    let c = Provider::new(&Source::Environment)
        .unwrap()
        .get()
        .await
        .unwrap();
    assert_eq!(
        (c.access_key_id.as_str(), c.security_token.as_deref()),
        ("ENVID", Some("ENVTOKEN"))
    );
    std::env::remove_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    std::env::remove_var("ALICLOUD_ACCESS_KEY_SECRET");
    let e = describe(&Source::Default);
    assert!(e.contains("set both"), "{e}");
    assert!(!e.contains("ENVID") && !e.contains("CLISECRET"), "{e}");
}
