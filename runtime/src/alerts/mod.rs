//! Alerts: e-mail and webhook notifications of run state changes and health rules, delivered
//! through a durable outbox.
//!
//! The data path:
//! 1. Every run state change is recorded in the store's `run_events` table in the transaction
//!    of the change itself (whichever path made it: the engine's drivers, admission, cancel).
//! 2. The [`planner`](Alerts) reads the events after its durable cursor, derives the alerts they
//!    raise ([`plan`]: the Jobs API rules and `notification_settings`), renders each one's body
//!    ([`payload`]) and records them in the `alerts` outbox **in the transaction that moves the
//!    cursor**. A crash before that commit replays the events; dedupe keys (event sequence +
//!    destination) make the replay record nothing twice. So an accepted state change never
//!    loses its alert.
//! 3. The planner also watches running runs with a `RUN_DURATION_SECONDS` health rule on the
//!    engine's [`Clock`]: once a run passes its threshold while still running, one
//!    `on_duration_warning_threshold_exceeded` alert per destination is recorded (once per run).
//! 4. The dispatcher claims due alerts with a lease, delivers each one ([`deliver`]) in its own
//!    task (a hanging receiver delays nobody but itself, and never a run), and records the
//!    attempt: delivered, retry at a backoff, or failed after the last attempt (or at once when
//!    retrying cannot help). A delivered alert is never sent again; an alert whose node died
//!    mid-attempt is retried after the claim expires: delivery is at least once, and every
//!    attempt carries the same idempotency key (`Idempotency-Key` header, e-mail `Message-ID`).
//!
//! Fault injection for tests: with `WEIR_FAULT=alerts.kill_before_delivery` the node kills
//! itself with SIGKILL right after claiming its first alert, before delivering it — a
//! deterministic `kill -9` between the state change and the delivery.

pub mod deliver;
pub mod payload;
pub mod plan;

pub use deliver::{DeliveryError, Senders, SettingsError, SmtpSettings};

use crate::clock::Clock;
use crate::metrics;
use crate::store::{
    AlertAttempt, AlertRecord, CursorMove, LifeCycleState, Millis, NewAlert, RunEvent, RunFilter,
    RunId, RunSnapshot, Store, StoreError,
};
use plan::AlertEvent;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};
use tracing::Instrument;

/// The name of the alert planner's cursor over `run_events`.
pub const CONSUMER: &str = "alerts";
/// The fault hook: kill the node after claiming an alert, before delivering it.
pub const FAULT_KILL_BEFORE_DELIVERY: &str = "alerts.kill_before_delivery";

