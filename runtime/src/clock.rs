//! Time behind a trait, so time-dependent logic (cron, intervals, retries, run timeouts, trigger
//! backoff) can be tested on a manual clock instead of sleeping.

use crate::store::Millis;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;

    /// Resolves once [`Clock::now_ms`] has reached `at` (at once if it already has).
    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

/// Longest single timer of [`SystemClock::sleep_until`]: the wall clock is read again after it,
/// so a clock step (NTP, a suspended machine) delays a wake-up by at most this much.
const MAX_TIMER: Duration = Duration::from_secs(30);

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or_default()
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            loop {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let target = Duration::from_millis(at.max(0) as u64);
                if now >= target {
                    return;
                }
                tokio::time::sleep((target - now).min(MAX_TIMER)).await;
            }
        })
    }
}

/// A clock that moves only when told to (tests). Clones share one time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<watch::Sender<Millis>>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::at(0)
    }
}

impl ManualClock {
    /// A clock at `ms`.
    pub fn at(ms: Millis) -> ManualClock {
        ManualClock(Arc::new(watch::Sender::new(ms)))
    }

    /// Moves the clock forward, waking every sleeper whose time has come.
    pub fn advance(&self, ms: Millis) {
        self.0.send_modify(|now| *now += ms);
    }

    /// Sets the clock (forward or back).
    pub fn set(&self, ms: Millis) {
        self.0.send_replace(ms);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        *self.0.borrow()
    }

    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        let mut now = self.0.subscribe();
        Box::pin(async move {
            // The sender lives as long as any clone of the clock; when the last one is gone the
            // time can never come.
            if now.wait_for(|t| *t >= at).await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

/// The system clock as a shared [`Clock`].
pub fn system() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_when_it_reaches_their_time() {
        let clock = ManualClock::at(1_000);
        let early = tokio::spawn(clock.sleep_until(1_500));
        let past = clock.sleep_until(900);
        tokio::time::timeout(Duration::from_secs(5), past)
            .await
            .expect("a time already reached resolves at once");
        clock.advance(499);
        tokio::task::yield_now().await;
        assert!(!early.is_finished(), "woke before its time");
        clock.advance(1);
        tokio::time::timeout(Duration::from_secs(5), early)
            .await
            .expect("woke when the clock reached its time")
            .unwrap();
        assert_eq!(clock.now_ms(), 1_500);
    }

    #[tokio::test]
    async fn the_system_clock_sleeps_until_the_instant() {
        let clock = SystemClock;
        let at = clock.now_ms() + 30;
        clock.sleep_until(at).await;
        assert!(clock.now_ms() >= at);
    }
}
