//! `weir deploy PATH...`: reads every spec first (nothing changes if any is wrong), pushes the
//! modules referenced by path, then creates or updates each job by name and says what changed.

use super::client::{ApiFailure, Context};
use super::{CliResult, modules};
use crate::spec::{JobSettings, ModuleRef, PathPolicy, SpecDocument, SpecError, Task};
use anyhow::Context as _;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The spec files a list of paths names: files as given, directories searched recursively for
/// `.yaml`, `.yml` and `.json` (hidden entries skipped), in name order.
fn spec_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read directory {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out)?;
            } else if matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{} does not exist", p.display());
        }
    }
    if out.is_empty() {
        anyhow::bail!("no spec files (.yaml, .yml, .json) found in the given paths");
    }
    Ok(out)
}

/// One job read from a file, with where its parts are.
struct Planned {
    settings: JobSettings,
    doc: usize,
    path: String,
}

/// Every wasm task of a job with its field path: top-level tasks and for-each inner tasks.
fn wasm_tasks_mut<'a>(settings: &'a mut JobSettings, prefix: &str) -> Vec<(String, &'a mut Task)> {
    let mut out = Vec::new();
    for (i, t) in settings.tasks.iter_mut().enumerate() {
        let path = format!("{prefix}tasks[{i}]");
        // `if let` would keep `t` borrowed in the else branch (a known borrow-checker limit).
        #[allow(clippy::unnecessary_unwrap)]
        if t.for_each_task.is_some() {
            let fe = t.for_each_task.as_mut().expect("checked above");
            out.push((format!("{path}.for_each_task.task"), &mut fe.task));
        } else {
            out.push((path, t));
        }
    }
    out.into_iter()
        .filter(|(_, t)| t.wasm_task.is_some())
        .collect()
}

/// A local path resolved against the spec file's directory.
fn resolve(spec_file: &Path, p: &str) -> PathBuf {
    let p = Path::new(p.strip_prefix("file://").unwrap_or(p));
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        spec_file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// What changed between two settings, in words.
fn changes(old: &JobSettings, new: &JobSettings) -> Vec<String> {
    let (o, n) = (
        serde_json::to_value(old).unwrap_or_default(),
        serde_json::to_value(new).unwrap_or_default(),
    );
    let keys: BTreeSet<&String> = o
        .as_object()
        .into_iter()
        .chain(n.as_object())
        .flat_map(|m| m.keys())
        .collect();
    let mut out = Vec::new();
    for k in keys {
        if k == "tasks" || o.get(k) == n.get(k) {
            continue;
        }
        out.push(k.clone());
    }
    let tasks = |s: &JobSettings| -> BTreeMap<String, Value> {
        s.tasks
            .iter()
            .map(|t| {
                (
                    t.task_key.clone(),
                    serde_json::to_value(t).unwrap_or_default(),
                )
            })
            .collect()
    };
    let (ot, nt) = (tasks(old), tasks(new));
    let added: Vec<&String> = nt.keys().filter(|k| !ot.contains_key(*k)).collect();
    let removed: Vec<&String> = ot.keys().filter(|k| !nt.contains_key(*k)).collect();
    let changed: Vec<&String> = nt
        .iter()
        .filter(|(k, v)| ot.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k)
        .collect();
    let list = |v: Vec<&String>| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    if !added.is_empty() {
        out.push(format!("added tasks {}", list(added)));
    }
    if !removed.is_empty() {
        out.push(format!("removed tasks {}", list(removed)));
    }
    if !changed.is_empty() {
        out.push(format!("changed tasks {}", list(changed)));
    }
    if out.is_empty() && old != new {
        out.push("task order".into());
    }
    out
}

/// Orders jobs so a job referenced by a `run_job_task` (by name) is deployed before its user.
fn deploy_order(jobs: &[Planned]) -> Vec<usize> {
    let names: BTreeMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.settings.name.as_str(), i))
        .collect();
    let mut order = Vec::new();
    let mut state = vec![0u8; jobs.len()];
    fn visit(
        i: usize,
        jobs: &[Planned],
        names: &BTreeMap<&str, usize>,
        state: &mut [u8],
        order: &mut Vec<usize>,
    ) {
        if state[i] != 0 {
            return;
        }
        state[i] = 1;
        for t in &jobs[i].settings.tasks {
            if let Some(n) = t.run_job_task.as_ref().and_then(|r| r.job_name.as_deref())
                && let Some(&j) = names.get(n)
            {
                visit(j, jobs, names, state, order);
            }
        }
        state[i] = 2;
        order.push(i);
    }
    for i in 0..jobs.len() {
        visit(i, jobs, &names, &mut state, &mut order);
    }
    order
}

