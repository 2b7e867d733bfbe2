//! `weir modules push|list`.

use super::client::Context;
use super::{CliResult, output};
use anyhow::Context as _;
use clap::Subcommand;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Module commands.
#[derive(Debug, Subcommand)]
pub enum ModulesCommand {
    /// Upload a wasm module (validated and compiled by the server) as a new version of a name.
    #[command(
        after_help = "Example:\n  weir modules push target/wasm32-wasip1/release/ingest.wasm --name ingest"
    )]
    Push {
        /// The `.wasm` file.
        path: PathBuf,
        /// The name (default: the file name without `.wasm`).
        #[arg(long)]
        name: Option<String>,
    },
    /// List module versions.
    #[command(after_help = "Example:\n  weir modules list --name ingest")]
    List {
        /// Only this name.
        #[arg(long)]
        name: Option<String>,
    },
}

/// The module name a path pushes as: its file stem.
pub fn default_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into())
}

/// Uploads a file; returns the API's answer.
pub async fn push(ctx: &Context, path: &Path, name: &str) -> anyhow::Result<Value> {
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    ctx.post_bytes("/api/weir/modules", &[("name", name.to_string())], bytes)
        .await
        .with_context(|| format!("cannot push {}", path.display()))
}

/// Runs a modules command.
pub async fn run(ctx: &Context, cmd: ModulesCommand) -> CliResult {
    match cmd {
        ModulesCommand::Push { path, name } => {
            let name = name.unwrap_or_else(|| default_name(&path));
            let out = push(ctx, &path, &name).await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                println!(
                    "{}@{} {} ({} bytes)",
                    name,
                    out["version"],
                    out["digest"].as_str().unwrap_or_default(),
                    out["size"]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ModulesCommand::List { name } => {
            let q: Vec<(&str, String)> = name.map(|n| vec![("name", n)]).unwrap_or_default();
            let out = ctx.get("/api/weir/modules", &q).await?;
            if ctx.json() {
                ctx.print_json(&out);
            } else {
                let rows: Vec<Vec<String>> = out["modules"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .map(|m| {
                                vec![
                                    m["name"].as_str().unwrap_or_default().to_string(),
                                    m["version"].to_string(),
                                    m["digest"].as_str().unwrap_or_default().to_string(),
                                    m["size"].to_string(),
                                    output::time(m["created_time"].as_i64().unwrap_or(0)),
                                ]
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print!(
                    "{}",
                    output::table(&["NAME", "VERSION", "DIGEST", "SIZE", "PUSHED"], &rows)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
