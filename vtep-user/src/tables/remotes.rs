//! Remote VTEPs and their references: the rules that keep `REMOTES`
//! (which remote may send which VNI) and `PEERS` (one stats slot per
//! remote VTEP, whatever its VNIs) right.
//!
//! - A remote VTEP is in `REMOTES` for a VNI while something names it
//!   there (the VNI's flood list, static FDB entries): `refs` counts them.
//! - It is in `PEERS` while some VNI has it in `REMOTES`: `refs` counts
//!   the VNIs; its `PEER_STATS` slot is zeroed when taken and free again
//!   when the last VNI lets go.
//! - The first reference anywhere makes sure its underlay next hop stays
//!   resolved ([`Neighbours`]).
//!
//! The maps and the neighbour side effect are passed in, so the rules are
//! unit-tested on tables in memory.

use std::{collections::BTreeSet, net::IpAddr};

use vtep_common::{
    addr::Addr,
    consts::PEERS_CAPACITY,
    maps::{PeerInfo, RemoteInfo, RemoteKey},
};

use super::{
    TableError,
    map::{KvMap, MapFault},
    slots::{SlotCounters, Slots},
};
use crate::values::{PeerVtep, Vni, ip_from_map, ip_to_map};

/// Keeping remote VTEPs reachable: the side effect of their first
/// reference.
pub trait Neighbours {
    /// Makes sure the underlay next hop towards `remote` (from our `local`
    /// address) stays resolved. A remote the underlay cannot route is
    /// [`NeighbourError::Unroutable`]: its traffic is dropped (`no_route`)
    /// until the underlay routes it, which is no reason to refuse it.
    fn keep_resolved(&mut self, remote: PeerVtep, local: IpAddr) -> Result<(), NeighbourError>;
    /// Removes every neighbour entry made for this instance.
    fn forget_all(&mut self);
}

/// Why a next hop could not be kept resolved.
#[derive(Debug, thiserror::Error)]
pub enum NeighbourError {
    /// No route, or the kernel would not make the entry: worth a warning.
    #[error("{0}")]
    Unroutable(String),
    /// The record of the entries made is full or unwritable.
    #[error("cannot record the next hop made for {remote}: {fault}")]
    Record { remote: PeerVtep, fault: MapFault },
}

/// What a VNI gives the remote VTEPs it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VniRef {
    pub vni: Vni,
    /// The VNI's `VNI_STATS` slot.
    pub slot: u32,
    /// `REMOTE_F_*` bits for its remotes.
    pub flags: u32,
}

/// What dropping a reference left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unref {
    /// Other references remain (or there was none).
    Kept,
    /// That was the last: the remote may no longer send the VNI, and what
    /// was learned behind it there must go.
    Gone,
}

/// The `REMOTES` and `PEERS` tables with their rules.
pub struct Remotes<R, P, S> {
    pub(super) remotes: R,
    pub(super) peers: P,
    pub(super) peer_stats: S,
    slots: Slots,
    /// Remotes whose next hop this invocation already made sure of.
    resolved: BTreeSet<PeerVtep>,
    pub(super) neighbours: Box<dyn Neighbours>,
    /// Our own address, for next-hop lookups.
    local: IpAddr,
}

