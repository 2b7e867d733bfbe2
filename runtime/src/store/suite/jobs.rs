//! Jobs: CRUD, unique names, paging.

use super::{deploy, job, start};
use crate::store::{JobRecord, Page, RunFilter, Store, StoreError};
use std::sync::Arc;

/// Create, get, find, update and delete a job; ids of deleted jobs are not reused.
pub async fn jobs_crud(store: Arc<dyn Store>) {
    let settings = job("orders", &["ingest", "publish"]);
    let id = store.create_job(&settings, 1_000).await.unwrap();
    let created = store.get_job(id).await.unwrap().expect("the created job");
    assert_eq!(
        created,
        JobRecord {
            job_id: id,
            created_time: 1_000,
            settings: settings.clone(),
        }
    );
    assert_eq!(store.find_job("orders").await.unwrap(), Some(created));
    assert_eq!(store.find_job("order").await.unwrap(), None);

    let mut changed = settings.clone();
    changed.name = "orders-v2".into();
    changed.max_concurrent_runs = 3;
    store.update_job(id, &changed).await.unwrap();
    let updated = store.get_job(id).await.unwrap().unwrap();
    assert_eq!(updated.settings, changed);
    assert_eq!(
        updated.created_time, 1_000,
        "an update keeps the creation time"
    );
    assert_eq!(store.find_job("orders").await.unwrap(), None);
    assert_eq!(store.find_job("orders-v2").await.unwrap(), Some(updated));

    store.delete_job(id).await.unwrap();
    assert_eq!(store.get_job(id).await.unwrap(), None);
    assert!(matches!(
        store.delete_job(id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_job(id, &changed).await,
        Err(StoreError::NotFound(_))
    ));
    // Runs keep their job id after a delete, so an id must never name another job later.
    let again = store.create_job(&settings, 2_000).await.unwrap();
    assert!(again > id, "job id {again} reused after deleting job {id}");
}

/// A job name belongs to one job; creating or renaming onto it is a conflict.
pub async fn job_name_conflicts(store: Arc<dyn Store>) {
    let a = store.create_job(&job("a", &["t"]), 1).await.unwrap();
    let b = store.create_job(&job("b", &["t"]), 1).await.unwrap();
    match store.create_job(&job("a", &["other"]), 2).await {
        Err(StoreError::Conflict(message)) => {
            assert!(message.contains("\"a\""), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        store.update_job(b, &job("a", &["t"])).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get_job(b).await.unwrap().unwrap().settings.name, "b");
    // Keeping one's own name is no conflict.
    store.update_job(a, &job("a", &["t", "u"])).await.unwrap();
    assert_eq!(
        store
            .get_job(a)
            .await
            .unwrap()
            .unwrap()
            .settings
            .tasks
            .len(),
        2
    );
    let (jobs, _) = store
        .list_jobs(
            Page {
                offset: 0,
                limit: 10,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2);
}

/// `list_jobs` orders by id, pages with a "more" flag, and filters by exact name.
pub async fn list_jobs_pages_and_filters_by_name(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .create_job(&job(&format!("job-{i}"), &["t"]), i)
                .await
                .unwrap(),
        );
    }
    let page = |offset, limit| Page { offset, limit };
    let ids_of = |jobs: Vec<JobRecord>| jobs.into_iter().map(|j| j.job_id).collect::<Vec<_>>();

    let (first, more) = store.list_jobs(page(0, 2), None).await.unwrap();
    assert_eq!((ids_of(first), more), (ids[0..2].to_vec(), true));
    let (last, more) = store.list_jobs(page(4, 2), None).await.unwrap();
    assert_eq!((ids_of(last), more), (vec![ids[4]], false));
    let (all, more) = store.list_jobs(page(0, 0), None).await.unwrap();
    assert_eq!(
        (ids_of(all), more),
        (ids.clone(), false),
        "limit 0 means the default page"
    );
    let (named, more) = store.list_jobs(page(0, 10), Some("job-3")).await.unwrap();
    assert_eq!((ids_of(named), more), (vec![ids[3]], false));
    let (none, _) = store.list_jobs(page(0, 10), Some("job")).await.unwrap();
    assert!(none.is_empty(), "the name filter is exact");
}

/// Deleting a job leaves its runs in the history.
pub async fn delete_job_keeps_runs(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("gone", &["t"])).await;
    let run = start(&store, &deployed, 10).await;
    store.delete_job(deployed.0).await.unwrap();
    let kept = store.get_run(run.run_id).await.unwrap().expect("run kept");
    assert_eq!(kept.run.job_id, Some(deployed.0));
    assert_eq!(kept.tasks.len(), 1);
    let filter = RunFilter {
        job_id: Some(deployed.0),
        ..RunFilter::default()
    };
    let (runs, _) = store.list_runs(&filter).await.unwrap();
    assert_eq!(runs.len(), 1);
}
