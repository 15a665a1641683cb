//! The datapath's counters, summed over CPUs: per VNI, per remote VTEP,
//! per port binding, drops by reason and other events.

use aya::{
    Pod,
    maps::{MapData, PerCpuArray},
};
use serde::Serialize;
use vtep_common::{
    counters::{Counter, DropReason},
    maps::BindingStats,
};

use super::{TableError, Tables, map::MapFault};
use crate::{
    sys,
    values::{PeerVtep, Vid, Vni, ip_from_map},
};

/// Traffic in both directions: rx = decapsulated and delivered, tx =
/// encapsulated and sent (a flooded frame once per remote it is sent to).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
}

/// One VNI's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VniRow {
    pub vni: Vni,
    #[serde(flatten)]
    pub traffic: Traffic,
    pub drop_packets: u64,
}

/// One remote VTEP's counters, all VNIs together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerRow {
    pub remote: PeerVtep,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// One port binding's counters: rx = frames delivered to its hosts, tx =
/// frames from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BindingRow {
    pub port: String,
    /// 802.1Q VLAN (0: the port's untagged frames).
    pub vlan: Vid,
    pub vni: Vni,
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// Counters of the whole instance.
pub struct Stats {
    pub vnis: Vec<VniRow>,
    /// Per remote VTEP, by address.
    pub remotes: Vec<PeerRow>,
    /// Per port binding, by port and VLAN.
    pub bindings: Vec<BindingRow>,
    pub drops: Vec<(DropReason, u64)>,
    pub counters: Vec<(Counter, u64)>,
}

/// The per-CPU values of `slot` in `map`, summed by `add`.
fn sum_slot<V: Pod, T: Default>(
    map: &PerCpuArray<MapData, V>,
    slot: u32,
    add: impl Fn(&mut T, &V),
) -> Result<T, MapFault> {
    let mut total = T::default();
    for v in map.get(&slot, 0)?.iter() {
        add(&mut total, v);
    }
    Ok(total)
}

fn add_traffic(
    t: &mut Traffic,
    (rx_packets, rx_bytes, tx_packets, tx_bytes): (u64, u64, u64, u64),
) {
    t.rx_packets += rx_packets;
    t.rx_bytes += rx_bytes;
    t.tx_packets += tx_packets;
    t.tx_bytes += tx_bytes;
}

impl Tables {
    /// All counters, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, TableError> {
        let mut vnis = Vec::new();
        for (vni, info) in self.vnis()? {
            let (traffic, drop_packets) = sum_slot(
                &self.vni_stats,
                info.slot,
                |(t, d): &mut (Traffic, u64), s: &vtep_common::maps::VniStats| {
                    add_traffic(t, (s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes));
                    *d += s.drop_packets;
                },
            )
            .map_err(TableError::map("read", "VNI stats"))?;
            vnis.push(VniRow {
                vni,
                traffic,
                drop_packets,
            });
        }
        let mut remotes = Vec::new();
        for (ip, p) in self.remotes.peer_entries()? {
            let traffic = sum_slot(
                &self.remotes.peer_stats,
                p.slot,
                |t, s: &vtep_common::maps::PeerStats| {
                    add_traffic(t, (s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes));
                },
            )
            .map_err(TableError::map("read", "remote VTEP stats"))?;
            remotes.push(PeerRow {
                remote: PeerVtep::recorded(ip_from_map(ip)),
                traffic,
            });
        }
        remotes.sort_by_key(|r| r.remote);
        let mut bindings = Vec::new();
        for (key, p) in self.ports()? {
            let traffic = sum_slot(&self.binding_stats, p.stats, |t, s: &BindingStats| {
                add_traffic(t, (s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes));
            })
            .map_err(TableError::map("read", "binding stats"))?;
            bindings.push(BindingRow {
                port: sys::ifname(key.ifindex),
                vlan: Vid::recorded(key.vid),
                vni: Vni::recorded(p.vni),
                traffic,
            });
        }
        let count = |map, i| {
            sum_slot(map, i, |t: &mut u64, v: &u64| *t += v)
                .map_err(TableError::map("read", "counter"))
        };
        let drops = DropReason::ALL
            .iter()
            .map(|r| Ok((*r, count(&self.drops, *r as u32)?)))
            .collect::<Result<_, TableError>>()?;
        let counters = Counter::ALL
            .iter()
            .map(|c| Ok((*c, count(&self.counters, *c as u32)?)))
            .collect::<Result<_, TableError>>()?;
        Ok(Stats {
            vnis,
            remotes,
            bindings,
            drops,
            counters,
        })
    }
}
