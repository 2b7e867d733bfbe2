//! Runtime configuration: `weir serve` flags, `WEIR_*` environment variables and `weir.toml`,
//! in that order of precedence, over the defaults.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings `weir.toml` may hold (every key optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address.
    pub listen: Option<SocketAddr>,
    /// State store URL.
    pub state: Option<String>,
    /// Object store URL.
    pub store: Option<String>,
    /// Wasm instances that may run at once on this node.
    pub max_instances: Option<u32>,
    /// Upper bound of any task's `memory_limit_mb`.
    pub max_memory_mb: Option<u32>,
    /// Bytes of stdout and of stderr kept per attempt.
    pub log_limit_bytes: Option<usize>,
    /// Largest module upload, in bytes.
    pub max_module_bytes: Option<u64>,
    /// Largest JSON request body, in bytes.
    pub max_request_bytes: Option<usize>,
    /// Run lease duration in seconds.
    pub lease_seconds: Option<u64>,
    /// How long a shutdown waits for running attempts, in seconds.
    pub shutdown_grace_seconds: Option<u64>,
    /// `[s3]`: overrides of the AWS environment for `s3://` stores and file-arrival URLs.
    pub s3: Option<crate::s3::S3Settings>,
    /// How often a file-arrival trigger lists an `s3://` URL (or rescans a local directory it
    /// cannot watch with OS events), in seconds; a job may override it.
    pub file_arrival_list_interval_seconds: Option<u64>,
    /// Most MiB of new objects fetched into `/input` for one run of an `s3://` file-arrival
    /// trigger.
    pub file_arrival_input_limit_mb: Option<u64>,
    /// Kafka brokers of the table-update consumer (`host:port,...`); no consumer when unset.
    pub kafka_brokers: Option<String>,
    /// Topics of change events, comma-separated (a name starting with `^` is a regex).
    pub kafka_topics: Option<String>,
    /// Consumer group.
    pub kafka_group: Option<String>,
    /// `fetch.wait.max.ms` of the consumer.
    pub kafka_fetch_wait_max_ms: Option<u64>,
    /// `[kafka_properties]`: librdkafka settings passed through (security, SASL, ...).
    pub kafka_properties: Option<std::collections::BTreeMap<String, String>>,
    /// Directories under which tasks may mount host directories (default: the directory the
    /// node was started in). Weir's data directory is never mountable.
    pub mount_roots: Option<Vec<PathBuf>>,
    /// Longest time an API request may take before it is answered 504 (long polls of
    /// `/api/weir/runs/wait` have their own bound), in seconds.
    pub request_timeout_seconds: Option<u64>,
    /// SMTP server of e-mail alerts: `smtp://[user:pass@]host:port[?tls=required]`, `smtps://...`.
    pub smtp_url: Option<String>,
    /// The `From:` address of alert e-mails.
    pub smtp_from: Option<String>,
    /// Serve `/metrics` without a token.
    pub metrics_public: Option<bool>,
    /// Log format: `text` (default) or `json`.
    pub log_format: Option<LogFormat>,
}

/// How `weir serve` writes its log (stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span fields (`job.id`, `run.id`, `task.key`).
    Json,
}

impl FileConfig {
    /// Reads a `weir.toml`; unknown keys are refused.
    pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }
}

/// The resolved settings of a node.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Data directory (admin token, node id, SQLite file, objects, caches).
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// State store URL (`sqlite://...`).
    pub state: String,
    /// Object store URL (`file://...`).
    pub store: String,
    /// Wasm instances that may run at once.
    pub max_instances: u32,
    /// Upper bound of any task's `memory_limit_mb`.
    pub max_memory_mb: u32,
    /// Bytes of stdout and of stderr kept per attempt.
    pub log_limit_bytes: usize,
    /// Largest module upload.
    pub max_module_bytes: u64,
    /// Largest JSON request body.
    pub max_request_bytes: usize,
    /// Run lease duration in seconds.
    pub lease_seconds: u64,
    /// Shutdown grace in seconds.
    pub shutdown_grace_seconds: u64,
    /// S3 settings over the AWS environment.
    pub s3: crate::s3::S3Settings,
    /// Default listing interval of file-arrival triggers, in seconds.
    pub file_arrival_list_interval_seconds: u64,
    /// Most MiB of new objects fetched into `/input` per run.
    pub file_arrival_input_limit_mb: u64,
    /// SMTP server and sender of e-mail alerts (`None`: e-mail alerts fail, saying so).
    pub smtp: Option<crate::alerts::SmtpSettings>,
    /// Serve `/metrics` without a token.
    pub metrics_public: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Allowed mount roots; empty: the directory the node was started in.
    pub mount_roots: Vec<PathBuf>,
    /// Longest time an API request may take, in seconds.
    pub request_timeout_seconds: u64,
    /// The Kafka consumer of table-update triggers (`None`: Kafka off).
    pub kafka: Option<crate::trigger::table_update::KafkaSettings>,
}

