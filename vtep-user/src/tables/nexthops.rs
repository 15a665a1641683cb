//! [`Neighbours`] on this host's kernel: the next hop of a remote VTEP
//! gets a managed neighbour entry where it has none (see [`crate::neigh`]),
//! and the entries made are recorded in `NEXTHOPS`, so that `vtep down`
//! removes exactly those.

use std::net::Ipv4Addr;

use aya::maps::{HashMap, MapData};
use vtep_common::maps::NextHopKey;

use super::{
    map::KvMap,
    remotes::{NeighbourError, Neighbours},
};
use crate::{
    neigh, sys,
    values::{PeerVtep, ip_from_map, ip_to_map},
};

/// The kernel's neighbour table, and our record of what we added to it.
pub struct KernelNeighbours {
    made: HashMap<MapData, NextHopKey, u32>,
}

impl KernelNeighbours {
    pub fn new(made: HashMap<MapData, NextHopKey, u32>) -> Self {
        Self { made }
    }
}

impl Neighbours for KernelNeighbours {
    fn keep_resolved(&mut self, remote: PeerVtep, local: Ipv4Addr) -> Result<(), NeighbourError> {
        let unroutable = |e: anyhow::Error| NeighbourError::Unroutable(format!("{e:#}"));
        let (hop, dev, made) = neigh::keep_resolved(remote.ip(), local).map_err(unroutable)?;
        if made {
            let key = NextHopKey {
                ifindex: sys::ifindex(&dev).map_err(unroutable)?,
                ip: ip_to_map(hop),
            };
            self.made
                .put(key, 1)
                .map_err(|source| NeighbourError::Record { remote, source })?;
        }
        Ok(())
    }

    fn forget_all(&mut self) {
        let made = match self.made.entries() {
            Ok(m) => m,
            Err(e) => {
                log::warn!("cannot read the record of next hops made: {e}");
                return;
            }
        };
        for (k, _) in made {
            if let Err(e) = neigh::forget(ip_from_map(k.ip), &sys::ifname(k.ifindex)) {
                log::warn!("{e:#}");
            }
            if let Err(e) = self.made.delete(&k) {
                log::warn!("cannot update the record of next hops made: {e}");
            }
        }
    }
}
