//! The HTTP client of the CLI.

use super::Output;
use anyhow::Context as _;
use reqwest::Method;
use serde_json::Value;
use std::path::PathBuf;

/// A failed API call, with the API's error code.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({code}, HTTP {status})")]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// `error_code`.
    pub code: String,
    /// `message`.
    pub message: String,
}

/// Where and how the CLI talks to Weir.
pub struct Context {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    /// The output format.
    pub output: Output,
}

/// The admin token a local node wrote, if any.
fn local_token() -> Option<String> {
    let dir = std::env::var_os("WEIR_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".weir".into());
    std::fs::read_to_string(dir.join("admin-token"))
        .ok()
        .map(|t| t.trim().to_string())
}

impl Context {
    /// A client of `host`.
    pub fn new(host: &str, token: Option<String>, output: Output) -> anyhow::Result<Context> {
        let base = host.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            anyhow::bail!("--host {host:?} must start with http:// or https://");
        }
        let http = crate::tls::http_client()
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Context {
            base,
            token: token.or_else(local_token),
            http,
            output,
        })
    }

    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach weir at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.context("cannot read the response")?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        Err(ApiFailure {
            status: status.as_u16(),
            code: body
                .get("error_code")
                .and_then(Value::as_str)
                .unwrap_or("ERROR")
                .to_string(),
            message: body
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string()),
        }
        .into())
    }

    /// `GET path?query`.
    pub async fn get(&self, path: &str, query: &[(&str, String)]) -> anyhow::Result<Value> {
        self.send(
            self.http
                .request(Method::GET, format!("{}{path}", self.base))
                .query(query),
        )
        .await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(
            self.http
                .request(Method::POST, format!("{}{path}", self.base))
                .json(body),
        )
        .await
    }

    /// `POST path?query` with raw bytes.
    pub async fn post_bytes(
        &self,
        path: &str,
        query: &[(&str, String)],
        bytes: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let req = self
            .http
            .request(Method::POST, format!("{}{path}", self.base))
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, "application/wasm")
            .body(bytes);
        self.send(req).await
    }

    /// Resolves a job given by name or id to its id.
    pub async fn job_id(&self, job: &str) -> anyhow::Result<i64> {
        let jobs = self
            .get("/api/2.2/jobs/list", &[("name", job.to_string())])
            .await?;
        if let Some(id) = jobs["jobs"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|j| j["job_id"].as_i64())
        {
            return Ok(id);
        }
        if let Ok(id) = job.parse::<i64>() {
            self.get("/api/2.2/jobs/get", &[("job_id", id.to_string())])
                .await?;
            return Ok(id);
        }
        anyhow::bail!("no job named {job:?}")
    }

    /// Waits until a run is final and returns it.
    pub async fn wait_run(&self, run_id: i64) -> anyhow::Result<Value> {
        loop {
            let run = self
                .get(
                    "/api/weir/runs/wait",
                    &[
                        ("run_id", run_id.to_string()),
                        ("timeout_seconds", "30".into()),
                    ],
                )
                .await?;
            let life = run["state"]["life_cycle_state"]
                .as_str()
                .unwrap_or_default();
            if matches!(life, "TERMINATED" | "SKIPPED" | "INTERNAL_ERROR") {
                return Ok(run);
            }
        }
    }

    /// Prints a run: the `Run` object with `--output json`, a summary with its tasks otherwise.
    pub fn print_run(&self, run: &Value) {
        if self.json() {
            self.print_json(run);
        } else {
            print!("{}", super::output::run(run));
        }
    }

    /// Prints a value as pretty JSON.
    pub fn print_json(&self, v: &Value) {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    }
}
