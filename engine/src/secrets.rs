//! Secrets: which parameter keys hold them, and redaction of their values from every
//! line the engine prints (logs, plugin stderr, errors, the summary).

use std::sync::RwLock;

use serde_json::Value as Json;

/// What a redacted value is replaced with.
pub const MASK: &str = "******";

/// Whether a parameter key names a secret: `accessKey`, `accessKeySecret`, `password`,
/// `secret`, `securityToken`, `token`, `credential`… (case, `_` and `-` ignored).
/// `accessId` / `accessKeyId` are identifiers, not secrets.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if k.ends_with("id") {
        return false;
    }
    [
        "password",
        "passwd",
        "secret",
        "accesskey",
        "token",
        "credential",
        "privatekey",
    ]
    .iter()
    .any(|s| k.ends_with(s))
}

/// Every value under a secret key, anywhere in `value`, as the text it may appear as
/// in a log line: a string as is, a number as its JSON text, and every
/// scalar inside an object or array under a secret key.
pub fn collect_secrets(value: &Json, out: &mut Vec<String>) {
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                if is_secret_key(k) {
                    collect_all(v, out);
                } else {
                    collect_secrets(v, out);
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|v| collect_secrets(v, out)),
        _ => {}
    }
}

/// Every scalar in `value` (all of it is secret).
fn collect_all(value: &Json, out: &mut Vec<String>) {
    match value {
        // `true` is no secret worth hiding, and masking it would garble every log line.
        Json::Null | Json::Bool(_) => {}
        Json::String(s) if s.is_empty() => {}
        Json::String(s) => out.push(s.clone()),
        Json::Object(map) => map.values().for_each(|v| collect_all(v, out)),
        Json::Array(items) => items.iter().for_each(|v| collect_all(v, out)),
        other => out.push(other.to_string()),
    }
}

/// A copy of `value` with the value of every secret key replaced by [`MASK`], whatever
/// its type (string, number, object…); only `null` and `""` (no secret) stay as they are.
pub fn masked(value: &Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Json::Null => Json::Null,
                        Json::String(s) if s.is_empty() => Json::String(String::new()),
                        _ if is_secret_key(k) => Json::String(MASK.to_owned()),
                        other => masked(other),
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.iter().map(masked).collect()),
        other => other.clone(),
    }
}

/// Replaces known secret values in text.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: RwLock<Vec<String>>,
}

impl Redactor {
    /// Adds secrets (values shorter than 3 characters are ignored: masking them would
    /// garble ordinary text and hides nothing).
    pub fn add(&self, secrets: impl IntoIterator<Item = String>) {
        let mut list = self.secrets.write().unwrap_or_else(|e| e.into_inner());
        for s in secrets {
            if s.chars().count() >= 3 && !list.contains(&s) {
                list.push(s);
            }
        }
        // Longest first, so a secret containing another is masked whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn redact(&self, text: &str) -> String {
        let list = self.secrets.read().unwrap_or_else(|e| e.into_inner());
        let mut out = text.to_owned();
        for s in list.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

/// The process-wide redactor every output path goes through.
pub fn global() -> &'static Redactor {
    static GLOBAL: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(Redactor::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys() {
        for k in [
            "accessKey",
            "accessKeySecret",
            "password",
            "securityToken",
            "AccessKey_Secret",
            "secret",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "accessId",
            "accessKeyId",
            "endpoint",
            "instanceName",
            "table",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn collects_masks_and_redacts() {
        let v = json!({"endpoint": "http://x", "accessKey": "s3cr3t-value", "nested": [{"password": "hunter22"}]});
        let mut found = Vec::new();
        collect_secrets(&v, &mut found);
        assert_eq!(found, vec!["s3cr3t-value", "hunter22"]);
        let m = masked(&v);
        assert_eq!(m["accessKey"], MASK);
        assert_eq!(m["nested"][0]["password"], MASK);
        assert_eq!(m["endpoint"], "http://x");
        let r = Redactor::default();
        r.add(found);
        assert_eq!(
            r.redact("auth failed for s3cr3t-value and hunter22"),
            format!("auth failed for {MASK} and {MASK}")
        );
    }

    #[test]
    fn secrets_of_any_type_are_masked_by_key() {
        let v = json!({"accessKey": 987654321, "password": true, "token": {"a": "nested-secret"},
                       "securityToken": null, "secret": "", "count": 987654321});
        let m = masked(&v);
        for key in ["accessKey", "password", "token"] {
            assert_eq!(m[key], MASK, "{key}");
        }
        assert_eq!(m["securityToken"], json!(null));
        assert_eq!(m["secret"], "");
        assert_eq!(m["count"], 987654321, "not a secret key");
        let mut found = Vec::new();
        collect_secrets(&v, &mut found);
        assert_eq!(found, vec!["987654321", "nested-secret"]);
    }
}
