//! The port table: which VNI each local port (a VM's tap, a container's
//! veth) belongs to, and how decapsulated frames reach it.

use vtep_common::{
    consts::MAX_VNI_PORTS,
    maps::{PORT_F_LEARN, PORT_F_PEER, PORT_F_XDP, PortInfo},
};

use super::{
    TableError, Tables, TablesMut,
    map::KvMap,
    vnis::{learn_flag, ports_of},
};
use crate::values::{Deliver, ValueError, Vni, port_room};

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
    /// The binding of port `ifindex`, if it is bound.
    pub fn port(&self, ifindex: u32) -> Result<Option<PortInfo>, TableError> {
        self.ports
            .lookup(&ifindex)
            .map_err(TableError::map("read", "port"))
    }

    /// Every bound port, by ifindex.
    pub fn ports(&self) -> Result<Vec<(u32, PortInfo)>, TableError> {
        let mut v = self
            .ports
            .entries()
            .map_err(TableError::map("read", "port"))?;
        v.sort_by_key(|(i, _)| *i);
        Ok(v)
    }

    /// Checks that `ifindex` (named `name`) can be bound to `vni` without
    /// changing anything, so the attach step can run before the tables
    /// change.
    pub fn port_check(&self, name: &str, ifindex: u32, vni: Vni) -> Result<(), TableError> {
        if ifindex == self.info.config.underlay_ifindex {
            return Err(ValueError::PortIsUnderlay(name.to_owned()).into());
        }
        if let Some(p) = self.port(ifindex)? {
            return Err(TableError::PortBound {
                name: name.to_owned(),
                vni: p.vni,
            });
        }
        let info = self.require_vni(vni)?;
        port_room(vni, info.n_ports as usize)?;
        Ok(())
    }
}

impl TablesMut {
    /// Binds port `ifindex` (named `name`) to `vni` with `PORT_F_*` bits
    /// `flags` (after [`Tables::port_check`]).
    pub fn port_add(
        &mut self,
        name: &str,
        ifindex: u32,
        vni: Vni,
        flags: u32,
    ) -> Result<(), TableError> {
        let mut info = self.require_vni(vni)?;
        port_room(vni, info.n_ports as usize)?;
        let port = PortInfo {
            vni: vni.get(),
            flags: flags | learn_flag(&info, PORT_F_LEARN),
            slot: info.slot,
            _pad: 0,
        };
        self.ports.put(ifindex, port).map_err(|e| match e {
            super::map::MapFault::Full => TableError::PortsFull(name.to_owned()),
            e => TableError::map("write", "port")(e),
        })?;
        info.ports[info.n_ports as usize] = ifindex;
        info.n_ports += 1;
        if let Err(e) = self.vnis.put(vni.get(), info) {
            if let Err(u) = self.ports.delete(&ifindex) {
                log::warn!("cannot undo the binding of '{name}': {u}");
            }
            return Err(TableError::map("write", "VNI")(e));
        }
        // Encap decisions are cached by port: none made before holds.
        self.generation.bump(vni.get());
        Ok(())
    }

    /// Unbinds port `ifindex` and forgets the MACs that pointed at it;
    /// returns the binding it had, `None` if it had none.
    pub fn port_del(&mut self, ifindex: u32) -> Result<Option<PortInfo>, TableError> {
        let Some(port) = self.port(ifindex)? else {
            return Ok(None);
        };
        let vni = Vni::recorded(port.vni);
        if let Some(mut info) = self.vni(vni)? {
            let kept: Vec<u32> = ports_of(&info)
                .iter()
                .copied()
                .filter(|p| *p != ifindex)
                .collect();
            info.ports = [0; MAX_VNI_PORTS];
            info.ports[..kept.len()].copy_from_slice(&kept);
            info.n_ports = kept.len() as u32;
            self.vnis
                .put(vni.get(), info)
                .map_err(TableError::map("write", "VNI"))?;
        }
        for row in self.fdb_rows(Some(vni))? {
            if row.is_static && row.location == super::Location::Port(ifindex) {
                self.fdb_del(vni, row.mac)?;
            }
        }
        self.forget(Some(vni), |e| e.ifindex == ifindex)?;
        self.ports
            .delete(&ifindex)
            .map_err(TableError::map("write", "port"))?;
        self.generation.bump(vni.get());
        Ok(Some(port))
    }
}
