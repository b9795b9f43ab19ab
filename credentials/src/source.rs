//! Where a plugin's credentials come from, read from its connection parameters.
//!
//! * `accessId` + `accessKey` (+ `securityToken`): these keys, as they are.
//! * neither, and no `credentials`: the default chain (see [`Source::Default`]).
//! * `"credentials": "default" | "env" | "profile" | "ecs_ram_role"`, or an object with
//!   a `type` and that type's fields: `{"type": "profile", "name"}`,
//!   `{"type": "ecs_ram_role", "roleName"}`, `{"type": "ram_role_arn", "roleArn",
//!   "roleSessionName", "durationSeconds", "policy", "externalId", "stsEndpoint"}`.
//!   `ram_role_arn` assumes the role with the job's `accessId`/`accessKey` when given,
//!   else with the default chain.

use serde_json::{Map, Value};

use crate::{assume_role::AssumeRole, Credentials, Error};

/// The parameter that selects a credentials provider.
pub const CREDENTIALS_KEY: &str = "credentials";

/// A credentials source, before anything is read from the environment or the network.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Keys given in the job.
    Static(Credentials),
    /// The default chain: the environment, then the `aliyun` CLI profile file, then the
    /// ECS RAM role when `ALIBABA_CLOUD_ECS_METADATA` names it.
    Default,
    /// `ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `ALIBABA_CLOUD_SECURITY_TOKEN`.
    Environment,
    /// A profile of `~/.aliyun/config.json` (`None`: `ALIBABA_CLOUD_PROFILE`, else the
    /// file's `current`).
    Profile { name: Option<String> },
    /// The instance metadata service (`None`: `ALIBABA_CLOUD_ECS_METADATA`, else ask the
    /// service for the instance's role).
    EcsRamRole { role_name: Option<String> },
    /// STS AssumeRole, signed with the credentials of `base`.
    RamRoleArn {
        assume: AssumeRole,
        base: Box<Source>,
    },
}

/// The names under which a plugin takes its keys (`accessId`, `accessKey`,
/// `securityToken` in every plugin of this project).
pub struct KeyNames<'a> {
    pub id: &'a str,
    pub secret: &'a str,
    pub token: &'a str,
}

/// The keys of this project's plugins.
pub const KEY_NAMES: KeyNames<'static> = KeyNames {
    id: "accessId",
    secret: "accessKey",
    token: "securityToken",
};

fn text(p: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, Error> {
    match p.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(Error::Config(format!(
            "parameter {path}{key} must be a string"
        ))),
    }
}

impl Source {
    /// Reads the source from a plugin's parameter object (keys named as in this
    /// project's plugins). Errors name the parameter and never show a value.
    pub fn from_parameter(p: &Map<String, Value>) -> Result<Self, Error> {
        Self::from_parameter_with(p, &KEY_NAMES)
    }

