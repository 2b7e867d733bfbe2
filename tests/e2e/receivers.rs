//! Real receivers of alerts for the tests: an HTTP server that records webhook POSTs, and an SMTP
//! sink (aiosmtpd, installed by `scripts/services/smtp.sh`, which prints
//! `WEIR_TEST_SMTP_SERVER`) storing each message in a Maildir. Each test starts its own.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One POST a receiver got: lower-cased headers and the JSON body.
#[derive(Debug, Clone)]
pub struct Post {
    /// Header name (lower case) and value.
    pub headers: Vec<(String, String)>,
    /// The body, parsed.
    pub body: Value,
}

impl Post {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP server on a free port answering every request with 200 and recording it.
pub struct WebhookReceiver {
    /// `http://127.0.0.1:PORT/hook`.
    pub url: String,
    posts: Arc<Mutex<Vec<Post>>>,
}

impl WebhookReceiver {
    /// Starts the receiver.
    pub fn start() -> WebhookReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let posts: Arc<Mutex<Vec<Post>>> = Arc::default();
        let record = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line); // request line
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                record.lock().unwrap().push(Post {
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
            }
        });
        WebhookReceiver { url, posts }
    }

    /// What it got so far.
    pub fn posts(&self) -> Vec<Post> {
        self.posts.lock().unwrap().clone()
    }
}

/// aiosmtpd on a free port, storing messages in a Maildir.
pub struct SmtpSink {
    /// Its port.
    pub port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

fn aiosmtpd() -> String {
    std::env::var("WEIR_TEST_SMTP_SERVER")
        .ok()
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            let default = format!(
                "{}/.cache/weir-tools/venv/bin/aiosmtpd",
                std::env::var("HOME").unwrap_or_default()
            );
            assert!(
                Path::new(&default).exists(),
                "no SMTP sink for the tests: run `bash scripts/services/smtp.sh` (it installs \
                 aiosmtpd into ~/.cache/weir-tools/venv and prints WEIR_TEST_SMTP_SERVER), or use \
                 scripts/test.sh"
            );
            default
        })
}

impl SmtpSink {
    /// Starts a sink and waits until it accepts connections.
    pub fn start() -> SmtpSink {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(aiosmtpd())
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("box"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "aiosmtpd did not listen on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            port,
            maildir,
            child,
        }
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The messages received so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("box/new");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.map_while(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses Prometheus text with the reference parser (`prometheus_client`, installed by
/// `scripts/services/prometheus.sh`): `[{"name", "type", "samples": [{"name", "labels",
/// "value"}]}]`. Panics with the parser's error when the text is not valid.
pub fn parse_prometheus(text: &str) -> Value {
    let python = std::env::var("WEIR_TEST_PROMETHEUS_PYTHON")
        .ok()
        .filter(|p| Path::new(p).exists())
        .unwrap_or_else(|| {
            format!(
                "{}/.cache/weir-tools/venv/bin/python",
                std::env::var("HOME").unwrap_or_default()
            )
        });
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families as parse\n\
        print(json.dumps([{'name': f.name, 'type': f.type, 'samples': [\n\
            {'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples]}\n\
            for f in parse(sys.stdin.read())]))\n";
    let mut child = Command::new(&python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {python} ({e}): run `bash scripts/services/prometheus.sh` (it installs \
                 prometheus-client into ~/.cache/weir-tools/venv), or use scripts/test.sh"
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
