//! `vtep evpn show`: gobgpd's peers and EVPN table as this instance sees
//! them (asked of gobgpd itself, so it works whether or not the daemon
//! runs), with the FDB entries installed from it.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use serde::Serialize;

use super::{
    gobgp::{Gobgp, PeerRow},
    routes::{Received, Route, decode},
};
use crate::{
    domain::{self, evpn::here},
    instance::Instance,
    values::{Mac, PeerVtep, UnicastIp, Vni},
};

/// Everything `evpn show` prints.
#[derive(Clone, Debug, Serialize)]
pub struct EvpnView {
    pub gobgp: SocketAddr,
    pub asn: u32,
    pub router_id: String,
    pub peers: Vec<PeerRow>,
    pub vnis: Vec<VniRoutes>,
    /// Routes of no use here (unknown VNI or route target, not VXLAN...).
    pub ignored: u64,
}

/// One VNI's routes.
#[derive(Clone, Debug, Serialize)]
pub struct VniRoutes {
    pub vni: Vni,
    /// Our routes (type 2 and 3) in gobgpd's table.
    pub advertised: usize,
    /// Other VTEPs' routes.
    pub received: usize,
    /// VTEPs that asked for its BUM traffic (type 3).
    pub flood: Vec<PeerVtep>,
    /// FDB entries installed from routes.
    pub installed: usize,
    pub macs: Vec<MacRow>,
}

/// One MAC route.
#[derive(Clone, Debug, Serialize)]
pub struct MacRow {
    pub mac: Mac,
    pub ip: Option<UnicastIp>,
    /// The VTEP advertising it (`None`: us).
    pub vtep: Option<PeerVtep>,
    pub seq: u32,
    pub sticky: bool,
}

/// Asks gobgpd at `addr` (its AS gives the route targets) and reads the
/// instance's tables.
pub async fn show(inst: &Instance, addr: SocketAddr) -> anyhow::Result<EvpnView> {
    let t = domain::read(inst)?;
    let h = here(&t)?;
    let mut g = Gobgp::connect(addr, Duration::from_secs(3)).await?;
    let (asn, router_id) = g.global().await?;
    let peers = g.peers().await?;
    let paths = g.paths().await?;
    let mut vnis: BTreeMap<Vni, VniRoutes> = h
        .vnis
        .iter()
        .map(|(vni, _)| {
            let v = VniRoutes {
                vni: *vni,
                advertised: 0,
                received: 0,
                flood: Vec::new(),
                installed: h.evpn.iter().filter(|e| e.vni == *vni).count(),
                macs: Vec::new(),
            };
            (*vni, v)
        })
        .collect();
    let mut ignored = 0;
    let local_ip = t.local_ip();
    for p in &paths {
        let Ok(Received { from, route }) = decode(p, local_ip, asn, |v| vnis.contains_key(&v))
        else {
            ignored += 1;
            continue;
        };
        let vni = match route {
            Route::Mac(r) => r.vni,
            Route::Flood(vni) => vni,
        };
        let Some(v) = vnis.get_mut(&vni) else {
            continue;
        };
        match from {
            None => v.advertised += 1,
            Some(_) => v.received += 1,
        }
        match route {
            Route::Flood(_) => v.flood.extend(from),
            Route::Mac(r) => v.macs.push(MacRow {
                mac: r.mac.mac(),
                ip: r.ip,
                vtep: from,
                seq: r.seq,
                sticky: r.sticky,
            }),
        }
    }
    for v in vnis.values_mut() {
        v.flood.sort();
        v.macs.sort_by_key(|m| (m.mac, m.ip, m.vtep));
    }
    Ok(EvpnView {
        gobgp: addr,
        asn,
        router_id,
        peers,
        vnis: vnis.into_values().collect(),
        ignored,
    })
}
