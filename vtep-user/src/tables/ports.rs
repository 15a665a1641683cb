//! The port table: port bindings, each a local port (a VM's tap, a
//! container's veth, a trunk to a legacy VLAN segment) or one 802.1Q VLAN
//! of it, bound to a VNI; and how decapsulated frames reach it.
//!
//! A port with bindings for several VLANs is a trunk (OVSDB
//! `hardware_vtep`'s `vlan_bindings`); VLAN 0 stands for its untagged
//! frames. One VNI may be bound to different VLANs on different ports (or
//! on one port): frames cross between them through the VNI, each leaving
//! with its binding's tag.

use vtep_common::{
    consts::{MAX_VNI_PORTS, PORTS_CAPACITY},
    maps::{PORT_F_PEER, PORT_F_XDP, PortInfo, PortKey},
};

use super::{
    TableError, Tables, TablesMut,
    map::KvMap,
    slots::SlotCounters,
    vnis::{bindings_of, port_flags},
};
use crate::values::{Deliver, Group, ValueError, Vid, Vni, port_room};

/// How a port's record says frames reach it.
pub fn deliver_of(p: &PortInfo) -> Deliver {
    if p.flags & PORT_F_XDP != 0 {
        Deliver::Xdp
    } else if p.flags & PORT_F_PEER != 0 {
        Deliver::Peer
    } else {
        Deliver::Skb
    }
}

impl Tables {
    /// Binding `key`, if it is bound.
    pub fn port(&self, key: PortKey) -> Result<Option<PortInfo>, TableError> {
        self.ports
            .lookup(&key)
            .map_err(TableError::map("read", "port"))
    }

    /// Every binding, by port then VLAN.
    pub fn ports(&self) -> Result<Vec<(PortKey, PortInfo)>, TableError> {
        let mut v = self
            .ports
            .entries()
            .map_err(TableError::map("read", "port"))?;
        v.sort_by_key(|(k, _)| *k);
        Ok(v)
    }

    /// The bindings of port `ifindex`, by VLAN.
    pub fn bindings(&self, ifindex: u32) -> Result<Vec<(PortKey, PortInfo)>, TableError> {
        let mut v = self.ports()?;
        v.retain(|(k, _)| k.ifindex == ifindex);
        Ok(v)
    }

    /// Checks that VLAN `vid` of `ifindex` (named `name`) can be bound to
    /// `vni` without changing anything, so the attach step can run before
    /// the tables change. Other VLANs of the port may be bound, to any VNI.
    pub fn port_check(
        &self,
        name: &str,
        (ifindex, vid): (u32, Vid),
        vni: Vni,
    ) -> Result<(), TableError> {
        if ifindex == self.info.config.underlay_ifindex {
            return Err(ValueError::PortIsUnderlay(name.to_owned()).into());
        }
        if let Some(p) = self.port(PortKey::new(ifindex, vid.get()))? {
            return Err(TableError::PortBound {
                name: name.to_owned(),
                vid,
                vni: p.vni,
            });
        }
        let info = self.require_vni(vni)?;
        port_room(vni, info.n_ports as usize)?;
        Ok(())
    }
}

impl TablesMut {
    /// A stats slot no binding uses (slot 0 never: it stands for none),
    /// with its counters zeroed; `name` names the port for the error.
    fn free_binding_slot(&mut self, name: &str) -> Result<u32, TableError> {
        let t = &mut **self;
        let ports = &t.ports;
        let slot = t
            .binding_slots
            .take(1..PORTS_CAPACITY, || {
                Ok(ports.entries()?.into_iter().map(|(_, p)| p.stats).collect())
            })
            .map_err(TableError::map("read", "port"))?
            .ok_or_else(|| TableError::PortsFull(name.to_owned()))?;
        t.binding_stats
            .reset(slot)
            .map_err(TableError::map("reset", "binding stats"))?;
        Ok(slot)
    }