/// Defaults of the settings that have one.
pub mod defaults {
    /// `--data-dir`.
    pub const DATA_DIR: &str = ".weir";
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8181";
    /// Wasm instances at once.
    pub const MAX_INSTANCES: u32 = 256;
    /// Memory limit ceiling in MiB.
    pub const MAX_MEMORY_MB: u32 = 4096;
    /// Log bytes kept per stream and attempt (1 MiB).
    pub const LOG_LIMIT_BYTES: usize = 1024 * 1024;
    /// Largest module (64 MiB).
    pub const MAX_MODULE_BYTES: u64 = 64 * 1024 * 1024;
    /// Largest JSON request (10 MiB).
    pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
    /// Lease duration.
    pub const LEASE_SECONDS: u64 = 30;
    /// Shutdown grace.
    pub const SHUTDOWN_GRACE_SECONDS: u64 = 10;
    /// Listing interval of file-arrival triggers on object stores.
    pub const FILE_ARRIVAL_LIST_INTERVAL_SECONDS: u64 = 5;
    /// MiB of new objects fetched into `/input` per run (1 GiB).
    pub const FILE_ARRIVAL_INPUT_LIMIT_MB: u64 = 1024;
    /// Longest API request, in seconds.
    pub const REQUEST_TIMEOUT_SECONDS: u64 = 60;
}

