//! Creating runs: run-now, trigger events, one-time submits, child runs of `run_job_task`, and
//! repairs.

use super::state::JobRef;
use super::{Engine, EngineError, Shared};
use crate::spec::{JobSettings, ModuleRef, TaskKind};
use crate::store::{
    Admission, JobId, LifeCycleState, NewRepair, NewRun, ParentRef, ResultState, RunCreated, RunId,
    RunPlan, RunRecord, StoreError, TriggerCommit, TriggerType,
};
use crate::trigger::TriggerEvent;
use std::collections::BTreeMap;
use tracing::Instrument;

/// A request for a run of a job.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Overrides of job parameters.
    pub job_parameters: BTreeMap<String, String>,
    /// Deduplicates retried requests.
    pub idempotency_token: Option<String>,
}

/// Options of a manual run beyond [`RunRequest`] (`run-now`'s `only` and `queue`).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run only these tasks (empty: all); dependencies on the others are dropped.
    pub only: Vec<String>,
    /// Overrides the job's `queue.enabled` for this run.
    pub queue_enabled: Option<bool>,
}

/// The settings of a run of only some tasks: the others are left out, and so are the
/// dependencies on them. Refused when a task is unknown or when the tasks kept still refer to
/// one that was left out.
fn only_tasks(settings: &JobSettings, only: &[String]) -> Result<JobSettings, EngineError> {
    if only.is_empty() {
        return Ok(settings.clone());
    }
    for key in only {
        if settings.task(key).is_none() {
            let known: Vec<&str> = settings.tasks.iter().map(|t| t.task_key.as_str()).collect();
            return Err(EngineError::InvalidParameter(format!(
                "only: job `{}` has no task `{key}`; its tasks are: {}",
                settings.name,
                known.join(", ")
            )));
        }
    }
    let mut out = settings.clone();
    out.tasks.retain(|t| only.contains(&t.task_key));
    for task in &mut out.tasks {
        task.depends_on.retain(|d| only.contains(&d.task_key));
    }
    crate::spec::validate_settings(&out, crate::spec::PathPolicy::Server).map_err(|e| {
        EngineError::InvalidParameter(format!(
            "only: the tasks {} cannot run without the others: {e}",
            only.join(", ")
        ))
    })?;
    Ok(out)
}

/// A repair request (`runs/repair`).
#[derive(Debug, Clone, Default)]
pub struct RepairRequest {
    /// Tasks to rerun.
    pub rerun_tasks: Vec<String>,
    /// Rerun every task that did not succeed.
    pub rerun_all_failed_tasks: bool,
    /// Also rerun everything downstream of the rerun tasks.
    pub rerun_dependent_tasks: bool,
    /// When given, must be the run's latest repair id.
    pub latest_repair_id: Option<i64>,
    /// Parameter overrides for the repaired tasks.
    pub job_parameters: BTreeMap<String, String>,
}

/// Where a run comes from: what the store records beside the request.
pub(crate) struct Origin {
    /// The run's `trigger`.
    trigger: TriggerType,
    /// Its trigger payload.
    info: serde_json::Value,
    /// The parent of a `run_job_task` child run.
    parent: Option<ParentRef>,
    /// Trigger state committed with the run.
    commit: Option<TriggerCommit>,
}

impl Origin {
    fn manual() -> Origin {
        Origin {
            trigger: TriggerType::OneTime,
            info: serde_json::Value::Null,
            parent: None,
            commit: None,
        }
    }
}

/// Results a repair with `rerun_all_failed_tasks` reruns.
const RERUN_RESULTS: [ResultState; 5] = [
    ResultState::Failed,
    ResultState::Timedout,
    ResultState::Canceled,
    ResultState::UpstreamFailed,
    ResultState::UpstreamCanceled,
];

impl Shared {
    /// Pins every wasm task's module to a digest.
    pub(crate) async fn plan(&self, settings: &JobSettings) -> Result<RunPlan, EngineError> {
        let mut modules = BTreeMap::new();
        for task in &settings.tasks {
            let mut kinds = vec![(task.task_key.clone(), task.kind())];
            if let Some(fe) = &task.for_each_task {
                kinds.push((
                    format!("{}/{}", task.task_key, fe.task.task_key),
                    fe.task.kind(),
                ));
            }
            for (key, kind) in kinds {
                if let Some(TaskKind::Wasm(w)) = kind {
                    let reference = ModuleRef::parse(&w.module)
                        .map_err(|e| EngineError::InvalidState(format!("task `{key}`: {e}")))?;
                    let digest = self
                        .registry
                        .resolve(&reference)
                        .await
                        .map_err(|e| EngineError::InvalidState(format!("task `{key}`: {e}")))?;
                    modules.insert(key, digest);
                }
            }
        }
        Ok(RunPlan {
            settings: settings.clone(),
            modules,
        })
    }

