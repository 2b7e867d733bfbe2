//! Several teams on one node: principals and tokens (hashed, expiring, revocable, the admin
//! token rotated), job permissions per level (allowed and refused, lists filtered), the audit
//! log, and an authentication sweep over every route.

use crate::support::{Weir, module};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A token for `principal` (created as a user when missing), made with the CLI as admin.
fn token(w: &Weir, principal: &str, extra: &[&str]) -> String {
    let mut args = vec!["tokens", "create", "--principal", principal];
    args.extend(extra);
    w.cli_ok(&args).trim().to_string()
}

fn status(w: &Weir, method: &str, path: &str, body: Option<Value>, token: &str) -> (u16, Value) {
    w.http(method, path, body, Some(token))
}

fn job_spec(name: &str) -> Value {
    json!({"name": name, "parameters": [{"name": "mode", "default": "ok"}],
           "tasks": [{"task_key": "t",
                      "wasm_task": {"module": "testtask", "parameters": ["{{job.parameters.mode}}"]}}]})
}

fn push_module(w: &Weir) {
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);
}

fn final_run(w: &Weir, run_id: i64) -> Value {
    w.wait_for_run(run_id, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    })
}

#[test]
fn tokens_are_hashed_expire_and_can_be_revoked() {
    let w = Weir::start();
    let bob = token(&w, "bob", &["--comment", "ci"]);
    assert!(bob.starts_with("weir_"), "{bob}");
    let (code, _) = status(&w, "GET", "/api/2.2/jobs/list", None, &bob);
    assert_eq!(code, 200);
    // Listed without its value; stored as a hash only.
    let (_, list) = w.cli_json(&["tokens", "list", "--principal", "bob"]);
    let infos = list["token_infos"].as_array().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!(infos[0]["comment"], "ci");
    assert_eq!(infos[0]["state"], "ACTIVE");
    assert!(!list.to_string().contains(&bob[5..]));
    for file in ["weir.db", "weir.db-wal"] {
        if let Ok(bytes) = std::fs::read(w.dir.path().join(file)) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(&bob[5..]), "{file} holds the token");
        }
    }
    // A principal that is not an admin manages only its own tokens.
    let (code, err) = status(
        &w,
        "POST",
        "/api/weir/tokens",
        Some(json!({"principal": "alice"})),
        &bob,
    );
    assert_eq!(code, 403, "{err}");
    assert_eq!(err["error_code"], "PERMISSION_DENIED");
    assert!(err["message"].as_str().unwrap().contains("admins"), "{err}");
    let (code, own) = status(
        &w,
        "POST",
        "/api/weir/tokens",
        Some(json!({"comment": "mine"})),
        &bob,
    );
    assert_eq!(code, 200, "{own}");
    assert_eq!(own["token_info"]["principal"], "bob");
    let (code, _) = status(&w, "GET", "/api/weir/principals", None, &bob);
    assert_eq!(code, 403);

    // Revocation takes effect at once.
    let id = infos[0]["token_id"].as_str().unwrap();
    w.cli_ok(&["tokens", "revoke", id]);
    let (code, err) = status(&w, "GET", "/api/2.2/jobs/list", None, &bob);
    assert_eq!(code, 401);
    assert!(
        err["message"].as_str().unwrap().contains("revoked"),
        "{err}"
    );
    let second = own["token_value"].as_str().unwrap();
    assert_eq!(status(&w, "GET", "/api/2.2/jobs/list", None, second).0, 200);

    // Expiry: a one-second token stops working.
    let short = token(&w, "carol", &["--lifetime", "1s"]);
    let start = Instant::now();
    loop {
        let (code, err) = status(&w, "GET", "/api/2.2/jobs/list", None, &short);
        if code == 401 {
            assert!(
                err["message"].as_str().unwrap().contains("expired"),
                "{err}"
            );
            break;
        }
        assert_eq!(code, 200);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the token never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = w.cli(&["tokens", "create", "--principal", "x", "--lifetime", "3y"]);
    assert!(!out.status.success());
}

