//! `vtep daemon`: housekeeping, metrics and live configuration.
//!
//! The data plane never depends on it: every program and map is pinned, so
//! the daemon can die (even by SIGKILL), restart and carry on. It removes
//! learned MACs idle for the ageing time, serves Prometheus metrics, and
//! with --config brings the instance up and makes it match the file again
//! on SIGHUP (only the differences are applied).

use std::{fmt::Write as _, net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use log::{info, warn};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use crate::{
    cmd::up,
    config,
    instance::{Instance, Tables},
    reconcile::reconcile,
    values::Mac,
};

/// Run the housekeeping daemon for an instance (see the module docs).
///
/// Examples:
///   vtep daemon --config /etc/vtep.toml
///   vtep daemon --metrics 127.0.0.1:9469
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Configuration to bring up and keep applied (re-read on SIGHUP).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to serve Prometheus metrics (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:9469")]
    metrics: SocketAddr,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    if let Some(path) = &args.config {
        let plan = config::load(path)?;
        if inst.is_up() {
            let c = reconcile(inst, &plan)?;
            info!("configuration applied: {c:?}");
        } else {
            up::bring_up(inst, &plan, true)?;
        }
    }
    inst.open()?;
    let pidfile = inst.pidfile();
    if let Some(pid) = inst.daemon_pid() {
        anyhow::bail!(
            "a daemon already runs for instance '{}' (pid {pid})",
            inst.name
        );
    }
    std::fs::create_dir_all("/run/vtep").context("cannot create /run/vtep")?;
    std::fs::write(&pidfile, std::process::id().to_string())
        .with_context(|| format!("cannot write {}", pidfile.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = rt.block_on(serve(&args, inst));
    let _ = std::fs::remove_file(&pidfile);
    result
}

async fn serve(args: &Args, inst: &Instance) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.metrics).await.with_context(|| {
        format!(
            "cannot listen on {} for metrics; pick another --metrics",
            args.metrics
        )
    })?;
    info!("metrics on http://{}/metrics", args.metrics);
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut log_tick = tokio::time::interval(Duration::from_millis(200));
    let mut kernel_log = KernelLog::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = reap(inst) {
                    warn!("housekeeping: {e:#}");
                }
            }
            _ = log_tick.tick() => kernel_log.flush(inst),
            conn = listener.accept() => {
                if let Ok((mut stream, _)) = conn {
                    let mut buf = [0u8; 1024];
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    let request = String::from_utf8_lossy(&buf[..n]);
                    let response = if request.starts_with("GET /metrics") {
                        match inst.open().and_then(|t| metrics(inst, &t)) {
                            Ok(body) => format!("HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
                            Err(e) => format!("HTTP/1.0 500 Internal Server Error\r\n\r\n{e:#}\n"),
                        }
                    } else {
                        "HTTP/1.0 404 Not Found\r\n\r\ntry /metrics\n".to_owned()
                    };
                    let _ = stream.write_all(response.as_bytes()).await;
                }
            }
            _ = hup.recv() => {
                match &args.config {
                    Some(path) => match config::load(path).and_then(|p| reconcile(inst, &p)) {
                        Ok(c) => info!("SIGHUP: configuration applied: {c:?}"),
                        Err(e) => warn!("SIGHUP: configuration not applied: {e:#}"),
                    },
                    None => info!("SIGHUP: no --config to reload"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    info!("stopping; the data plane keeps running");
    Ok(())
}

/// The kernel programs' log records (aya-log), read from the log ring of
/// the programs running now: an upgrade brings new programs with a new
/// ring, so the reader follows the XDP link's program id.
#[derive(Default)]
struct KernelLog {
    program_id: u32,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

impl KernelLog {
    fn flush(&mut self, inst: &Instance) {
        let id = current_program(inst).unwrap_or(0);
        if id != self.program_id {
            self.program_id = id;
            self.logger = match aya_log::EbpfLogger::init_from_id(id) {
                Ok(l) => Some(l),
                Err(e) => {
                    warn!("cannot read the kernel programs' log records: {e}");
                    None
                }
            };
        }
        if let Some(l) = &mut self.logger {
            l.flush();
        }
    }
}

/// The id of the program in the instance's XDP link.
fn current_program(inst: &Instance) -> anyhow::Result<u32> {
    let link = aya::programs::links::PinnedLink::from_pin(inst.pin(crate::instance::PIN_LINK_XDP))?;
    let fd: aya::programs::links::FdLink = link.into();
    Ok(fd.info()?.program_id())
}

/// Removes learned MACs idle for the ageing time.
fn reap(inst: &Instance) -> anyhow::Result<()> {
    for (k, _) in inst.open()?.reap_stale() {
        info!("aged out: VNI {} {}", k.vni, Mac(k.mac));
    }
    Ok(())
}

/// Reads one counter of a VNI's statistics.
type VniField = fn(&vtep_common::maps::VniStats) -> u64;
/// Reads one counter of a remote VTEP's statistics.
type PeerField = fn(&vtep_common::maps::PeerStats) -> u64;

/// The Prometheus text exposition of the instance's counters and tables.
fn metrics(inst: &Instance, t: &Tables) -> anyhow::Result<String> {
    let mut s = String::new();
    let name = &inst.name;
    let stats = t.stats()?;
    let per_vni: [(&str, &str, VniField); 5] = [
        (
            "vtep_vni_rx_packets_total",
            "Frames decapsulated and delivered.",
            |v| v.rx_packets,
        ),
        (
            "vtep_vni_rx_bytes_total",
            "Inner bytes decapsulated and delivered.",
            |v| v.rx_bytes,
        ),
        (
            "vtep_vni_tx_packets_total",
            "Frames encapsulated and sent.",
            |v| v.tx_packets,
        ),
        (
            "vtep_vni_tx_bytes_total",
            "Inner bytes encapsulated and sent.",
            |v| v.tx_bytes,
        ),
        (
            "vtep_vni_drop_packets_total",
            "Frames of the VNI dropped.",
            |v| v.drop_packets,
        ),
    ];
    for (metric, help, get) in per_vni {
        writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} counter")?;
        for v in &stats.vnis {
            writeln!(
                s,
                "{metric}{{instance=\"{name}\",vni=\"{}\"}} {}",
                v.vni,
                get(&v.stats)
            )?;
        }
    }
    let per_remote: [(&str, &str, PeerField); 4] = [
        (
            "vtep_remote_rx_packets_total",
            "Frames from the remote VTEP, decapsulated and delivered.",
            |p| p.rx_packets,
        ),
        (
            "vtep_remote_rx_bytes_total",
            "Inner bytes from the remote VTEP, decapsulated and delivered.",
            |p| p.rx_bytes,
        ),
        (
            "vtep_remote_tx_packets_total",
            "Frames encapsulated and sent to the remote VTEP.",
            |p| p.tx_packets,
        ),
        (
            "vtep_remote_tx_bytes_total",
            "Inner bytes encapsulated and sent to the remote VTEP.",
            |p| p.tx_bytes,
        ),
    ];
    for (metric, help, get) in per_remote {
        writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} counter")?;
        for r in &stats.remotes {
            writeln!(
                s,
                "{metric}{{instance=\"{name}\",remote=\"{}\"}} {}",
                r.remote,
                get(&r.stats)
            )?;
        }
    }
    writeln!(
        s,
        "# HELP vtep_drops_total Frames dropped, by reason.\n# TYPE vtep_drops_total counter"
    )?;
    for (r, n) in &stats.drops {
        writeln!(
            s,
            "vtep_drops_total{{instance=\"{name}\",reason=\"{}\"}} {n}",
            r.name()
        )?;
    }
    writeln!(
        s,
        "# HELP vtep_events_total Datapath events (learning, moves, flooding, ...).\n# TYPE vtep_events_total counter"
    )?;
    for (c, n) in &stats.counters {
        writeln!(
            s,
            "vtep_events_total{{instance=\"{name}\",event=\"{}\"}} {n}",
            c.name()
        )?;
    }
    let rows = t.fdb_rows(None)?;
    let learned = rows.iter().filter(|r| r.learned.is_some()).count();
    writeln!(
        s,
        "# HELP vtep_fdb_entries FDB entries, by origin.\n# TYPE vtep_fdb_entries gauge"
    )?;
    writeln!(
        s,
        "vtep_fdb_entries{{instance=\"{name}\",origin=\"static\"}} {}",
        rows.len() - learned
    )?;
    writeln!(
        s,
        "vtep_fdb_entries{{instance=\"{name}\",origin=\"learned\"}} {learned}"
    )?;
    writeln!(
        s,
        "# HELP vtep_map_entries Entries used per map.\n# TYPE vtep_map_entries gauge"
    )?;
    writeln!(
        s,
        "# HELP vtep_map_capacity Capacity per map.\n# TYPE vtep_map_capacity gauge"
    )?;
    for map in [
        vtep_common::consts::MAP_FDB,
        vtep_common::consts::MAP_LEARNED,
        vtep_common::consts::MAP_NEIGHS,
        vtep_common::consts::MAP_VNIS,
        vtep_common::consts::MAP_PORTS,
        vtep_common::consts::MAP_REMOTES,
    ] {
        let cap = aya::maps::MapData::from_pin(inst.pin(map))?
            .info()?
            .max_entries();
        writeln!(
            s,
            "vtep_map_entries{{instance=\"{name}\",map=\"{map}\"}} {}",
            t.dump(map)?.len()
        )?;
        writeln!(
            s,
            "vtep_map_capacity{{instance=\"{name}\",map=\"{map}\"}} {cap}"
        )?;
    }
    Ok(s)
}
