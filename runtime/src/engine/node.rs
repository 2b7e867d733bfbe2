//! The node loops: claiming runs (with leases) and renewing the leases of runs held here.

use super::Shared;
use super::driver::{self, DriverMsg};
use std::sync::Arc;

use tokio::sync::mpsc;

/// Claims runs whenever told to (a new run here, a run ended here) and at the claim interval
/// (runs created on other nodes, runs whose node died).
pub(crate) async fn claim_loop(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let running = shared.drivers.lock().expect("drivers lock").len() as u32;
        let capacity = shared.config.max_runs.saturating_sub(running);
        if capacity > 0 {
            let lease_ms = shared.config.lease.as_millis() as i64;
            match shared
                .store
                .claim_runs(&shared.config.node_id, shared.now(), lease_ms, capacity)
                .await
            {
                Ok(snapshots) => {
                    for snap in snapshots {
                        let run_id = snap.run.run_id;
                        let (tx, rx) = mpsc::unbounded_channel();
                        shared
                            .drivers
                            .lock()
                            .expect("drivers lock")
                            .insert(run_id, tx.clone());
                        // Drivers live on the task runtime: dispatching an attempt and
                        // receiving its outcome then stay on one runtime's threads.
                        shared.executor.runtime().spawn(driver::drive(
                            shared.clone(),
                            snap,
                            rx,
                            tx,
                        ));
                    }
                }
                Err(e) => tracing::error!(error = %e, "weir.engine.claim: cannot claim runs"),
            }
        }
        tokio::select! {
            _ = shared.claim_now.notified() => {}
            _ = tokio::time::sleep(shared.config.claim_interval) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Renews this node's leases a few times per lease period; tells drivers of runs lost to
/// another node to stop, and of runs with a cancel request to cancel.
pub(crate) async fn renew_loop(shared: Arc<Shared>) {
    let every = shared.config.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let lease_ms = shared.config.lease.as_millis() as i64;
        let renewal = match shared
            .store
            .renew_leases(&shared.config.node_id, shared.now(), lease_ms)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "weir.engine.lease: cannot renew leases");
                continue;
            }
        };
        let mine: Vec<i64> = shared
            .drivers
            .lock()
            .expect("drivers lock")
            .keys()
            .copied()
            .collect();
        for run_id in mine {
            if !renewal.held.contains(&run_id) {
                shared.send(run_id, DriverMsg::LeaseLost);
            }
        }
        for run_id in renewal.cancel_requested {
            shared.send(run_id, DriverMsg::Cancel);
        }
    }
}
