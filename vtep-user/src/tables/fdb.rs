//! The FDB: static entries (`FDB`, operator-owned), EVPN ones (`FDB` too,
//! owned by the daemon's EVPN agent) and learned ones (`LEARNED`, an LRU
//! the datapath fills), and the remote-VTEP references `FDB` entries hold.

use std::collections::BTreeMap;

use vtep_common::maps::{
    FDB_F_EVPN, FDB_F_STATIC, FDB_F_STICKY, FdbEntry, FdbKey, LEARNED_F_FROZEN, LearnedEntry,
    PortKey, VniInfo, fdb_delivery,
};

use super::{
    Location, TableError, Tables, TablesMut,
    map::{KvMap, MapFault},
    remotes::VniRef,
};
use crate::{
    sys,
    values::{Mac, PeerVtep, UnicastMac, Vni, ip_to_map},
};

/// One FDB entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdbRow {
    pub vni: Vni,
    pub mac: Mac,
    pub location: Location,
    pub is_static: bool,
    /// EVPN entries: the route's sequence number and sticky flag.
    pub evpn: Option<EvpnRoute>,
    /// Learned entries: seconds since last seen, moves, frozen.
    pub learned: Option<Learned>,
}

impl FdbRow {
    /// Where the entry came from, as `fdb show` says it.
    pub const fn origin(&self) -> &'static str {
        if self.is_static {
            "static"
        } else if self.evpn.is_some() {
            "evpn"
        } else {
            "learned"
        }
    }
}

/// What an EVPN entry adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvpnRoute {
    /// MAC-mobility sequence number (RFC 7432 §7.7).
    pub seq: u32,
    /// The route was sticky: learning never moves the MAC.
    pub sticky: bool,
}

/// What became of an EVPN route offered to the FDB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Installed {
    /// Written (or already there as given); `moved_from`: where the MAC
    /// was before, if somewhere else (an FDB or a learned entry).
    Yes { moved_from: Option<Location> },
    /// A configured (static) entry holds the MAC: static entries win.
    StaticWins,
}

/// What a learned entry adds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Learned {
    pub age_s: u64,
    pub moves: u32,
    pub frozen: bool,
}

/// A static entry to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryAt {
    pub vni: Vni,
    pub mac: UnicastMac,
    pub at: Location,
}

impl Tables {
    /// FDB entries (static, then learned ones not yet aged), sorted by VNI
    /// then MAC, optionally of one VNI.
    pub fn fdb_rows(&self, vni: Option<Vni>) -> Result<Vec<FdbRow>, TableError> {
        let wanted = |v: u32| vni.is_none_or(|f| f.get() == v);
        let mut rows = Vec::new();
        for (k, v) in self.fdb_entries()? {
            if wanted(k.vni) {
                rows.push(FdbRow {
                    vni: Vni::recorded(k.vni),
                    mac: Mac(k.mac),
                    location: Location::of(v.remote, v.ifindex, v.vid),
                    is_static: v.flags & FDB_F_STATIC != 0,
                    evpn: (v.flags & FDB_F_EVPN != 0).then_some(EvpnRoute {
                        seq: v.seq,
                        sticky: v.flags & FDB_F_STICKY != 0,
                    }),
                    learned: None,
                });
            }
        }
        let now = sys::coarse_now_ns();
        let ageing_ns = self.ageing_ns();
        for (k, e) in self.learned_entries()? {
            let age = now.saturating_sub(e.seen_ns);
            if wanted(k.vni) && age <= ageing_ns {
                rows.push(FdbRow {
                    vni: Vni::recorded(k.vni),
                    mac: Mac(k.mac),
                    location: Location::of(e.remote, e.ifindex, e.vid),
                    is_static: false,
                    evpn: None,
                    learned: Some(Learned {
                        age_s: age / 1_000_000_000,
                        moves: e.moves,
                        frozen: e.flags & LEARNED_F_FROZEN != 0,
                    }),
                });
            }
        }
        rows.sort_by_key(|r| (r.vni, r.mac));
        Ok(rows)
    }

    /// Every learned entry, aged or not.
    pub fn learned_entries(&self) -> Result<Vec<(FdbKey, LearnedEntry)>, TableError> {
        self.learned
            .entries()
            .map_err(TableError::map("read", "learned MAC"))
    }

    /// Every static FDB entry, raw.
    pub fn fdb_entries(&self) -> Result<Vec<(FdbKey, FdbEntry)>, TableError> {
        self.fdb.entries().map_err(TableError::map("read", "FDB"))
    }