impl<R, P, S> Remotes<R, P, S>
where
    R: KvMap<RemoteKey, RemoteInfo>,
    P: KvMap<Addr, PeerInfo>,
    S: SlotCounters,
{
    pub fn new(
        remotes: R,
        peers: P,
        peer_stats: S,
        neighbours: Box<dyn Neighbours>,
        local: IpAddr,
    ) -> Self {
        Self {
            remotes,
            peers,
            peer_stats,
            slots: Slots::default(),
            resolved: BTreeSet::new(),
            neighbours,
            local,
        }
    }

    /// Forgets what this handle learned of the tables (slots in use,
    /// remotes resolved): for a new change under the lock.
    pub fn forget_cached(&mut self) {
        self.slots = Slots::default();
        self.resolved.clear();
    }

    fn key(vni: Vni, ip: PeerVtep) -> RemoteKey {
        RemoteKey {
            vni: vni.get(),
            ip: ip_to_map(ip.ip()),
        }
    }

    /// The entry of `ip` in `vni`, if it has one.
    pub fn get(&self, vni: Vni, ip: PeerVtep) -> Result<Option<RemoteInfo>, TableError> {
        self.remotes
            .lookup(&Self::key(vni, ip))
            .map_err(TableError::map("read", "remote VTEP"))
    }

    /// The `PEER_STATS` slot of `ip` in `vni` (0 if it has no entry there).
    pub fn peer_slot(&self, vni: Vni, ip: PeerVtep) -> Result<u32, TableError> {
        Ok(self.get(vni, ip)?.map_or(0, |r| r.peer))
    }

    /// One more reason for `ip` to send `v.vni`; returns its `PEER_STATS`
    /// slot. Nothing changes if it fails.
    pub fn add_ref(&mut self, v: VniRef, ip: PeerVtep) -> Result<u32, TableError> {
        let key = Self::key(v.vni, ip);
        let old = self.get(v.vni, ip)?;
        if old.is_none() && self.resolved.insert(ip) {
            match self.neighbours.keep_resolved(ip, self.local) {
                Ok(()) => {}
                Err(NeighbourError::Unroutable(why)) => log::warn!(
                    "remote VTEP {ip}: {why}; its traffic is dropped (no_route) until the underlay routes it"
                ),
                Err(e) => return Err(TableError::Neighbour(e)),
            }
        }
        let peer = match old {
            Some(r) => r.peer,
            None => self.ref_peer(ip)?,
        };
        let value = RemoteInfo {
            refs: old.map_or(0, |r| r.refs) + 1,
            slot: v.slot,
            flags: v.flags,
            peer,
        };
        if let Err(e) = self.remotes.put(key, value) {
            if old.is_none() {
                self.unref_peer(ip)?;
            }
            return Err(match e {
                MapFault::Full => TableError::RemotesFull { vni: v.vni, ip },
                e => TableError::map("write", "remote VTEP")(e),
            });
        }
        Ok(peer)
    }

    /// One reason fewer for `ip` to send `vni`.
    pub fn drop_ref(&mut self, vni: Vni, ip: PeerVtep) -> Result<Unref, TableError> {
        let key = Self::key(vni, ip);
        let w = TableError::map("write", "remote VTEP");
        match self.get(vni, ip)? {
            Some(r) if r.refs > 1 => {
                let r = RemoteInfo {
                    refs: r.refs - 1,
                    ..r
                };
                self.remotes.put(key, r).map_err(w)?;
                Ok(Unref::Kept)
            }
            Some(_) => {
                self.remotes.delete(&key).map_err(w)?;
                self.unref_peer(ip)?;
                Ok(Unref::Gone)
            }
            None => Ok(Unref::Kept),
        }
    }

    /// Every `REMOTES` entry.
    pub fn entries(&self) -> Result<Vec<(RemoteKey, RemoteInfo)>, TableError> {
        self.remotes
            .entries()
            .map_err(TableError::map("read", "remote VTEP"))
    }

    /// Every `PEERS` entry (keyed by on-wire IPv4).
    pub fn peer_entries(&self) -> Result<Vec<(Addr, PeerInfo)>, TableError> {
        self.peers
            .entries()
            .map_err(TableError::map("read", "remote VTEP stats"))
    }

    /// Every entry of `vni`.
    pub fn of_vni(&self, vni: Vni) -> Result<Vec<(PeerVtep, RemoteInfo)>, TableError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(k, _)| k.vni == vni.get())
            .map(|(k, r)| (PeerVtep::recorded(ip_from_map(k.ip)), r))
            .collect())
    }

    /// Sets the `REMOTE_F_*` bits of every remote of `vni` to `flags`.
    pub fn set_flags(&mut self, vni: Vni, flags: u32) -> Result<(), TableError> {
        for (ip, r) in self.of_vni(vni)? {
            self.remotes
                .put(Self::key(vni, ip), RemoteInfo { flags, ..r })
                .map_err(TableError::map("write", "remote VTEP"))?;
        }
        Ok(())
    }

    /// One more VNI names `ip`; the first gives it a zeroed `PEER_STATS`
    /// slot. Returns the slot.
    fn ref_peer(&mut self, ip: PeerVtep) -> Result<u32, TableError> {
        let key = ip_to_map(ip.ip());
        let r = TableError::map("read", "remote VTEP stats");
        let w = TableError::map("write", "remote VTEP stats");
        let (slot, refs) = match self.peers.lookup(&key).map_err(&r)? {
            Some(p) => (p.slot, p.refs),
            None => {
                let peers = &self.peers;
                let slot = self
                    .slots
                    .take(1..PEERS_CAPACITY, || {
                        Ok(peers.entries()?.into_iter().map(|(_, p)| p.slot).collect())
                    })
                    .map_err(&r)?
                    .ok_or(TableError::PeersFull(ip))?;
                self.peer_stats.reset(slot).map_err(&w)?;
                (slot, 0)
            }
        };
        let value = PeerInfo {
            slot,
            refs: refs + 1,
        };
        if let Err(e) = self.peers.put(key, value) {
            if refs == 0 {
                self.slots.release(slot);
            }
            return Err(w(e));
        }
        Ok(slot)
    }

    /// One VNI fewer names `ip`; at the last its slot is free.
    fn unref_peer(&mut self, ip: PeerVtep) -> Result<(), TableError> {
        let key = ip_to_map(ip.ip());
        let w = TableError::map("write", "remote VTEP stats");
        match self
            .peers
            .lookup(&key)
            .map_err(TableError::map("read", "remote VTEP stats"))?
        {
            Some(p) if p.refs > 1 => self.peers.put(
                key,
                PeerInfo {
                    refs: p.refs - 1,
                    ..p
                },
            ),
            Some(p) => {
                self.slots.release(p.slot);
                self.peers.delete(&key).map(|_| ())
            }
            None => Ok(()),
        }
        .map_err(w)
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;
    use crate::{tables::map::MemMap, values::LocalIp};

    /// Remembers which remotes it was asked about.
    struct Recorder(Rc<RefCell<Vec<IpAddr>>>, bool);

    impl Neighbours for Recorder {
        fn keep_resolved(&mut self, remote: PeerVtep, _: IpAddr) -> Result<(), NeighbourError> {
            self.0.borrow_mut().push(remote.ip());
            if self.1 {
                return Err(NeighbourError::Unroutable("no route".into()));
            }
            Ok(())
        }
        fn forget_all(&mut self) {}
    }

    #[derive(Default)]
    struct Resets(Vec<u32>);

    impl SlotCounters for Resets {
        fn reset(&mut self, slot: u32) -> Result<(), MapFault> {
            self.0.push(slot);
            Ok(())
        }
    }

    type Mem = Remotes<MemMap<RemoteKey, RemoteInfo>, MemMap<Addr, PeerInfo>, Resets>;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 18, 0, 1));

    fn remotes(capacity: usize, unroutable: bool) -> (Mem, Rc<RefCell<Vec<IpAddr>>>) {
        let asked = Rc::new(RefCell::new(Vec::new()));
        let r = Remotes::new(
            MemMap::new(capacity),
            MemMap::new(capacity),
            Resets::default(),
            Box::new(Recorder(asked.clone(), unroutable)),
            LOCAL,
        );
        (r, asked)
    }

    fn peer(last: u8) -> PeerVtep {
        let local = LocalIp::from(
            LOCAL
                .to_string()
                .parse::<crate::values::UnicastIp>()
                .unwrap(),
        );
        local
            .peer(format!("198.18.0.{last}").parse().unwrap())
            .unwrap()
    }

    fn vni(n: u32, slot: u32) -> VniRef {
        VniRef {
            vni: Vni::try_from(n).unwrap(),
            slot,
            flags: 1,
        }
    }

    #[test]
    fn references_count_and_release_everything() {
        let (mut r, asked) = remotes(16, false);
        let (a, b) = (peer(2), peer(3));
        let (v1, v2) = (vni(100, 0), vni(200, 1));
        let pa = r.add_ref(v1, a).unwrap();
        assert_eq!(
            r.add_ref(v1, a).unwrap(),
            pa,
            "same slot for the same remote"
        );
        assert_eq!(
            r.add_ref(v2, a).unwrap(),
            pa,
            "one slot per remote, all VNIs"
        );
        let pb = r.add_ref(v1, b).unwrap();
        assert_ne!(pa, pb);
        assert!(pa != 0 && pb != 0, "slot 0 is never given");
        assert_eq!(r.peer_stats.0, vec![pa, pb], "each new slot zeroed once");
        assert_eq!(*asked.borrow(), vec![a.ip(), b.ip()], "one lookup each");
        assert_eq!(r.get(v1.vni, a).unwrap().unwrap().refs, 2);
        assert_eq!(r.peers.entries[&ip_to_map(a.ip())].refs, 2);

        assert_eq!(r.drop_ref(v1.vni, a).unwrap(), Unref::Kept);
        assert_eq!(r.drop_ref(v1.vni, a).unwrap(), Unref::Gone);
        assert_eq!(
            r.peers.entries[&ip_to_map(a.ip())].refs,
            1,
            "VNI 200 still names it"
        );
        assert_eq!(r.drop_ref(v2.vni, a).unwrap(), Unref::Gone);
        assert_eq!(r.drop_ref(v1.vni, b).unwrap(), Unref::Gone);
        assert_eq!(
            r.drop_ref(v1.vni, b).unwrap(),
            Unref::Kept,
            "absent: nothing to do"
        );
        assert!(r.remotes.entries.is_empty());
        assert!(r.peers.entries.is_empty());
    }

    #[test]
    fn a_full_table_changes_nothing() {
        let (mut r, _) = remotes(1, false);
        let v = vni(100, 0);
        r.add_ref(v, peer(2)).unwrap();
        assert!(r.add_ref(v, peer(3)).is_err());
        assert_eq!(r.remotes.entries.len(), 1);
        assert_eq!(r.peers.entries.len(), 1, "no stats slot left behind");
        // PEERS has room but REMOTES has not: the new peer reference goes.
        let (mut r, _) = remotes(2, false);
        r.remotes.capacity = 1;
        r.add_ref(v, peer(2)).unwrap();
        assert!(matches!(
            r.add_ref(v, peer(3)),
            Err(TableError::RemotesFull { .. })
        ));
        assert_eq!(
            r.peers.entries.len(),
            1,
            "the refused remote left a stats slot"
        );
    }

    #[test]
    fn an_unroutable_remote_is_still_added() {
        let (mut r, asked) = remotes(4, true);
        r.add_ref(vni(100, 0), peer(2)).unwrap();
        assert_eq!(asked.borrow().len(), 1);
        assert_eq!(r.remotes.entries.len(), 1);
    }

    #[test]
    fn learning_flags_follow_the_vni() {
        let (mut r, _) = remotes(4, false);
        let v = vni(100, 0);
        r.add_ref(v, peer(2)).unwrap();
        r.add_ref(vni(200, 1), peer(2)).unwrap();
        r.set_flags(v.vni, 0).unwrap();
        assert_eq!(r.get(v.vni, peer(2)).unwrap().unwrap().flags, 0);
        assert_eq!(
            r.get(Vni::try_from(200).unwrap(), peer(2))
                .unwrap()
                .unwrap()
                .flags,
            1
        );
    }
}
