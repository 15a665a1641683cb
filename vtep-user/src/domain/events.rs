//! MAC mobility as it happens: the learned, moved and frozen MACs the
//! kernel programs report through the `EVENTS` ring buffer, and the aged
//! ones this reader removes itself, as typed rows.

use std::{
    os::fd::AsRawFd as _,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use aya::maps::{MapData, RingBuf};
use serde::Serialize;
use vtep_common::{
    consts::MAP_EVENTS,
    maps::{MacEvent, MacEventKind},
};

use super::Edit;
use crate::{
    instance::{Instance, coarse_now_ns},
    tables::{Location, views::At},
    values::{Mac, Vni},
};

/// One event, as `vtep events` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct EventRow {
    /// Wall-clock time, seconds since the Unix epoch.
    pub time: f64,
    pub event: &'static str,
    pub vni: Vni,
    pub mac: Mac,
    /// Where the MAC was (`None`: nowhere, it is new).
    pub old: Option<At>,
    /// Where it is now (`None`: gone).
    pub new: Option<At>,
}

/// Where a `MacEvent` says a MAC is, if anywhere.
fn at(remote: u32, ifindex: u32) -> Option<At> {
    (remote != 0 || ifindex != 0).then(|| Location::of(remote, ifindex).into())
}

impl EventRow {
    fn of(ev: &MacEvent) -> Option<Self> {
        let kind = MacEventKind::from_u32(ev.kind)?;
        // Event times are CLOCK_MONOTONIC_COARSE: place them on the wall
        // clock.
        let ago = Duration::from_nanos(coarse_now_ns().saturating_sub(ev.ts_ns));
        let time = SystemTime::now()
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        Some(EventRow {
            time,
            event: kind.name(),
            vni: Vni::recorded(ev.vni),
            mac: Mac(ev.mac),
            old: at(ev.old_remote, ev.old_ifindex),
            new: at(ev.new_remote, ev.new_ifindex),
        })
    }
}

/// The reader of one instance's events (one at a time: the ring buffer
/// hands each record to one reader).
pub struct Events<'a> {
    inst: &'a Instance,
    ring: RingBuf<MapData>,
    last_reap: Instant,
}

impl<'a> Events<'a> {
    pub fn open(inst: &'a Instance) -> anyhow::Result<Self> {
        inst.require_up()?;
        Ok(Self {
            inst,
            ring: inst.map(MAP_EVENTS)?,
            last_reap: Instant::now(),
        })
    }

    /// The events since the last call: what the kernel programs reported,
    /// and (once a second) the learned MACs idle for the ageing time,
    /// removed and reported as aged. Waits up to 200 ms when there is
    /// nothing.
    pub fn next_batch(&mut self) -> anyhow::Result<Vec<EventRow>> {
        let mut out = Vec::new();
        while let Some(item) = self.ring.next() {
            if item.len() >= size_of::<MacEvent>() {
                // SAFETY: the kernel programs write whole MacEvent records;
                // the length was checked and the read is unaligned-safe.
                let ev = unsafe { (item.as_ptr() as *const MacEvent).read_unaligned() };
                out.extend(EventRow::of(&ev));
            }
        }
        if self.last_reap.elapsed() >= Duration::from_secs(1) {
            let now = coarse_now_ns();
            // Another command holding the instance: reap at the next round.
            let stale = match Edit::try_begin(self.inst)? {
                Some(mut e) => e.reap_stale()?,
                None => Vec::new(),
            };
            for (k, e) in stale {
                let ev = MacEvent {
                    ts_ns: now,
                    kind: MacEventKind::Aged as u32,
                    vni: k.vni,
                    mac: k.mac,
                    old_remote: e.remote,
                    old_ifindex: e.ifindex,
                    ..MacEvent::default()
                };
                out.extend(EventRow::of(&ev));
            }
            self.last_reap = Instant::now();
        }
        if out.is_empty() {
            let mut pfd = libc::pollfd {
                fd: self.ring.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            unsafe { libc::poll(&mut pfd, 1, 200) };
        }
        Ok(out)
    }
}
