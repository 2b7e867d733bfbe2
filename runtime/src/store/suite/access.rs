//! Access control: principals and groups, tokens by hash, job permissions, run identities, and
//! the append-only audit log with run state changes.

use super::{LEASE_MS, deploy, finish, job, start};
use crate::store::{
    AclEntry, AuditEntry, AuditFilter, PermissionLevel, PrincipalKind, ResultState, Store,
    StoreError, TokenRecord,
};
use std::sync::Arc;

fn token(id: &str, principal: &str, hash: &str) -> TokenRecord {
    TokenRecord {
        token_id: id.into(),
        principal: principal.into(),
        hash: hash.into(),
        comment: String::new(),
        created_time: 10,
        expiry_time: Some(100),
        revoked_time: None,
    }
}

/// Principals are unique across kinds; groups hold users and service principals; deleting a
/// principal takes its tokens, memberships and permissions with it.
pub async fn principals_groups_and_cascades(store: Arc<dyn Store>) {
    store
        .create_principal("ops", PrincipalKind::Group, 1)
        .await
        .unwrap();
    store
        .create_principal("bob", PrincipalKind::User, 2)
        .await
        .unwrap();
    store
        .create_principal("ci", PrincipalKind::ServicePrincipal, 3)
        .await
        .unwrap();
    assert!(matches!(
        store.create_principal("bob", PrincipalKind::Group, 4).await,
        Err(StoreError::Conflict(_))
    ));
    store.add_member("ops", "bob").await.unwrap();
    store.add_member("ops", "bob").await.unwrap();
    store.add_member("ops", "ci").await.unwrap();
    assert!(matches!(
        store.add_member("bob", "ci").await,
        Err(StoreError::InvalidState(_))
    ));
    assert!(matches!(
        store.add_member("ops", "ops").await,
        Err(StoreError::InvalidState(_))
    ));
    assert!(matches!(
        store.add_member("ops", "nobody").await,
        Err(StoreError::NotFound(_))
    ));
    let bob = store.get_principal("bob").await.unwrap().unwrap();
    assert_eq!(
        (bob.kind, bob.groups),
        (PrincipalKind::User, vec!["ops".to_string()])
    );
    let names: Vec<String> = store
        .list_principals()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["bob", "ci", "ops"]);

    let deployed = deploy(&store, job("guarded", &["t"])).await;
    let acl = [
        AclEntry {
            principal: "bob".into(),
            level: PermissionLevel::IsOwner,
        },
        AclEntry {
            principal: "ops".into(),
            level: PermissionLevel::CanView,
        },
    ];
    store.put_job_acl(deployed.0, &acl).await.unwrap();
    store.create_token(&token("t1", "bob", "h1")).await.unwrap();
    assert_eq!(
        store.jobs_visible_to(&["ops".into()]).await.unwrap(),
        [deployed.0]
    );

    store.remove_member("ops", "bob").await.unwrap();
    assert!(matches!(
        store.remove_member("ops", "bob").await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_principal("bob").await.unwrap();
    assert_eq!(store.get_principal("bob").await.unwrap(), None);
    assert_eq!(store.find_token("h1").await.unwrap(), None);
    assert_eq!(store.get_job_acl(deployed.0).await.unwrap(), acl[1..]);
    assert!(matches!(
        store.delete_principal("bob").await,
        Err(StoreError::NotFound(_))
    ));
}

/// Tokens are found by hash, listed newest first, revoked once; a token needs its principal.
pub async fn tokens_by_hash_and_revocation(store: Arc<dyn Store>) {
    assert!(matches!(
        store.create_token(&token("t0", "ghost", "h0")).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .create_principal("amy", PrincipalKind::User, 1)
        .await
        .unwrap();
    store.create_token(&token("t1", "amy", "h1")).await.unwrap();
    let mut later = token("t2", "amy", "h2");
    later.created_time = 20;
    store.create_token(&later).await.unwrap();
    let found = store.find_token("h1").await.unwrap().unwrap();
    assert_eq!(found.token_id, "t1");
    assert!(found.is_valid(99) && !found.is_valid(100));
    let ids: Vec<String> = store
        .list_tokens(Some("amy"))
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(ids, ["t2", "t1"]);
    assert_eq!(
        store.list_tokens(Some("nobody")).await.unwrap(),
        Vec::<TokenRecord>::new()
    );
    store.revoke_token("t1", 50).await.unwrap();
    store.revoke_token("t1", 60).await.unwrap();
    let revoked = store.find_token("h1").await.unwrap().unwrap();
    assert_eq!(revoked.revoked_time, Some(50));
    assert!(!revoked.is_valid(51));
    assert!(matches!(
        store.revoke_token("zz", 1).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A job's permissions are replaced as a whole, need existing principals, and go with the job.
pub async fn job_acl_replace_and_delete(store: Arc<dyn Store>) {
    store
        .create_principal("amy", PrincipalKind::User, 1)
        .await
        .unwrap();
    store
        .create_principal("ben", PrincipalKind::User, 1)
        .await
        .unwrap();
    let deployed = deploy(&store, job("acl", &["t"])).await;
    assert_eq!(
        store.get_job_acl(deployed.0).await.unwrap(),
        Vec::<AclEntry>::new()
    );
    let first = [
        AclEntry {
            principal: "amy".into(),
            level: PermissionLevel::IsOwner,
        },
        AclEntry {
            principal: "ben".into(),
            level: PermissionLevel::CanManageRun,
        },
    ];
    store.put_job_acl(deployed.0, &first).await.unwrap();
    assert_eq!(store.get_job_acl(deployed.0).await.unwrap(), first);
    let second = [AclEntry {
        principal: "ben".into(),
        level: PermissionLevel::IsOwner,
    }];
    store.put_job_acl(deployed.0, &second).await.unwrap();
    assert_eq!(store.get_job_acl(deployed.0).await.unwrap(), second);
    let unknown = [AclEntry {
        principal: "cat".into(),
        level: PermissionLevel::CanView,
    }];
    assert!(matches!(
        store.put_job_acl(deployed.0, &unknown).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.get_job_acl(deployed.0).await.unwrap(), second);
    assert_eq!(
        store.jobs_visible_to(&["amy".into()]).await.unwrap(),
        Vec::<i64>::new()
    );
    store.delete_job(deployed.0).await.unwrap();
    assert_eq!(
        store.get_job_acl(deployed.0).await.unwrap(),
        Vec::<AclEntry>::new()
    );
    assert_eq!(
        store.jobs_visible_to(&["ben".into()]).await.unwrap(),
        Vec::<i64>::new()
    );
}

/// The audit log keeps what is appended, newest first with filters, and every run state change
/// is in it; run identities stay with their run.
pub async fn audit_log_and_run_state_changes(store: Arc<dyn Store>) {
    let entry = |time, principal: &str, action: &str, target: &str| AuditEntry {
        seq: 0,
        time,
        principal: principal.into(),
        action: action.into(),
        target: target.into(),
        source: "127.0.0.1:1".into(),
        outcome: "ok".into(),
        detail: String::new(),
    };
    let a = store
        .append_audit(&entry(1, "amy", "jobs.create", "job:1"))
        .await
        .unwrap();
    let b = store
        .append_audit(&entry(2, "ben", "jobs.delete", "job:1"))
        .await
        .unwrap();
    assert!(b > a);
    let all = store.list_audit(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [b, a]);
    assert_eq!(
        all[1],
        AuditEntry {
            seq: a,
            ..entry(1, "amy", "jobs.create", "job:1")
        }
    );
    let by = |filter: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .list_audit(&filter)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by(AuditFilter {
            principal: Some("amy".into()),
            ..Default::default()
        })
        .await,
        [a]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("jobs.".into()),
            ..Default::default()
        })
        .await,
        [b, a]
    );
    assert_eq!(
        by(AuditFilter {
            action: Some("jobs.d".into()),
            ..Default::default()
        })
        .await,
        [b]
    );
    assert_eq!(
        by(AuditFilter {
            since: Some(2),
            ..Default::default()
        })
        .await,
        [b]
    );
    assert_eq!(
        by(AuditFilter {
            until: Some(1),
            ..Default::default()
        })
        .await,
        [a]
    );
    assert_eq!(
        by(AuditFilter {
            before_seq: Some(b),
            ..Default::default()
        })
        .await,
        [a]
    );
    assert_eq!(
        by(AuditFilter {
            limit: 1,
            ..Default::default()
        })
        .await,
        [b]
    );

    let deployed = deploy(&store, job("audited", &["t"])).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    store.put_run_identity(run_id, "amy", "ben").await.unwrap();
    store.put_run_identity(run_id, "zed", "zed").await.unwrap();
    assert_eq!(
        store.get_run_identity(run_id).await.unwrap(),
        Some(("amy".to_string(), "ben".to_string()))
    );
    store.claim_runs("n", 20, LEASE_MS, 1).await.unwrap();
    finish(&store, "n", run_id, ResultState::Success, 30).await;
    let states = store
        .list_audit(&AuditFilter {
            action: Some("runs.state".into()),
            target: Some(format!("run:{run_id}")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!states.is_empty());
    assert!(states.iter().all(|e| e.principal == "system"));
    assert_eq!(states[0].outcome, "SUCCESS");
    assert!(
        states[0].detail.contains("result_state=SUCCESS"),
        "{:?}",
        states[0]
    );
    store.delete_run(run_id).await.unwrap();
    assert_eq!(store.get_run_identity(run_id).await.unwrap(), None);
    // Deleting the run keeps its history in the audit log.
    let after = store
        .list_audit(&AuditFilter {
            target: Some(format!("run:{run_id}")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after.len(), states.len());
}
