//! `vtep up`: load the datapath onto the underlay, optionally with a whole
//! configuration.

use std::{net::Ipv4Addr, path::PathBuf};

use anyhow::{Context as _, bail};
use vtep_common::{
    consts::{DEFAULT_LEARNED_CAPACITY, DEFAULT_TTL, FDB_CAPACITY, VXLAN_PORT},
    maps::{
        CONFIG_F_DF, CONFIG_F_NO_DECAP_CACHE, Config, DEFAULT_AGEING_S, DEFAULT_MOVE_LIMIT,
        DEFAULT_MOVE_WINDOW_S,
    },
};

use crate::{
    cmd::port,
    config::{self, Learning, Plan, PlanLocation, Underlay},
    datapath::{self, XdpModeArg},
    instance::{Instance, Location},
    sys,
    values::{ip_from_map, ip_to_map, parse_ipv4},
};

/// Attach the VTEP to the underlay interface and pin it; returns at once,
/// the datapath keeps running until `vtep down`.
///
/// On an instance that is already up, `up` upgrades it in place: this
/// build's programs replace the running ones atomically, every map entry
/// stays, no frame is lost; the settings given (TTL, DF, ageing, move
/// limits) take effect. The underlay and local address cannot change
/// this way. With --config, the instance is then made to match the file.
///
/// Examples:
///   vtep up --underlay eth1 --local-ip 198.18.1.1
///   vtep up --config /etc/vtep.toml
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Underlay interface (VXLAN arrives and leaves here).
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    underlay: Option<String>,
    /// This VTEP's underlay IPv4 address.
    #[arg(long, value_parser = parse_ipv4, required_unless_present = "config", conflicts_with = "config")]
    local_ip: Option<Ipv4Addr>,
    /// VXLAN UDP port.
    #[arg(long, default_value_t = VXLAN_PORT, conflicts_with = "config")]
    udp_port: u16,
    /// XDP attach mode on the underlay.
    #[arg(long, value_enum, default_value = "auto", conflicts_with = "config")]
    xdp_mode: XdpModeArg,
    /// Outer IPv4 TTL.
    #[arg(long, default_value_t = DEFAULT_TTL, value_parser = clap::value_parser!(u8).range(1..), conflicts_with = "config")]
    ttl: u8,
    /// Leave DF clear on outer IPv4 headers (default: DF set, so that
    /// underlay MTU problems show instead of fragmenting).
    #[arg(long, conflicts_with = "config")]
    no_df: bool,
    /// Decide every decapsulated frame from the tables, without the
    /// per-CPU decap decision cache (for comparison and troubleshooting:
    /// the cache never changes what is decided, only how fast).
    #[arg(long, conflicts_with = "config")]
    no_decap_cache: bool,
    /// Seconds a learned MAC stays without being seen.
    #[arg(long, default_value_t = DEFAULT_AGEING_S, conflicts_with = "config")]
    ageing: u32,
    /// Capacity of the learned-MAC table (LRU: the least recently used go
    /// first when it is full; static entries are never evicted).
    #[arg(long, default_value_t = DEFAULT_LEARNED_CAPACITY, conflicts_with = "config")]
    learned_capacity: u32,
    /// Capacity of the static FDB (entries from `fdb add`, `fdb load` and
    /// config files); adding beyond it is refused.
    #[arg(long, default_value_t = FDB_CAPACITY, value_parser = clap::value_parser!(u32).range(1..), conflicts_with = "config")]
    fdb_capacity: u32,
    /// A MAC moving more than this many times within --move-window is
    /// frozen where it is (RFC 7432 §15.1).
    #[arg(long, default_value_t = DEFAULT_MOVE_LIMIT, conflicts_with = "config")]
    move_limit: u32,
    /// The move-counting window, seconds.
    #[arg(long, default_value_t = DEFAULT_MOVE_WINDOW_S, conflicts_with = "config")]
    move_window: u32,
    /// Whole configuration (underlay, VNIs, ports, FDB) from a TOML file.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let plan = match &args.config {
        Some(path) => config::load(path)?,
        None => Plan {
            underlay: Underlay {
                iface: args.underlay.context("--underlay is required")?,
                local_ip: args.local_ip.context("--local-ip is required")?,
                udp_port: args.udp_port,
                xdp_mode: args.xdp_mode,
                ttl: args.ttl,
                df: !args.no_df,
                decap_cache: !args.no_decap_cache,
                learning: Learning {
                    ageing_s: args.ageing,
                    capacity: args.learned_capacity,
                    move_limit: args.move_limit,
                    move_window_s: args.move_window,
                },
                fdb_capacity: args.fdb_capacity,
            },
            vnis: Vec::new(),
            ports: Vec::new(),
            fdb: Vec::new(),
        },
    };
    bring_up(inst, &plan, args.config.is_some())
}

/// Brings `inst` up as `plan` says, or upgrades it in place if it is up
/// (and, when the plan came from a file, makes it match the file).
pub fn bring_up(inst: &Instance, plan: &Plan, from_file: bool) -> anyhow::Result<()> {
    // Everything the plan names must exist before anything is loaded.
    plan.underlay.learning.check()?;
    let underlay_ifindex = sys::ifindex(&plan.underlay.iface)?;
    for (iface, _, _) in &plan.ports {
        sys::ifindex(iface)?;
    }
    let u = &plan.underlay;
    let cfg = Config {
        local_ip: ip_to_map(u.local_ip),
        underlay_ifindex,
        udp_port: u.udp_port,
        ttl: u.ttl,
        flags: if u.df { CONFIG_F_DF } else { 0 }
            | if u.decap_cache {
                0
            } else {
                CONFIG_F_NO_DECAP_CACHE
            },
        ageing_s: u.learning.ageing_s,
        move_limit: u.learning.move_limit,
        move_window_s: u.learning.move_window_s,
    };
    if inst.is_up() {
        let recorded = inst.open()?.info;
        let r = &recorded.config;
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
        if from_file {
            let c = crate::reconcile::reconcile(inst, plan)?;
            eprintln!("vtep: configuration applied: {c:?}");
        }
        eprintln!("vtep: instance '{}' upgraded in place", inst.name);
        return Ok(());
    }
    let capacities = datapath::Capacities {
        fdb: u.fdb_capacity,
        learned: u.learning.capacity,
    };
    let mode = datapath::up(inst, &u.iface, cfg, u.xdp_mode, capacities)?;
    if let Err(e) = apply(inst, plan) {
        datapath::down(inst)?;
        return Err(e);
    }
    let mode = if mode == vtep_common::maps::XDP_MODE_NATIVE {
        "native"
    } else {
        "generic"
    };
    eprintln!(
        "vtep: instance '{}' up on {} ({} XDP), local {}, pinned at {}",
        inst.name,
        u.iface,
        mode,
        u.local_ip,
        inst.dir.display()
    );
    Ok(())
}

fn apply(inst: &Instance, plan: &Plan) -> anyhow::Result<()> {
    let mut t = inst.open()?;
    for v in &plan.vnis {
        t.vni_add(v.vni, &v.flood, v.learning, v.bum_pps)?;
    }
    drop(t);
    for (iface, vni, deliver) in &plan.ports {
        port::add(inst, iface, *vni, *deliver)?;
    }
    let mut t = inst.open()?;
    for (mac, vni, at) in &plan.fdb {
        let at = match at {
            PlanLocation::Remote(ip) => Location::Remote(*ip),
            PlanLocation::Port(p) => Location::Port(sys::ifindex(p)?),
        };
        t.fdb_add(*vni, *mac, at)?;
    }
    Ok(())
}
