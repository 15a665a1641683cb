//! What the EVPN agent reads from and writes to an instance: the MACs
//! that are local (to advertise, with their groups), and the FDB entries,
//! ARP bindings, flood-list members and policy groups of origin `evpn`
//! (to install from routes). Static
//! entries always win over EVPN ones.

use std::net::IpAddr;

use vtep_common::maps::NEIGH_F_EVPN;

use super::Edit;
use crate::{
    tables::{
        Location, TableError, Tables,
        fdb::{EvpnRoute, Installed},
    },
    values::{PeerVtep, UnicastIp, UnicastMac, Vni, ip_from_map},
};

/// A MAC that lives here: on a port, by configuration (`sticky`) or
/// learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalMac {
    pub vni: Vni,
    pub mac: UnicastMac,
    pub sticky: bool,
    /// Its policy group by its membership (0: none): what its route
    /// carries.
    pub group: u16,
}

/// An FDB entry of origin `evpn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvpnEntry {
    pub vni: Vni,
    pub mac: UnicastMac,
    pub vtep: PeerVtep,
    pub route: EvpnRoute,
    /// The MAC's policy group by its membership (0: none).
    pub group: u16,
}

/// What is here, as the agent needs it.
#[derive(Clone, Debug, Default)]
pub struct Here {
    /// Configured VNIs with their stats slots (our route distinguishers).
    pub vnis: Vec<(Vni, u32)>,
    /// MACs on local ports.
    pub macs: Vec<LocalMac>,
    /// Addresses bound to MACs (not by EVPN).
    pub ips: Vec<(Vni, UnicastMac, UnicastIp)>,
    /// EVPN FDB entries.
    pub evpn: Vec<EvpnEntry>,
}

/// Reads what is here.
pub fn here(t: &Tables) -> Result<Here, TableError> {
    let mut h = Here {
        vnis: t.vnis()?.into_iter().map(|(v, i)| (v, i.slot)).collect(),
        ..Here::default()
    };
    for row in t.fdb_rows(None)? {
        let Ok(mac) = UnicastMac::try_from(row.mac) else {
            continue;
        };
        match (row.location, row.evpn) {
            (Location::Port(..), _) => h.macs.push(LocalMac {
                vni: row.vni,
                mac,
                sticky: row.is_static,
                group: t.member_group(row.vni, mac)?,
            }),
            (Location::Remote(vtep), Some(route)) => h.evpn.push(EvpnEntry {
                vni: row.vni,
                mac,
                vtep,
                route,
                group: t.member_group(row.vni, mac)?,
            }),
            (Location::Remote(_), None) => {}
        }
    }
    for (k, e) in t.neighs(None)? {
        if e.flags & NEIGH_F_EVPN != 0 {
            continue;
        }
        let ip = UnicastIp::try_from(ip_from_map(k.ip));
        if let (Ok(mac), Ok(ip)) = (UnicastMac::try_from(crate::values::Mac(e.mac)), ip) {
            h.ips.push((Vni::recorded(k.vni), mac, ip));
        }
    }
    Ok(h)
}

impl Edit<'_> {
    /// Points `mac` of `vni` at `vtep` (origin `evpn`), unless a static
    /// entry holds it.
    pub fn evpn_install(
        &mut self,
        vni: Vni,
        mac: UnicastMac,
        vtep: PeerVtep,
        route: EvpnRoute,
    ) -> Result<Installed, TableError> {
        self.t.fdb_evpn_put(vni, mac, vtep, route)
    }

    /// Removes the EVPN entry of `mac` in `vni`, if there is one.
    pub fn evpn_uninstall(&mut self, vni: Vni, mac: UnicastMac) -> Result<(), TableError> {
        self.t.fdb_evpn_del(vni, mac.mac()).map(|_| ())
    }

    /// Binds `ip` to `mac` from a MAC/IP route (a configured binding wins).
    pub fn evpn_bind(
        &mut self,
        vni: Vni,
        mac: UnicastMac,
        ip: UnicastIp,
    ) -> Result<(), TableError> {
        self.t.neigh_evpn_put(vni, ip, mac).map(|_| ())
    }

    /// Removes the EVPN binding of `ip` to `mac`.
    pub fn evpn_unbind(&mut self, vni: Vni, mac: UnicastMac, ip: IpAddr) -> Result<(), TableError> {
        self.t.neigh_evpn_del(vni, ip, mac)
    }

    /// Gives `mac` of `vni` the group its route carries (a configured
    /// group wins; 0: none).
    pub fn evpn_group(&mut self, vni: Vni, mac: UnicastMac, group: u16) -> Result<(), TableError> {
        self.t.group_evpn(vni, mac, group)
    }

    /// Makes `vtep`s the EVPN members of `vni`'s flood list.
    pub fn evpn_flood(&mut self, vni: Vni, vteps: &[PeerVtep]) -> Result<(), TableError> {
        self.t.vni_evpn_flood(vni, vteps)
    }
}
