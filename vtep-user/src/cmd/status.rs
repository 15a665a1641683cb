//! `vtep status`: what runs where.

use vtep_common::caches::{TTL_NS, WATCHED_TTL_NS};

use crate::{domain, instance::Instance};

/// Show the instance: underlay and XDP mode, local address, ports,
/// program ids, pin path, daemon, configuration summary.
///
/// Example: vtep status --json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let s = domain::status(inst)?;
    if args.json {
        super::print_json(&s)?;
        return Ok(());
    }
    let d = &s.datapath;
    println!("instance {} (pinned at {})", s.instance, s.pinned_at);
    println!(
        "underlay {} (XDP {}), local {}, UDP {}, TTL {}, DF {}",
        d.underlay, d.xdp_mode, d.local_ip, d.udp_port, d.ttl, d.df
    );
    println!(
        "learning: ageing {} s, freeze after {} moves in {} s",
        d.ageing_s, d.move_limit, d.move_window_s
    );
    for (name, l) in &s.attachments {
        println!("{name}: link {} program {}", l.link_id, l.program_id);
    }
    println!(
        "{} VNIs, FDB {} static / {} learned",
        s.vnis, s.fdb.statics, s.fdb.learned
    );
    for p in &s.ports {
        println!(
            "port {} VNI {} deliver {} headroom {}",
            p.vlan.binding(&p.port),
            p.vni,
            p.deliver,
            if p.headroom { "raised" } else { "as it comes" }
        );
    }
    match &s.daemon {
        Some(d) if d.hears_changes => println!(
            "daemon running (pid {}), hears link, route and neighbour changes: \
             cached decisions live up to {} s",
            d.pid,
            secs(WATCHED_TTL_NS)
        ),
        Some(d) => println!(
            "daemon running (pid {}), not hearing link, route and neighbour changes: \
             cached decisions expire after {} s",
            d.pid,
            secs(TTL_NS)
        ),
        None => println!("daemon not running (the data plane does not need it)"),
    }
    Ok(())
}

/// `ns` in seconds, as printed.
fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}