#[test]
fn the_admin_token_rotates_and_its_file_must_stay_private() {
    let mut w = Weir::start();
    let old = w.token.clone();
    let out = w.cli_ok(&["tokens", "rotate-admin"]);
    let new = out.trim().to_string();
    assert_ne!(new, old);
    let path = w.dir.path().join("admin-token");
    assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), new);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (code, err) = w.http("GET", "/api/2.2/jobs/list", None, Some(&old));
    assert_eq!(code, 401, "{err}");
    assert_eq!(w.http("GET", "/api/2.2/jobs/list", None, Some(&new)).0, 200);
    // After a restart the file's (new) token is the admin token.
    w.stop();
    w.spawn();
    assert_eq!(w.token, new);
    assert_eq!(w.http("GET", "/api/2.2/jobs/list", None, None).0, 200);
    // A token file others can read stops the node from starting.
    w.stop();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(crate::support::weir_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(w.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
}

#[test]
fn each_permission_level_allows_what_it_says_and_lists_are_filtered() {
    let w = Weir::start();
    push_module(&w);
    let alice = token(&w, "alice", &[]);
    let bob = token(&w, "bob", &[]);
    let dave = token(&w, "dave", &[]);
    let carol = token(&w, "carol", &[]);
    w.cli_ok(&["principals", "create", "ops", "--kind", "group"]);
    w.cli_ok(&["principals", "add-member", "ops", "dave"]);

    // alice creates a job: she owns it; nobody else sees it.
    let (code, created) = status(
        &w,
        "POST",
        "/api/2.2/jobs/create",
        Some(job_spec("alices")),
        &alice,
    );
    assert_eq!(code, 200, "{created}");
    let job_id = created["job_id"].as_i64().unwrap();
    let (_, job) = status(
        &w,
        "GET",
        &format!("/api/2.2/jobs/get?job_id={job_id}"),
        None,
        &alice,
    );
    assert_eq!(job["creator_user_name"], "alice");
    assert_eq!(job["run_as_user_name"], "alice");
    let (_, admin_job) = status(
        &w,
        "POST",
        "/api/2.2/jobs/create",
        Some(job_spec("admins")),
        &w.token,
    );
    let admin_job = admin_job["job_id"].as_i64().unwrap();
    let listed = |t: &str| -> Vec<i64> {
        let (code, out) = status(&w, "GET", "/api/2.2/jobs/list", None, t);
        assert_eq!(code, 200, "{out}");
        out["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(listed(&alice), [job_id]);
    assert_eq!(listed(&bob), Vec::<i64>::new());
    assert_eq!(listed(&w.token), [job_id, admin_job]);
    let get = format!("/api/2.2/jobs/get?job_id={job_id}");
    let (code, err) = status(&w, "GET", &get, None, &bob);
    assert_eq!(code, 403);
    assert_eq!(err["error_code"], "PERMISSION_DENIED");
    assert_eq!(
        err["message"],
        format!("`bob` needs CAN_VIEW on job {job_id} (it has no permission on it)")
    );

    // CAN_VIEW: see the job and its runs, nothing more.
    let perms = format!("/api/2.0/permissions/jobs/{job_id}");
    let (code, out) = status(
        &w,
        "PATCH",
        &perms,
        Some(
            json!({"access_control_list": [{"user_name": "bob", "permission_level": "CAN_VIEW"},
                                            {"group_name": "ops", "permission_level": "CAN_MANAGE_RUN"}]}),
        ),
        &alice,
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(status(&w, "GET", &get, None, &bob).0, 200);
    assert_eq!(listed(&bob), [job_id]);
    let run_now = json!({"job_id": job_id});
    let (code, err) = status(
        &w,
        "POST",
        "/api/2.2/jobs/run-now",
        Some(run_now.clone()),
        &bob,
    );
    assert_eq!(code, 403);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("needs CAN_MANAGE_RUN"),
        "{err}"
    );
    let (code, err) = status(&w, "GET", &perms, None, &bob);
    assert_eq!(code, 403);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("needs CAN_MANAGE"),
        "{err}"
    );

    // CAN_MANAGE_RUN through a group: run, repair, cancel; not change the job.
    let (code, run) = status(
        &w,
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "job_parameters": {"mode": "fail"}})),
        &dave,
    );
    assert_eq!(code, 200, "{run}");
    let run_id = run["run_id"].as_i64().unwrap();
    let done = final_run(&w, run_id);
    assert_eq!(done["state"]["result_state"], "FAILED");
    assert_eq!(done["run_as_user_name"], "alice");
    assert_eq!(done["creator_user_name"], "dave");
    let (code, out) = status(
        &w,
        "POST",
        "/api/2.2/jobs/runs/repair",
        Some(
            json!({"run_id": run_id, "rerun_all_failed_tasks": true, "job_parameters": {"mode": "ok"}}),
        ),
        &dave,
    );
    assert_eq!(code, 200, "{out}");
    let (code, _) = status(
        &w,
        "POST",
        "/api/2.2/jobs/runs/repair",
        Some(json!({"run_id": run_id, "rerun_all_failed_tasks": true})),
        &bob,
    );
    assert_eq!(code, 403);
    let (code, err) = status(
        &w,
        "POST",
        "/api/2.2/jobs/update",
        Some(json!({"job_id": job_id, "new_settings": {"max_concurrent_runs": 2}})),
        &dave,
    );
    assert_eq!(code, 403);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("needs CAN_MANAGE"),
        "{err}"
    );
    let (code, _) = status(
        &w,
        "POST",
        "/api/2.2/jobs/delete",
        Some(json!({"job_id": job_id})),
        &dave,
    );
    assert_eq!(code, 403);

    // Run lists are filtered too: carol sees nothing, bob sees the job's runs.
    let runs_of = |t: &str| -> Vec<i64> {
        let (code, out) = status(&w, "GET", "/api/2.2/jobs/runs/list", None, t);
        assert_eq!(code, 200, "{out}");
        out["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(runs_of(&bob), [run_id]);
    assert_eq!(runs_of(&carol), Vec::<i64>::new());
    let (code, _) = status(
        &w,
        "GET",
        &format!("/api/2.2/jobs/runs/get?run_id={run_id}"),
        None,
        &carol,
    );
    assert_eq!(code, 403);
    let (code, _) = status(
        &w,
        "GET",
        &format!("/api/2.2/jobs/runs/list?job_id={job_id}"),
        None,
        &carol,
    );
    assert_eq!(code, 403);
    // A submitted run is its submitter's.
    let (code, sub) = status(
        &w,
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(
            json!({"run_name": "carols", "tasks": [{"task_key": "t", "wasm_task": {"module": "testtask", "parameters": ["ok"]}}]}),
        ),
        &carol,
    );
    assert_eq!(code, 200, "{sub}");
    let sub = sub["run_id"].as_i64().unwrap();
    assert_eq!(runs_of(&carol), [sub]);
    assert!(!runs_of(&bob).contains(&sub));
    assert_eq!(
        status(
            &w,
            "GET",
            &format!("/api/2.2/jobs/runs/get?run_id={sub}"),
            None,
            &bob
        )
        .0,
        403
    );

    // Exactly one owner: two are refused; PATCH with a new owner transfers ownership.
    let (code, err) = status(
        &w,
        "PUT",
        &perms,
        Some(
            json!({"access_control_list": [{"user_name": "bob", "permission_level": "IS_OWNER"},
                                            {"user_name": "carol", "permission_level": "IS_OWNER"}]}),
        ),
        &alice,
    );
    assert_eq!(code, 400);
    assert!(
        err["message"].as_str().unwrap().contains("exactly one"),
        "{err}"
    );
    let (code, err) = status(
        &w,
        "PATCH",
        &perms,
        Some(
            json!({"access_control_list": [{"group_name": "ops", "permission_level": "IS_OWNER"}]}),
        ),
        &alice,
    );
    assert_eq!(code, 400, "{err}");
    let (code, out) = status(
        &w,
        "PATCH",
        &perms,
        Some(
            json!({"access_control_list": [{"user_name": "carol", "permission_level": "IS_OWNER"}]}),
        ),
        &alice,
    );
    assert_eq!(code, 200, "{out}");
    let owners: Vec<&Value> = out["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["all_permissions"][0]["permission_level"] == "IS_OWNER")
        .collect();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0]["user_name"], "carol");
    assert_eq!(status(&w, "GET", &get, None, &alice).0, 403);
    assert_eq!(status(&w, "GET", &get, None, &carol).0, 200);
    // PUT replaces the list but keeps the owner.
    let (code, out) = status(
        &w,
        "PUT",
        &perms,
        Some(json!({"access_control_list": []})),
        &carol,
    );
    assert_eq!(code, 200, "{out}");
    assert_eq!(listed(&bob), Vec::<i64>::new());
    assert_eq!(status(&w, "GET", &get, None, &carol).0, 200);
    let (code, levels) = status(
        &w,
        "GET",
        &format!("{perms}/permissionLevels"),
        None,
        &carol,
    );
    assert_eq!(code, 200);
    assert_eq!(levels["permission_levels"].as_array().unwrap().len(), 4);
    // The owner deletes; permissions go with the job.
    assert_eq!(
        status(
            &w,
            "POST",
            "/api/2.2/jobs/delete",
            Some(json!({"job_id": job_id})),
            &carol
        )
        .0,
        200
    );
    assert_eq!(status(&w, "GET", &perms, None, &w.token).0, 404);
}

