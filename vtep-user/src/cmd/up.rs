//! `vtep up`: load the datapath onto the underlay, optionally with a whole
//! configuration.

use std::path::PathBuf;

use anyhow::Context as _;
use vtep_common::{
    consts::{DEFAULT_LEARNED_CAPACITY, DEFAULT_TTL, FDB_CAPACITY, VXLAN_PORT},
    maps::{DEFAULT_AGEING_S, DEFAULT_MOVE_LIMIT, DEFAULT_MOVE_WINDOW_S},
};

use crate::{
    config,
    domain::{
        self, Scope,
        plan::{Learning, Plan, Underlay},
    },
    instance::Instance,
    values::{LocalIp, XdpModeArg},
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
    #[arg(long, required_unless_present = "config", conflicts_with = "config")]
    local_ip: Option<LocalIp>,
    /// VXLAN UDP port.
    #[arg(long, default_value_t = VXLAN_PORT, conflicts_with = "config")]
    udp_port: u16,
    /// XDP attach mode on the underlay, or `off`: decap in TC (auto:
    /// native where the driver has it, else off).
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
    let (plan, scope) = match &args.config {
        Some(path) => (config::load(path)?, Scope::Whole),
        None => {
            let underlay = Underlay {
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
                ..Underlay::new(
                    args.underlay.context("--underlay is required")?,
                    args.local_ip.context("--local-ip is required")?,
                )
            };
            (Plan::bare(underlay), Scope::Underlay)
        }
    };
    let said = domain::bring_up(inst, &plan, scope)?;
    eprintln!("vtep: {said}");
    Ok(())
}
