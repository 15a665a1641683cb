//! `vtep status`: what runs where.

use serde_json::json;

use crate::instance::Instance;

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
    let t = inst.open()?;
    let record = t.dump(vtep_common::consts::MAP_INSTANCE)?.remove(0);
    let mut links = serde_json::Map::new();
    for entry in std::fs::read_dir(&inst.dir)?.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("link_") {
            let link = aya::programs::links::PinnedLink::from_pin(entry.path())?;
            let fd: aya::programs::links::FdLink = link.into();
            let info = fd.info()?;
            links.insert(
                name,
                json!({ "link_id": info.id(), "program_id": info.program_id() }),
            );
        }
    }
    let fdb = t.fdb_rows(None)?;
    let learned = fdb.iter().filter(|r| r.learned.is_some()).count();
    let out = json!({
        "instance": inst.name,
        "pinned_at": inst.dir.display().to_string(),
        "datapath": record,
        "attachments": links,
        "vnis": t.vnis().len(),
        "ports": t.dump(vtep_common::consts::MAP_PORTS)?,
        "fdb": { "static": fdb.len() - learned, "learned": learned },
        "daemon": inst.daemon_pid().map(|pid| json!({ "pid": pid })),
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let d = &out["datapath"];
    println!(
        "instance {} (pinned at {})",
        inst.name,
        out["pinned_at"].as_str().unwrap_or("")
    );
    println!(
        "underlay {} ({} XDP), local {}, UDP {}, TTL {}, DF {}",
        d["underlay"].as_str().unwrap_or(""),
        d["xdp_mode"].as_str().unwrap_or(""),
        d["local_ip"].as_str().unwrap_or(""),
        d["udp_port"],
        d["ttl"],
        d["df"]
    );
    println!(
        "learning: ageing {} s, freeze after {} moves in {} s",
        d["ageing_s"], d["move_limit"], d["move_window_s"]
    );
    for (name, l) in &links {
        println!("{name}: link {} program {}", l["link_id"], l["program_id"]);
    }
    println!(
        "{} VNIs, FDB {} static / {} learned",
        out["vnis"], out["fdb"]["static"], out["fdb"]["learned"]
    );
    for p in out["ports"].as_array().into_iter().flatten() {
        println!(
            "port {} VNI {} deliver {}",
            p["port"].as_str().unwrap_or(""),
            p["vni"],
            p["deliver"].as_str().unwrap_or("")
        );
    }
    match out["daemon"]["pid"].as_i64() {
        Some(pid) => println!("daemon running (pid {pid})"),
        None => println!("daemon not running (the data plane does not need it)"),
    }
    Ok(())
}
