"""Drives a Weir node with the official Databricks SDK for Python (databricks-sdk==0.155.0).

Run by tests/e2e/databricks_sdk.rs with WEIR_HOST, WEIR_TOKEN and WEIR_MODULE (a module name in
the node's registry: the `testtask` guest). Every step asserts; the last line printed is
`SDK-OK`. Nothing here is Weir-specific except `wasm_task`, which goes through `api_client.do`
because the SDK's typed `Task` has no field for it.
"""

import os
import sys
import time
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk import errors
from databricks.sdk.service import jobs

HOST = os.environ["WEIR_HOST"]
TOKEN = os.environ["WEIR_TOKEN"]
MODULE = os.environ["WEIR_MODULE"]
WAIT = timedelta(minutes=2)

w = WorkspaceClient(host=HOST, token=TOKEN, auth_type="pat")


def step(name):
    print(f"== {name}", flush=True)


def create(name, parameters, job_parameters=None, extra=None):
    body = {
        "name": name,
        "tasks": [
            {
                "task_key": "main",
                "wasm_task": {"module": MODULE, "parameters": parameters},
            }
        ],
        # Fields the Jobs API takes and Weir honours without modelling.
        "format": "MULTI_TASK",
        "edit_mode": "EDITABLE",
        "job_clusters": [],
    }
    if job_parameters:
        body["parameters"] = job_parameters
    body.update(extra or {})
    res = w.api_client.do("POST", "/api/2.2/jobs/create", body=body)
    return int(res["job_id"])


step("create through api_client.do")
main_id = create(
    "sdk-main",
    ["{{job.parameters.mode}}"],
    job_parameters=[{"name": "mode", "default": "ok"}],
    extra={"max_concurrent_runs": "3", "tags": {"team": "sdk"}},
)
sleeper_id = create("sdk-sleeper", ["sleep", "600000"])
fillers = [create(f"sdk-filler-{i}", ["ok"]) for i in range(5)]

step("jobs.list across pages")
listed = list(w.jobs.list(limit=2))
names = sorted(j.settings.name for j in listed)
expected = sorted(["sdk-main", "sdk-sleeper"] + [f"sdk-filler-{i}" for i in range(5)])
assert names == expected, names
assert all(isinstance(j.job_id, int) for j in listed)
by_name = list(w.jobs.list(name="sdk-main", expand_tasks=True))
assert [j.job_id for j in by_name] == [main_id], by_name
assert by_name[0].settings.tasks[0].task_key == "main"

step("jobs.get")
job = w.jobs.get(main_id)
assert job.job_id == main_id
assert job.settings.name == "sdk-main"
assert job.settings.max_concurrent_runs == 3
assert job.settings.tags == {"team": "sdk"}
assert [t.task_key for t in job.settings.tasks] == ["main"]
assert [p.name for p in job.settings.parameters] == ["mode"]

step("run_now(...).result(): a failing run")
run = w.jobs.run_now(job_id=main_id, job_parameters={"mode": "fail"}).result(timeout=WAIT)
assert run.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED, run.state
assert run.state.result_state == jobs.RunResultState.FAILED, run.state
assert run.status.state == jobs.RunLifecycleStateV2State.TERMINATED, run.status
assert run.status.termination_details.code == jobs.TerminationCodeCode.RUN_EXECUTION_ERROR
assert run.job_id == main_id

step("get_run and get_run_output")
got = w.jobs.get_run(run.run_id)
assert got.run_id == run.run_id
assert len(got.tasks) == 1 and got.tasks[0].task_key == "main"
task_run_id = got.tasks[0].run_id
out = w.jobs.get_run_output(task_run_id)
assert out.metadata.run_id == task_run_id, out.metadata
assert out.error and "exited with code" in out.error, out.error
assert out.logs is not None

step("repair_run with a parameter override")
repaired = w.jobs.repair_run(
    run_id=run.run_id, rerun_all_failed_tasks=True, job_parameters={"mode": "ok"}
).result(timeout=WAIT)
assert repaired.state.result_state == jobs.RunResultState.SUCCESS, repaired.state
assert repaired.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS
history = w.jobs.get_run(run.run_id, include_history=True)
assert [h.type for h in history.repair_history] == [
    jobs.RepairHistoryItemType.ORIGINAL,
    jobs.RepairHistoryItemType.REPAIR,
], history.repair_history
assert len(history.tasks) == 2, history.tasks

