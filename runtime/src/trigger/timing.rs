//! The two timing fields every event trigger shares (`file_arrival`, `table_update`):
//! `wait_after_last_change_seconds` lets a burst of changes settle into one run and
//! `min_time_between_triggers_seconds` spaces runs. Pure arithmetic: the caller passes the
//! times and sleeps on its [`Clock`](crate::clock::Clock) until the answer.

use crate::store::Millis;

/// A trigger's settle window and spacing, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    wait_ms: Millis,
    spacing_ms: Millis,
}

impl Timing {
    /// From the spec's `wait_after_last_change_seconds` and
    /// `min_time_between_triggers_seconds` (both may be 0).
    pub fn new(
        wait_after_last_change_seconds: u64,
        min_time_between_triggers_seconds: u64,
    ) -> Self {
        let ms = |s: u64| Millis::try_from(s.saturating_mul(1000)).unwrap_or(Millis::MAX);
        Timing {
            wait_ms: ms(wait_after_last_change_seconds),
            spacing_ms: ms(min_time_between_triggers_seconds),
        }
    }

    /// When a batch whose last change was at `last_change` may fire: once it has settled and
    /// the spacing since the last triggered run (`last_fire`) has passed.
    pub fn due_at(&self, last_change: Millis, last_fire: Option<Millis>) -> Millis {
        let settled = last_change.saturating_add(self.wait_ms);
        let spaced = last_fire.map_or(Millis::MIN, |t| t.saturating_add(self.spacing_ms));
        settled.max(spaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settle_and_spacing_both_hold() {
        let t = Timing::new(1, 60);
        assert_eq!(t.due_at(5_000, None), 6_000);
        assert_eq!(t.due_at(5_000, Some(0)), 60_000);
        assert_eq!(Timing::new(0, 0).due_at(7, Some(7)), 7);
        assert_eq!(Timing::new(u64::MAX, 0).due_at(1, None), Millis::MAX);
    }
}
