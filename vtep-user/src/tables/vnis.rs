//! The VNI table: each VNI's stats slot, flood list, ports, learning and
//! storm-control settings, and the policy flags it copies to its ports and
//! remotes.

use vtep_common::{
    addr::Addr,
    consts::{MAX_FLOOD, VNIS_CAPACITY},
    maps::{
        BumBucket, PORT_F_GBP, PORT_F_LEARN, PORT_F_POLICY, PortKey, REMOTE_F_GBP, REMOTE_F_LEARN,
        REMOTE_F_POLICY, VNI_F_DEFAULT_DENY, VNI_F_GBP, VNI_F_NO_LEARNING, VNI_F_POLICY, VniInfo,
        with_port_tos,
    },
};

use super::{
    TableError, Tables, TablesMut,
    map::KvMap,
    remotes::{Unref, VniRef},
    slots::SlotCounters,
};
use crate::{
    sys,
    values::{PeerFlood, PeerVtep, Tos, Vid, Vni, ip_from_map, ip_to_map},
};

/// What `vni add` sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VniSettings {
    /// Remote VTEPs that get the VNI's BUM traffic.
    pub flood: PeerFlood,
    /// Data-plane learning.
    pub learning: bool,
    /// Storm control: BUM frames per second from the ports (0: no limit).
    pub bum_pps: u32,
    /// The outer DSCP of its frames.
    pub tos: Tos,
    /// Group IDs carried in the VXLAN header (VXLAN-GBP).
    pub gbp: bool,
    /// Frames no rule allows are dropped.
    pub default_deny: bool,
}

/// Binding flags `flags` with the settings of the VNI `info` copied in:
/// learning, policy, GBP and the outer TOS.
pub(super) fn port_flags(info: &VniInfo, flags: u32) -> u32 {
    let copied = PORT_F_LEARN | PORT_F_POLICY | PORT_F_GBP;
    let set = learn_flag(info, PORT_F_LEARN)
        | vni_flag(info, VNI_F_POLICY, PORT_F_POLICY)
        | vni_flag(info, VNI_F_GBP, PORT_F_GBP);
    with_port_tos((flags & !copied) | set, info.tos)
}

/// The `REMOTE_F_*` bits the VNI `info` gives its remotes: learning,
/// policy and GBP.
pub(super) fn remote_flags(info: &VniInfo) -> u32 {
    learn_flag(info, REMOTE_F_LEARN)
        | vni_flag(info, VNI_F_POLICY, REMOTE_F_POLICY)
        | vni_flag(info, VNI_F_GBP, REMOTE_F_GBP)
}

/// `flag` if the VNI has `vni_flag`.
fn vni_flag(info: &VniInfo, vni_flag: u32, flag: u32) -> u32 {
    if info.flags & vni_flag != 0 { flag } else { 0 }
}

/// `flag` unless the VNI has learning off.
fn learn_flag(info: &VniInfo, flag: u32) -> u32 {
    if info.flags & VNI_F_NO_LEARNING == 0 {
        flag
    } else {
        0
    }
}

/// The flood list of a VNI's record.
pub fn flood_of(info: &VniInfo) -> impl Iterator<Item = PeerVtep> + '_ {
    flood_with(info, u32::MAX)
}

/// The members of a VNI's flood list whose bit is set in `mask` (its
/// `configured` or `evpn` bits).
pub fn flood_with(info: &VniInfo, mask: u32) -> impl Iterator<Item = PeerVtep> + '_ {
    info.remotes[..info.n_remotes as usize]
        .iter()
        .enumerate()
        .filter(move |(i, _)| mask & (1 << i) != 0)
        .map(|(_, ip)| PeerVtep::recorded(ip_from_map(*ip)))
}

/// A port binding as lists name it (see [`Vid::binding`]).
pub fn binding_name(key: PortKey) -> String {
    Vid::recorded(key.vid).binding(&sys::ifname(key.ifindex))
}

/// The port bindings of a VNI's record.
pub fn bindings_of(info: &VniInfo) -> impl Iterator<Item = PortKey> + '_ {
    let n = info.n_ports as usize;
    info.ports[..n]
        .iter()
        .zip(&info.vids[..n])
        .map(|(i, v)| PortKey::new(*i, *v))
}