    /// Binds VLAN `vid` of port `ifindex` (named `name`) to `vni` with
    /// `PORT_F_*` bits `flags` and default group `group` (after
    /// [`Tables::port_check`]).
    pub fn port_add(
        &mut self,
        name: &str,
        (ifindex, vid): (u32, Vid),
        vni: Vni,
        (flags, group): (u32, Group),
    ) -> Result<(), TableError> {
        let mut info = self.require_vni(vni)?;
        port_room(vni, info.n_ports as usize)?;
        let key = PortKey::new(ifindex, vid.get());
        let stats = self.free_binding_slot(name)?;
        let port = PortInfo {
            vni: vni.get(),
            flags: port_flags(&info, flags),
            slot: info.slot,
            stats,
            group: group.get(),
            _pad: 0,
        };
        self.ports.put(key, port).map_err(|e| match e {
            super::map::MapFault::Full => TableError::PortsFull(name.to_owned()),
            e => TableError::map("write", "port")(e),
        })?;
        let n = info.n_ports as usize;
        info.ports[n] = ifindex;
        info.vids[n] = vid.get();
        info.port_stats[n] = stats;
        info.n_ports += 1;
        if let Err(e) = self.vnis.put(vni.get(), info) {
            if let Err(u) = self.ports.delete(&key) {
                log::warn!("cannot undo the binding of '{name}': {u}");
            }
            return Err(TableError::map("write", "VNI")(e));
        }
        // Encap decisions are cached by binding: none made before holds.
        self.generation.bump(vni.get());
        // A port's group may be the VNI's first reason for policy.
        self.refresh_policy(vni)
    }

    /// Unbinds `key` and forgets the MACs that pointed at it; returns the
    /// binding it had, `None` if it had none.
    pub fn port_del(&mut self, key: PortKey) -> Result<Option<PortInfo>, TableError> {
        let Some(port) = self.port(key)? else {
            return Ok(None);
        };
        let vni = Vni::recorded(port.vni);
        if let Some(mut info) = self.vni(vni)? {
            let kept: Vec<(PortKey, u32)> = bindings_of(&info)
                .zip(info.port_stats)
                .filter(|(k, _)| *k != key)
                .collect();
            info.ports = [0; MAX_VNI_PORTS];
            info.vids = [0; MAX_VNI_PORTS];
            info.port_stats = [0; MAX_VNI_PORTS];
            for (i, (k, stats)) in kept.iter().enumerate() {
                info.ports[i] = k.ifindex;
                info.vids[i] = k.vid;
                info.port_stats[i] = *stats;
            }
            info.n_ports = kept.len() as u32;
            self.vnis
                .put(vni.get(), info)
                .map_err(TableError::map("write", "VNI"))?;
        }
        let here = super::Location::Port(key.ifindex, Vid::recorded(key.vid));
        for row in self.fdb_rows(Some(vni))? {
            if row.is_static && row.location == here {
                self.fdb_del(vni, row.mac)?;
            }
        }
        self.forget(Some(vni), |e| e.ifindex == key.ifindex && e.vid == key.vid)?;
        self.ports
            .delete(&key)
            .map_err(TableError::map("write", "port"))?;
        self.binding_slots.release(port.stats);
        self.generation.bump(vni.get());
        if port.group != 0 && self.vni(vni)?.is_some() {
            // It may have been the VNI's last reason for policy.
            self.refresh_policy(vni)?;
        }
        Ok(Some(port))
    }

    /// Sets `PORT_F_*` bits `flags` on binding `key` (no decision depends
    /// on the ones this is for).
    pub fn port_flags_add(&mut self, key: PortKey, flags: u32) -> Result<(), TableError> {
        if let Some(mut p) = self.port(key)? {
            p.flags |= flags;
            self.ports
                .put(key, p)
                .map_err(TableError::map("write", "port"))?;
        }
        Ok(())
    }
}