    /// Checks a static entry (its VNI configured); returns its map value:
    /// a port must be bound to the entry's VNI.
    fn fdb_entry(&self, e: &EntryAt) -> Result<FdbEntry, TableError> {
        Ok(match e.at {
            Location::Remote(ip) => FdbEntry {
                remote: ip_to_map(ip.ip()),
                flags: FDB_F_STATIC,
                ..FdbEntry::default()
            },
            Location::Port(ifindex, vid) => {
                let name = || sys::ifname(ifindex);
                let port = match self.port(PortKey::new(ifindex, vid.get()))? {
                    Some(p) if p.vni == e.vni.get() => p,
                    Some(p) => {
                        return Err(TableError::PortOfOtherVni {
                            name: name(),
                            vid,
                            bound: p.vni,
                            vni: e.vni,
                        });
                    }
                    None => {
                        return Err(TableError::NotAPort {
                            name: name(),
                            vid,
                            vni: e.vni,
                        });
                    }
                };
                FdbEntry {
                    ifindex,
                    vid: vid.get(),
                    flags: FDB_F_STATIC | fdb_delivery(port.flags),
                    peer: port.stats,
                    ..FdbEntry::default()
                }
            }
        })
    }
}

impl TablesMut {
    /// Removes learned entries of `vni` (all VNIs if `None`) that `pick`
    /// selects; returns how many.
    pub fn forget(
        &mut self,
        vni: Option<Vni>,
        pick: impl Fn(&LearnedEntry) -> bool,
    ) -> Result<usize, TableError> {
        let keys: Vec<FdbKey> = self
            .learned_entries()?
            .into_iter()
            .filter(|(k, e)| vni.is_none_or(|v| v.get() == k.vni) && pick(e))
            .map(|(k, _)| k)
            .collect();
        for k in &keys {
            self.learned
                .delete(k)
                .map_err(TableError::map("write", "learned MAC"))?;
        }
        Ok(keys.len())
    }

    /// Removes learned entries not seen for the ageing time; returns what
    /// they were, for an `aged` report.
    pub fn reap_stale(&mut self) -> Result<Vec<(FdbKey, LearnedEntry)>, TableError> {
        let now = sys::coarse_now_ns();
        let ageing_ns = self.ageing_ns();
        let stale: Vec<(FdbKey, LearnedEntry)> = self
            .learned_entries()?
            .into_iter()
            .filter(|(_, e)| now.saturating_sub(e.seen_ns) > ageing_ns)
            .collect();
        for (k, _) in &stale {
            self.learned
                .delete(k)
                .map_err(TableError::map("write", "learned MAC"))?;
        }
        Ok(stale)
    }

    /// Adds or replaces a static FDB entry.
    pub fn fdb_add(&mut self, e: &EntryAt) -> Result<(), TableError> {
        let info = self.require_vni(e.vni)?;
        let entry = self.fdb_entry(e)?;
        self.fdb_put(e, entry, &info).map(|_| ())
    }

    /// Adds or replaces many static FDB entries, all or none: every entry
    /// is checked before the first is written, and if one cannot be
    /// written (the FDB is full), those written before it are undone.
    pub fn fdb_load(&mut self, entries: &[EntryAt]) -> Result<(), TableError> {
        let nothing = |taken, e| TableError::NothingLoaded {
            given: entries.len(),
            taken,
            why: Box::new(e),
        };
        let mut vnis: BTreeMap<Vni, VniInfo> = BTreeMap::new();
        let mut checked = Vec::with_capacity(entries.len());
        for e in entries {
            let info = match vnis.get(&e.vni) {
                Some(info) => *info,
                None => {
                    let info = self.require_vni(e.vni).map_err(|err| nothing(0, err))?;
                    vnis.insert(e.vni, info);
                    info
                }
            };
            checked.push((e, self.fdb_entry(e).map_err(|err| nothing(0, err))?, info));
        }
        let mut done: Vec<(&EntryAt, Option<FdbEntry>)> = Vec::new();
        for (e, entry, info) in checked {
            match self.fdb_put(e, entry, &info) {
                Ok(old) => done.push((e, old)),
                Err(err) => {
                    let taken = done.len();
                    for (e, old) in done.into_iter().rev() {
                        let undone = match old {
                            Some(o) => self.fdb_add(&EntryAt {
                                at: Location::of(o.remote, o.ifindex, o.vid),
                                ..*e
                            }),
                            None => self.fdb_del(e.vni, e.mac.mac()),
                        };
                        if let Err(u) = undone {
                            log::warn!(
                                "cannot undo the FDB entry of {} in VNI {}: {u}",
                                e.mac,
                                e.vni
                            );
                        }
                    }
                    return Err(nothing(taken, err));
                }
            }
        }
        Ok(())
    }