    /// [`from_parameter`](Self::from_parameter) with other key names.
    pub fn from_parameter_with(
        p: &Map<String, Value>,
        names: &KeyNames<'_>,
    ) -> Result<Self, Error> {
        let id = text(p, names.id, "")?;
        let secret = text(p, names.secret, "")?;
        let token = text(p, names.token, "")?;
        let keys = match (&id, &secret) {
            (Some(id), Some(secret)) => Some(Source::Static(Credentials::fixed(
                id,
                secret,
                token.as_deref(),
            ))),
            (None, None) if token.is_some() => {
                return Err(Error::Config(format!(
                    "parameter {} is given without {} and {}",
                    names.token, names.id, names.secret
                )))
            }
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::Config(format!(
                    "give both {} and {}, or neither to use the credentials chain \
                     (environment, aliyun CLI profile, ECS RAM role)",
                    names.id, names.secret
                )))
            }
        };
        let selected = match p.get(CREDENTIALS_KEY) {
            None | Some(Value::Null) => None,
            Some(Value::String(kind)) => Some(Self::of_type(kind, &Map::new(), &keys)?),
            Some(Value::Object(o)) => {
                let kind = text(o, "type", "credentials.")?.ok_or_else(|| {
                    Error::Config("parameter credentials.type is missing".to_owned())
                })?;
                Some(Self::of_type(&kind, o, &keys)?)
            }
            Some(_) => {
                return Err(Error::Config(
                    "parameter credentials must be a string or an object".to_owned(),
                ))
            }
        };
        match (selected, keys) {
            (Some(s), None) => Ok(s),
            (Some(s @ Source::RamRoleArn { .. }), Some(_)) => Ok(s),
            (Some(_), Some(_)) => Err(Error::Config(format!(
                "parameter credentials: give either {} and {} or credentials (only \
                 \"ram_role_arn\" uses the keys, to assume the role)",
                names.id, names.secret
            ))),
            (None, Some(k)) => Ok(k),
            (None, None) => Ok(Source::Default),
        }
    }

    fn of_type(kind: &str, o: &Map<String, Value>, keys: &Option<Source>) -> Result<Self, Error> {
        let allow = |fields: &[&str]| -> Result<(), Error> {
            match o
                .keys()
                .find(|k| *k != "type" && !fields.contains(&k.as_str()))
            {
                Some(k) => Err(Error::Config(format!(
                    "parameter credentials.{k} is not known for type {kind:?} (known: {})",
                    if fields.is_empty() {
                        "none".to_owned()
                    } else {
                        fields.join(", ")
                    }
                ))),
                None => Ok(()),
            }
        };
        let field = |k: &str| text(o, k, "credentials.");
        match kind {
            "default" => allow(&[]).map(|_| Source::Default),
            "env" | "environment" => allow(&[]).map(|_| Source::Environment),
            "profile" => {
                allow(&["name"])?;
                Ok(Source::Profile {
                    name: field("name")?,
                })
            }
            "ecs_ram_role" => {
                allow(&["roleName"])?;
                Ok(Source::EcsRamRole {
                    role_name: field("roleName")?,
                })
            }
            "ram_role_arn" => {
                allow(&[
                    "roleArn",
                    "roleSessionName",
                    "durationSeconds",
                    "policy",
                    "externalId",
                    "stsEndpoint",
                ])?;
                let role_arn = field("roleArn")?.ok_or_else(|| {
                    Error::Config(
                        "parameter credentials.roleArn is missing (type ram_role_arn)".to_owned(),
                    )
                })?;
                let duration_seconds = match o.get("durationSeconds") {
                    None | Some(Value::Null) => 3600,
                    Some(v) => v.as_u64().filter(|d| *d >= 900).ok_or_else(|| {
                        Error::Config(
                            "parameter credentials.durationSeconds must be a whole number of \
                             at least 900 (STS's minimum)"
                                .to_owned(),
                        )
                    })?,
                };
                let assume = AssumeRole::new(
                    role_arn,
                    field("roleSessionName")?,
                    duration_seconds,
                    field("policy")?,
                    field("externalId")?,
                    field("stsEndpoint")?,
                )?;
                Ok(Source::RamRoleArn {
                    assume,
                    base: Box::new(keys.clone().unwrap_or(Source::Default)),
                })
            }
            other => Err(Error::Config(format!(
                "parameter credentials: unknown type {other:?} (known: default, env, profile, \
                 ecs_ram_role, ram_role_arn)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Source, Error> {
        Source::from_parameter(v.as_object().unwrap())
    }

    #[test]
    fn keys_absent_means_the_chain() {
        assert_eq!(parse(json!({"endpoint": "x"})).unwrap(), Source::Default);
        assert_eq!(
            parse(json!({"accessId": "", "accessKey": " "})).unwrap(),
            Source::Default
        );
    }

    #[test]
    fn static_keys() {
        let s =
            parse(json!({"accessId": "id", "accessKey": "SECRET", "securityToken": "T"})).unwrap();
        assert_eq!(
            s,
            Source::Static(Credentials::fixed("id", "SECRET", Some("T")))
        );
    }

    #[test]
    fn explicit_types() {
        assert_eq!(
            parse(json!({"credentials": "ecs_ram_role"})).unwrap(),
            Source::EcsRamRole { role_name: None }
        );
        assert_eq!(
            parse(json!({"credentials": {"type": "ecs_ram_role", "roleName": "r"}})).unwrap(),
            Source::EcsRamRole {
                role_name: Some("r".into())
            }
        );
        assert_eq!(
            parse(json!({"credentials": {"type": "profile", "name": "p"}})).unwrap(),
            Source::Profile {
                name: Some("p".into())
            }
        );
        let Source::RamRoleArn { assume, base } = parse(json!({
            "accessId": "id", "accessKey": "SECRET",
            "credentials": {"type": "ram_role_arn", "roleArn": "acs:ram::1:role/r", "durationSeconds": 900}
        }))
        .unwrap() else {
            panic!("not ram_role_arn")
        };
        assert_eq!(assume.role_arn, "acs:ram::1:role/r");
        assert_eq!(assume.duration_seconds, 900);
        assert!(matches!(*base, Source::Static(_)));
    }

    #[test]
    fn mistakes_are_named_without_values() {
        for (p, needle) in [
            (
                json!({"accessId": "id"}),
                "give both accessId and accessKey",
            ),
            (
                json!({"accessKey": "SECRET"}),
                "give both accessId and accessKey",
            ),
            (
                json!({"securityToken": "SECRET"}),
                "securityToken is given without",
            ),
            (
                json!({"accessId": 1, "accessKey": "SECRET"}),
                "accessId must be a string",
            ),
            (json!({"credentials": "magic"}), "unknown type \"magic\""),
            (json!({"credentials": 3}), "must be a string or an object"),
            (
                json!({"credentials": {"roleName": "r"}}),
                "credentials.type is missing",
            ),
            (
                json!({"credentials": {"type": "ecs_ram_role", "role": "r"}}),
                "credentials.role is not known",
            ),
            (
                json!({"credentials": {"type": "ram_role_arn"}}),
                "credentials.roleArn is missing",
            ),
            (
                json!({"credentials": {"type": "ram_role_arn", "roleArn": "a", "durationSeconds": 60}}),
                "at least 900",
            ),
            (
                json!({"accessId": "id", "accessKey": "SECRET", "credentials": "ecs_ram_role"}),
                "give either accessId and accessKey or credentials",
            ),
        ] {
            let e = parse(p.clone()).unwrap_err().to_string();
            assert!(e.contains(needle), "{p}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
