//! The odps emulator. Placeholder: only the shared admin interface answers until
//! the service is implemented (see the project's issues).

use crate::common::{admin, server, ServiceHandle, ServiceOptions};

/// Starts the service on `options.bind`.
pub async fn start(options: ServiceOptions) -> std::io::Result<ServiceHandle> {
    let router = admin::router(options.faults.clone(), options.clock.clone());
    server::serve(&options, router).await
}
