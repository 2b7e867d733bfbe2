//! A real S3-compatible server for the tests: moto in server mode, installed by
//! `scripts/services/s3.sh` (which prints `WEIR_TEST_S3_SERVER`). Each test starts its own
//! server on a free port (in memory), so tests never share buckets.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3 server.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
    child: Option<Child>,
}

fn binary() -> String {
    std::env::var("WEIR_TEST_S3_SERVER").ok().filter(|p| std::path::Path::new(p).exists()).unwrap_or_else(|| {
        let default = format!(
            "{}/.cache/weir-tools/venv/bin/moto_server",
            std::env::var("HOME").unwrap_or_default()
        );
        assert!(
            std::path::Path::new(&default).exists(),
            "no S3 server for the tests: run `bash scripts/services/s3.sh` (it installs moto[server] \
             into ~/.cache/weir-tools/venv and prints WEIR_TEST_S3_SERVER), or use scripts/test.sh"
        );
        default
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3Server {
    /// Starts a server on a free port and waits until it answers.
    pub fn start() -> S3Server {
        weir::tls::install_crypto_provider();
        let port = free_port();
        let mut s = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            child: None,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new(binary())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the S3 server starts");
        self.child = Some(child);
        let start = Instant::now();
        let client = reqwest::blocking::Client::new();
        while client.get(&self.endpoint).send().is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the S3 server at {} did not answer within 120 s",
                self.endpoint
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (its buckets are gone: moto keeps them in memory).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port (empty).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The AWS settings a `weir serve` needs to reach this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "weir-test"),
            ("AWS_SECRET_ACCESS_KEY", "weir-test-secret"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let resp = reqwest::blocking::Client::new()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .unwrap();
        assert!(
            resp.status().is_success(),
            "create bucket {bucket}: {}",
            resp.status()
        );
    }

    /// Uploads an object (a signed PUT, as any S3 client does).
    pub fn put(&self, bucket: &str, key: &str, body: &[u8]) {
        use object_store::ObjectStoreExt as _;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_bucket_name(bucket)
            .with_access_key_id("weir-test")
            .with_secret_access_key("weir-test-secret")
            .with_region("us-east-1")
            .with_allow_http(true)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(store.put(
                &object_store::path::Path::from(key),
                bytes::Bytes::copy_from_slice(body).into(),
            ))
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e}"));
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let text = reqwest::blocking::Client::new()
            .get(format!(
                "{}/{bucket}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .send()
            .unwrap()
            .text()
            .unwrap();
        text.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