#[test]
fn every_change_and_run_state_is_in_the_audit_log() {
    let w = Weir::start();
    push_module(&w);
    let bob = token(&w, "bob", &[]);
    let (_, created) = w.http(
        "POST",
        "/api/2.2/jobs/create",
        Some(job_spec("audited")),
        None,
    );
    let job_id = created["job_id"].as_i64().unwrap();
    let (_, run) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id})),
        None,
    );
    let run_id = run["run_id"].as_i64().unwrap();
    final_run(&w, run_id);
    let (code, _) = status(
        &w,
        "POST",
        "/api/2.2/jobs/delete",
        Some(json!({"job_id": job_id})),
        &bob,
    );
    assert_eq!(code, 403);
    let (code, _) = w.http(
        "POST",
        "/api/2.2/jobs/delete",
        Some(json!({"job_id": job_id})),
        Some("nope"),
    );
    assert_eq!(code, 401);

    let (ok, log) = w.cli_json(&["audit", "--limit", "1000"]);
    assert!(ok, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let find = |action: &str, target: &str| -> Vec<&Value> {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["target"] == target)
            .collect()
    };
    let create = find("jobs.create", &format!("job:{job_id}"));
    assert_eq!(create.len(), 1, "{log:#}");
    assert_eq!(create[0]["principal"], "admin");
    assert_eq!(create[0]["outcome"], "ok");
    assert!(
        create[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{:#}",
        create[0]
    );
    assert!(create[0]["time"].as_i64().unwrap() > 0);
    let run_now = find("jobs.run-now", &format!("job:{job_id}"));
    assert_eq!(run_now.len(), 1);
    assert!(
        run_now[0]["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("run_id={run_id}"))
    );
    let refused = find("jobs.delete", &format!("job:{job_id}"));
    assert_eq!(refused.len(), 1, "{log:#}");
    assert_eq!(refused[0]["principal"], "bob");
    assert_eq!(refused[0]["outcome"], "PERMISSION_DENIED");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "jobs.delete" && e["outcome"] == "UNAUTHENTICATED")
    );
    let states: Vec<&str> = find("runs.state", &format!("run:{run_id}"))
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(
        states
            .iter()
            .any(|d| d.contains("life_cycle_state=RUNNING")),
        "{states:?}"
    );
    assert!(
        states.iter().any(|d| d.contains("result_state=SUCCESS")),
        "{states:?}"
    );
    // Reads are not audited; filters narrow; the token itself is never recorded.
    assert!(!entries.iter().any(|e| e["action"] == "jobs.list"));
    let (_, mine) = w.cli_json(&["audit", "--principal", "bob"]);
    assert!(
        mine["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["principal"] == "bob")
    );
    assert!(!log.to_string().contains(&bob[5..]));
    let (_, tokens) = w.cli_json(&["audit", "--action", "tokens."]);
    assert_eq!(tokens["entries"].as_array().unwrap().len(), 1);
    // Only admins read it.
    assert_eq!(status(&w, "GET", "/api/weir/audit", None, &bob).0, 403);
}

/// Every route of the API, with a body that would be valid enough to get past parsing.
fn routes(job_id: i64, run_id: i64) -> Vec<(&'static str, String, Option<Value>)> {
    let job = json!({"job_id": job_id});
    let run = json!({"run_id": run_id});
    let mut out = Vec::new();
    for v in ["2.2", "2.1"] {
        let p = |s: &str| format!("/api/{v}/jobs/{s}");
        out.extend([
            ("POST", p("create"), Some(job_spec("sweep-new"))),
            ("GET", p(&format!("get?job_id={job_id}")), None),
            ("GET", p("list"), None),
            (
                "POST",
                p("update"),
                Some(json!({"job_id": job_id, "new_settings": {"max_concurrent_runs": 2}})),
            ),
            (
                "POST",
                p("reset"),
                Some(json!({"job_id": job_id, "new_settings": job_spec("sweep")})),
            ),
            ("POST", p("run-now"), Some(job.clone())),
            ("POST", p("runs/submit"), Some(json!({"tasks": []}))),
            ("GET", p(&format!("runs/get?run_id={run_id}")), None),
            ("GET", p("runs/list"), None),
            ("POST", p("runs/cancel"), Some(run.clone())),
            ("POST", p("runs/cancel-all"), Some(job.clone())),
            (
                "POST",
                p("runs/repair"),
                Some(json!({"run_id": run_id, "rerun_all_failed_tasks": true})),
            ),
            ("GET", p(&format!("runs/get-output?run_id={run_id}")), None),
            ("POST", p("runs/delete"), Some(run.clone())),
            ("POST", p("delete"), Some(job.clone())),
        ]);
    }
    let p = |s: &str| format!("/api/2.0/jobs/{s}");
    out.extend([
        ("GET", p(&format!("get?job_id={job_id}")), None),
        ("GET", p("list"), None),
        ("POST", p("run-now"), Some(job.clone())),
        ("GET", p(&format!("runs/get?run_id={run_id}")), None),
        ("GET", p("runs/list"), None),
        ("POST", p("runs/cancel"), Some(run.clone())),
        ("GET", p(&format!("runs/get-output?run_id={run_id}")), None),
        ("POST", p("runs/delete"), Some(run.clone())),
        ("POST", p("delete"), Some(job.clone())),
        ("GET", format!("/api/2.0/permissions/jobs/{job_id}"), None),
        (
            "GET",
            format!("/api/2.0/permissions/jobs/{job_id}/permissionLevels"),
            None,
        ),
        (
            "PUT",
            format!("/api/2.0/permissions/jobs/{job_id}"),
            Some(json!({"access_control_list": []})),
        ),
        (
            "PATCH",
            format!("/api/2.0/permissions/jobs/{job_id}"),
            Some(json!({"access_control_list": []})),
        ),
        ("GET", "/api/weir/modules".into(), None),
        ("GET", "/api/weir/modules/get?name=testtask".into(), None),
        (
            "GET",
            format!("/api/weir/runs/wait?run_id={run_id}&timeout_seconds=0"),
            None,
        ),
        ("POST", "/api/weir/jobs/pause".into(), Some(job.clone())),
        ("POST", "/api/weir/jobs/resume".into(), Some(job.clone())),
        (
            "POST",
            "/api/weir/tokens".into(),
            Some(json!({"principal": "someone-else"})),
        ),
        ("GET", "/api/weir/tokens?principal=admin".into(), None),
        (
            "POST",
            "/api/weir/tokens/revoke".into(),
            Some(json!({"token_id": "admin"})),
        ),
        (
            "POST",
            "/api/weir/tokens/rotate-admin".into(),
            Some(json!({})),
        ),
        ("GET", "/api/weir/principals".into(), None),
        (
            "POST",
            "/api/weir/principals".into(),
            Some(json!({"name": "mallory"})),
        ),
        (
            "POST",
            "/api/weir/principals/delete".into(),
            Some(json!({"name": "bob"})),
        ),
        (
            "POST",
            "/api/weir/principals/members/add".into(),
            Some(json!({"group": "admins", "member": "eve"})),
        ),
        (
            "POST",
            "/api/weir/principals/members/remove".into(),
            Some(json!({"group": "admins", "member": "admin"})),
        ),
        ("GET", "/api/weir/audit".into(), None),
    ]);
    out
}

#[test]
fn every_route_needs_a_token_and_a_stranger_changes_nothing() {
    let w = Weir::start();
    push_module(&w);
    let (_, created) = w.http(
        "POST",
        "/api/2.2/jobs/create",
        Some(job_spec("sweep")),
        None,
    );
    let job_id = created["job_id"].as_i64().unwrap();
    let (_, run) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id})),
        None,
    );
    let run_id = run["run_id"].as_i64().unwrap();
    final_run(&w, run_id);
    let eve = token(&w, "eve", &[]);
    let (_, before_job) = w.http(
        "GET",
        &format!("/api/2.2/jobs/get?job_id={job_id}"),
        None,
        None,
    );
    let (_, before_runs) = w.http("GET", "/api/2.2/jobs/runs/list", None, None);

    for (method, path, body) in routes(job_id, run_id) {
        for bad in [
            "",
            "wrong",
            "weir_0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let (code, err) = w.http(method, &path, body.clone(), Some(bad));
            assert_eq!(code, 401, "{method} {path} with token {bad:?}: {err}");
            assert_eq!(err["error_code"], "UNAUTHENTICATED", "{method} {path}");
        }
        // A principal with no permission on anything: never a 5xx, never a change.
        let (code, out) = w.http(method, &path, body.clone(), Some(&eve));
        assert!(code < 500, "{method} {path} as eve: {code} {out}");
        let job_scoped = path.contains(&format!("job_id={job_id}"))
            || path.contains(&format!("run_id={run_id}"))
            || path.contains("/permissions/")
            || body
                .as_ref()
                .is_some_and(|b| b.get("job_id").is_some() || b.get("run_id").is_some());
        let admin_only = path.contains("/principals")
            || path.contains("/audit")
            || path.contains("rotate-admin")
            || path.contains("principal=admin")
            || path.contains("tokens/revoke")
            || body.as_ref().is_some_and(|b| b.get("principal").is_some());
        if job_scoped || admin_only {
            assert_eq!(code, 403, "{method} {path} as eve: {out}");
            assert_eq!(out["error_code"], "PERMISSION_DENIED", "{method} {path}");
        }
    }
    // Open routes; a path that is no route is a 404 for anyone.
    assert_eq!(w.http("GET", "/healthz", None, Some("")).0, 200);
    assert_eq!(
        w.http("GET", "/api/2.2/jobs/no-such-route", None, Some(""))
            .0,
        404
    );
    assert_eq!(
        w.http("GET", "/.well-known/databricks-config", None, Some(""))
            .0,
        404
    );
    // eve changed nothing of what she could not see.
    let (_, after_job) = w.http(
        "GET",
        &format!("/api/2.2/jobs/get?job_id={job_id}"),
        None,
        None,
    );
    assert_eq!(before_job, after_job);
    let (_, after_runs) = w.http("GET", "/api/2.2/jobs/runs/list", None, None);
    let ids = |v: &Value| -> Vec<i64> {
        v["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_i64().unwrap())
            .collect()
    };
    let mine: Vec<i64> = ids(&after_runs)
        .into_iter()
        .filter(|r| !ids(&before_runs).contains(r))
        .collect();
    for r in mine {
        let (_, run) = w.http(
            "GET",
            &format!("/api/2.2/jobs/runs/get?run_id={r}"),
            None,
            None,
        );
        assert_eq!(
            run["creator_user_name"], "eve",
            "only eve's own submitted runs are new: {run}"
        );
    }
    assert_eq!(
        w.http("GET", "/api/2.2/jobs/list", None, None).1["jobs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, principals) = w.http("GET", "/api/weir/principals", None, None);
    let names: Vec<&str> = principals["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "admins", "eve"]);
}
