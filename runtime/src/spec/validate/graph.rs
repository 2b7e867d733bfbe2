//! The `depends_on` graph as validation sees it: cycles and transitive upstreams.

use crate::spec::JobSettings;
use std::collections::{HashMap, HashSet};

/// An edge: the upstream task's index and the edge's index in `depends_on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Edge {
    pub upstream: usize,
    pub position: usize,
}

/// Tasks by index with their resolvable edges (unknown, self and repeated edges left out: they
/// are reported on their own).
pub(super) struct Dag<'a> {
    keys: Vec<&'a str>,
    edges: Vec<Vec<Edge>>,
}

impl<'a> Dag<'a> {
    pub fn new(settings: &'a JobSettings) -> Dag<'a> {
        let keys: Vec<&str> = settings.tasks.iter().map(|t| t.task_key.as_str()).collect();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            index.entry(key).or_insert(i);
        }
        let edges = settings
            .tasks
            .iter()
            .enumerate()
            .map(|(i, task)| {
                let mut edges: Vec<Edge> = Vec::new();
                for (position, dependency) in task.depends_on.iter().enumerate() {
                    match index.get(dependency.task_key.as_str()) {
                        Some(&upstream)
                            if upstream != i && !edges.iter().any(|e| e.upstream == upstream) =>
                        {
                            edges.push(Edge { upstream, position })
                        }
                        _ => {}
                    }
                }
                edges
            })
            .collect();
        Dag { keys, edges }
    }

    /// Every cycle found by a depth-first search in document order, each as the tasks on it
    /// with the edge that leads on, starting at the task that comes first in the document.
    pub fn cycles(&self) -> Vec<Vec<(usize, Edge)>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Open,
            Done,
        }
        let mut marks = vec![Mark::New; self.keys.len()];
        let mut cycles: Vec<Vec<(usize, Edge)>> = Vec::new();
        let mut seen: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..self.keys.len() {
            if marks[start] != Mark::New {
                continue;
            }
            marks[start] = Mark::Open;
            // (task, index of the next edge to follow)
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            while let Some(&mut (task, ref mut next)) = stack.last_mut() {
                let Some(&edge) = self.edges[task].get(*next) else {
                    marks[task] = Mark::Done;
                    stack.pop();
                    continue;
                };
                *next += 1;
                match marks[edge.upstream] {
                    Mark::New => {
                        marks[edge.upstream] = Mark::Open;
                        stack.push((edge.upstream, 0));
                    }
                    Mark::Open => {
                        let from = stack
                            .iter()
                            .position(|(t, _)| *t == edge.upstream)
                            .unwrap_or(0);
                        let mut cycle: Vec<(usize, Edge)> = stack[from..]
                            .iter()
                            .map(|&(t, next)| (t, self.edges[t][next - 1]))
                            .collect();
                        let first = (0..cycle.len()).min_by_key(|&i| cycle[i].0).unwrap_or(0);
                        cycle.rotate_left(first);
                        let mut members: Vec<usize> = cycle.iter().map(|(t, _)| *t).collect();
                        members.sort_unstable();
                        if seen.insert(members) {
                            cycles.push(cycle);
                        }
                    }
                    Mark::Done => {}
                }
            }
        }
        cycles
    }

    /// A cycle in the order its tasks would run, "a -> b -> c -> a": each task depends on the
    /// one before it.
    pub fn describe(&self, cycle: &[(usize, Edge)]) -> String {
        let mut names: Vec<&str> = cycle.iter().map(|(t, _)| self.keys[*t]).collect();
        if let Some(after_first) = names.get_mut(1..) {
            after_first.reverse();
        }
        if let Some(&first) = names.first() {
            names.push(first);
        }
        names.join(" -> ")
    }

    /// The keys of every task that `task` depends on, directly or not.
    pub fn upstream(&self, task: usize) -> HashSet<&'a str> {
        let mut seen: HashSet<usize> = HashSet::new();
        let mut todo: Vec<usize> = vec![task];
        while let Some(t) = todo.pop() {
            for edge in &self.edges[t] {
                if seen.insert(edge.upstream) {
                    todo.push(edge.upstream);
                }
            }
        }
        seen.into_iter()
            .filter(|&t| t != task)
            .map(|t| self.keys[t])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::test_support::settings;

    fn dag_yaml(edges: &[(&str, &[&str])]) -> JobSettings {
        let mut text = String::from("name: g\ntasks:\n");
        for (key, deps) in edges {
            let deps: Vec<String> = deps.iter().map(|d| format!("{{task_key: {d}}}")).collect();
            text.push_str(&format!(
                "  - {{task_key: {key}, depends_on: [{}], wasm_task: {{module: m}}}}\n",
                deps.join(", ")
            ));
        }
        settings(&text)
    }

    #[test]
    fn names_each_cycle_from_its_first_task() {
        let job = dag_yaml(&[
            ("x", &[]),
            ("c", &["a"]),
            ("a", &["b", "x"]),
            ("b", &["c"]),
            ("p", &["q"]),
            ("q", &["p", "q"]),
        ]);
        let dag = Dag::new(&job);
        let cycles = dag.cycles();
        let named: Vec<String> = cycles.iter().map(|c| dag.describe(c)).collect();
        // c depends on a, a on b, b on c: b runs before c, a before b.
        assert_eq!(named, ["c -> b -> a -> c", "p -> q -> p"]);
        // The first edge of a cycle is the one to report: c's depends_on[0].
        assert_eq!(
            cycles[0][0],
            (
                1,
                Edge {
                    upstream: 2,
                    position: 0
                }
            )
        );
    }

    #[test]
    fn an_acyclic_graph_has_no_cycles_and_transitive_upstreams() {
        let job = dag_yaml(&[
            ("a", &[]),
            ("b", &["a"]),
            ("c", &["b", "a", "nope"]),
            ("d", &[]),
        ]);
        let dag = Dag::new(&job);
        assert!(dag.cycles().is_empty());
        let mut up: Vec<&str> = dag.upstream(2).into_iter().collect();
        up.sort_unstable();
        assert_eq!(up, ["a", "b"]);
        assert!(dag.upstream(3).is_empty());
    }
}
