//! The ARP-suppression table: which MAC owns a tenant IPv4 address in a
//! VNI (configured, or learned by the datapath from ARP).

use std::net::IpAddr;

use vtep_common::maps::{NEIGH_F_EVPN, NEIGH_F_STATIC, NeighEntry, NeighKey};

use super::{
    TableError, Tables, TablesMut,
    map::{KvMap, MapFault},
};
use crate::values::{UnicastIp, UnicastMac, Vni, ip_from_map, ip_to_map};

fn key(vni: Vni, ip: IpAddr) -> NeighKey {
    NeighKey {
        vni: vni.get(),
        ip: ip_to_map(ip),
    }
}

impl Tables {
    /// ARP-suppression bindings, of one VNI or all, by VNI then address.
    pub fn neighs(&self, vni: Option<Vni>) -> Result<Vec<(NeighKey, NeighEntry)>, TableError> {
        let mut v: Vec<_> = self
            .neighs
            .entries()
            .map_err(TableError::map("read", "ARP"))?
            .into_iter()
            .filter(|(k, _)| vni.is_none_or(|f| f.get() == k.vni))
            .collect();
        v.sort_by_key(|(k, _)| (k.vni, ip_from_map(k.ip)));
        Ok(v)
    }
}

impl TablesMut {
    /// Adds or replaces a static binding of `ip` to `mac` in `vni`.
    pub fn neigh_add(
        &mut self,
        vni: Vni,
        ip: UnicastIp,
        mac: UnicastMac,
    ) -> Result<(), TableError> {
        self.require_vni(vni)?;
        let e = NeighEntry {
            mac: mac.mac().0,
            flags: NEIGH_F_STATIC,
            ..NeighEntry::default()
        };
        self.neighs.put(key(vni, ip.ip()), e).map_err(|e| match e {
            MapFault::Full => TableError::NeighsFull { vni, ip: ip.ip() },
            e => TableError::map("write", "ARP")(e),
        })
    }

    /// Binds `ip` to `mac` in `vni` from an EVPN MAC/IP route, unless a
    /// configured binding holds the address (configured entries win);
    /// returns whether it was written.
    pub fn neigh_evpn_put(
        &mut self,
        vni: Vni,
        ip: UnicastIp,
        mac: UnicastMac,
    ) -> Result<bool, TableError> {
        let k = key(vni, ip.ip());
        let old = self
            .neighs
            .lookup(&k)
            .map_err(TableError::map("read", "ARP"))?;
        if old.is_some_and(|o| o.flags & NEIGH_F_STATIC != 0) {
            return Ok(false);
        }
        let e = NeighEntry {
            mac: mac.mac().0,
            flags: NEIGH_F_EVPN,
            ..NeighEntry::default()
        };
        self.neighs.put(k, e).map_err(|e| match e {
            MapFault::Full => TableError::NeighsFull { vni, ip: ip.ip() },
            e => TableError::map("write", "ARP")(e),
        })?;
        Ok(true)
    }

    /// Removes the EVPN binding of `ip` to `mac` in `vni`, if it is one.
    pub fn neigh_evpn_del(
        &mut self,
        vni: Vni,
        ip: IpAddr,
        mac: UnicastMac,
    ) -> Result<(), TableError> {
        let k = key(vni, ip);
        let old = self
            .neighs
            .lookup(&k)
            .map_err(TableError::map("read", "ARP"))?;
        if old.is_some_and(|o| o.flags & NEIGH_F_EVPN != 0 && o.mac == mac.mac().0) {
            self.neighs
                .delete(&k)
                .map_err(TableError::map("write", "ARP"))?;
        }
        Ok(())
    }

    /// Removes the binding of `ip` in `vni`; refused if there is none.
    pub fn neigh_del(&mut self, vni: Vni, ip: IpAddr) -> Result<(), TableError> {
        if !self
            .neighs
            .delete(&key(vni, ip))
            .map_err(TableError::map("write", "ARP"))?
        {
            return Err(TableError::NoNeigh { vni, ip });
        }
        Ok(())
    }

    /// Removes every binding of `vni`.
    pub(super) fn neigh_flush(&mut self, vni: Vni) -> Result<(), TableError> {
        for (k, _) in self.neighs(Some(vni))? {
            self.neighs
                .delete(&k)
                .map_err(TableError::map("write", "ARP"))?;
        }
        Ok(())
    }
}