impl ServeConfig {
    /// Merges explicit settings (flags and environment, already merged by clap) over a config
    /// file over the defaults.
    pub fn resolve(explicit: FileConfig, file: FileConfig) -> anyhow::Result<ServeConfig> {
        let kafka = kafka_settings(&explicit, &file)?;
        let data_dir = explicit
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| defaults::DATA_DIR.into());
        let listen = match explicit.listen.or(file.listen) {
            Some(l) => l,
            None => defaults::LISTEN.parse()?,
        };
        let state = explicit
            .state
            .or(file.state)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("weir.db").display()));
        let store = explicit
            .store
            .or(file.store)
            .unwrap_or_else(|| format!("file://{}", data_dir.join("objects").display()));
        let pick = |a: Option<u64>, b: Option<u64>, d: u64| a.or(b).unwrap_or(d);
        let smtp = match (
            explicit.smtp_url.or(file.smtp_url),
            explicit.smtp_from.or(file.smtp_from),
        ) {
            (Some(url), Some(from)) => Some(crate::alerts::SmtpSettings { url, from }),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!(
                "smtp_url is set but smtp_from is not: give the From: address of alert e-mails \
                 (--smtp-from, WEIR_SMTP_FROM or smtp_from in weir.toml)"
            ),
            (None, Some(_)) => anyhow::bail!(
                "smtp_from is set but smtp_url is not: give the SMTP server (--smtp-url, \
                 WEIR_SMTP_URL or smtp_url in weir.toml)"
            ),
        };
        let config = ServeConfig {
            smtp,
            metrics_public: explicit
                .metrics_public
                .or(file.metrics_public)
                .unwrap_or(false),
            log_format: explicit.log_format.or(file.log_format).unwrap_or_default(),
            max_instances: explicit
                .max_instances
                .or(file.max_instances)
                .unwrap_or(defaults::MAX_INSTANCES),
            max_memory_mb: explicit
                .max_memory_mb
                .or(file.max_memory_mb)
                .unwrap_or(defaults::MAX_MEMORY_MB),
            log_limit_bytes: explicit
                .log_limit_bytes
                .or(file.log_limit_bytes)
                .unwrap_or(defaults::LOG_LIMIT_BYTES),
            max_module_bytes: pick(
                explicit.max_module_bytes,
                file.max_module_bytes,
                defaults::MAX_MODULE_BYTES,
            ),
            max_request_bytes: explicit
                .max_request_bytes
                .or(file.max_request_bytes)
                .unwrap_or(defaults::MAX_REQUEST_BYTES),
            lease_seconds: pick(
                explicit.lease_seconds,
                file.lease_seconds,
                defaults::LEASE_SECONDS,
            ),
            shutdown_grace_seconds: pick(
                explicit.shutdown_grace_seconds,
                file.shutdown_grace_seconds,
                defaults::SHUTDOWN_GRACE_SECONDS,
            ),
            s3: explicit
                .s3
                .unwrap_or_default()
                .or(file.s3.unwrap_or_default()),
            file_arrival_list_interval_seconds: pick(
                explicit.file_arrival_list_interval_seconds,
                file.file_arrival_list_interval_seconds,
                defaults::FILE_ARRIVAL_LIST_INTERVAL_SECONDS,
            ),
            file_arrival_input_limit_mb: pick(
                explicit.file_arrival_input_limit_mb,
                file.file_arrival_input_limit_mb,
                defaults::FILE_ARRIVAL_INPUT_LIMIT_MB,
            ),
            request_timeout_seconds: pick(
                explicit.request_timeout_seconds,
                file.request_timeout_seconds,
                defaults::REQUEST_TIMEOUT_SECONDS,
            ),
            mount_roots: explicit
                .mount_roots
                .filter(|r| !r.is_empty())
                .or(file.mount_roots)
                .unwrap_or_default(),
            kafka,
            data_dir,
            listen,
            state,
            store,
        };
        if config.max_instances == 0 {
            anyhow::bail!("max_instances must be at least 1");
        }
        if config.request_timeout_seconds == 0 {
            anyhow::bail!("request_timeout_seconds must be at least 1");
        }
        if config.file_arrival_list_interval_seconds == 0 {
            anyhow::bail!("file_arrival_list_interval_seconds must be at least 1");
        }
        if config.lease_seconds < 3 {
            anyhow::bail!(
                "lease_seconds must be at least 3, got {}",
                config.lease_seconds
            );
        }
        Ok(config)
    }
}

