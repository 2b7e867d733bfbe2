//! Lakeflow's run-if semantics: whether a task whose dependencies are done runs, and if not,
//! which result it gets.

use crate::spec::RunIf;
use crate::store::ResultState;

/// How one finished dependency edge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeResult {
    /// The upstream succeeded (and a condition's outcome matched the edge).
    Succeeded,
    /// The upstream failed, timed out, or was itself skipped for an upstream failure.
    Failed,
    /// The upstream was canceled, or skipped for an upstream cancel.
    Canceled,
    /// The upstream was excluded, or a condition took the other branch.
    Excluded,
}

impl EdgeResult {
    /// Classifies an upstream result; `outcome_matches` is false when the edge needs a condition
    /// outcome the upstream did not produce.
    pub fn of(result: ResultState, outcome_matches: bool) -> EdgeResult {
        match result {
            ResultState::Success | ResultState::SuccessWithFailures if outcome_matches => {
                EdgeResult::Succeeded
            }
            ResultState::Success | ResultState::SuccessWithFailures => EdgeResult::Excluded,
            ResultState::Excluded => EdgeResult::Excluded,
            ResultState::Canceled | ResultState::UpstreamCanceled => EdgeResult::Canceled,
            ResultState::Failed
            | ResultState::Timedout
            | ResultState::UpstreamFailed
            | ResultState::MaximumConcurrentRunsReached => EdgeResult::Failed,
        }
    }
}

/// The decision for a task whose dependencies have all finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run it.
    Run,
    /// Do not run it; it ends with this result.
    Skip(ResultState),
}

/// Applies `run_if` to the results of all of a task's dependency edges.
///
/// Unmet ALL_SUCCESS / AT_LEAST_ONE_SUCCESS / NONE_FAILED give UPSTREAM_FAILED (or
/// UPSTREAM_CANCELED when nothing failed but something was canceled); unmet AT_LEAST_ONE_FAILED /
/// ALL_FAILED give EXCLUDED. A task whose dependencies were all excluded is excluded too.
pub fn decide(run_if: RunIf, edges: &[EdgeResult]) -> Decision {
    let count = |r: EdgeResult| edges.iter().filter(|&&e| e == r).count();
    let (ok, failed, canceled, excluded) = (
        count(EdgeResult::Succeeded),
        count(EdgeResult::Failed),
        count(EdgeResult::Canceled),
        count(EdgeResult::Excluded),
    );
    let n = edges.len();
    if n == 0 {
        return Decision::Run;
    }
    let upstream_problem = || {
        if failed > 0 {
            Decision::Skip(ResultState::UpstreamFailed)
        } else if canceled > 0 {
            Decision::Skip(ResultState::UpstreamCanceled)
        } else {
            Decision::Skip(ResultState::Excluded)
        }
    };
    match run_if {
        RunIf::AllSuccess if ok == n => Decision::Run,
        RunIf::AtLeastOneSuccess if ok >= 1 => Decision::Run,
        RunIf::NoneFailed if failed == 0 && canceled == 0 && ok >= 1 => Decision::Run,
        RunIf::AllSuccess | RunIf::AtLeastOneSuccess | RunIf::NoneFailed => upstream_problem(),
        RunIf::AllDone if excluded == n => Decision::Skip(ResultState::Excluded),
        RunIf::AllDone => Decision::Run,
        RunIf::AtLeastOneFailed if failed >= 1 => Decision::Run,
        RunIf::AllFailed if failed == n => Decision::Run,
        RunIf::AtLeastOneFailed | RunIf::AllFailed => Decision::Skip(ResultState::Excluded),
    }
}

#[cfg(test)]
mod tests {
    use super::EdgeResult as E;
    use super::*;
    use crate::store::ResultState as R;

    #[test]
    fn success_kinds_run_or_give_upstream_failed() {
        assert_eq!(
            decide(RunIf::AllSuccess, &[E::Succeeded, E::Succeeded]),
            Decision::Run
        );
        assert_eq!(
            decide(RunIf::AllSuccess, &[E::Succeeded, E::Failed]),
            Decision::Skip(R::UpstreamFailed)
        );
        assert_eq!(
            decide(RunIf::AtLeastOneSuccess, &[E::Succeeded, E::Failed]),
            Decision::Run
        );
        assert_eq!(
            decide(RunIf::AtLeastOneSuccess, &[E::Failed, E::Failed]),
            Decision::Skip(R::UpstreamFailed)
        );
        assert_eq!(
            decide(RunIf::NoneFailed, &[E::Succeeded, E::Excluded]),
            Decision::Run
        );
        assert_eq!(
            decide(RunIf::NoneFailed, &[E::Succeeded, E::Failed]),
            Decision::Skip(R::UpstreamFailed)
        );
        assert_eq!(
            decide(RunIf::AllSuccess, &[E::Succeeded, E::Canceled]),
            Decision::Skip(R::UpstreamCanceled)
        );
    }

    #[test]
    fn failure_kinds_run_or_give_excluded() {
        assert_eq!(
            decide(RunIf::AtLeastOneFailed, &[E::Succeeded, E::Failed]),
            Decision::Run
        );
        assert_eq!(
            decide(RunIf::AtLeastOneFailed, &[E::Succeeded, E::Succeeded]),
            Decision::Skip(R::Excluded)
        );
        assert_eq!(
            decide(RunIf::AllFailed, &[E::Failed, E::Failed]),
            Decision::Run
        );
        assert_eq!(
            decide(RunIf::AllFailed, &[E::Failed, E::Succeeded]),
            Decision::Skip(R::Excluded)
        );
    }

    #[test]
    fn all_done_runs_whatever_happened_unless_everything_was_excluded() {
        assert_eq!(
            decide(RunIf::AllDone, &[E::Failed, E::Succeeded]),
            Decision::Run
        );
        assert_eq!(decide(RunIf::AllDone, &[E::Canceled]), Decision::Run);
        assert_eq!(
            decide(RunIf::AllDone, &[E::Excluded, E::Excluded]),
            Decision::Skip(R::Excluded)
        );
    }

    #[test]
    fn excluded_branches_propagate() {
        assert_eq!(
            decide(RunIf::AllSuccess, &[E::Excluded]),
            Decision::Skip(R::Excluded)
        );
        assert_eq!(
            decide(RunIf::NoneFailed, &[E::Excluded, E::Excluded]),
            Decision::Skip(R::Excluded)
        );
    }

    #[test]
    fn edge_results_classify_upstream_results() {
        assert_eq!(EdgeResult::of(R::Success, true), E::Succeeded);
        assert_eq!(EdgeResult::of(R::Success, false), E::Excluded);
        assert_eq!(EdgeResult::of(R::UpstreamFailed, true), E::Failed);
        assert_eq!(EdgeResult::of(R::Timedout, true), E::Failed);
        assert_eq!(EdgeResult::of(R::UpstreamCanceled, true), E::Canceled);
    }
}
