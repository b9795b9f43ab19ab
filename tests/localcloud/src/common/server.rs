//! Running one emulated service on a TCP listener.
//!
//! Connections are served with hyper directly (not `axum::serve`) so that a handler
//! can ask for the connection to be dropped without any response: it returns
//! [`drop_connection`], and the connection is closed as a crashed or overloaded
//! server would close it.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use super::{Clock, Credentials, FaultPlan, StsRegistry};

/// How to start one service.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// Where to listen; port 0 picks a free port.
    pub bind: SocketAddr,
    /// Key pairs the service accepts.
    pub credentials: Vec<Credentials>,
    /// Keep state here so it survives a restart; `None` keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// The service's clock (tests move it through the admin interface).
    pub clock: Clock,
    /// The service's fault plan (tests fill it through the admin interface).
    pub faults: FaultPlan,
    /// Temporary credentials issued by the emulated STS and metadata service, accepted
    /// with their security token until they expire.
    pub sts: StsRegistry,
}

impl ServiceOptions {
    /// An ephemeral loopback port, the test credentials, state in memory.
    pub fn loopback() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            credentials: vec![Credentials::test_default()],
            data_dir: None,
            clock: Clock::new(),
            faults: FaultPlan::new(),
            sts: StsRegistry::new(),
        }
    }

    /// The secret of `access_key_id`, if the service knows that key.
    pub fn secret_of(&self, access_key_id: &str) -> Option<&str> {
        self.credentials
            .iter()
            .find(|c| c.access_key_id == access_key_id)
            .map(|c| c.access_key_secret.as_str())
    }
}

/// A running service. Dropping the handle does not stop it; call [`shutdown`](Self::shutdown).
#[derive(Debug)]
pub struct ServiceHandle {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    pub clock: Clock,
    pub faults: FaultPlan,
    /// Service-specific facts for clients (instance name, project, tunnel endpoint, …),
    /// printed by `localcloud serve` beside the endpoint.
    pub info: serde_json::Map<String, serde_json::Value>,
}

impl ServiceHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

/// Marker put in a response's extensions by [`drop_connection`].
#[derive(Clone, Copy, Debug)]
pub struct DropConnection;

/// A response that makes the server close the connection without answering.
pub fn drop_connection() -> Response {
    let mut response = ().into_response();
    response.extensions_mut().insert(DropConnection);
    response
}

#[derive(Debug, thiserror::Error)]
#[error("connection dropped by fault injection")]
struct Dropped;

/// Binds `options.bind` and serves `router` until the handle is shut down.
pub async fn serve(options: &ServiceOptions, router: Router) -> std::io::Result<ServiceHandle> {
    let listener = TcpListener::bind(options.bind).await?;
    let addr = listener.local_addr()?;
    let (shutdown, mut stop) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                },
                _ = stop.changed() => break,
            };
            let router = router.clone();
            let mut stop = stop.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                    let router = router.clone();
                    async move {
                        let response = match router.oneshot(req).await {
                            Ok(response) => response,
                            Err(infallible) => match infallible {},
                        };
                        if response.extensions().get::<DropConnection>().is_some() {
                            return Err(Dropped);
                        }
                        Ok(response)
                    }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                }
            });
        }
    });
    Ok(ServiceHandle {
        addr,
        shutdown,
        task,
        clock: options.clock.clone(),
        faults: options.faults.clone(),
        info: serde_json::Map::new(),
    })
}
