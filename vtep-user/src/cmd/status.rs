//! `vtep status`: what runs where.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    datapath::{self, Attachment},
    domain,
    instance::Instance,
    tables::views::{InstanceView, PortView},
};

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

#[derive(Serialize)]
struct FdbCounts {
    #[serde(rename = "static")]
    statics: usize,
    learned: usize,
}

#[derive(Serialize)]
struct Daemon {
    pid: i32,
}

/// What `vtep status` shows.
#[derive(Serialize)]
struct Status<'a> {
    instance: &'a str,
    pinned_at: String,
    datapath: InstanceView,
    attachments: BTreeMap<String, Attachment>,
    vnis: usize,
    ports: Vec<PortView>,
    fdb: FdbCounts,
    daemon: Option<Daemon>,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let t = domain::read(inst)?;
    let fdb = t.fdb_rows(None)?;
    let learned = fdb.iter().filter(|r| r.learned.is_some()).count();
    let s = Status {
        instance: &inst.name,
        pinned_at: inst.dir.display().to_string(),
        datapath: t.instance_view(),
        attachments: datapath::attachments(inst)?,
        vnis: t.vnis()?.len(),
        ports: t.port_views()?,
        fdb: FdbCounts {
            statics: fdb.len() - learned,
            learned,
        },
        daemon: inst.daemon_pid().map(|pid| Daemon { pid }),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let d = &s.datapath;
    println!("instance {} (pinned at {})", s.instance, s.pinned_at);
    println!(
        "underlay {} ({} XDP), local {}, UDP {}, TTL {}, DF {}",
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
        println!("port {} VNI {} deliver {}", p.port, p.vni, p.deliver);
    }
    match &s.daemon {
        Some(d) => println!("daemon running (pid {})", d.pid),
        None => println!("daemon not running (the data plane does not need it)"),
    }
    Ok(())
}