/// Errors of the alert planner, naming the run or event they met.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The store failed while reading events or recording alerts.
    #[error("alerts: state store failure after event {after_seq}: {source}")]
    Events {
        /// The planner's cursor.
        after_seq: i64,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The store failed while loading a run.
    #[error("alerts: cannot load run {run_id}: {source}")]
    Run {
        /// The run.
        run_id: RunId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
}

/// A node's alert settings.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    /// The node id (owner of delivery claims).
    pub node_id: String,
    /// SMTP server and sender; `None`: e-mail alerts fail saying SMTP is not configured.
    pub smtp: Option<SmtpSettings>,
    /// The node's API address, for the run links in alerts (`http://127.0.0.1:8181`).
    pub base_url: String,
    /// Delivery attempts per alert before it is recorded as failed.
    pub max_attempts: u32,
    /// Wait after the first failed attempt; doubled after each further one.
    pub retry_base: Duration,
    /// Longest wait between attempts.
    pub retry_max: Duration,
    /// Time limit of one attempt (a receiver that hangs fails it).
    pub attempt_timeout: Duration,
    /// How often the planner looks for new run events (also woken by the clock).
    pub poll_interval: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl AlertsConfig {
    /// Defaults for a node: 5 attempts, 2 s doubling to at most 5 min, 10 s per attempt.
    pub fn new(node_id: impl Into<String>, base_url: impl Into<String>) -> AlertsConfig {
        AlertsConfig {
            node_id: node_id.into(),
            smtp: None,
            base_url: base_url.into(),
            max_attempts: 5,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(300),
            attempt_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(100),
            concurrency: 16,
        }
    }

    /// The wait after `failed` failed attempts.
    pub fn backoff(&self, failed: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed.saturating_sub(1).min(20));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// A running alert service: the planner and the dispatcher.
pub struct Alerts {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Alerts {
    /// Starts the planner and the dispatcher. Fails on bad SMTP settings.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: AlertsConfig,
    ) -> Result<Alerts, SettingsError> {
        let senders = Arc::new(Senders::new(config.smtp.as_ref(), config.attempt_timeout)?);
        let (stop, stopped) = watch::channel(false);
        let wake = Arc::new(Notify::new());
        let config = Arc::new(config);
        let planner = Planner {
            store: store.clone(),
            clock: clock.clone(),
            config: config.clone(),
            wake: wake.clone(),
            watch: HashMap::new(),
        };
        let dispatcher = Dispatcher {
            store,
            clock,
            config,
            senders,
            wake,
            slots: Arc::new(Semaphore::new(0)),
            fault: std::env::var("WEIR_FAULT").ok(),
        };
        let tasks = vec![
            tokio::spawn(planner.run(stopped.clone())),
            tokio::spawn(dispatcher.run(stopped)),
        ];
        Ok(Alerts { stop, tasks })
    }

    /// Stops both loops (deliveries in flight finish or are retried after a restart).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Waits until `stop` says true.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Derives alerts from run events and health rules.
struct Planner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<AlertsConfig>,
    wake: Arc<Notify>,
    /// Running runs with a duration rule: when their threshold is passed.
    watch: HashMap<RunId, Millis>,
}

impl Planner {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        while let Err(e) = self.watch_active_runs().await {
            tracing::warn!(error = %e, "weir.alerts.plan: cannot list active runs; retrying");
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let mut backoff = self.config.poll_interval;
        loop {
            let pause = match self.step().await {
                Ok(true) => {
                    backoff = self.config.poll_interval;
                    continue;
                }
                Ok(false) => self.config.poll_interval,
                Err(e) => {
                    tracing::warn!(error = %e, "weir.alerts.plan: retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            let deadline = self.watch.values().min().copied();
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = tokio::time::sleep(pause) => {}
                _ = async {
                    match deadline {
                        Some(d) => self.clock.sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
            self.check_deadlines().await;
        }
    }

    /// Watches the duration rules of the runs already running (at start, after a restart).
    async fn watch_active_runs(&mut self) -> Result<(), AlertError> {
        let mut filter = RunFilter {
            active_only: true,
            limit: 1000,
            ..Default::default()
        };
        loop {
            let (runs, more) =
                self.store
                    .list_runs(&filter)
                    .await
                    .map_err(|source| AlertError::Events {
                        after_seq: 0,
                        source,
                    })?;
            for run in &runs {
                if let (Some(seconds), Some(start)) = (
                    plan::duration_threshold_seconds(&run.plan.settings),
                    run.start_time,
                ) {
                    self.watch.insert(run.run_id, deadline(start, seconds));
                }
            }
            if !more {
                return Ok(());
            }
            filter.offset += runs.len() as u64;
        }
    }

    /// Handles the next batch of run events; true when there was one.
    async fn step(&mut self) -> Result<bool, AlertError> {
        let from =
            self.store
                .event_cursor(CONSUMER)
                .await
                .map_err(|source| AlertError::Events {
                    after_seq: 0,
                    source,
                })?;
        let err = |source| AlertError::Events {
            after_seq: from,
            source,
        };
        let events = self.store.run_events(from, 256).await.map_err(err)?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(false);
        };
        let mut alerts = Vec::new();
        for event in &events {
            alerts.extend(self.derive(event).await?);
        }
        let count = alerts.len();
        let cursor = CursorMove {
            consumer: CONSUMER.into(),
            from,
            to: last,
        };
        if self
            .store
            .enqueue_alerts(Some(cursor), alerts)
            .await
            .map_err(err)?
            && count > 0
        {
            tracing::debug!(count, "weir.alerts.plan: recorded alerts");
            self.wake.notify_one();
        }
        Ok(true)
    }

    /// The alerts one run event raises (and the duration watch it starts or ends).
    async fn derive(&mut self, event: &RunEvent) -> Result<Vec<NewAlert>, AlertError> {
        if event.life_cycle_state.is_final() {
            self.watch.remove(&event.run_id);
        }
        let interesting =
            event.life_cycle_state == LifeCycleState::Running || event.life_cycle_state.is_final();
        if !interesting {
            return Ok(Vec::new());
        }
        let Some(snapshot) = self.load(event.run_id).await? else {
            return Ok(Vec::new());
        };
        let settings = &snapshot.run.plan.settings;
        if event.life_cycle_state == LifeCycleState::Running
            && !snapshot.run.life_cycle_state.is_final()
            && let Some(seconds) = plan::duration_threshold_seconds(settings)
        {
            let start = snapshot.run.start_time.unwrap_or(event.time);
            self.watch.insert(event.run_id, deadline(start, seconds));
        }
        let Some(kind) = plan::event_for(settings, event.life_cycle_state, event.result_state)
        else {
            return Ok(Vec::new());
        };
        let mut body = self.body(kind, &snapshot, event.time).await;
        // The run may have moved on since the event: the alert states what the event says.
        body["run"]["life_cycle_state"] = event.life_cycle_state.as_str().into();
        body["run"]["result_state"] = event.result_state.map(|r| r.as_str()).into();
        Ok(alerts_for(
            kind,
            &snapshot,
            &body,
            &format!("event:{}", event.seq),
            self.clock.now_ms(),
        ))
    }

    async fn load(&self, run_id: RunId) -> Result<Option<RunSnapshot>, AlertError> {
        self.store
            .get_run(run_id)
            .await
            .map_err(|source| AlertError::Run { run_id, source })
    }

    /// The body of an alert, with the log tails of the failed tasks for failures.
    async fn body(
        &self,
        kind: AlertEvent,
        snapshot: &RunSnapshot,
        time: Millis,
    ) -> serde_json::Value {
        let mut logs = BTreeMap::new();
        if kind == AlertEvent::OnFailure {
            for t in payload::latest_attempts(snapshot) {
                if payload::failed_by_itself(t)
                    && let Ok(Some(l)) = self.store.get_logs(t.task_run_id).await
                {
                    logs.insert(t.task_run_id, l);
                }
            }
        }
        payload::build(kind, snapshot, time, &logs, &self.config.base_url)
    }

    /// Records duration warnings of the watched runs whose threshold has passed.
    async fn check_deadlines(&mut self) {
        let now = self.clock.now_ms();
        let due: Vec<RunId> = self
            .watch
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| *id)
            .collect();
        for run_id in due {
            self.watch.remove(&run_id);
            if let Err(e) = self.duration_warning(run_id, now).await {
                tracing::warn!(error = %e, run.id = run_id, "weir.alerts.health: retrying");
                self.watch.insert(run_id, now + 1000);
            }
        }
    }

    async fn duration_warning(&mut self, run_id: RunId, now: Millis) -> Result<(), AlertError> {
        let Some(snapshot) = self.load(run_id).await? else {
            return Ok(());
        };
        let run = &snapshot.run;
        let (Some(seconds), Some(start)) = (
            plan::duration_threshold_seconds(&run.plan.settings),
            run.start_time,
        ) else {
            return Ok(());
        };
        if run.life_cycle_state.is_final() || now < deadline(start, seconds) {
            return Ok(());
        }
        let span = tracing::info_span!("weir.alerts.health", run.id = run_id, job.id = run.job_id);
        let _enter = span.enter();
        tracing::info!(
            threshold_seconds = seconds,
            "weir.alerts.health: run {run_id} is running longer than {seconds} s"
        );
        let kind = AlertEvent::OnDurationWarningThresholdExceeded;
        let body = self.body(kind, &snapshot, now).await;
        let alerts = alerts_for(kind, &snapshot, &body, &format!("duration:{run_id}"), now);
        if alerts.is_empty() {
            return Ok(());
        }
        self.store
            .enqueue_alerts(None, alerts)
            .await
            .map_err(|source| AlertError::Run { run_id, source })?;
        self.wake.notify_one();
        Ok(())
    }
}

/// When a run that started at `start` breaks a `GREATER_THAN seconds` rule.
fn deadline(start: Millis, seconds: i64) -> Millis {
    start + seconds.saturating_mul(1000) + 1
}

/// One alert per destination of `kind`, each with its own idempotency key.
fn alerts_for(
    kind: AlertEvent,
    snapshot: &RunSnapshot,
    body: &serde_json::Value,
    key_prefix: &str,
    time: Millis,
) -> Vec<NewAlert> {
    let settings = &snapshot.run.plan.settings;
    plan::destinations(
        settings.email_notifications.as_ref(),
        settings.webhook_notifications.as_ref(),
        kind,
    )
    .into_iter()
    .map(|(channel, destination)| {
        let dedupe_key = format!("{key_prefix}:{}:{destination}", channel.as_str());
        let mut payload = body.clone();
        payload["idempotency_key"] = payload::idempotency_key(&dedupe_key).into();
        NewAlert {
            dedupe_key,
            run_id: snapshot.run.run_id,
            job_id: snapshot.run.job_id,
            task_key: None,
            event: kind.as_str().into(),
            channel,
            destination,
            payload,
            created_time: time,
        }
    })
    .collect()
}

/// Delivers due alerts.
struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: Arc<AlertsConfig>,
    senders: Arc<Senders>,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    fault: Option<String>,
}

/// How long a claim on an alert lasts: longer than any attempt.
const CLAIM_MS: i64 = 120_000;

impl Dispatcher {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        self.slots.add_permits(self.config.concurrency.max(1));
        // Claims this node held before a crash or restart are ours to retry now.
        match self.store.release_alert_claims(&self.config.node_id).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                "weir.alerts.deliver: retrying {n} alert(s) this node was delivering when it stopped"
            ),
            Err(e) => tracing::warn!(error = %e, "weir.alerts.deliver: cannot release old claims"),
        }
        let this = Arc::new(self);
        loop {
            let free = this.slots.available_permits() as u32;
            let claimed = if free == 0 {
                Ok(Vec::new())
            } else {
                this.store
                    .claim_alerts(&this.config.node_id, this.clock.now_ms(), CLAIM_MS, free)
                    .await
            };
            match claimed {
                Ok(alerts) if !alerts.is_empty() => {
                    if this.fault.as_deref() == Some(FAULT_KILL_BEFORE_DELIVERY) {
                        tracing::warn!(
                            "weir.alerts.fault: WEIR_FAULT={FAULT_KILL_BEFORE_DELIVERY}: \
                             killing this node before delivering alert {}",
                            alerts[0].alert_id
                        );
                        // SAFETY: kill(2) of our own pid; nothing else is touched.
                        unsafe {
                            libc::kill(libc::getpid(), libc::SIGKILL);
                        }
                    }
                    for alert in alerts {
                        let permit = this
                            .slots
                            .clone()
                            .acquire_owned()
                            .await
                            .expect("the semaphore is never closed");
                        let me = this.clone();
                        let span = tracing::info_span!(
                            "weir.alerts.deliver",
                            alert.id = alert.alert_id,
                            run.id = alert.run_id,
                            job.id = alert.job_id,
                            channel = alert.channel.as_str(),
                            event = %alert.event,
                        );
                        tokio::spawn(
                            async move {
                                me.attempt(alert).await;
                                drop(permit);
                                me.wake.notify_one();
                            }
                            .instrument(span),
                        );
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "weir.alerts.deliver: cannot claim alerts"),
            }
            let next = this.store.next_alert_time().await.ok().flatten();
            tokio::select! {
                _ = stopped(&mut stop) => return,
                _ = this.wake.notified() => {}
                _ = tokio::time::sleep(this.config.poll_interval * 5) => {}
                _ = async {
                    match next {
                        Some(at) => this.clock.sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
            }
        }
    }

    /// One delivery attempt, recorded.
    async fn attempt(&self, alert: AlertRecord) {
        let result = self.senders.deliver(&alert).await;
        let now = self.clock.now_ms();
        let attempts = alert.attempts + 1;
        let channel = alert.channel.as_str();
        let outcome = match result {
            Ok(()) => {
                tracing::info!(
                    attempts,
                    "weir.alerts.deliver: {} {} delivered to {}",
                    alert.event,
                    channel,
                    alert.destination
                );
                metrics::inc(metrics::ALERTS_DELIVERED, &[("channel", channel)]);
                AlertAttempt::Delivered
            }
            Err(e) => {
                metrics::inc(metrics::ALERT_ATTEMPTS_FAILED, &[("channel", channel)]);
                let give_up = matches!(e, DeliveryError::Permanent(_))
                    || attempts >= self.config.max_attempts;
                if give_up {
                    tracing::warn!(
                        attempts,
                        error = %e,
                        "weir.alerts.deliver: giving up on {} {} to {}",
                        alert.event,
                        channel,
                        alert.destination
                    );
                    metrics::inc(metrics::ALERTS_FAILED, &[("channel", channel)]);
                    AlertAttempt::Failed {
                        error: if matches!(e, DeliveryError::Transient(_)) {
                            format!("{e} (gave up after {attempts} attempts)")
                        } else {
                            e.to_string()
                        },
                    }
                } else {
                    let at = now + self.config.backoff(attempts).as_millis() as Millis;
                    tracing::info!(
                        attempts,
                        error = %e,
                        retry_at = at,
                        "weir.alerts.deliver: attempt failed; retrying"
                    );
                    AlertAttempt::Retry {
                        at,
                        error: e.to_string(),
                    }
                }
            }
        };
        let mut backoff = Duration::from_millis(50);
        for _ in 0..8 {
            match self
                .store
                .record_alert_attempt(alert.alert_id, outcome.clone(), now)
                .await
            {
                Ok(()) => return,
                Err(StoreError::Backend(e)) => {
                    tracing::warn!(error = %e, "weir.alerts.deliver: cannot record the attempt");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "weir.alerts.deliver: attempt not recorded");
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
