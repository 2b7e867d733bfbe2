//! One table per syntax: each class of error with its exact line, column, path and message.

use super::errors;
use crate::spec::{Format, PathPolicy};

/// One error case: the document, and where and what the single error is.
struct Case {
    name: &'static str,
    text: &'static str,
    policy: PathPolicy,
    at: (usize, usize),
    path: &'static str,
    fragment: &'static str,
}

const fn case(
    name: &'static str,
    text: &'static str,
    at: (usize, usize),
    path: &'static str,
    fragment: &'static str,
) -> Case {
    Case {
        name,
        text,
        policy: PathPolicy::Local,
        at,
        path,
        fragment,
    }
}

fn check_cases(format: Format, cases: &[Case]) {
    let mut mismatches = Vec::new();
    for c in cases {
        let found = errors(c.text, format, c.policy);
        let matches = match found.as_slice() {
            [e] => (e.line, e.column) == c.at && e.path == c.path && e.message.contains(c.fragment),
            _ => false,
        };
        if !matches {
            mismatches.push(format!(
                "{}: want {:?} {:?} containing {:?}, found {found:#?}",
                c.name, c.at, c.path, c.fragment
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn yaml_errors_are_located() {
    let server = |mut c: Case| {
        c.policy = PathPolicy::Server;
        c
    };
    let cases = [
        case(
            "syntax",
            "name: x\ntasks: [\n",
            (3, 1),
            "tasks[0]",
            "yaml syntax error",
        ),
        case(
            "duplicate key",
            "name: x\ntasks: []\nname: y\n",
            (3, 1),
            "",
            "duplicate key `name` (first at line 1)",
        ),
        case(
            "bad path_glob",
            "name: x\ntrigger:\n  file_arrival: {url: \"file:///srv/in/\", path_glob: \"[a-\"}\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n",
            (3, 53),
            "trigger.file_arrival.path_glob",
            "path_glob \"[a-\" is not a valid glob",
        ),
        case(
            "zero list interval",
            "name: x\ntrigger:\n  file_arrival:\n    url: s3://b/p/\n    list_interval_seconds: 0\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n",
            (5, 28),
            "trigger.file_arrival.list_interval_seconds",
            "list_interval_seconds is 0",
        ),
        case(
            "unknown field",
            "name: x\ntasks:\n  - task_key: a\n    dependson: [b]\n    wasm_task: {module: m}\n",
            (4, 5),
            "tasks[0].dependson",
            "unknown field `dependson`, expected one of `task_key`, `description`, `depends_on`",
        ),
        case(
            "missing field",
            "name: x\ntasks:\n  - wasm_task: {module: m}\n",
            (3, 5),
            "tasks[0]",
            "missing field `task_key`",
        ),
        case(
            "wrong type",
            "name: x\ntasks:\n  - task_key: a\n    max_retries: lots\n    wasm_task: {module: m}\n",
            (4, 18),
            "tasks[0].max_retries",
            "invalid type: string \"lots\", expected i32",
        ),
        case(
            "bad run_if",
            "name: x\ntasks:\n  - task_key: a\n    run_if: ALWAYS\n    wasm_task: {module: m}\n",
            (4, 13),
            "tasks[0].run_if",
            "unknown variant `ALWAYS`, expected one of `ALL_SUCCESS`",
        ),
        case(
            "duplicate task_key",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n  - task_key: a\n    wasm_task: {module: m}\n",
            (5, 15),
            "tasks[1].task_key",
            "duplicate task_key `a` (first at line 3)",
        ),
        case(
            "bad task_key",
            "name: x\ntasks:\n  - task_key: a b\n    wasm_task: {module: m}\n",
            (3, 15),
            "tasks[0].task_key",
            "task_key \"a b\" must be 1 to 100 characters",
        ),
        case(
            "unknown depends_on",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n  - task_key: b\n    depends_on: [{task_key: c}]\n    wasm_task: {module: m}\n",
            (6, 29),
            "tasks[1].depends_on[0].task_key",
            "depends_on `c` is not a task of this job: expected one of `a`",
        ),
        case(
            "self dependency",
            "name: x\ntasks:\n  - task_key: a\n    depends_on: [{task_key: a}]\n    wasm_task: {module: m}\n",
            (4, 29),
            "tasks[0].depends_on[0].task_key",
            "task `a` depends on itself",
        ),
        case(
            "cycle",
            "name: x\ntasks:\n  - task_key: a\n    depends_on: [{task_key: c}]\n    wasm_task: {module: m}\n  - task_key: b\n    depends_on: [{task_key: a}]\n    wasm_task: {module: m}\n  - task_key: c\n    depends_on: [{task_key: b}]\n    wasm_task: {module: m}\n",
            (4, 29),
            "tasks[0].depends_on[0].task_key",
            "cycle in depends_on: a -> b -> c -> a",
        ),
        case(
            "outcome on a wasm task",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n  - task_key: b\n    depends_on: [{task_key: a, outcome: 'true'}]\n    wasm_task: {module: m}\n",
            (6, 41),
            "tasks[1].depends_on[0].outcome",
            "`outcome` applies only to a dependency on a condition_task, and `a` is not one",
        ),
        case(
            "no kind",
            "name: x\ntasks:\n  - task_key: a\n",
            (3, 5),
            "tasks[0]",
            "task `a` needs exactly one of `wasm_task`, `condition_task`, `for_each_task` and `run_job_task`, found none",
        ),
        case(
            "two kinds",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n    condition_task: {op: EQUAL_TO, left: '1', right: '1'}\n",
            (3, 5),
            "tasks[0]",
            "found wasm_task and condition_task",
        ),
        case(
            "unknown reference",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task:\n      module: m\n      parameters: ['{{job.nope}}']\n",
            (6, 20),
            "tasks[0].wasm_task.parameters[0]",
            "unknown reference {{job.nope}}",
        ),
        case(
            "reference to a task that is not upstream",
            "name: x\ntasks:\n  - task_key: ingest\n    wasm_task: {module: m}\n  - task_key: report\n    wasm_task:\n      module: m\n      env: {ROWS: '{{tasks.ingest.values.rows}}'}\n",
            (8, 19),
            "tasks[1].wasm_task.env.ROWS",
            "`tasks.ingest.values.rows` refers to task `ingest`, which is not upstream of `report`",
        ),
        case(
            "undefined parameter",
            "name: x\nparameters: [{name: region, default: eu}]\ntasks:\n  - task_key: a\n    wasm_task: {module: m, parameters: ['{{job.parameters.regoin}}']}\n",
            (5, 41),
            "tasks[0].wasm_task.parameters[0]",
            "undefined parameter `regoin`: expected one of `region`",
        ),
        case(
            "input outside a for-each task",
            "name: x\ntasks:\n  - task_key: a\n    condition_task: {op: EQUAL_TO, left: '{{input}}', right: x}\n",
            (4, 42),
            "tasks[0].condition_task.left",
            "`input` is only available in the task of a for_each_task",
        ),
        server(case(
            "module path under the server policy",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: ./a.wasm}\n",
            (4, 25),
            "tasks[0].wasm_task.module",
            "module paths are resolved by `weir deploy`; the API takes sha256:<hex> or name[@version]",
        )),
        case(
            "bad module reference",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: 'sha256:abc'}\n",
            (4, 25),
            "tasks[0].wasm_task.module",
            "is not a valid digest",
        ),
        case(
            "mount from s3",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task:\n      module: m\n      mounts:\n        - {source: 's3://b/p', path: /lake}\n",
            (7, 20),
            "tasks[0].wasm_task.mounts[0].source",
            "mount sources must be local directories (file://)",
        ),
        case(
            "mount on /weir",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task:\n      module: m\n      mounts:\n        - {source: data, path: /weir/x}\n",
            (7, 32),
            "tasks[0].wasm_task.mounts[0].path",
            "is reserved",
        ),
        case(
            "reserved environment variable",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m, env: {WEIR_RUN_ID: '1'}}\n",
            (4, 34),
            "tasks[0].wasm_task.env.WEIR_RUN_ID",
            "is reserved",
        ),
        case(
            "max_retries below -1",
            "name: x\ntasks:\n  - task_key: a\n    max_retries: -2\n    wasm_task: {module: m}\n",
            (4, 18),
            "tasks[0].max_retries",
            "max_retries -2 is out of range: expected -1 (unlimited) or more",
        ),
        case(
            "memory limit",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m, memory_limit_mb: 0}\n",
            (4, 45),
            "tasks[0].wasm_task.memory_limit_mb",
            "expected 1 to 65536",
        ),
        case(
            "for-each concurrency and nested depends_on",
            "name: x\ntasks:\n  - task_key: a\n    for_each_task:\n      inputs: '[1, 2]'\n      concurrency: 101\n      task: {task_key: i, wasm_task: {module: m}}\n",
            (6, 20),
            "tasks[0].for_each_task.concurrency",
            "expected 1 to 100",
        ),
        case(
            "for-each inputs that are neither an array nor a reference",
            "name: x\ntasks:\n  - task_key: a\n    for_each_task:\n      inputs: '1, 2'\n      task: {task_key: i, wasm_task: {module: m}}\n",
            (5, 15),
            "tasks[0].for_each_task.inputs",
            "is not a JSON array",
        ),
        case(
            "run_job_task with both targets",
            "name: x\ntasks:\n  - task_key: a\n    run_job_task: {job_id: 1, job_name: b}\n",
            (4, 5),
            "tasks[0].run_job_task",
            "run_job_task needs exactly one of `job_id` and `job_name`, found both",
        ),
        case(
            "schedule and trigger",
            "name: x\nschedule: {quartz_cron_expression: '0 * * * * ?'}\ntrigger: {periodic: {interval: 1, unit: HOURS}}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (3, 1),
            "trigger",
            "at most one of `schedule`, `trigger` and `continuous`, found `schedule` and `trigger`",
        ),
        case(
            "bad cron",
            "name: x\nschedule:\n  quartz_cron_expression: '0 0 25 * * ?'\n  timezone_id: UTC\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (3, 27),
            "schedule.quartz_cron_expression",
            "bad Quartz cron expression \"0 0 25 * * ?\": hours field \"25\": 25 is out of range 0-23",
        ),
        case(
            "cron with five fields",
            "name: x\nschedule: {quartz_cron_expression: '*/5 * * * *'}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 36),
            "schedule.quartz_cron_expression",
            "expected 6 or 7 fields (seconds minutes hours day-of-month month day-of-week [year]), found 5",
        ),
        case(
            "unknown time zone",
            "name: x\nschedule: {quartz_cron_expression: '0 0 * * * ?', timezone_id: Europe/Pariss}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 64),
            "schedule.timezone_id",
            "timezone_id \"Europe/Pariss\" is not an IANA time zone",
        ),
        case(
            "periodic interval of 0",
            "name: x\ntrigger: {periodic: {interval: 0, unit: SECONDS}}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 32),
            "trigger.periodic.interval",
            "interval 0 is out of range: expected at least 1",
        ),
        case(
            "bad table name",
            "name: x\ntrigger: {table_update: {table_names: [orders]}}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 40),
            "trigger.table_update.table_names[0]",
            "must be catalog.schema.table",
        ),
        case(
            "bad webhook",
            "name: x\nwebhook_notifications: {on_failure: [{url: 'ftp://x'}]}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 44),
            "webhook_notifications.on_failure[0].url",
            "must be an http:// or https:// URL",
        ),
        case(
            "streaming backlog alerts",
            "name: x\nemail_notifications: {on_streaming_backlog_exceeded: [a@b.c]}\ntasks: [{task_key: a, wasm_task: {module: m}}]\n",
            (2, 23),
            "email_notifications.on_streaming_backlog_exceeded",
            "on_streaming_backlog_exceeded is not supported",
        ),
        case(
            "task alert filters",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: m}\n    notification_settings: {alert_on_last_attempt: yes_please}\n",
            (5, 52),
            "tasks[0].notification_settings.alert_on_last_attempt",
            "expected a boolean",
        ),
        case(
            "empty document",
            "# nothing here\n",
            (1, 1),
            "",
            "the document is empty",
        ),
    ];
    check_cases(Format::Yaml, &cases);
}

