//! The `weir` command line: `serve` runs a node; every other command is a client of the HTTP API
//! (`--host`/`WEIR_HOST`, `--token`/`WEIR_TOKEN`), printing text or, with `--output json`, the
//! API's objects.

mod access;
mod alerts;
mod client;
mod deploy;
mod jobs;
mod modules;
mod output;
mod runs;
mod serve;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Weir: event-driven DAGs of WebAssembly tasks.
#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about,
    propagate_version = true,
    after_help = "Examples:\n  weir serve                                  # a node on .weir/ at 127.0.0.1:8181\n  weir deploy examples/jobs                   # push modules, create or update jobs\n  weir jobs run orders-pipeline --wait        # run a job, exit 0 only if it succeeded\n  weir runs list --job orders-pipeline"
)]
pub struct Cli {
    /// API address of a running node.
    #[arg(
        long,
        global = true,
        env = "WEIR_HOST",
        default_value = "http://127.0.0.1:8181"
    )]
    pub host: String,
    /// Bearer token (default: the admin token in `$WEIR_DATA_DIR` or `.weir/admin-token`).
    #[arg(long, global = true, env = "WEIR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    Text,
    /// The API's JSON objects.
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a Weir node (API, engine, executor).
    #[command(
        after_help = "Examples:\n  weir serve\n  weir serve --data-dir /var/lib/weir --listen 0.0.0.0:8181 --store s3://bucket/weir"
    )]
    Serve(Box<serve::ServeArgs>),
    /// Push the modules specs reference by path, and create or update their jobs by name.
    #[command(
        after_help = "Example:\n  weir deploy examples/jobs\n  weir deploy pipeline.yaml --output json"
    )]
    Deploy {
        /// Spec files, or directories of `.yaml`, `.yml` and `.json` specs.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Jobs.
    #[command(
        subcommand,
        after_help = "Example:\n  weir jobs run orders-pipeline --wait"
    )]
    Jobs(jobs::JobsCommand),
    /// Runs.
    #[command(subcommand, after_help = "Example:\n  weir runs get 42")]
    Runs(runs::RunsCommand),
    /// Wasm modules.
    #[command(subcommand, after_help = "Example:\n  weir modules list")]
    Modules(modules::ModulesCommand),
    /// Alerts (e-mail and webhook notifications) and their delivery.
    #[command(
        subcommand,
        after_help = "Example:\n  weir alerts list --job orders-pipeline"
    )]
    Alerts(alerts::AlertsCommand),
    /// API tokens.
    #[command(
        subcommand,
        after_help = "Example:\n  weir tokens create --principal ci-bot --lifetime 30d"
    )]
    Tokens(access::TokensCommand),
    /// Users, groups and service principals.
    #[command(
        subcommand,
        after_help = "Example:\n  weir principals create data-eng --kind group"
    )]
    Principals(access::PrincipalsCommand),
    /// The audit log: every change through the API and every run state change.
    #[command(
        after_help = "Example:\n  weir audit --principal bob --action jobs. --since 2026-12-01T00:00:00Z"
    )]
    Audit(access::AuditArgs),
}

/// A command's failure: the message, and whether it is the run's failure (exit 1) or an error
/// talking to Weir (exit 1 too; usage errors exit 2 through clap).
pub type CliResult = anyhow::Result<ExitCode>;

/// Entry point of the `weir` binary.
pub fn main() -> ExitCode {
    crate::tls::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> CliResult {
    let ctx = client::Context::new(&cli.host, cli.token.clone(), cli.output);
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Deploy { paths } => deploy::run(&ctx?, &paths).await,
        Command::Jobs(c) => jobs::run(&ctx?, c).await,
        Command::Runs(c) => runs::run(&ctx?, c).await,
        Command::Modules(c) => modules::run(&ctx?, c).await,
        Command::Alerts(c) => alerts::run(&ctx?, c).await,
        Command::Tokens(c) => access::tokens(&ctx?, c).await,
        Command::Principals(c) => access::principals(&ctx?, c).await,
        Command::Audit(a) => access::audit(&ctx?, a).await,
    }
}
