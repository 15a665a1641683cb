//! When stale remote routes go: the agent keeps what gobgpd no longer has
//! across a reconnect to gobgpd (its peers have not sent their routes
//! yet) and across a neighbor's session loss (it is most likely
//! restarting), and sweeps once every peer is up again, or at a deadline.

use std::time::Instant;

/// When the remote routes held but no longer in gobgpd's table (kept
/// across a reconnect to gobgpd, or across a neighbor's session loss) are
/// swept: one tick after every peer is up (their routes have come in
/// meanwhile), or at the deadline.
#[derive(Clone, Copy, Debug)]
pub struct Sweep {
    pending: bool,
    ready: bool,
    deadline: Instant,
}

impl Sweep {
    /// A sweep due at `deadline` at the latest.
    pub fn by(deadline: Instant) -> Self {
        Self {
            pending: true,
            ready: false,
            deadline,
        }
    }

    /// Routes are kept until `until` at the latest (and until the peers
    /// are all up again).
    pub fn keep(&mut self, until: Instant) {
        let deadline = if self.pending {
            self.deadline.max(until)
        } else {
            until
        };
        *self = Self::by(deadline);
    }

    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Called every tick: whether to sweep now.
    pub fn due(&mut self, all_up: bool, now: Instant) -> bool {
        if !self.pending {
            return false;
        }
        if self.ready {
            self.pending = false;
            return true;
        }
        self.ready = all_up || now >= self.deadline;
        false
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_sweep_waits_one_tick_after_every_peer_is_up_or_for_its_deadline() {
        let now = Instant::now();
        let mut s = Sweep::by(now + Duration::from_secs(60));
        assert!(!s.due(false, now));
        assert!(!s.due(true, now), "one tick for the last peer's routes");
        assert!(s.due(false, now));
        assert!(!s.pending());
        s.keep(now + Duration::from_secs(120));
        assert!(!s.due(false, now + Duration::from_secs(119)));
        assert!(!s.due(false, now + Duration::from_secs(120)));
        assert!(s.due(false, now + Duration::from_secs(121)));
    }
}
