//! `localcloud`: run the Tablestore, OSS and MaxCompute emulators.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use localcloud::common::StsRegistry;
use localcloud::{odps, oss, ots, sts, Credentials, ServiceHandle, ServiceOptions};

#[derive(Parser)]
#[command(
    name = "localcloud",
    version,
    about = "Local emulators of Tablestore, OSS and MaxCompute"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the emulators until interrupted. Prints one JSON line describing the
    /// endpoints, names and test credentials on stdout once every service listens.
    Serve {
        /// Tablestore address (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        ots: SocketAddr,
        /// OSS address.
        #[arg(long, default_value = "127.0.0.1:0")]
        oss: SocketAddr,
        /// MaxCompute address.
        #[arg(long, default_value = "127.0.0.1:0")]
        odps: SocketAddr,
        /// STS and ECS instance metadata address (temporary credentials that the three
        /// services accept until they expire).
        #[arg(long, default_value = "127.0.0.1:0")]
        sts: SocketAddr,
        /// Lifetime of every credential the STS and metadata emulator issue, in
        /// milliseconds (default: STS's DurationSeconds, 6 hours for the metadata role).
        #[arg(long)]
        sts_ttl_ms: Option<i64>,
        /// The RAM role attached to the emulated ECS instance.
        #[arg(long, default_value = "localcloud-ecs-role")]
        ecs_role_name: String,
        /// Keep state in this directory so it survives a restart (default: memory only).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Access key id accepted by every service.
        #[arg(long, env = "LOCALCLOUD_ACCESS_KEY_ID")]
        access_key_id: Option<String>,
        /// Access key secret accepted by every service.
        #[arg(long, env = "LOCALCLOUD_ACCESS_KEY_SECRET", hide_env_values = true)]
        access_key_secret: Option<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOCALCLOUD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Command::Serve {
        ots: ots_addr,
        oss: oss_addr,
        odps: odps_addr,
        sts: sts_addr,
        sts_ttl_ms,
        ecs_role_name,
        data_dir,
        access_key_id,
        access_key_secret,
    } = Cli::parse().command;

    let mut credentials = Credentials::test_default();
    if let Some(id) = access_key_id {
        credentials.access_key_id = id;
    }
    if let Some(secret) = access_key_secret {
        credentials.access_key_secret = secret;
    }
    let issued = StsRegistry::new();
    let options = |bind: SocketAddr, name: &str| ServiceOptions {
        bind,
        credentials: vec![credentials.clone()],
        data_dir: data_dir.as_ref().map(|d| d.join(name)),
        sts: issued.clone(),
        ..ServiceOptions::loopback()
    };
    let services: Vec<(&str, ServiceHandle)> = vec![
        (
            "ots",
            ots::start(options(ots_addr, "ots"))
                .await
                .context("starting the Tablestore emulator")?,
        ),
        (
            "oss",
            oss::start(options(oss_addr, "oss"))
                .await
                .context("starting the OSS emulator")?,
        ),
        (
            "odps",
            odps::start(options(odps_addr, "odps"))
                .await
                .context("starting the MaxCompute emulator")?,
        ),
        (
            "sts",
            sts::start(
                options(sts_addr, "sts"),
                sts::StsOptions {
                    role_name: ecs_role_name,
                    ttl_ms: sts_ttl_ms,
                },
            )
            .await
            .context("starting the STS and metadata emulator")?,
        ),
    ];

    let mut described = serde_json::Map::new();
    for (name, handle) in &services {
        let mut info = handle.info.clone();
        info.insert("endpoint".into(), handle.endpoint().into());
        described.insert((*name).into(), info.into());
    }
    described.insert(
        "access_key_id".into(),
        credentials.access_key_id.clone().into(),
    );
    described.insert(
        "access_key_secret".into(),
        credentials.access_key_secret.clone().into(),
    );
    let line = serde_json::Value::Object(described).to_string();
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")?;
        stdout.flush()?;
    }
    for (name, handle) in &services {
        tracing::info!(service = name, endpoint = %handle.endpoint(), "listening");
    }

    shutdown_signal().await;
    for (_, handle) in services {
        handle.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
