//! Temporary credentials issued by the emulated STS and instance metadata service
//! (`crate::sts`), shared by every service of one `localcloud serve`: Tablestore, OSS
//! and MaxCompute accept an issued AccessKeyId with its security token and a signature
//! made with its secret, and refuse it once it has expired (by the wall clock, as
//! real tokens do) or with another token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One issued credential.
#[derive(Clone)]
pub struct Issued {
    pub access_key_id: String,
    pub access_key_secret: String,
    pub security_token: String,
    /// Wall-clock milliseconds since the epoch.
    pub expires_ms: i64,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("access_key_id", &self.access_key_id)
            .field("expires_ms", &self.expires_ms)
            .finish_non_exhaustive()
    }
}

/// What a service makes of an access key id and the token sent with it.
#[derive(Debug, PartialEq, Eq)]
pub enum StsCheck {
    /// Not an issued id: look it up among the permanent keys.
    NotIssued,
    /// Valid: verify the signature with this secret.
    Valid(String),
    /// An issued id sent without a token.
    MissingToken,
    /// An issued id with another token.
    WrongToken,
    /// The token has expired.
    Expired,
}

/// The registry of issued credentials (cheap to clone; clones share it).
#[derive(Clone, Debug, Default)]
pub struct StsRegistry {
    issued: Arc<Mutex<HashMap<String, Issued>>>,
    counter: Arc<Mutex<u64>>,
}

/// Wall-clock milliseconds since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl StsRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Issues a credential valid for `ttl_ms` from now.
    pub fn issue(&self, ttl_ms: i64) -> Issued {
        let random = || hex::encode(rand::random::<[u8; 16]>());
        let issued = Issued {
            access_key_id: format!("STS.{}", random()),
            access_key_secret: random(),
            security_token: format!("CAIS{}{}", random(), random()),
            expires_ms: wall_ms() + ttl_ms,
        };
        self.issued
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(issued.access_key_id.clone(), issued.clone());
        *self.counter.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        issued
    }

    /// How many credentials were issued since start.
    pub fn issued_count(&self) -> u64 {
        *self.counter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks `access_key_id` presented with `token` at wall time `now_ms`.
    pub fn check(&self, access_key_id: &str, token: Option<&str>, now_ms: i64) -> StsCheck {
        let issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let Some(i) = issued.get(access_key_id) else {
            return StsCheck::NotIssued;
        };
        match token.map(str::trim) {
            None | Some("") => StsCheck::MissingToken,
            Some(t) if t != i.security_token => StsCheck::WrongToken,
            Some(_) if now_ms >= i.expires_ms => StsCheck::Expired,
            Some(_) => StsCheck::Valid(i.access_key_secret.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_and_check() {
        let r = StsRegistry::new();
        let i = r.issue(1000);
        let now = wall_ms();
        assert_eq!(
            r.check(&i.access_key_id, Some(&i.security_token), now),
            StsCheck::Valid(i.access_key_secret.clone())
        );
        assert_eq!(r.check(&i.access_key_id, None, now), StsCheck::MissingToken);
        assert_eq!(
            r.check(&i.access_key_id, Some("x"), now),
            StsCheck::WrongToken
        );
        assert_eq!(
            r.check(&i.access_key_id, Some(&i.security_token), now + 1001),
            StsCheck::Expired
        );
        assert_eq!(r.check("LTAI", Some("x"), now), StsCheck::NotIssued);
        assert_eq!(r.issued_count(), 1);
        assert!(!format!("{i:?}").contains(&i.access_key_secret));
    }
}
