//! Sessions stuck half open, and when to reset them.
//!
//! When two gobgpd 3.10 dial each other at the same moment, one of them
//! can keep the connection it dialled without using or closing it (its
//! connect loop returns when the FSM leaves Active, leaving open a socket
//! it has just connected). The other side takes that connection, sends its OPEN and
//! waits for one in OpenSent for the hold time RFC 4271 §8.2.2 suggests
//! for that state: 4 minutes, during which the session stays down and no
//! route passes between two VTEPs. An OPEN comes back within milliseconds
//! from a live peer, so the agent resets a session that has stayed in
//! OpenSent or OpenConfirm for [`OPEN_STUCK`]: gobgpd closes the
//! connection, and the next attempt is a fresh one on both sides.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use super::gobgp::PeerRow;

/// How long a session may wait for its peer's OPEN or KEEPALIVE.
pub const OPEN_STUCK: Duration = Duration::from_secs(15);

/// What to ask of gobgpd for a peer. A session is reset by disabling
/// then enabling its peer: gobgpd 3.10 sends a reset's NOTIFICATION only
/// on an established session, and takes one admin state change at a
/// time (it drops an enable sent before it has acted on the disable).
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Disable(String),
    Enable(String),
}

/// Since when each peer's session has been half open, and where the
/// resets under way are.
#[derive(Default)]
pub struct Stuck {
    since: BTreeMap<String, Instant>,
    resets: BTreeMap<String, Reset>,
}

/// A reset under way.
#[derive(Clone, Copy)]
enum Reset {
    /// Disabled at that moment, not yet seen down.
    Disabling(Instant),
    /// Seen down: enabled (again at every look) until seen up.
    Enabling,
}

impl Stuck {
    /// Takes the sessions' states seen at `now`; returns what to do: a
    /// peer half open for [`OPEN_STUCK`] or more is disabled, then, once
    /// seen down, enabled again (as often as it takes to be seen up). A
    /// disable not acted on within [`OPEN_STUCK`] is forgotten.
    pub fn observe(&mut self, peers: &[PeerRow], now: Instant) -> Vec<Step> {
        let since = std::mem::take(&mut self.since);
        let resets = std::mem::take(&mut self.resets);
        let mut steps = Vec::new();
        for p in peers {
            let a = &p.address;
            let reset = match (resets.get(a).copied(), p.admin_down) {
                (Some(Reset::Disabling(_) | Reset::Enabling), true) => Some(Reset::Enabling),
                (Some(Reset::Disabling(t)), false) if now.duration_since(t) < OPEN_STUCK => {
                    Some(Reset::Disabling(t))
                }
                _ => None,
            };
            if let Some(r) = reset {
                if matches!(r, Reset::Enabling) {
                    steps.push(Step::Enable(a.clone()));
                }
                self.resets.insert(a.clone(), r);
                continue;
            }
            if p.admin_down || !matches!(p.state, "opensent" | "openconfirm") {
                continue;
            }
            let from = since.get(a).copied().unwrap_or(now);
            if now.duration_since(from) >= OPEN_STUCK {
                steps.push(Step::Disable(a.clone()));
                self.resets.insert(a.clone(), Reset::Disabling(now));
            } else {
                self.since.insert(a.clone(), from);
            }
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "198.18.1.1";

    fn row(state: &'static str, admin_down: bool) -> PeerRow {
        PeerRow {
            address: P.into(),
            asn: 65000,
            state,
            admin_down,
            received: 0,
            accepted: 0,
            advertised: 0,
        }
    }

    #[test]
    fn a_session_half_open_for_the_limit_is_disabled_then_enabled() {
        let mut s = Stuck::default();
        let t0 = Instant::now();
        let other = PeerRow {
            address: "198.18.2.1".into(),
            ..row("active", false)
        };
        let sent = [row("opensent", false), other];
        assert!(s.observe(&sent, t0).is_empty());
        assert!(s.observe(&sent, t0 + OPEN_STUCK / 2).is_empty());
        assert_eq!(s.observe(&sent, t0 + OPEN_STUCK), [Step::Disable(P.into())]);
        // Not yet acted on: the disable is not sent again, nor the enable.
        assert!(s.observe(&sent, t0 + OPEN_STUCK * 3 / 2).is_empty());
        // Down: enabled, again and again until it is seen up.
        let down = [row("idle", true)];
        let t = t0 + OPEN_STUCK * 3;
        assert_eq!(s.observe(&down, t), [Step::Enable(P.into())]);
        assert_eq!(s.observe(&down, t), [Step::Enable(P.into())]);
        assert!(s.observe(&[row("active", false)], t).is_empty());
        // Half open again later: a new clock.
        let again = [row("openconfirm", false)];
        assert!(s.observe(&again, t).is_empty());
        assert!(s.observe(&again, t + OPEN_STUCK / 2).is_empty());
        assert_eq!(s.observe(&again, t + OPEN_STUCK), [Step::Disable(P.into())]);
    }

    #[test]
    fn a_session_that_moves_on_is_forgotten() {
        let mut s = Stuck::default();
        let t0 = Instant::now();
        assert!(s.observe(&[row("opensent", false)], t0).is_empty());
        let up = [row("established", false)];
        assert!(s.observe(&up, t0 + OPEN_STUCK / 2).is_empty());
        let again = [row("opensent", false)];
        assert!(s.observe(&again, t0 + OPEN_STUCK).is_empty());
        assert!(s.observe(&again, t0 + OPEN_STUCK * 3 / 2).is_empty());
        assert_eq!(
            s.observe(&again, t0 + OPEN_STUCK * 2),
            [Step::Disable(P.into())]
        );
    }

    #[test]
    fn a_disable_never_acted_on_is_forgotten_and_sent_again() {
        let mut s = Stuck::default();
        let t0 = Instant::now();
        let sent = [row("opensent", false)];
        assert!(s.observe(&sent, t0).is_empty());
        assert_eq!(s.observe(&sent, t0 + OPEN_STUCK), [Step::Disable(P.into())]);
        // Forgotten after the limit: a new clock, then a new disable.
        assert!(s.observe(&sent, t0 + OPEN_STUCK * 2).is_empty());
        assert_eq!(
            s.observe(&sent, t0 + OPEN_STUCK * 3),
            [Step::Disable(P.into())]
        );
    }

    #[test]
    fn a_peer_disabled_by_someone_else_is_left_alone() {
        let mut s = Stuck::default();
        let t0 = Instant::now();
        // Neither disabled (even in a state that would be reset) nor
        // enabled again, however long it is seen so.
        for state in ["opensent", "idle"] {
            for k in 0..4 {
                let seen = [row(state, true)];
                assert!(s.observe(&seen, t0 + OPEN_STUCK * k).is_empty(), "{state}");
            }
        }
    }
}