#[test]
fn json_errors_are_located() {
    let cases = [
        case(
            "syntax",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n}\n",
            (4, 1),
            "tasks[0]",
            "json syntax error: expected a value",
        ),
        case(
            "duplicate key",
            "{\"name\": \"x\", \"tasks\": [], \"name\": \"y\"}",
            (1, 28),
            "",
            "duplicate key `name` (first at line 1)",
        ),
        case(
            "unknown field",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"dependson\": [], \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (4, 23),
            "tasks[0].dependson",
            "unknown field `dependson`, expected one of",
        ),
        case(
            "wrong type",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"timeout_seconds\": -5, \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (4, 42),
            "tasks[0].timeout_seconds",
            "invalid value: integer `-5`, expected u64",
        ),
        case(
            "bad run_if",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"run_if\": \"always\", \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (4, 33),
            "tasks[0].run_if",
            "unknown variant `always`",
        ),
        case(
            "duplicate task_key",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"m\"}},\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (5, 18),
            "tasks[1].task_key",
            "duplicate task_key `a` (first at line 4)",
        ),
        case(
            "unknown depends_on",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"depends_on\": [{\"task_key\": \"b\"}], \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (4, 51),
            "tasks[0].depends_on[0].task_key",
            "depends_on `b` is not a task of this job: the job has no other task",
        ),
        case(
            "cycle",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"depends_on\": [{\"task_key\": \"b\"}], \"wasm_task\": {\"module\": \"m\"}},\n    {\"task_key\": \"b\", \"depends_on\": [{\"task_key\": \"a\"}], \"wasm_task\": {\"module\": \"m\"}}\n  ]\n}\n",
            (4, 51),
            "tasks[0].depends_on[0].task_key",
            "cycle in depends_on: a -> b -> a",
        ),
        case(
            "reference to a task that is not upstream",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"m\"}},\n    {\"task_key\": \"b\", \"condition_task\": {\"op\": \"EQUAL_TO\", \"left\": \"{{tasks.a.result_state}}\", \"right\": \"SUCCESS\"}}\n  ]\n}\n",
            (5, 68),
            "tasks[1].condition_task.left",
            "`tasks.a.result_state` refers to task `a`, which is not upstream of `b`",
        ),
        case(
            "unknown reference",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"m\", \"parameters\": [\"{{job.start_time.week}}\"]}}\n  ]\n}\n",
            (4, 67),
            "tasks[0].wasm_task.parameters[0]",
            "unknown argument `week`",
        ),
        case(
            "bad mount",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"m\", \"mounts\": [{\"source\": \"data\", \"path\": \"/\"}]}}\n  ]\n}\n",
            (4, 90),
            "tasks[0].wasm_task.mounts[0].path",
            "whole filesystem",
        ),
        case(
            "missing field",
            "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"env\": {}}}\n  ]\n}\n",
            (4, 23),
            "tasks[0].wasm_task",
            "missing field `module`",
        ),
        Case {
            policy: PathPolicy::Server,
            ..case(
                "module path under the server policy",
                "{\n  \"name\": \"x\",\n  \"tasks\": [\n    {\"task_key\": \"a\", \"wasm_task\": {\"module\": \"/srv/a.wasm\"}}\n  ]\n}\n",
                (4, 47),
                "tasks[0].wasm_task.module",
                "module paths are resolved by `weir deploy`",
            )
        },
        case(
            "bad periodic unit",
            "{\"name\": \"x\", \"trigger\": {\"periodic\": {\"interval\": 0, \"unit\": \"FORTNIGHTS\"}}, \"tasks\": []}",
            (1, 63),
            "trigger.periodic.unit",
            "unknown variant `FORTNIGHTS`, expected one of `SECONDS`, `MINUTES`",
        ),
        case("not a job", "[1, 2]", (1, 1), "", "the document is a list"),
    ];
    check_cases(Format::Json, &cases);
}
