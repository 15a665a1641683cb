//! MAC mobility as it happens: the learned, moved and frozen MACs the
//! kernel programs report through the `EVENTS` ring buffer, and the aged
//! ones this reader removes itself, as typed rows.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aya::maps::{MapData, Queue, RingBuf};
use serde::Serialize;
use tokio::io::unix::AsyncFd;
use vtep_common::{
    addr::Addr,
    consts::{MAP_EVENTS, MAP_EVPN_EVENTS},
    maps::{MacEvent, MacEventKind},
};

use super::Edit;
use crate::{
    instance::Instance,
    sys,
    tables::{Location, views::At},
    values::{Mac, PeerVtep, Vni, ip_to_map},
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
fn at(remote: Addr, ifindex: u32, vid: u16) -> Option<At> {
    (!remote.is_none() || ifindex != 0).then(|| Location::of(remote, ifindex, vid).into())
}

impl EventRow {
    fn of(ev: &MacEvent) -> Option<Self> {
        let kind = MacEventKind::from_u32(ev.kind)?;
        // Event times are CLOCK_MONOTONIC_COARSE: place them on the wall
        // clock.
        let ago = Duration::from_nanos(sys::coarse_now_ns().saturating_sub(ev.ts_ns));
        let time = SystemTime::now()
            .checked_sub(ago)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        Some(EventRow {
            time,
            event: kind.name(),
            vni: Vni::recorded(ev.vni),
            mac: Mac(ev.mac),
            old: at(ev.old_remote, ev.old_ifindex, ev.old_vid),
            new: at(ev.new_remote, ev.new_ifindex, ev.new_vid),
        })
    }
}

/// A ring buffer of `MacEvent` records (one reader per ring: a ring
/// hands each record to one reader), waited on through the tokio
/// reactor.
pub struct Ring {
    ring: AsyncFd<RingBuf<MapData>>,
}

impl Ring {
    /// Opens ring `name` of `inst` (inside a tokio runtime).
    pub fn open(inst: &Instance, name: &str) -> anyhow::Result<Self> {
        inst.require_up()?;
        let ring: RingBuf<MapData> = inst.map(name)?;
        // SAFETY: the ring buffer owns its map's file descriptor, which
        // stays open and the same for as long as it lives, and the AsyncFd
        // owns the ring buffer.
        let ring = unsafe { AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE) }
            .map_err(|e| anyhow::anyhow!("cannot wait on the {name} ring buffer: {e}"))?;
        Ok(Self { ring })
    }

    /// The records there now, without waiting.
    pub fn drain(&mut self) -> Vec<MacEvent> {
        let mut out = Vec::new();
        let ring = self.ring.get_mut();
        while let Some(item) = ring.next() {
            if item.len() >= size_of::<MacEvent>() {
                // SAFETY: the kernel programs write whole MacEvent records;
                // the length was checked and the read is unaligned-safe.
                out.push(unsafe { (item.as_ptr() as *const MacEvent).read_unaligned() });
            }
        }
        out
    }

    /// Waits (up to `wait`) until records may be there.
    pub async fn wait(&mut self, wait: Duration) -> anyhow::Result<()> {
        // Readiness is cleared before the next drain: a record written
        // after it wakes the next wait.
        if let Ok(ready) = tokio::time::timeout(wait, self.ring.readable_mut()).await {
            ready?.clear_ready();
        }
        Ok(())
    }
}

/// The queue of MACs re-pointed by EVPN routes: the daemon's agent
/// pushes, `vtep events` pops (one reader at a time, as for the ring).
pub struct EvpnEvents(Queue<MapData, MacEvent>);

impl EvpnEvents {
    pub fn open(inst: &Instance) -> anyhow::Result<Self> {
        Ok(Self(inst.map(MAP_EVPN_EVENTS)?))
    }

    /// Reports `mac` of `vni` re-pointed from `old` to `new` by a route;
    /// when nobody reads and the queue is full, it is not reported.
    pub fn push(&mut self, vni: Vni, mac: Mac, old: Location, new: PeerVtep) {
        let (old_remote, old_ifindex, old_vid) = old.raw();
        let ev = MacEvent {
            ts_ns: sys::coarse_now_ns(),
            kind: MacEventKind::Evpn as u32,
            vni: vni.get(),
            mac: mac.0,
            old_remote,
            old_ifindex,
            old_vid,
            new_remote: ip_to_map(new.ip()),
            ..MacEvent::default()
        };
        if let Err(e) = self.0.push(ev, 0) {
            log::debug!("EVPN events queue: {e}");
        }
    }

    /// Everything queued.
    fn drain(&mut self) -> Vec<MacEvent> {
        std::iter::from_fn(|| self.0.pop(0).ok()).collect()
    }
}

/// The reader of one instance's events (`vtep events`).
pub struct Events<'a> {
    inst: &'a Instance,
    ring: Ring,
    evpn: EvpnEvents,
    last_reap: Instant,
}

/// How long a batch waits for the ring buffer when there is nothing.
const WAIT: Duration = Duration::from_millis(200);

impl<'a> Events<'a> {
    /// Opens the instance's ring buffer (inside a tokio runtime).
    pub fn open(inst: &'a Instance) -> anyhow::Result<Self> {
        Ok(Self {
            inst,
            ring: Ring::open(inst, MAP_EVENTS)?,
            evpn: EvpnEvents::open(inst)?,
            last_reap: Instant::now(),
        })
    }

    /// The events since the last call: what the kernel programs reported,
    /// and (once a second) the learned MACs idle for the ageing time,
    /// removed and reported as aged. Waits up to [`WAIT`] for the ring
    /// buffer when there is nothing.
    pub async fn next_batch(&mut self) -> anyhow::Result<Vec<EventRow>> {
        let mut out: Vec<EventRow> = self
            .ring
            .drain()
            .iter()
            .chain(&self.evpn.drain())
            .filter_map(EventRow::of)
            .collect();
        if self.last_reap.elapsed() >= Duration::from_secs(1) {
            let now = sys::coarse_now_ns();
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
            self.ring.wait(WAIT).await?;
        }
        Ok(out)
    }
}
