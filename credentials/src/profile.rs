//! The `aliyun` CLI profile file, `~/.aliyun/config.json`, read as the official
//! providers read it (aliyun/credentials-python `provider/cli_profile.py`):
//! `{"current": "default", "profiles": [{"name", "mode", …}]}`; the profile is the one
//! named by the job, else `ALIBABA_CLOUD_PROFILE`, else `current`. Modes:
//!
//! | mode | fields |
//! |---|---|
//! | `AK` | `access_key_id`, `access_key_secret` |
//! | `StsToken` | the same and `sts_token` |
//! | `RamRoleArn` | the same as `AK` and `ram_role_arn`, `ram_session_name`, `expired_seconds`, `policy`, `external_id`, `sts_region` |
//! | `ChainableRamRoleArn` | `source_profile` and the role fields |
//! | `EcsRamRole` | `ram_role_name` (empty: the instance's role) |
//!
//! `ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true` skips the file.

use std::path::PathBuf;

use serde_json::Value;

use crate::{assume_role::AssumeRole, env_first, Credentials, Error, Source};

/// Where the file is: `$HOME/.aliyun/config.json`.
pub fn path() -> Option<PathBuf> {
    env_first(&["HOME"]).map(|h| PathBuf::from(h).join(".aliyun").join("config.json"))
}

pub fn disabled() -> bool {
    env_first(&["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"])
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The source of profile `name` (see the module doc), or `None` when there is no file.
pub fn load(name: Option<&str>) -> Result<Option<Source>, Error> {
    if disabled() {
        return Ok(None);
    }
    let Some(path) = path() else {
        return Ok(None);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::Config(format!(
                "reading the aliyun CLI profile file {}: {e}",
                path.display()
            )))
        }
    };
    let file: Value = serde_json::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "the aliyun CLI profile file {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    let name = name
        .map(str::to_owned)
        .or_else(|| env_first(&["ALIBABA_CLOUD_PROFILE"]))
        .or_else(|| file["current"].as_str().map(str::to_owned))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            Error::Config(format!(
                "the aliyun CLI profile file {} names no current profile (set \
                 ALIBABA_CLOUD_PROFILE)",
                path.display()
            ))
        })?;
    resolve(&file, &name, &path, 0).map(Some)
}

fn resolve(file: &Value, name: &str, path: &std::path::Path, depth: u32) -> Result<Source, Error> {
    let where_ = format!("profile {name:?} of {}", path.display());
    if depth > 4 {
        return Err(Error::Config(format!(
            "{where_}: source_profile chain is too deep (a loop?)"
        )));
    }
    let profile = file["profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"].as_str() == Some(name)))
        .ok_or_else(|| Error::Config(format!("{where_}: no such profile")))?;
    let field = |k: &str| {
        profile[k]
            .as_str()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let need = |k: &str| {
        field(k).ok_or_else(|| Error::Config(format!("{where_}: the field {k} is missing")))
    };
    let key = || -> Result<Credentials, Error> {
        Ok(Credentials::fixed(
            &need("access_key_id")?,
            &need("access_key_secret")?,
            None,
        ))
    };
    let role = || -> Result<AssumeRole, Error> {
        let duration = profile["expired_seconds"]
            .as_u64()
            .filter(|d| *d > 0)
            .unwrap_or(3600);
        let region = field("sts_region");
        AssumeRole::new(
            need("ram_role_arn")?,
            field("ram_session_name"),
            duration.max(900),
            field("policy"),
            field("external_id"),
            region.map(|r| format!("sts.{r}.aliyuncs.com")),
        )
    };
    let mode = profile["mode"].as_str().unwrap_or("");
    match mode {
        "AK" => Ok(Source::Static(key()?)),
        "StsToken" => {
            let mut k = key()?;
            k.security_token = Some(need("sts_token")?);
            Ok(Source::Static(k))
        }
        "RamRoleArn" => Ok(Source::RamRoleArn {
            assume: role()?,
            base: Box::new(Source::Static(key()?)),
        }),
        "ChainableRamRoleArn" => {
            let source = need("source_profile")?;
            Ok(Source::RamRoleArn {
                assume: role()?,
                base: Box::new(resolve(file, &source, path, depth + 1)?),
            })
        }
        "EcsRamRole" => Ok(Source::EcsRamRole {
            role_name: field("ram_role_name"),
        }),
        other => Err(Error::Config(format!(
            "{where_}: mode {other:?} is not supported (AK, StsToken, RamRoleArn, \
             ChainableRamRoleArn, EcsRamRole are)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file() -> Value {
        json!({
            "current": "ak",
            "profiles": [
                {"name": "ak", "mode": "AK", "access_key_id": "id1", "access_key_secret": "s1"},
                {"name": "sts", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "s2", "sts_token": "t"},
                {"name": "role", "mode": "RamRoleArn", "access_key_id": "id3", "access_key_secret": "s3",
                 "ram_role_arn": "acs:ram::1:role/r", "ram_session_name": "sess", "expired_seconds": 1200, "sts_region": "cn-beijing"},
                {"name": "chain", "mode": "ChainableRamRoleArn", "source_profile": "ak", "ram_role_arn": "acs:ram::1:role/c"},
                {"name": "ecs", "mode": "EcsRamRole", "ram_role_name": "EcsRole"},
                {"name": "ecs-any", "mode": "EcsRamRole", "ram_role_name": ""},
                {"name": "sso", "mode": "CloudSSO"},
                {"name": "broken", "mode": "AK", "access_key_id": "id"}
            ]
        })
    }

    fn get(name: &str) -> Result<Source, Error> {
        resolve(&file(), name, std::path::Path::new("config.json"), 0)
    }

    #[test]
    fn modes() {
        assert_eq!(
            get("ak").unwrap(),
            Source::Static(Credentials::fixed("id1", "s1", None))
        );
        assert_eq!(
            get("sts").unwrap(),
            Source::Static(Credentials::fixed("STS.x", "s2", Some("t")))
        );
        let Source::RamRoleArn { assume, base } = get("role").unwrap() else {
            panic!()
        };
        assert_eq!(assume.role_arn, "acs:ram::1:role/r");
        assert_eq!(assume.role_session_name, "sess");
        assert_eq!(assume.duration_seconds, 1200);
        assert_eq!(assume.endpoint, "https://sts.cn-beijing.aliyuncs.com");
        assert_eq!(*base, Source::Static(Credentials::fixed("id3", "s3", None)));
        let Source::RamRoleArn { base, .. } = get("chain").unwrap() else {
            panic!()
        };
        assert_eq!(*base, Source::Static(Credentials::fixed("id1", "s1", None)));
        assert_eq!(
            get("ecs").unwrap(),
            Source::EcsRamRole {
                role_name: Some("EcsRole".into())
            }
        );
        assert_eq!(
            get("ecs-any").unwrap(),
            Source::EcsRamRole { role_name: None }
        );
    }

    #[test]
    fn mistakes() {
        assert!(get("sso")
            .unwrap_err()
            .to_string()
            .contains("\"CloudSSO\" is not supported"));
        assert!(get("broken")
            .unwrap_err()
            .to_string()
            .contains("access_key_secret is missing"));
        assert!(get("nope")
            .unwrap_err()
            .to_string()
            .contains("no such profile"));
    }
}
