//! The DAG of a job's tasks, by index.

use crate::spec::{JobSettings, RunIf};
use std::collections::HashMap;

/// One edge into a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// Index of the upstream task.
    pub upstream: usize,
    /// For a condition upstream: the outcome this edge needs.
    pub outcome: Option<String>,
}

/// The tasks of a job as a graph. Validation guarantees it is acyclic and every edge resolves.
#[derive(Debug, Clone)]
pub struct Graph {
    keys: Vec<String>,
    index: HashMap<String, usize>,
    deps: Vec<Vec<Edge>>,
    dependents: Vec<Vec<usize>>,
    run_if: Vec<RunIf>,
}

impl Graph {
    /// Builds the graph of `settings.tasks`; edges to unknown tasks are dropped (validation
    /// refuses them before a job is stored).
    pub fn new(settings: &JobSettings) -> Graph {
        let keys: Vec<String> = settings.tasks.iter().map(|t| t.task_key.clone()).collect();
        let index: HashMap<String, usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut deps = vec![Vec::new(); keys.len()];
        let mut dependents = vec![Vec::new(); keys.len()];
        for (i, task) in settings.tasks.iter().enumerate() {
            for d in &task.depends_on {
                if let Some(&u) = index.get(&d.task_key) {
                    deps[i].push(Edge {
                        upstream: u,
                        outcome: d.outcome.clone(),
                    });
                    dependents[u].push(i);
                }
            }
        }
        let run_if = settings.tasks.iter().map(|t| t.run_if).collect();
        Graph {
            keys,
            index,
            deps,
            dependents,
            run_if,
        }
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the job has no tasks.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of task `i`.
    pub fn key(&self, i: usize) -> &str {
        &self.keys[i]
    }

    /// The index of a task key.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.index.get(key).copied()
    }

    /// Edges into task `i`.
    pub fn deps(&self, i: usize) -> &[Edge] {
        &self.deps[i]
    }

    /// Tasks that depend on task `i`.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// The run-if condition of task `i`.
    pub fn run_if(&self, i: usize) -> RunIf {
        self.run_if[i]
    }

    /// Whether task `i` is a leaf (nothing depends on it).
    pub fn is_leaf(&self, i: usize) -> bool {
        self.dependents[i].is_empty()
    }

    /// Task `i` and every task downstream of it, transitively.
    pub fn downstream_closure(&self, roots: impl IntoIterator<Item = usize>) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack: Vec<usize> = roots.into_iter().collect();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(self.dependents[i].iter().copied());
            }
        }
        (0..self.len()).filter(|&i| seen[i]).collect()
    }

    /// Every transitive upstream of `task`, in index order.
    pub fn ancestors(&self, task: usize) -> Vec<usize> {
        let mut seen = vec![false; self.len()];
        let mut stack = vec![task];
        while let Some(i) = stack.pop() {
            for e in &self.deps[i] {
                if !std::mem::replace(&mut seen[e.upstream], true) {
                    stack.push(e.upstream);
                }
            }
        }
        (0..self.len()).filter(|&i| seen[i]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_up_and_down_the_dag() {
        let settings: JobSettings = serde_json::from_value(serde_json::json!({
            "name": "g",
            "tasks": [
                {"task_key": "a", "wasm_task": {"module": "m"}},
                {"task_key": "b", "depends_on": [{"task_key": "a"}], "wasm_task": {"module": "m"}},
                {"task_key": "c", "depends_on": [{"task_key": "b"}], "wasm_task": {"module": "m"}},
                {"task_key": "d", "wasm_task": {"module": "m"}}
            ]
        }))
        .unwrap();
        let g = Graph::new(&settings);
        assert_eq!(g.ancestors(2), [0, 1]);
        assert_eq!(g.downstream_closure([1]), [1, 2]);
        assert!(g.is_leaf(2) && g.is_leaf(3) && !g.is_leaf(0));
        assert_eq!(g.index_of("d"), Some(3));
    }
}
