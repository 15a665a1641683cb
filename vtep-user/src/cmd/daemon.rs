//! `vtep daemon`: housekeeping, metrics and live configuration.
//!
//! The data plane never depends on it: every program and map is pinned, so
//! the daemon can die (even by SIGKILL), restart and carry on. It removes
//! learned MACs idle for the ageing time, serves Prometheus metrics, and
//! with --config brings the instance up and makes it match the file again
//! on SIGHUP (only the differences are applied).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use log::{info, warn};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use super::metrics::metrics;
use crate::{
    config, datapath,
    domain::{self, Edit, Scope},
    instance::Instance,
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
            let c = Edit::begin(inst)?.reconcile(&plan)?;
            info!("configuration applied: {c:?}");
        } else {
            info!("{}", domain::bring_up(inst, &plan, Scope::Whole)?);
        }
    }
    domain::read(inst)?;
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
                        match domain::read(inst).and_then(|t| metrics(inst, &t)) {
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
                    Some(path) => match config::load(path).and_then(|p| Edit::begin(inst)?.reconcile(&p)) {
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
        let id = datapath::xdp_program_id(inst).unwrap_or(0);
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

/// Removes learned MACs idle for the ageing time (at the next tick if a
/// command holds the instance now).
fn reap(inst: &Instance) -> anyhow::Result<()> {
    let Some(mut e) = Edit::try_begin(inst)? else {
        return Ok(());
    };
    for (k, _) in e.reap_stale()? {
        info!("aged out: VNI {} {}", k.vni, Mac(k.mac));
    }
    Ok(())
}
