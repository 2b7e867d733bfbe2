//! The harness of the end-to-end tests: a real `weir serve` process on a temp data dir and the
//! real `weir` CLI talking to it.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The `weir` binary under test.
pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

/// The wasm target directory.
fn wasm_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("wasm32-wasip1/release")
}

/// A compiled guest module (`testtask`, or an example task such as `ingest`).
pub fn module(name: &str) -> PathBuf {
    let p = wasm_dir().join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: build the guests first with `cargo build --release --target wasm32-wasip1 -p weir-test-tasks -p weir-examples` (scripts/test.sh does this)",
        p.display()
    );
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// A WAT fixture compiled to a wasm file in `dir`.
pub fn wat_module(dir: &Path, name: &str) -> PathBuf {
    let src = repo_root()
        .join("tests/fixtures/wat")
        .join(format!("{name}.wat"));
    let bytes = wat::parse_file(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    let out = dir.join(format!("{name}.wasm"));
    std::fs::write(&out, bytes).unwrap();
    out
}

/// A running `weir serve`.
pub struct Weir {
    /// Its data directory (kept across restarts).
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:PORT`.
    pub host: String,
    /// The admin token.
    pub token: String,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    config: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Weir {
    /// Starts a node on a fresh data dir.
    pub fn start() -> Weir {
        Weir::start_with_config("")
    }

    /// Starts a node whose `weir.toml` holds `toml`.
    pub fn start_with_config(toml: &str) -> Weir {
        Weir::start_with(toml, &[])
    }

    /// Starts a node whose `weir.toml` holds `toml` (when not empty), with extra environment
    /// variables (the AWS settings of an S3 server, ...).
    pub fn start_with(toml: &str, env: &[(String, String)]) -> Weir {
        let dir = tempfile::tempdir().unwrap();
        let config = (!toml.is_empty()).then(|| {
            let p = dir.path().join("weir.toml");
            std::fs::write(&p, toml).unwrap();
            p
        });
        let mut w = Weir {
            dir,
            host: String::new(),
            token: String::new(),
            child: None,
            log: Arc::default(),
            config,
            env: env.to_vec(),
        };
        w.spawn();
        w
    }

    /// Starts the node process (again) on the same data dir.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new(weir_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(self.dir.path());
        if let Some(c) = &self.config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(i) = line.find("listening on http://") {
                    let addr: String = line[i + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                }
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let host = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "weir serve did not start; its log:\n{}",
                    self.log.lock().unwrap()
                )
            });
        self.host = host;
        self.token = std::fs::read_to_string(self.dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        self.child = Some(child);
    }

    /// Stops the node gracefully (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped yet.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            c.wait().unwrap();
        }
    }

    /// `kill -9` of the node.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }

    /// Waits for the node process to exit by itself (a fault hook); panics after `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("the node is running");
        let start = Instant::now();
        loop {
            if let Some(status) = c.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "the node did not exit; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Replaces the extra environment of the next [`Weir::spawn`].
    pub fn set_env(&mut self, env: &[(String, String)]) {
        self.env = env.to_vec();
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs the CLI against this node.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(weir_bin())
            .args(args)
            .env("WEIR_HOST", &self.host)
            .env("WEIR_TOKEN", &self.token)
            .current_dir(self.dir.path())
            .output()
            .expect("weir runs")
    }

    /// Runs the CLI and expects success; returns stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "weir {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs the CLI with `--output json` and parses stdout.
    pub fn cli_json(&self, args: &[&str]) -> (bool, Value) {
        let mut a = args.to_vec();
        a.extend(["--output", "json"]);
        let out = self.cli(&a);
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "weir {a:?}: stdout is not JSON ({e}):\n{}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), v)
    }

    /// Writes a spec file into the data dir and deploys it.
    pub fn deploy(&self, name: &str, yaml: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        self.cli_ok(&["deploy", path.to_str().unwrap()])
    }

    /// `weir jobs run JOB --wait --output json`: the final run and whether the CLI exited 0.
    pub fn run_wait(&self, job: &str, extra: &[&str]) -> (bool, Value) {
        let mut args = vec!["jobs", "run", job, "--wait"];
        args.extend(extra);
        self.cli_json(&args)
    }

    /// An HTTP request with the admin token (or `token`), returning status and JSON body.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (u16, Value) {
        self.http_raw(
            method,
            path,
            body.map(|b| b.to_string().into_bytes()),
            token,
        )
    }

    /// An HTTP request with a raw JSON body.
    pub fn http_raw(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> (u16, Value) {
        weir::tls::install_crypto_provider();
        let client = reqwest::blocking::Client::new();
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", self.host));
        if let Some(t) = token
            .or(Some(self.token.as_str()))
            .filter(|t| !t.is_empty())
        {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Waits until `f` holds for the run, polling `runs/get`; panics after `limit`.
    pub fn wait_for_run(&self, run_id: i64, limit: Duration, f: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (_, run) = self.http(
                "GET",
                &format!("/api/2.2/jobs/runs/get?run_id={run_id}"),
                None,
                None,
            );
            if f(&run) {
                return run;
            }
            assert!(
                start.elapsed() < limit,
                "run {run_id} never reached the expected state:\n{run:#}\nnode log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The tasks of a run with this key, attempts in order.
pub fn attempts<'a>(run: &'a Value, key: &str) -> Vec<&'a Value> {
    run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task_key"] == key)
        .collect()
}

/// The final attempt of a task.
pub fn task<'a>(run: &'a Value, key: &str) -> &'a Value {
    attempts(run, key)
        .into_iter()
        .last()
        .unwrap_or_else(|| panic!("run has no task {key}: {run:#}"))
}

/// A task's result state.
pub fn result(run: &Value, key: &str) -> String {
    task(run, key)["state"]["result_state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// The run's result state.
pub fn run_result(run: &Value) -> String {
    run["state"]["result_state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