impl VniRef {
    /// What the VNI `info` gives its remotes.
    pub(super) fn of(vni: Vni, info: &VniInfo) -> Self {
        VniRef {
            vni,
            slot: info.slot,
            flags: remote_flags(info),
        }
    }
}

impl Tables {
    /// The configuration of `vni`, if it is configured.
    pub fn vni(&self, vni: Vni) -> Result<Option<VniInfo>, TableError> {
        self.vnis
            .lookup(&vni.get())
            .map_err(TableError::map("read", "VNI"))
    }

    /// The configuration of `vni`; refused if it is not configured.
    pub fn require_vni(&self, vni: Vni) -> Result<VniInfo, TableError> {
        self.vni(vni)?.ok_or(TableError::NoVni(vni))
    }

    /// Every configured VNI with its configuration, by VNI.
    pub fn vnis(&self) -> Result<Vec<(Vni, VniInfo)>, TableError> {
        let mut v: Vec<_> = self
            .vnis
            .entries()
            .map_err(TableError::map("read", "VNI"))?
            .into_iter()
            .map(|(vni, i)| (Vni::recorded(vni), i))
            .collect();
        v.sort_by_key(|(vni, _)| *vni);
        Ok(v)
    }
}

impl TablesMut {
    /// A stats slot no VNI uses, with its counters zeroed.
    fn free_slot(&mut self) -> Result<u32, TableError> {
        let t = &mut **self;
        let vnis = &t.vnis;
        let slot = t
            .vni_slots
            .take(0..VNIS_CAPACITY, || {
                Ok(vnis.entries()?.into_iter().map(|(_, i)| i.slot).collect())
            })
            .map_err(TableError::map("read", "VNI"))?
            .ok_or(TableError::VnisFull)?;
        t.vni_stats
            .reset(slot)
            .map_err(TableError::map("reset", "VNI stats"))?;
        Ok(slot)
    }

    /// Adds `vni` with `settings`, or replaces the settings of an existing
    /// VNI. Its flood list becomes `settings.flood` plus the members EVPN
    /// gave it.
    pub fn vni_add(&mut self, vni: Vni, settings: &VniSettings) -> Result<(), TableError> {
        let existing = self.vni(vni)?;
        let mut info = match existing {
            Some(info) => info,
            None => VniInfo {
                slot: self.free_slot()?,
                ..VniInfo::default()
            },
        };
        let (flags, tos) = (info.flags, info.tos);
        info.tos = settings.tos.setting();
        if info.bum_pps != settings.bum_pps {
            // A new rate starts with a full bucket's worth of nothing.
            self.buckets
                .set(info.slot, BumBucket::default(), 0)
                .map_err(|e| TableError::map("write", "storm control")(e.into()))?;
            info.bum_pps = settings.bum_pps;
        }
        for (on, flag) in [
            (!settings.learning, VNI_F_NO_LEARNING),
            (settings.gbp, VNI_F_GBP),
            (settings.default_deny, VNI_F_DEFAULT_DENY),
        ] {
            if on {
                info.flags |= flag;
            } else {
                info.flags &= !flag;
            }
        }
        info.flags = self.with_policy_flag(&info)?;
        let evpn: Vec<PeerVtep> = flood_with(&info, info.evpn).collect();
        self.set_flood(vni, info, settings.flood.peers(), &evpn)?;
        if existing.is_some() && (info.flags != flags || info.tos != tos) {
            let info = self.require_vni(vni)?;
            self.copy_to_ports(vni, &info)?;
        }
        Ok(())
    }

    /// Replaces the flood-list members of `vni` that EVPN inclusive-
    /// multicast routes gave it (the configured ones stay).
    pub fn vni_evpn_flood(&mut self, vni: Vni, evpn: &[PeerVtep]) -> Result<(), TableError> {
        let info = self.require_vni(vni)?;
        let configured: Vec<PeerVtep> = flood_with(&info, info.configured).collect();
        self.set_flood(vni, info, &configured, evpn)
    }

