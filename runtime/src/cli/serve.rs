//! `weir serve`.

use super::CliResult;
use crate::config::{FileConfig, LogFormat, ServeConfig};
use crate::serve::Node;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// `weir serve` flags; each can also come from `WEIR_*` or `weir.toml`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory [default: .weir]
    #[arg(long, env = "WEIR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8181]
    #[arg(long, env = "WEIR_LISTEN")]
    listen: Option<SocketAddr>,
    /// State store URL [default: sqlite://<data-dir>/weir.db]
    #[arg(long, env = "WEIR_STATE")]
    state: Option<String>,
    /// Object store URL [default: file://<data-dir>/objects]
    #[arg(long, env = "WEIR_STORE")]
    store: Option<String>,
    /// Wasm instances that may run at once [default: 256]
    #[arg(long, env = "WEIR_MAX_INSTANCES")]
    max_instances: Option<u32>,
    /// S3 endpoint for s3:// stores and file-arrival URLs [default: AWS_ENDPOINT_URL, else AWS]
    #[arg(long, env = "WEIR_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// S3 region [default: AWS_REGION, else us-east-1]
    #[arg(long, env = "WEIR_S3_REGION")]
    s3_region: Option<String>,
    /// How often file-arrival triggers list s3:// URLs, in seconds [default: 5]
    #[arg(long, env = "WEIR_FILE_ARRIVAL_LIST_INTERVAL_SECONDS")]
    file_arrival_list_interval_seconds: Option<u64>,
    /// SMTP server of e-mail alerts: smtp://[user:pass@]host:port[?tls=required] or smtps://...
    /// [default: none, e-mail alerts fail saying so]
    #[arg(long, env = "WEIR_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// The From: address of alert e-mails (needed with --smtp-url)
    #[arg(long, env = "WEIR_SMTP_FROM")]
    smtp_from: Option<String>,
    /// Serve /metrics without a token [default: the token is needed]
    #[arg(long, env = "WEIR_METRICS_PUBLIC")]
    metrics_public: bool,
    /// Log format on stderr [default: text]
    #[arg(long, env = "WEIR_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
    /// Allow tasks to mount directories under DIR (repeatable) [default: the directory weir
    /// serve starts in]; Weir's data directory is never mountable
    #[arg(
        long = "mount-root",
        value_name = "DIR",
        env = "WEIR_MOUNT_ROOTS",
        value_delimiter = ':'
    )]
    mount_roots: Vec<PathBuf>,
    /// Kafka brokers for table-update triggers, `host:port,...` [default: off]
    #[arg(long, env = "WEIR_KAFKA_BROKERS")]
    kafka_brokers: Option<String>,
    /// Topics of change events, comma-separated; `^...` is a regex [default: weir.table-updates]
    #[arg(long, env = "WEIR_KAFKA_TOPICS")]
    kafka_topics: Option<String>,
    /// Kafka consumer group [default: weir]
    #[arg(long, env = "WEIR_KAFKA_GROUP")]
    kafka_group: Option<String>,
    /// Config file [default: ./weir.toml when it exists]
    #[arg(long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Runs a node until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> CliResult {
    let file = match &args.config {
        Some(p) => FileConfig::read(p)?,
        None if std::path::Path::new("weir.toml").exists() => {
            FileConfig::read("weir.toml".as_ref())?
        }
        None => FileConfig::default(),
    };
    let explicit = FileConfig {
        data_dir: args.data_dir,
        listen: args.listen,
        state: args.state,
        store: args.store,
        max_instances: args.max_instances,
        s3: Some(crate::s3::S3Settings {
            endpoint: args.s3_endpoint,
            region: args.s3_region,
            ..Default::default()
        }),
        file_arrival_list_interval_seconds: args.file_arrival_list_interval_seconds,
        smtp_url: args.smtp_url,
        smtp_from: args.smtp_from,
        metrics_public: args.metrics_public.then_some(true),
        log_format: args.log_format,
        mount_roots: Some(args.mount_roots),
        kafka_brokers: args.kafka_brokers,
        kafka_topics: args.kafka_topics,
        kafka_group: args.kafka_group,
        ..Default::default()
    };
    let config = ServeConfig::resolve(explicit, file)?;
    init_tracing(config.log_format);
    let node = Node::start(config.clone()).await?;
    tracing::info!(
        addr = %node.addr,
        data_dir = %config.data_dir.display(),
        state = %config.state,
        store = %config.store,
        node = node.engine.node_id(),
        "weir.serve: listening on http://{} (state {}, objects {}, admin token in {}); \
         next, in another terminal: weir deploy examples/jobs && weir jobs list",
        node.addr,
        config.state,
        config.store,
        config.data_dir.join("admin-token").display()
    );
    wait_for_signal().await?;
    tracing::info!("weir.serve: shutting down");
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