/// Runs `weir deploy`.
pub async fn run(ctx: &Context, paths: &[PathBuf]) -> CliResult {
    let files = spec_files(paths)?;
    let mut docs = Vec::new();
    let mut errors: Vec<SpecError> = Vec::new();
    for f in &files {
        match SpecDocument::read(f, PathPolicy::Local) {
            Ok(doc) => docs.push((f.clone(), doc)),
            Err(e) => errors.extend(e.0),
        }
    }
    let mut planned: Vec<Planned> = Vec::new();
    let mut uploads: BTreeMap<PathBuf, String> = BTreeMap::new();
    let mut seen_names: BTreeMap<String, String> = BTreeMap::new();
    for (d, (file, doc)) in docs.iter().enumerate() {
        for job in doc.jobs() {
            let prefix = if job.path.is_empty() {
                String::new()
            } else {
                format!("{}.", job.path)
            };
            let mut settings = job.settings.clone();
            let here = format!("{}", file.display());
            if let Some(first) = seen_names.insert(settings.name.clone(), here.clone()) {
                errors.push(doc.error(
                    &format!("{prefix}name"),
                    format!("job name `{}` is also used in {first}", settings.name),
                ));
            }
            for (path, task) in wasm_tasks_mut(&mut settings, &prefix) {
                let w = task.wasm_task.as_mut().expect("wasm tasks only");
                match ModuleRef::parse(&w.module) {
                    Ok(ModuleRef::Path(p)) => {
                        let abs = resolve(file, &p);
                        if abs.is_file() {
                            uploads
                                .entry(abs.clone())
                                .or_insert_with(|| modules::default_name(&abs));
                        } else {
                            errors.push(doc.error(
                                &format!("{path}.wasm_task.module"),
                                format!("module file {p:?} does not exist (looked for {}); build it first", abs.display()),
                            ));
                        }
                    }
                    Ok(ModuleRef::Named { name, version }) => {
                        let mut q = vec![("name", name.clone())];
                        if let Some(v) = version {
                            q.push(("version", v.to_string()));
                        }
                        if let Err(e) = ctx.get("/api/weir/modules/get", &q).await {
                            errors.push(
                                doc.error(&format!("{path}.wasm_task.module"), not_found_or(e)?),
                            );
                        }
                    }
                    Ok(ModuleRef::Digest(d)) => {
                        if let Err(e) = ctx
                            .get("/api/weir/modules/get", &[("digest", d.clone())])
                            .await
                        {
                            errors.push(
                                doc.error(&format!("{path}.wasm_task.module"), not_found_or(e)?),
                            );
                        }
                    }
                    Err(e) => errors.push(doc.error(&format!("{path}.wasm_task.module"), e)),
                }
                for (m, mount) in w.mounts.iter_mut().enumerate() {
                    let abs = resolve(file, &mount.source);
                    if !abs.is_dir() {
                        errors.push(doc.error(
                            &format!("{path}.wasm_task.mounts[{m}].source"),
                            format!(
                                "mount source {:?} is not a directory (looked for {})",
                                mount.source,
                                abs.display()
                            ),
                        ));
                        continue;
                    }
                    let abs = abs.canonicalize().unwrap_or(abs);
                    mount.source = format!("file://{}", abs.display());
                }
            }
            planned.push(Planned {
                settings,
                doc: d,
                path: job.path.clone(),
            });
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::bail!(
            "deploy refused: {} problem(s) in the specs; nothing was changed",
            errors.len()
        );
    }

    let mut pushed = Vec::new();
    let mut digests: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (path, name) in &uploads {
        let out = modules::push(ctx, path, name).await?;
        let digest = out["digest"].as_str().unwrap_or_default().to_string();
        if !ctx.json() {
            let what = if out["new_blob"].as_bool() == Some(true) {
                "pushed"
            } else {
                "unchanged"
            };
            println!(
                "{what} module {name}@{} {digest} ({} bytes)",
                out["version"], out["size"]
            );
        }
        digests.insert(path.clone(), digest);
        pushed.push(out);
    }
    let mut results = Vec::new();
    for i in deploy_order(&planned) {
        let p = &mut planned[i];
        let (file, _) = &docs[p.doc];
        for (_, task) in wasm_tasks_mut(&mut p.settings, "") {
            let w = task.wasm_task.as_mut().expect("wasm tasks only");
            if let Ok(ModuleRef::Path(rel)) = ModuleRef::parse(&w.module) {
                w.module = digests[&resolve(file, &rel)].clone();
            }
        }
        let name = p.settings.name.clone();
        let existing = ctx
            .get(
                "/api/2.2/jobs/list",
                &[("name", name.clone()), ("expand_tasks", "true".into())],
            )
            .await?;
        let found = existing["jobs"].as_array().and_then(|a| a.first()).cloned();
        let body = serde_json::to_value(&p.settings)?;
        let result = match found {
            None => {
                let out = ctx
                    .post("/api/2.2/jobs/create", &body)
                    .await
                    .map_err(|e| located(&docs[p.doc].1, &p.path, e))?;
                let id = out["job_id"].as_i64().unwrap_or_default();
                if !ctx.json() {
                    println!("created job {name} (job_id {id})");
                }
                json!({"name": name, "job_id": id, "action": "created", "changes": []})
            }
            Some(job) => {
                let id = job["job_id"].as_i64().unwrap_or_default();
                let old: Option<JobSettings> = serde_json::from_value(job["settings"].clone()).ok();
                let diff = old
                    .as_ref()
                    .map(|o| changes(o, &p.settings))
                    .unwrap_or_else(|| vec!["settings".into()]);
                if diff.is_empty() {
                    if !ctx.json() {
                        println!("unchanged job {name} (job_id {id})");
                    }
                    json!({"name": name, "job_id": id, "action": "unchanged", "changes": []})
                } else {
                    ctx.post(
                        "/api/2.2/jobs/reset",
                        &json!({"job_id": id, "new_settings": body}),
                    )
                    .await
                    .map_err(|e| located(&docs[p.doc].1, &p.path, e))?;
                    if !ctx.json() {
                        println!("updated job {name} (job_id {id}): {}", diff.join("; "));
                    }
                    json!({"name": name, "job_id": id, "action": "updated", "changes": diff})
                }
            }
        };
        results.push(result);
    }
    if ctx.json() {
        ctx.print_json(&json!({"modules": pushed, "jobs": results}));
    }
    Ok(ExitCode::SUCCESS)
}

/// A 404 from a module lookup becomes a spec error message; other failures stop the deploy.
fn not_found_or(e: anyhow::Error) -> anyhow::Result<String> {
    match e.downcast::<ApiFailure>() {
        Ok(f) if f.status == 404 => Ok(f.message),
        Ok(f) => Err(f.into()),
        Err(e) => Err(e),
    }
}

/// Points a server-side refusal at the job in its file.
fn located(doc: &SpecDocument, job_path: &str, e: anyhow::Error) -> anyhow::Error {
    let at = doc.error(job_path, "");
    anyhow::anyhow!("{}:{}:{}: {e:#}", at.source, at.line, at.column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(v: Value) -> JobSettings {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn changes_name_fields_and_tasks() {
        let old = settings(
            json!({"name": "j", "tasks": [{"task_key": "a", "wasm_task": {"module": "m"}}, {"task_key": "b", "wasm_task": {"module": "m"}}]}),
        );
        let new = settings(
            json!({"name": "j", "max_concurrent_runs": 3, "tasks": [{"task_key": "a", "wasm_task": {"module": "n"}}, {"task_key": "c", "wasm_task": {"module": "m"}}]}),
        );
        let c = changes(&old, &new);
        assert_eq!(
            c,
            [
                "max_concurrent_runs",
                "added tasks c",
                "removed tasks b",
                "changed tasks a"
            ]
        );
        assert!(changes(&old, &old).is_empty());
    }

    #[test]
    fn referenced_jobs_deploy_first() {
        let parent = settings(
            json!({"name": "parent", "tasks": [{"task_key": "c", "run_job_task": {"job_name": "child"}}]}),
        );
        let child = settings(
            json!({"name": "child", "tasks": [{"task_key": "a", "wasm_task": {"module": "m"}}]}),
        );
        let jobs = vec![
            Planned {
                settings: parent,
                doc: 0,
                path: String::new(),
            },
            Planned {
                settings: child,
                doc: 0,
                path: String::new(),
            },
        ];
        assert_eq!(deploy_order(&jobs), [1, 0]);
    }
}
