//! Bringing an instance up (or upgrading it in place), and down.

use anyhow::bail;
use vtep_common::{consts::MAP_NEXTHOPS, maps::CONFIG_F_DECAP_TC};

use super::{Edit, plan::Plan};
use crate::{
    datapath, headroom,
    instance::Instance,
    sys,
    tables::{
        Tables, TablesMut, nexthops::KernelNeighbours, remotes::Neighbours as _,
        views::xdp_mode_name,
    },
    values::ip_from_map,
};

/// How much of a plan `bring_up` applies to an instance that is up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The underlay settings only (`vtep up` with flags): VNIs, ports and
    /// FDB stay as they are.
    Underlay,
    /// Everything (`vtep up --config`, the daemon): the instance is made to
    /// match the plan.
    Whole,
}

/// Brings `inst` up as `plan` says, or upgrades it in place if it is up
/// (and with [`Scope::Whole`] makes it match the plan). Returns what it
/// did, for the user.
pub fn bring_up(inst: &Instance, plan: &Plan, scope: Scope) -> anyhow::Result<String> {
    let u = &plan.underlay;
    u.check()?;
    // Everything the plan names must exist before anything is loaded.
    let underlay_ifindex = sys::ifindex(&u.iface)?;
    for p in &plan.ports {
        sys::ifindex(&p.iface)?;
    }
    let mut cfg = u.config(underlay_ifindex, sys::tick_ns());
    let lock = inst.lock()?;
    if inst.is_up() {
        let recorded = Tables::open(inst)?.info;
        let r = &recorded.config;
        // The attachment stays as it is, and with it where decap runs.
        cfg.flags = (cfg.flags & !CONFIG_F_DECAP_TC) | (r.flags & CONFIG_F_DECAP_TC);
        if recorded.merge_dev != 0 && r.udp_port != cfg.udp_port {
            bail!(
                "instance '{}' decapsulates in TC and its merge device listens on UDP port {}: \
                 an upgrade keeps it; run `vtep down` first to change the port",
                inst.name,
                r.udp_port
            );
        }
        if r.underlay_ifindex != cfg.underlay_ifindex || r.local_ip != cfg.local_ip {
            bail!(
                "instance '{}' is up on {} with local address {}: an upgrade keeps them; \
                 run `vtep down` first to change them",
                inst.name,
                sys::ifname(r.underlay_ifindex),
                ip_from_map(r.local_ip)
            );
        }
        datapath::upgrade(inst, &recorded, cfg)?;
        raise_headroom(&Tables::open(inst)?)?;
        let mut said = String::new();
        if scope == Scope::Whole {
            let mut e = Edit {
                inst,
                t: TablesMut::open(inst, lock)?,
            };
            let c = e.reconcile(plan)?;
            said = format!("configuration applied: {c:?}; ");
        }
        return Ok(format!("{said}instance '{}' upgraded in place", inst.name));
    }
    let capacities = datapath::Capacities {
        fdb: u.fdb_capacity,
        learned: u.learning.capacity,
    };
    let mode = datapath::up(inst, &u.iface, cfg, u.xdp_mode, capacities)?;
    let applied = TablesMut::open(inst, lock).and_then(|t| Edit { inst, t }.reconcile(plan));
    if let Err(e) = applied {
        datapath::down(inst)?;
        return Err(e);
    }
    Ok(format!(
        "instance '{}' up on {} (XDP {}), local {}, pinned at {}",
        inst.name,
        u.iface,
        xdp_mode_name(mode),
        u.local_ip.ip(),
        inst.dir.display()
    ))
}

/// Gives every bound port that has none the room for outer headers that
/// `port add` gives (ports bound by a version before it get it at the
/// upgrade); a port with a master of its own was warned about when bound.
fn raise_headroom(t: &Tables) -> anyhow::Result<()> {
    let mut ports: Vec<u32> = t.ports()?.into_iter().map(|(k, _)| k.ifindex).collect();
    ports.sort_unstable();
    ports.dedup();
    for port in ports {
        match headroom::raise(t.underlay_ifindex(), t.local_ip().ip(), port) {
            Ok(()) | Err(headroom::Kept::HasMaster { .. }) => {}
            Err(e) => log::warn!("{e}"),
        }
    }
    Ok(())
}

/// Takes `inst` down: the neighbour entries it made, its attachments, its
/// pins. Whether it was up.
pub fn down(inst: &Instance) -> anyhow::Result<bool> {
    let lock = inst.lock()?;
    if inst.is_up() {
        match inst.map(MAP_NEXTHOPS) {
            Ok(made) => KernelNeighbours::new(made).forget_all(),
            Err(e) => log::warn!("neighbour entries made for remote VTEPs stay: {e:#}"),
        }
    }
    let was_up = datapath::down(inst)?;
    lock.release_and_remove();
    Ok(was_up)
}
