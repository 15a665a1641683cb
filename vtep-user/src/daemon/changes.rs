//! Route, neighbour and link changes, for the datapath's decision caches:
//! a thread listens to rtnetlink and wakes the daemon's loop on each
//! (which bumps the routes' generation), and the loop vouches for the
//! thread in the instance's `WATCHED` while it hears them: cached
//! decisions may then live longer than the short expiry that stands in
//! for it otherwise.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use log::{debug, warn};
use tokio::sync::Notify;
use vtep_common::caches::WATCHED_TTL_NS;

use crate::{instance::Instance, netlink::Changes, sys, watched};

/// How far ahead each vouching reaches: as far as a decision made under
/// it may live (`caches::lifetime_ns`), so that steady conversations get
/// that lifetime. The loop renews it every second, so a loop stalled this
/// long (or a daemon killed) stops vouching, and cached decisions outlive
/// it by `caches::TTL_NS` at most.
const VOUCH_AHEAD: Duration = Duration::from_nanos(WATCHED_TTL_NS);

/// The listening thread, as the loop sees it.
pub struct Watcher {
    /// Woken on each change heard (or several).
    pub changed: Arc<Notify>,
    /// Whether the thread still hears changes.
    hearing: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts listening in a thread of its own (it blocks).
    pub fn start() -> anyhow::Result<Self> {
        let mut changes =
            Changes::open().context("cannot listen to route and neighbour changes")?;
        let changed = Arc::new(Notify::new());
        let hearing = Arc::new(AtomicBool::new(true));
        let (tell, heard) = (changed.clone(), hearing.clone());
        std::thread::Builder::new()
            .name("routes".into())
            .spawn(move || {
                loop {
                    if let Err(e) = changes.wait() {
                        heard.store(false, Ordering::Relaxed);
                        warn!(
                            "route and neighbour changes no longer heard (cached decisions now only expire): {e}"
                        );
                        return;
                    }
                    tell.notify_one();
                }
            })
            .context("cannot start the route watcher")?;
        Ok(Self { changed, hearing })
    }

    /// Vouches for the next [`VOUCH_AHEAD`] that changes are heard, if
    /// they still are (else withdraws).
    pub fn vouch(&self, inst: &Instance) {
        let until = if self.hearing.load(Ordering::Relaxed) {
            sys::coarse_now_ns() + VOUCH_AHEAD.as_nanos() as u64
        } else {
            0
        };
        write(inst, until);
    }
}

/// No longer vouches: the daemon stops.
pub fn withdraw(inst: &Instance) {
    write(inst, 0);
}

fn write(inst: &Instance, until: u64) {
    // The instance is down, or up from a build without the record (it
    // comes with the next `vtep up`): its caches keep the short expiry.
    if let Err(e) = watched::vouch(inst, until) {
        debug!("cannot vouch for route changes: {e:#}");
    }
}