step("idempotency_token")
first = w.jobs.run_now(job_id=main_id, idempotency_token="sdk-once").response.run_id
second = w.jobs.run_now(job_id=main_id, idempotency_token="sdk-once").response.run_id
assert first == second
w.jobs.wait_get_run_job_terminated_or_skipped(first, timeout=WAIT)

step("cancel_run")
sleeping = w.jobs.run_now(job_id=sleeper_id).response.run_id
deadline = time.time() + 60
while w.jobs.get_run(sleeping).state.life_cycle_state != jobs.RunLifeCycleState.RUNNING:
    assert time.time() < deadline, "the sleeper never started"
    time.sleep(0.1)
canceled = w.jobs.cancel_run(sleeping).result(timeout=WAIT)
assert canceled.state.result_state == jobs.RunResultState.CANCELED, canceled.state

step("list_runs with filters")
runs = list(w.jobs.list_runs(job_id=main_id, limit=1))
assert sorted(r.run_id for r in runs) == sorted({run.run_id, first}), runs
assert all(r.job_id == main_id for r in runs)
completed = list(w.jobs.list_runs(completed_only=True, run_type=jobs.RunType.JOB_RUN))
assert {run.run_id, first, sleeping} <= {r.run_id for r in completed}
assert list(w.jobs.list_runs(active_only=True)) == []

step("fields Weir does not model are refused by name")
try:
    w.jobs.run_now(job_id=main_id, notebook_params={"a": "b"})
    raise AssertionError("notebook_params was accepted")
except errors.InvalidParameterValue as e:
    assert "notebook_params" in str(e), e
try:
    w.jobs.run_now(job_id=main_id, job_parameters={"nope": "1"})
    raise AssertionError("an unknown parameter was accepted")
except errors.InvalidParameterValue as e:
    assert "nope" in str(e), e

step("permissions")
w.api_client.do("POST", "/api/weir/principals", body={"name": "sdk-viewer"})
perms = w.jobs.get_permissions(str(main_id))
assert perms.object_id == f"/jobs/{main_id}", perms.object_id


def level_of(acl, name):
    for a in acl:
        if name in (a.user_name, a.group_name, a.service_principal_name):
            return [p.permission_level for p in a.all_permissions]
    return []


assert level_of(perms.access_control_list, "admin") == [jobs.JobPermissionLevel.IS_OWNER]
updated = w.jobs.update_permissions(
    str(main_id),
    access_control_list=[
        jobs.JobAccessControlRequest(
            user_name="sdk-viewer", permission_level=jobs.JobPermissionLevel.CAN_VIEW
        )
    ],
)
assert level_of(updated.access_control_list, "sdk-viewer") == [jobs.JobPermissionLevel.CAN_VIEW]
assert level_of(updated.access_control_list, "admin") == [jobs.JobPermissionLevel.IS_OWNER]
levels = w.jobs.get_permission_levels(str(main_id))
assert {l.permission_level for l in levels.permission_levels} == set(jobs.JobPermissionLevel)
replaced = w.jobs.set_permissions(str(main_id), access_control_list=[])
assert level_of(replaced.access_control_list, "sdk-viewer") == []
assert level_of(replaced.access_control_list, "admin") == [jobs.JobPermissionLevel.IS_OWNER]
try:
    w.jobs.update_permissions(
        str(main_id),
        access_control_list=[
            jobs.JobAccessControlRequest(
                user_name="nobody", permission_level=jobs.JobPermissionLevel.CAN_VIEW
            )
        ],
    )
    raise AssertionError("a permission for an unknown principal was accepted")
except errors.InvalidParameterValue as e:
    assert "nobody" in str(e), e

step("delete")
for job_id in [sleeper_id] + fillers:
    w.jobs.delete(job_id)
try:
    w.jobs.get(sleeper_id)
    raise AssertionError("a deleted job is still there")
except errors.NotFound as e:
    assert str(sleeper_id) in str(e), e
assert [j.job_id for j in w.jobs.list()] == [main_id]

print("SDK-OK", flush=True)
sys.exit(0)
