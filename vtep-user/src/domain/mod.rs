//! The domain layer: every operation on an instance, one per verb, for
//! the commands, the daemon and (next) the EVPN agent alike. It knows
//! nothing of argument parsing or printing.
//!
//! Every change runs inside an [`Edit`], which holds the instance's lock
//! from before the first read to after the last write: two `vtep`
//! processes (or a command and the daemon's SIGHUP reconcile) never
//! interleave their read-modify-writes of the tables.

pub mod events;
pub mod evpn;
pub mod plan;
mod policy;
mod ports;
mod reconcile;
mod status;
mod up;

use std::net::IpAddr;

use anyhow::Context as _;

use self::plan::{Target, VniPlan};
pub use self::{
    reconcile::Changes,
    status::{Status, status},
    up::{Scope, bring_up, down},
};
use crate::{
    instance::Instance,
    sys,
    tables::{Location, Tables, TablesMut, fdb::EntryAt, vnis::VniSettings},
    values::{Mac, UnicastIp, UnicastMac, Vni},
};

/// Opens the tables of `inst` to read them (no lock: readers see each
/// change whole or not at all, entry by entry).
pub fn read(inst: &Instance) -> anyhow::Result<Tables> {
    Tables::open(inst)
}

/// A change to one instance, under its lock.
pub struct Edit<'a> {
    inst: &'a Instance,
    t: TablesMut,
}

impl<'a> Edit<'a> {
    /// Takes the instance's lock (waiting for whoever holds it) and opens
    /// its tables.
    pub fn begin(inst: &'a Instance) -> anyhow::Result<Self> {
        inst.require_up()?;
        let lock = inst.lock()?;
        Ok(Self {
            inst,
            t: TablesMut::open(inst, lock)?,
        })
    }

    /// The same, but `None` at once if another command holds the lock
    /// (for housekeeping that can wait for its next round).
    pub fn try_begin(inst: &'a Instance) -> anyhow::Result<Option<Self>> {
        inst.require_up()?;
        let Some(lock) = inst.try_lock()? else {
            return Ok(None);
        };
        Ok(Some(Self {
            inst,
            t: TablesMut::open(inst, lock)?,
        }))
    }

    /// A change on tables open already (the daemon keeps its own), `Err`
    /// with them back at once if another command holds the lock.
    pub fn try_with(inst: &'a Instance, tables: Tables) -> anyhow::Result<Result<Self, Tables>> {
        let Some(lock) = inst.try_lock()? else {
            return Ok(Err(tables));
        };
        Ok(Ok(Self {
            inst,
            t: TablesMut::new(tables, lock),
        }))
    }

    /// A change on tables open already, waiting for the lock.
    pub fn with(inst: &'a Instance, tables: Tables) -> anyhow::Result<Self> {
        inst.require_up()?;
        let lock = inst.lock()?;
        Ok(Self {
            inst,
            t: TablesMut::new(tables, lock),
        })
    }

    /// The tables, the lock let go.
    pub fn into_tables(self) -> Tables {
        self.t.into_tables()
    }

    /// The tables, to read.
    pub fn tables(&self) -> &Tables {
        &self.t
    }

    /// Where `at` is, checked: a remote VTEP that is not us, or an
    /// existing interface.
    fn location(&self, at: &Target) -> anyhow::Result<Location> {
        Ok(match at {
            Target::Remote(ip) => Location::Remote(self.t.local_ip().peer(*ip)?),
            Target::Port(name, vid) => Location::Port(sys::ifindex(name)?, *vid),
        })
    }

    /// Adds VNI `v.vni` or replaces its flood list and settings.
    pub fn vni_add(&mut self, v: &VniPlan) -> anyhow::Result<()> {
        let settings = VniSettings {
            flood: self
                .t
                .local_ip()
                .flood(&v.flood)
                .with_context(|| format!("VNI {}", v.vni))?,
            learning: v.learning,
            bum_pps: v.bum_pps,
            tos: v.tos,
            gbp: v.gbp,
            default_deny: v.default_deny,
        };
        Ok(self.t.vni_add(v.vni, &settings)?)
    }

    /// Removes `vni` (refused while ports are bound to it).
    pub fn vni_del(&mut self, vni: Vni) -> anyhow::Result<()> {
        Ok(self.t.vni_del(vni)?)
    }

    /// Adds or replaces a static FDB entry.
    pub fn fdb_add(&mut self, vni: Vni, mac: UnicastMac, at: &Target) -> anyhow::Result<()> {
        let at = self.location(at)?;
        Ok(self.t.fdb_add(&EntryAt { vni, mac, at })?)
    }

    /// Removes a static FDB entry.
    pub fn fdb_del(&mut self, vni: Vni, mac: Mac) -> anyhow::Result<()> {
        Ok(self.t.fdb_del(vni, mac)?)
    }

    /// Adds or replaces many static FDB entries: all, or none.
    pub fn fdb_load(&mut self, entries: &[(Vni, UnicastMac, Target)]) -> anyhow::Result<()> {
        let mut checked = Vec::with_capacity(entries.len());
        for (vni, mac, at) in entries {
            checked.push(EntryAt {
                vni: *vni,
                mac: *mac,
                at: self
                    .location(at)
                    .with_context(|| format!("{mac} in VNI {vni}"))?,
            });
        }
        Ok(self.t.fdb_load(&checked)?)
    }

    /// Removes the learned entries of `vni` (or of all VNIs) and, unless
    /// `learned_only`, the static ones; returns (learned, static) counts.
    pub fn fdb_flush(
        &mut self,
        vni: Option<Vni>,
        learned_only: bool,
    ) -> anyhow::Result<(usize, usize)> {
        let learned = self.t.forget(vni, |_| true)?;
        let mut removed = 0;
        if !learned_only {
            for row in self.t.fdb_rows(vni)?.iter().filter(|r| r.is_static) {
                self.t.fdb_del(row.vni, row.mac)?;
                removed += 1;
            }
        }
        Ok((learned, removed))
    }

    /// Binds `ip` to `mac` in `vni` for ARP suppression.
    pub fn neigh_add(&mut self, vni: Vni, ip: UnicastIp, mac: UnicastMac) -> anyhow::Result<()> {
        Ok(self.t.neigh_add(vni, ip, mac)?)
    }

    /// Removes the binding of `ip` in `vni`.
    pub fn neigh_del(&mut self, vni: Vni, ip: IpAddr) -> anyhow::Result<()> {
        Ok(self.t.neigh_del(vni, ip)?)
    }

    /// Removes learned MACs idle for the ageing time; returns them.
    pub fn reap_stale(
        &mut self,
    ) -> anyhow::Result<Vec<(vtep_common::maps::FdbKey, vtep_common::maps::LearnedEntry)>> {
        Ok(self.t.reap_stale()?)
    }

    /// Makes the instance match `plan` (see [`reconcile`]).
    pub fn reconcile(&mut self, plan: &plan::Plan) -> anyhow::Result<Changes> {
        reconcile::reconcile(self, plan)
    }
}
