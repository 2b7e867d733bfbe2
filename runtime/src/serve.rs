//! A Weir node assembled from its settings: state store, object store, executor, registry,
//! engine, triggers and HTTP API.

use crate::alerts::{Alerts, AlertsConfig};
use crate::api::{self, AdminToken, AppState};
use crate::config::ServeConfig;
use crate::engine::{Engine, EngineConfig};
use crate::exec::{Executor, ExecutorConfig};
use crate::modules::{BlobStore, Registry};
use crate::trigger::file_arrival::input::InputStager;
use crate::trigger::table_update::TableEvents;
use crate::trigger::{TriggerContext, TriggerManager};
use anyhow::Context as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A running node.
pub struct Node {
    /// The address the API listens on.
    pub addr: SocketAddr,
    /// The engine.
    pub engine: Engine,
    /// The admin token.
    pub admin_token: String,
    triggers: TriggerManager,
    alerts: Alerts,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    _lock: File,
}

/// Reads `<data-dir>/<name>`, or writes `make()` there with mode 0600 on first start.
fn read_or_create(dir: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let value = make();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(format!("{value}\n").as_bytes())?;
    f.sync_all()?;
    Ok(value)
}

/// Refuses a secret file that others than its owner may read or write.
fn refuse_open_mode(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} is accessible to other users (mode {mode:04o}); it holds a secret: run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}

/// Takes the data directory's lock, so two nodes never share one data directory.
fn lock_data_dir(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("weir.lock");
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        anyhow::bail!(
            "another weir node is serving from {} (its lock {} is held)",
            dir.display(),
            path.display()
        );
    }
    Ok(f)
}

/// While the node is idle (no run coordinated, no instance alive), hands the heap memory freed
/// by the last runs back to the system once, so an idle node holds little.
async fn release_idle_memory(engine: Engine) {
    let mut released = false;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = engine.active_runs() == 0 && engine.executor().instances_alive() == 0;
        if idle && !released {
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        released = idle;
    }
}

impl Node {
    /// Starts a node: opens the stores, recovers its runs, and serves the API.
    pub async fn start(config: ServeConfig) -> anyhow::Result<Node> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
        let lock = lock_data_dir(dir)?;
        let admin_token = read_or_create(dir, "admin-token", || random_hex(32))?;
        refuse_open_mode(&dir.join("admin-token"))?;
        let node_id = read_or_create(dir, "node-id", || format!("node-{}", random_hex(6)))?;

        let store = crate::store::open(&config.state)
            .await
            .with_context(|| format!("cannot open state store {}", config.state))?;
        let blobs = Arc::new(
            BlobStore::open_with(&config.store, &config.s3)
                .with_context(|| format!("cannot open object store {}", config.store))?,
        );
        blobs
            .check()
            .await
            .with_context(|| format!("cannot open object store {}", config.store))?;
        let executor = Executor::new(
            ExecutorConfig {
                work_dir: dir.join("work"),
                cache_dir: dir.join("compiled"),
                max_instances: config.max_instances,
                max_memory_mb: config.max_memory_mb,
                log_limit_bytes: config.log_limit_bytes,
                threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
                idle_module_ttl: Duration::from_secs(600),
            },
            blobs.clone(),
        )?;
        let roots = if config.mount_roots.is_empty() {
            vec![std::env::current_dir().context("cannot read the current directory")?]
        } else {
            config.mount_roots.clone()
        };
        let mount_policy = crate::exec::MountPolicy::new(&roots, dir)?;
        executor.set_mount_policy(mount_policy.clone());
        let registry = Arc::new(Registry::new(
            store.clone(),
            blobs,
            executor.clone(),
            config.max_module_bytes,
        ));
        let mut engine_config = EngineConfig::new(node_id);
        engine_config.lease = Duration::from_secs(config.lease_seconds);
        engine_config.shutdown_grace = Duration::from_secs(config.shutdown_grace_seconds);
        engine_config.s3 = config.s3.clone();
        engine_config.inputs = Some(Arc::new(InputStager::new(
            dir.join("inputs"),
            config.s3.clone(),
            config
                .file_arrival_input_limit_mb
                .saturating_mul(1024 * 1024),
        )));
        let engine = Engine::start(
            store.clone(),
            executor,
            registry,
            crate::clock::system(),
            engine_config,
        )
        .await?;
        let table_events = TableEvents::new();
        let triggers = TriggerManager::start(
            TriggerContext::new(engine.clone()),
            crate::trigger::builtin(&config, &table_events),
        );

        match api::bootstrap(engine.store(), &admin_token, engine.now()).await? {
            AdminToken::Registered => {
                tracing::info!(
                    "registered {} as the admin token of the state store",
                    dir.join("admin-token").display()
                );
            }
            AdminToken::Valid => {}
            AdminToken::Stale => tracing::warn!(
                "the admin token in {} is not valid for this state store (rotated, revoked, or written for another store); use a token of the store's admins",
                dir.join("admin-token").display()
            ),
        }
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let mut alerts_config =
            AlertsConfig::new(engine.node_id().to_string(), format!("http://{addr}"));
        alerts_config.smtp = config.smtp.clone();
        let alerts = Alerts::start(store, engine.clock().clone(), alerts_config)?;

        let state = AppState {
            engine: engine.clone(),
            max_request_bytes: config.max_request_bytes,
            max_module_bytes: config.max_module_bytes,
            data_dir: dir.clone(),
            mount_policy: Arc::new(mount_policy),
            request_timeout: Duration::from_secs(config.request_timeout_seconds),
            metrics_public: config.metrics_public,
            table_events,
        };
        let app = api::router(state);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        });
        tokio::spawn(release_idle_memory(engine.clone()));
        Ok(Node {
            addr,
            engine,
            admin_token,
            triggers,
            alerts,
            server,
            stop,
            _lock: lock,
        })
    }

    /// Stops serving and firing triggers, lets running attempts finish (up to the shutdown
    /// grace), releases leases.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.triggers.shutdown().await;
        self.engine.shutdown().await;
        self.alerts.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}