    /// Writes `info` with the flood list `configured` ∪ `evpn`, remote
    /// references taken for the new members before those of the old ones
    /// are let go (a remote in both never loses its entry).
    fn set_flood(
        &mut self,
        vni: Vni,
        mut info: VniInfo,
        configured: &[PeerVtep],
        evpn: &[PeerVtep],
    ) -> Result<(), TableError> {
        let mut flood: Vec<PeerVtep> = configured.to_vec();
        flood.extend(evpn.iter().filter(|ip| !configured.contains(ip)));
        if flood.len() > MAX_FLOOD {
            return Err(TableError::FloodFull {
                vni,
                len: flood.len(),
            });
        }
        let old: Vec<PeerVtep> = flood_of(&info).collect();
        let v = VniRef::of(vni, &info);
        let mut taken = Vec::new();
        for ip in flood.iter().filter(|ip| !old.contains(ip)) {
            match self.remotes.add_ref(v, *ip) {
                Ok(_) => taken.push(*ip),
                Err(e) => {
                    self.undo_refs(vni, &taken);
                    return Err(e);
                }
            }
        }
        info.remotes = [Addr::NONE; MAX_FLOOD];
        info.peers = [0; MAX_FLOOD];
        info.configured = 0;
        info.evpn = 0;
        for (i, ip) in flood.iter().enumerate() {
            info.remotes[i] = ip_to_map(ip.ip());
            info.peers[i] = self.remotes.peer_slot(vni, *ip)?;
            if configured.contains(ip) {
                info.configured |= 1 << i;
            }
            if evpn.contains(ip) {
                info.evpn |= 1 << i;
            }
        }
        info.n_remotes = flood.len() as u32;
        if let Err(e) = self.vnis.put(vni.get(), info) {
            self.undo_refs(vni, &taken);
            return Err(TableError::map("write", "VNI")(e));
        }
        for ip in old.iter().filter(|ip| !flood.contains(ip)) {
            self.drop_remote(vni, *ip)?;
        }
        Ok(())
    }

    /// Lets go of the references just taken for a change that failed.
    fn undo_refs(&mut self, vni: Vni, taken: &[PeerVtep]) {
        for ip in taken {
            if let Err(e) = self.drop_remote(vni, *ip) {
                log::warn!("cannot undo the reference of VNI {vni} to {ip}: {e}");
            }
        }
    }

    /// One reason fewer for `ip` to send `vni`; at the last, the MACs
    /// learned behind it in `vni` go.
    pub(super) fn drop_remote(&mut self, vni: Vni, ip: PeerVtep) -> Result<(), TableError> {
        if self.remotes.drop_ref(vni, ip)? == Unref::Gone {
            let at = ip_to_map(ip.ip());
            self.forget(Some(vni), |e| e.remote == at)?;
        }
        Ok(())
    }

    /// Copies the VNI's learning, policy, GBP and TOS settings onto its
    /// remotes and ports, where the datapath reads them; decisions cached
    /// from the old ones no longer hold.
    pub(super) fn copy_to_ports(&mut self, vni: Vni, info: &VniInfo) -> Result<(), TableError> {
        self.remotes.set_flags(vni, remote_flags(info))?;
        for key in bindings_of(info) {
            if let Some(mut p) = self.port(key)? {
                p.flags = port_flags(info, p.flags);
                self.ports
                    .put(key, p)
                    .map_err(TableError::map("write", "port"))?;
            }
        }
        self.generation.bump(vni.get());
        Ok(())
    }

    /// Removes `vni`, its FDB entries, bindings and counters. Refused
    /// while ports are bound to it.
    pub fn vni_del(&mut self, vni: Vni) -> Result<(), TableError> {
        let info = self.require_vni(vni)?;
        if info.n_ports > 0 {
            let names: Vec<String> = bindings_of(&info).map(binding_name).collect();
            return Err(TableError::VniHasPorts {
                vni,
                ports: names.join(", "),
            });
        }
        self.forget(Some(vni), |_| true)?;
        self.neigh_flush(vni)?;
        self.identity_flush(vni, &info)?;
        for row in self
            .fdb_rows(Some(vni))?
            .into_iter()
            .filter(|r| r.learned.is_none())
        {
            self.fdb_del(vni, row.mac)?;
        }
        for ip in flood_of(&info) {
            self.drop_remote(vni, ip)?;
        }
        self.vnis
            .delete(&vni.get())
            .map_err(TableError::map("write", "VNI"))?;
        self.vni_slots.release(info.slot);
        Ok(())
    }
}