    /// Writes a checked static entry of `e.vni` (described by `info`),
    /// keeping the remote VTEPs' references right; returns the entry it
    /// replaced.
    fn fdb_put(
        &mut self,
        e: &EntryAt,
        mut entry: FdbEntry,
        info: &VniInfo,
    ) -> Result<Option<FdbEntry>, TableError> {
        let key = FdbKey::new(e.vni.get(), e.mac.mac().0);
        let old = self
            .fdb
            .lookup(&key)
            .map_err(TableError::map("read", "FDB"))?;
        let same_remote = old.is_some_and(|o| o.remote == entry.remote);
        // A remote this entry names anew takes a reference.
        let new_remote = match e.at {
            Location::Remote(ip) if !same_remote => Some(ip),
            _ => None,
        };
        if let Some(ip) = new_remote {
            entry.peer = self.remotes.add_ref(VniRef::of(e.vni, info), ip)?;
        } else if let Some(o) = old.filter(|_| same_remote) {
            entry.peer = o.peer;
        }
        if let Err(err) = self.fdb.put(key, entry) {
            if let Some(ip) = new_remote {
                self.drop_remote(e.vni, ip)?;
            }
            return Err(match err {
                MapFault::Full => TableError::FdbFull {
                    vni: e.vni,
                    mac: e.mac.mac(),
                },
                err => TableError::map("write", "FDB")(err),
            });
        }
        if let Some(o) = old
            && !same_remote
            && let Location::Remote(ip) = Location::of(o.remote, o.ifindex, o.vid)
        {
            self.drop_remote(e.vni, ip)?;
        }
        // A static entry takes the MAC over from learning.
        self.learned
            .delete(&key)
            .map_err(TableError::map("write", "learned MAC"))?;
        Ok(old)
    }

    /// Installs an EVPN MAC route: `mac` of `vni` behind `remote` with
    /// sequence `seq` (a learned entry of the MAC goes; a static one wins).
    pub fn fdb_evpn_put(
        &mut self,
        vni: Vni,
        mac: UnicastMac,
        remote: PeerVtep,
        route: EvpnRoute,
    ) -> Result<Installed, TableError> {
        let info = self.require_vni(vni)?;
        let key = FdbKey::new(vni.get(), mac.mac().0);
        let old = self
            .fdb
            .lookup(&key)
            .map_err(TableError::map("read", "FDB"))?;
        if old.is_some_and(|o| o.flags & FDB_F_STATIC != 0) {
            return Ok(Installed::StaticWins);
        }
        let entry = FdbEntry {
            remote: ip_to_map(remote.ip()),
            flags: FDB_F_EVPN | if route.sticky { FDB_F_STICKY } else { 0 },
            seq: route.seq,
            ..FdbEntry::default()
        };
        if old.is_some_and(|o| FdbEntry { peer: 0, ..o } == entry) {
            return Ok(Installed::Yes { moved_from: None });
        }
        let learned = self
            .learned
            .lookup(&key)
            .map_err(TableError::map("read", "learned MAC"))?;
        let at = EntryAt {
            vni,
            mac,
            at: Location::Remote(remote),
        };
        let replaced = self.fdb_put(&at, entry, &info)?;
        let was = replaced
            .map(|o| Location::of(o.remote, o.ifindex, o.vid))
            .or(learned.map(|l| Location::of(l.remote, l.ifindex, l.vid)));
        Ok(Installed::Yes {
            moved_from: was.filter(|w| *w != at.at),
        })
    }

    /// Removes the EVPN entry of `mac` in `vni`, if it is one; returns
    /// whether there was one.
    pub fn fdb_evpn_del(&mut self, vni: Vni, mac: Mac) -> Result<bool, TableError> {
        let key = FdbKey::new(vni.get(), mac.0);
        let old = self
            .fdb
            .lookup(&key)
            .map_err(TableError::map("read", "FDB"))?;
        if old.is_none_or(|o| o.flags & FDB_F_EVPN == 0) {
            return Ok(false);
        }
        self.fdb_del(vni, mac)?;
        Ok(true)
    }

    /// Removes a static FDB entry; refused if there is none.
    pub fn fdb_del(&mut self, vni: Vni, mac: Mac) -> Result<(), TableError> {
        let key = FdbKey::new(vni.get(), mac.0);
        let old = self
            .fdb
            .lookup(&key)
            .map_err(TableError::map("read", "FDB"))?
            .ok_or(TableError::NoFdbEntry { vni, mac })?;
        self.fdb
            .delete(&key)
            .map_err(TableError::map("write", "FDB"))?;
        if let Location::Remote(ip) = Location::of(old.remote, old.ifindex, old.vid) {
            self.drop_remote(vni, ip)?;
        }
        Ok(())
    }
}