    /// Effective parameters: the job's defaults with the overrides applied. Unknown names are
    /// refused.
    pub(crate) fn parameters(
        settings: &JobSettings,
        overrides: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, EngineError> {
        let mut params: BTreeMap<String, String> = settings
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect();
        for (k, v) in overrides {
            if !params.contains_key(k) {
                let known: Vec<&str> = settings
                    .parameters
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                return Err(EngineError::InvalidParameter(format!(
                    "job `{}` has no parameter `{k}`; its parameters are: {}",
                    settings.name,
                    if known.is_empty() {
                        "(none)".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            params.insert(k.clone(), v.clone());
        }
        Ok(params)
    }

    /// Records a run of a stored job.
    pub(crate) async fn create_job_run(
        &self,
        job_id: JobId,
        request: RunRequest,
        origin: Origin,
    ) -> Result<RunCreated, EngineError> {
        self.create_job_run_with(job_id, request, origin, RunOptions::default())
            .await
    }

    /// Records a run of a stored job, with [`RunOptions`].
    pub(crate) async fn create_job_run_with(
        &self,
        job_id: JobId,
        request: RunRequest,
        origin: Origin,
        options: RunOptions,
    ) -> Result<RunCreated, EngineError> {
        let job = self
            .store
            .get_job(job_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("job {job_id} does not exist")))?;
        let settings = job.settings;
        let job_parameters = Self::parameters(&settings, &request.job_parameters)?;
        let queue_enabled = options
            .queue_enabled
            .unwrap_or_else(|| settings.queue_enabled());
        let settings = only_tasks(&settings, &options.only)?;
        let plan = self.plan(&settings).await?;
        let created = self
            .store
            .create_run(NewRun {
                job_id: Some(job_id),
                run_name: settings.name.clone(),
                trigger: origin.trigger,
                trigger_info: origin.info,
                job_parameters,
                overriding_parameters: request.job_parameters,
                admission: Some(Admission {
                    max_concurrent_runs: settings.max_concurrent_runs,
                    queue_enabled,
                }),
                plan,
                parent: origin.parent,
                idempotency_token: request.idempotency_token,
                now: self.now(),
                trigger_commit: origin.commit,
            })
            .await?;
        self.after_create(&created);
        Ok(created)
    }

    fn after_create(&self, created: &RunCreated) {
        match created.life_cycle_state {
            LifeCycleState::Pending => self.claim_now.notify_one(),
            s if s.is_final() && created.created => {
                let _ = self.finished.send(created.run_id);
            }
            _ => {}
        }
    }

    /// Starts (or finds again, by its idempotency token) the child run of a `run_job_task`.
    pub(crate) async fn start_child_run(
        &self,
        parent: &RunRecord,
        task_run_id: RunId,
        job: &JobRef,
        parameters: BTreeMap<String, String>,
    ) -> Result<RunId, EngineError> {
        let job_id = match job {
            JobRef::Id(id) => *id,
            JobRef::Name(name) => {
                self.store
                    .find_job(name)
                    .await?
                    .ok_or_else(|| EngineError::NotFound(format!("job `{name}` does not exist")))?
                    .job_id
            }
        };
        let request = RunRequest {
            job_parameters: parameters,
            idempotency_token: Some(format!("weir:run_job_task:{task_run_id}")),
        };
        let parent_ref = ParentRef {
            run_id: parent.run_id,
            task_run_id,
            depth: parent.parent.map_or(0, |p| p.depth) + 1,
        };
        let info =
            serde_json::json!({"parent_run_id": parent.run_id, "parent_task_run_id": task_run_id});
        let origin = Origin {
            trigger: TriggerType::RunJobTask,
            info,
            parent: Some(parent_ref),
            commit: None,
        };
        let created = self
            .create_job_run(job_id, request, origin)
            .await
            .map_err(|e| match e {
                EngineError::NotFound(m) => EngineError::NotFound(m),
                other => EngineError::InvalidState(format!("cannot start job {job_id}: {other}")),
            })?;
        Ok(created.run_id)
    }
}

impl Engine {
    /// Records a manual run of a job (`run-now`).
    pub async fn run_now(
        &self,
        job_id: JobId,
        request: RunRequest,
    ) -> Result<RunCreated, EngineError> {
        self.shared
            .create_job_run(job_id, request, Origin::manual())
            .await
    }

    /// Records a manual run of a job with `run-now`'s options (`only`, `queue`).
    pub async fn run_now_with(
        &self,
        job_id: JobId,
        request: RunRequest,
        options: RunOptions,
    ) -> Result<RunCreated, EngineError> {
        self.shared
            .create_job_run_with(job_id, request, Origin::manual(), options)
            .await
    }

    /// Records the run a trigger event causes, with its typed payload, and commits the event's
    /// trigger state in the same transaction. The event's idempotency key makes this
    /// idempotent: a second event with the same key returns the first run (`created: false`)
    /// and only applies the trigger state.
    pub async fn fire(&self, event: TriggerEvent) -> Result<RunCreated, EngineError> {
        let request = RunRequest {
            job_parameters: event.job_parameters,
            idempotency_token: Some(event.idempotency_key),
        };
        let trigger = event.payload.trigger_type();
        let origin = Origin {
            trigger,
            info: event.payload.to_json(),
            parent: None,
            commit: Some(event.commit),
        };
        let span = tracing::info_span!("weir.trigger.fire", job.id = event.job_id);
        let created = self
            .shared
            .create_job_run(event.job_id, request, origin)
            .instrument(span)
            .await?;
        if created.created {
            crate::metrics::inc(
                crate::metrics::TRIGGER_FIRES,
                &[("kind", trigger.reference_value())],
            );
        }
        Ok(created)
    }

    /// Records a one-time run of settings that are not a stored job (`runs/submit`).
    pub async fn submit(
        &self,
        settings: JobSettings,
        idempotency_token: Option<String>,
    ) -> Result<RunCreated, EngineError> {
        let job_parameters = Shared::parameters(&settings, &BTreeMap::new())?;
        let plan = self.shared.plan(&settings).await?;
        let created = self
            .shared
            .store
            .create_run(NewRun {
                job_id: None,
                run_name: settings.name.clone(),
                trigger: TriggerType::OneTime,
                trigger_info: serde_json::Value::Null,
                job_parameters,
                overriding_parameters: BTreeMap::new(),
                plan,
                parent: None,
                idempotency_token,
                admission: None,
                now: self.shared.now(),
                trigger_commit: None,
            })
            .await?;
        self.shared.after_create(&created);
        Ok(created)
    }

    /// Repairs a finished run: reruns the chosen tasks (and, if asked, everything downstream of
    /// them); tasks not rerun keep their results and values.
    pub async fn repair(&self, run_id: RunId, request: RepairRequest) -> Result<i64, EngineError> {
        let snap = self
            .shared
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("run {run_id} does not exist")))?;
        let run = &snap.run;
        if !matches!(
            run.life_cycle_state,
            LifeCycleState::Terminated | LifeCycleState::InternalError
        ) {
            return Err(EngineError::InvalidState(format!(
                "run {run_id} is {}; only a finished run can be repaired",
                run.life_cycle_state.as_str()
            )));
        }
        let graph = super::graph::Graph::new(&run.plan.settings);
        let state = super::state::RunState::new(snap.clone());
        let mut chosen = Vec::new();
        for key in &request.rerun_tasks {
            let i = graph.index_of(key).ok_or_else(|| {
                let known: Vec<&str> = (0..graph.len()).map(|i| graph.key(i)).collect();
                EngineError::InvalidParameter(format!(
                    "run {run_id} has no task `{key}`; its tasks are: {}",
                    known.join(", ")
                ))
            })?;
            chosen.push(i);
        }
        if request.rerun_all_failed_tasks {
            for i in 0..graph.len() {
                let result = state.current_result(i);
                if result.is_some_and(|r| RERUN_RESULTS.contains(&r)) && !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
            if chosen.is_empty() {
                return Err(EngineError::InvalidState(format!(
                    "run {run_id} has no failed tasks to rerun"
                )));
            }
        }
        if chosen.is_empty() {
            return Err(EngineError::InvalidParameter(
                "nothing to repair: give rerun_tasks or rerun_all_failed_tasks".into(),
            ));
        }
        let rerun = if request.rerun_dependent_tasks {
            graph.downstream_closure(chosen)
        } else {
            let mut c = chosen;
            c.sort_unstable();
            c
        };
        Shared::parameters(&run.plan.settings, &request.job_parameters)?;
        let repair_id = self
            .shared
            .store
            .start_repair(NewRepair {
                run_id,
                latest_repair_id: request.latest_repair_id,
                task_keys: rerun.iter().map(|&i| graph.key(i).to_string()).collect(),
                job_parameters: request.job_parameters,
                now: self.shared.now(),
            })
            .await
            .map_err(|e| match e {
                StoreError::InvalidState(m) => EngineError::InvalidState(m),
                other => other.into(),
            })?;
        self.shared.claim_now.notify_one();
        Ok(repair_id)
    }
}