/// The Kafka consumer's settings, when brokers are set (flags over the file over defaults).
fn kafka_settings(
    explicit: &FileConfig,
    file: &FileConfig,
) -> anyhow::Result<Option<crate::trigger::table_update::KafkaSettings>> {
    use crate::trigger::table_update::kafka::defaults as kafka;
    let pick = |a: &Option<String>, b: &Option<String>| {
        a.clone()
            .or_else(|| b.clone())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let Some(brokers) = pick(&explicit.kafka_brokers, &file.kafka_brokers) else {
        return Ok(None);
    };
    let topics: Vec<String> = pick(&explicit.kafka_topics, &file.kafka_topics)
        .unwrap_or_else(|| kafka::TOPICS.to_string())
        .split(',')
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if topics.is_empty() {
        anyhow::bail!("kafka_topics names no topic: expected a comma-separated list");
    }
    let group =
        pick(&explicit.kafka_group, &file.kafka_group).unwrap_or_else(|| kafka::GROUP.to_string());
    let mut properties = file.kafka_properties.clone().unwrap_or_default();
    properties.extend(explicit.kafka_properties.clone().unwrap_or_default());
    Ok(Some(crate::trigger::table_update::KafkaSettings {
        brokers,
        topics,
        group,
        fetch_wait_max_ms: explicit
            .kafka_fetch_wait_max_ms
            .or(file.kafka_fetch_wait_max_ms)
            .unwrap_or(kafka::FETCH_WAIT_MAX_MS),
        properties,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_defaults() {
        let file = FileConfig {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            data_dir: Some("/srv/weir".into()),
            max_instances: Some(8),
            ..Default::default()
        };
        let explicit = FileConfig {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = ServeConfig::resolve(explicit, file).unwrap();
        assert_eq!(c.listen.port(), 9100);
        assert_eq!(c.data_dir, PathBuf::from("/srv/weir"));
        assert_eq!(c.state, "sqlite:///srv/weir/weir.db");
        assert_eq!(c.store, "file:///srv/weir/objects");
        assert_eq!(c.max_instances, 8);
        assert_eq!(c.log_limit_bytes, defaults::LOG_LIMIT_BYTES);
    }

    #[test]
    fn defaults_live_under_dot_weir() {
        let c = ServeConfig::resolve(FileConfig::default(), FileConfig::default()).unwrap();
        assert_eq!(c.state, "sqlite://.weir/weir.db");
        assert_eq!(c.store, "file://.weir/objects");
        assert_eq!(c.listen.to_string(), defaults::LISTEN);
    }

    #[test]
    fn s3_settings_merge_flags_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weir.toml");
        std::fs::write(
            &p,
            "file_arrival_list_interval_seconds = 2\n[s3]\nendpoint = \"http://127.0.0.1:9000\"\n\
             region = \"eu-west-3\"\nallow_http = true\n",
        )
        .unwrap();
        let file = FileConfig::read(&p).unwrap();
        let explicit = FileConfig {
            s3: Some(crate::s3::S3Settings {
                region: Some("us-east-2".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = ServeConfig::resolve(explicit, file).unwrap();
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(c.s3.region.as_deref(), Some("us-east-2"));
        assert_eq!(c.s3.allow_http, Some(true));
        assert_eq!(c.file_arrival_list_interval_seconds, 2);
        std::fs::write(&p, "[s3]\nendpont = \"x\"\n").unwrap();
        let err = FileConfig::read(&p).unwrap_err().to_string();
        assert!(err.contains("endpont"), "{err}");
    }

    #[test]
    fn smtp_settings_come_in_pairs() {
        let file = FileConfig {
            smtp_url: Some("smtp://mail:25".into()),
            smtp_from: Some("weir@example.com".into()),
            ..Default::default()
        };
        let explicit = FileConfig {
            smtp_url: Some("smtp://other:2525".into()),
            ..Default::default()
        };
        let c = ServeConfig::resolve(explicit, file).unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.url, "smtp://other:2525");
        assert_eq!(smtp.from, "weir@example.com");
        let lonely = FileConfig {
            smtp_url: Some("smtp://mail:25".into()),
            ..Default::default()
        };
        let err = ServeConfig::resolve(lonely, FileConfig::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("smtp_from"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weir.toml");
        std::fs::write(&p, "metrics_public = true\nlog_format = \"json\"\n").unwrap();
        let c = ServeConfig::resolve(FileConfig::default(), FileConfig::read(&p).unwrap()).unwrap();
        assert!(c.metrics_public);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.smtp.is_none());
    }

    #[test]
    fn kafka_is_off_unless_brokers_are_set() {
        let c = ServeConfig::resolve(FileConfig::default(), FileConfig::default()).unwrap();
        assert_eq!(c.kafka, None);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weir.toml");
        std::fs::write(
            &p,
            "kafka_brokers = \"k1:9092\"\nkafka_group = \"g\"\n\
             [kafka_properties]\n\"security.protocol\" = \"sasl_plaintext\"\n",
        )
        .unwrap();
        let file = FileConfig::read(&p).unwrap();
        let c = ServeConfig::resolve(FileConfig::default(), file.clone()).unwrap();
        let k = c.kafka.unwrap();
        assert_eq!(k.brokers, "k1:9092");
        assert_eq!(k.topics, vec!["weir.table-updates".to_string()]);
        assert_eq!(k.group, "g");
        assert_eq!(k.fetch_wait_max_ms, 10);
        assert_eq!(k.properties["security.protocol"], "sasl_plaintext");
        let explicit = FileConfig {
            kafka_brokers: Some("k2:9092".into()),
            kafka_topics: Some("a, ^cdc\\..*".into()),
            ..Default::default()
        };
        let k = ServeConfig::resolve(explicit, file).unwrap().kafka.unwrap();
        assert_eq!(k.brokers, "k2:9092");
        assert_eq!(k.topics, vec!["a".to_string(), "^cdc\\..*".to_string()]);
        assert_eq!(k.group, "g");
        let none = FileConfig {
            kafka_brokers: Some("k".into()),
            kafka_topics: Some(" , ".into()),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(none, FileConfig::default()).is_err());
    }

    #[test]
    fn config_files_refuse_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("weir.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let err = FileConfig::read(&p).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }
}
