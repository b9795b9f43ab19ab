//! What the three emulators share.

pub mod admin;
pub mod clock;
pub mod faults;
pub mod server;
pub mod sts;

pub use clock::Clock;
pub use faults::{Fault, FaultPlan, FaultRule};
pub use server::{ServiceHandle, ServiceOptions};
pub use sts::{StsCheck, StsRegistry};

use serde::{Deserialize, Serialize};

/// An access key pair the emulator accepts. The secret never appears in logs.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: String,
}

impl Credentials {
    /// The key pair every emulator accepts unless configured otherwise.
    pub fn test_default() -> Self {
        Self {
            access_key_id: "LTAI5tLocalCloudTestKey".to_owned(),
            access_key_secret: "localcloud-test-secret-0123456789".to_owned(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .finish()
    }
}
