//! `mounts`: host directories preopened for a wasm task.

use super::Checker;
use crate::spec::location::FieldPath;
use crate::spec::{PathPolicy, WasmTask};
use std::collections::HashMap;

/// Checks the mounts of a wasm task: sources the policy allows, guest paths that are absolute,
/// not reserved by Weir, and unique.
pub(super) fn check(checker: &mut Checker<'_>, wasm: &WasmTask, path: &FieldPath) {
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    for (i, mount) in wasm.mounts.iter().enumerate() {
        let at = path.index(i);
        if let Some(problem) = mount_source_problem(&mount.source, checker.policy) {
            checker.report(at.key("source"), problem);
        }
        let guest_path = at.key("path");
        let normalized = mount.path.trim_end_matches('/');
        match mount_path_problem(&mount.path) {
            Some(problem) => checker.report(guest_path, problem),
            None => match first.get(normalized) {
                Some(earlier) => {
                    let message = format!(
                        "duplicate mount path {:?} (first at {})",
                        mount.path,
                        checker.first_at(earlier)
                    );
                    checker.report(guest_path, message);
                }
                None => {
                    first.insert(normalized, guest_path);
                }
            },
        }
    }
}

fn mount_path_problem(path: &str) -> Option<String> {
    let normalized = path.trim_end_matches('/');
    let under = |dir: &str| normalized == dir || normalized.starts_with(&format!("{dir}/"));
    if !path.starts_with('/') {
        Some(format!(
            "mount path {path:?} must be absolute, e.g. \"/lake\""
        ))
    } else if normalized.is_empty() {
        Some(format!(
            "mount path {path:?} would replace the task's whole filesystem: choose a directory \
             such as \"/lake\""
        ))
    } else if normalized[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        Some(format!(
            "mount path {path:?} must not contain empty, `.` or `..` components"
        ))
    } else if under("/weir") {
        Some(format!(
            "mount path {path:?} is reserved: Weir preopens /weir for the task's context and \
             output"
        ))
    } else if under("/input") {
        Some(format!(
            "mount path {path:?} is reserved: /input is the file-arrival trigger's directory"
        ))
    } else {
        None
    }
}

fn mount_source_problem(source: &str, policy: PathPolicy) -> Option<String> {
    if let Some(rest) = source.strip_prefix("file://") {
        return (!rest.starts_with('/') || rest.len() < 2).then(|| {
            format!("mount source {source:?} must be a file:///abs/dir URL (absolute, no host)")
        });
    }
    if source.contains("://") {
        return Some(format!(
            "mount sources must be local directories (file://), found {source:?}"
        ));
    }
    match policy {
        PathPolicy::Local if source.is_empty() => {
            Some("mount source is empty: expected file:///abs/dir or a directory path".to_string())
        }
        PathPolicy::Local => None,
        PathPolicy::Server => Some(format!(
            "mount source {source:?} is not a file:///abs/dir URL: the API takes URLs; \
             directory paths are resolved by `weir deploy`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_paths() {
        let cases = [
            ("/lake", None),
            ("/lake/", None),
            ("/a/b", None),
            ("lake", Some("must be absolute")),
            ("/", Some("whole filesystem")),
            ("//", Some("whole filesystem")),
            ("/a/../b", Some("`..` components")),
            ("/a//b", Some("empty")),
            ("/weir", Some("reserved")),
            ("/weir/x", Some("reserved")),
            ("/weirdo", None),
            ("/input", Some("file-arrival")),
            ("/input/sub", Some("file-arrival")),
        ];
        for (path, want) in cases {
            let got = mount_path_problem(path);
            match (want, &got) {
                (None, None) => {}
                (Some(fragment), Some(message)) => {
                    assert!(message.contains(fragment), "{path}: {message}")
                }
                _ => panic!("{path}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn mount_sources() {
        use PathPolicy::{Local, Server};
        let cases = [
            ("file:///srv/lake", Server, None),
            ("file:///srv/lake", Local, None),
            ("data", Local, None),
            ("/srv/lake", Local, None),
            ("", Local, Some("empty")),
            ("data", Server, Some("not a file:///abs/dir URL")),
            ("/srv/lake", Server, Some("not a file:///abs/dir URL")),
            ("file://host/x", Local, Some("no host")),
            ("file:///", Local, Some("no host")),
            (
                "s3://bucket/x",
                Local,
                Some("mount sources must be local directories (file://)"),
            ),
        ];
        for (source, policy, want) in cases {
            let got = mount_source_problem(source, policy);
            match (want, &got) {
                (None, None) => {}
                (Some(fragment), Some(message)) => {
                    assert!(message.contains(fragment), "{source}: {message}")
                }
                _ => panic!("{source} {policy:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
