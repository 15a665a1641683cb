//! [`Neighbours`] on this host's kernel: the next hop of a remote VTEP
//! gets a managed neighbour entry where it has none (over rtnetlink, see
//! [`crate::netlink`]), and the entries made are recorded in `NEXTHOPS`,
//! so that `vtep down` removes exactly those.

use std::net::IpAddr;

use aya::maps::{HashMap, MapData};
use vtep_common::maps::NextHopKey;

use super::{
    map::KvMap,
    remotes::{NeighbourError, Neighbours},
};
use crate::{
    netlink::{NetlinkError, Rtnl},
    values::{PeerVtep, ip_from_map, ip_to_map},
};

/// The kernel's neighbour table, and our record of what we added to it.
pub struct KernelNeighbours {
    made: HashMap<MapData, NextHopKey, u32>,
    /// Opened at the first request.
    rtnl: Option<Rtnl>,
}

impl KernelNeighbours {
    pub fn new(made: HashMap<MapData, NextHopKey, u32>) -> Self {
        Self { made, rtnl: None }
    }

    fn rtnl(&mut self) -> Result<&mut Rtnl, NetlinkError> {
        if self.rtnl.is_none() {
            self.rtnl = Some(Rtnl::open()?);
        }
        Ok(self.rtnl.as_mut().expect("opened just above"))
    }

    /// Makes sure `hop` on `ifindex` has a neighbour entry; whether this
    /// made it.
    fn ensure(
        &mut self,
        remote: PeerVtep,
        local: IpAddr,
    ) -> Result<Option<NextHopKey>, NetlinkError> {
        let rtnl = self.rtnl()?;
        let (hop, ifindex) = rtnl.route_to(remote.ip(), local)?;
        if rtnl.has_neighbour(hop, ifindex)? {
            return Ok(None);
        }
        rtnl.add_managed(hop, ifindex)?;
        Ok(Some(NextHopKey {
            ifindex,
            ip: ip_to_map(hop),
        }))
    }
}

impl Neighbours for KernelNeighbours {
    fn keep_resolved(&mut self, remote: PeerVtep, local: IpAddr) -> Result<(), NeighbourError> {
        let made = self
            .ensure(remote, local)
            .map_err(|e| NeighbourError::Unroutable(e.to_string()))?;
        if let Some(key) = made {
            self.made
                .put(key, 1)
                .map_err(|fault| NeighbourError::Record { remote, fault })?;
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
            let removed = self
                .rtnl()
                .and_then(|r| r.delete_neighbour(ip_from_map(k.ip), k.ifindex));
            if let Err(e) = removed {
                log::warn!("{e}");
            }
            if let Err(e) = self.made.delete(&k) {
                log::warn!("cannot update the record of next hops made: {e}");
            }
        }
    }
}
