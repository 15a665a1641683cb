//! `vtep daemon`: housekeeping, metrics and live configuration for one
//! instance.
//!
//! The data plane never depends on it: every program and map is pinned, so
//! the daemon can die (even by SIGKILL), restart and carry on. One loop
//! ages learned MACs, reads the kernel programs' log, re-applies the
//! configuration on SIGHUP, stops on SIGTERM/SIGINT, tells the decision
//! caches of route, neighbour and link changes and vouches that it hears
//! them, so that cached decisions live longer (`changes`; without a
//! daemon, cached next hops and port MTUs only expire) and
//! answers the HTTP tasks' questions from the instance's tables, which it
//! keeps open; the HTTP endpoint (`http`) serves clients in tasks of their
//! own, so no client can stall the loop.

mod changes;
mod http;
mod metrics;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use log::{info, warn};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};

use self::http::Ask;
use crate::{
    config, datapath,
    domain::{self, Edit, Scope, plan::EvpnPlan},
    evpn,
    instance::Instance,
    tables::Tables,
    values::Mac,
};

/// How the daemon runs.
pub struct Options {
    /// Configuration to bring up and keep applied (re-read on SIGHUP).
    pub config: Option<PathBuf>,
    /// Where to serve `/metrics` and `/healthz`.
    pub listen: SocketAddr,
}

/// Brings the instance up from the configuration if one is given, then
/// runs until SIGTERM or SIGINT.
pub fn run(inst: &Instance, opts: &Options) -> anyhow::Result<()> {
    let mut evpn = None;
    if let Some(path) = &opts.config {
        let plan = config::load(path)?;
        if inst.is_up() {
            let c = Edit::begin(inst)?.reconcile(&plan)?;
            info!("configuration applied: {c:?}");
        } else {
            info!("{}", domain::bring_up(inst, &plan, Scope::Whole)?);
        }
        evpn = plan.evpn;
    }
    let tables = domain::read(inst)?;
    if let Some(pid) = inst.daemon_pid() {
        anyhow::bail!(
            "a daemon already runs for instance '{}' (pid {pid})",
            inst.name
        );
    }
    let pidfile = inst.write_pidfile()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let result = rt.block_on(serve(inst, opts, tables, evpn));
    let _ = std::fs::remove_file(&pidfile);
    result
}

/// The instance as the daemon holds it: its tables, opened once and again
/// only when the instance was brought up anew.
struct Held<'a> {
    inst: &'a Instance,
    tables: Option<Tables>,
    /// What the EVPN agent reports.
    evpn: evpn::Shared,
}

impl Held<'_> {
    /// The tables, reopened if the instance was taken down and up since;
    /// `None` while it is down.
    fn tables(&mut self) -> Option<&Tables> {
        let current = self
            .tables
            .as_ref()
            .is_some_and(|t| t.is_current(self.inst));
        if !current {
            self.tables = domain::read(self.inst).ok();
        }
        self.tables.as_ref()
    }

    /// Removes learned MACs idle for the ageing time (at the next tick if
    /// a command holds the instance now).
    fn reap(&mut self) -> anyhow::Result<()> {
        if self.tables().is_none() {
            return Ok(());
        }
        let Some(tables) = self.tables.take() else {
            return Ok(());
        };
        match Edit::try_with(self.inst, tables)? {
            Ok(mut e) => {
                let aged = e.reap_stale();
                self.tables = Some(e.into_tables());
                for (k, _) in aged? {
                    info!("aged out: VNI {} {}", k.vni, Mac(k.mac));
                }
            }
            Err(tables) => self.tables = Some(tables),
        }
        Ok(())
    }

    /// Whether the programs are attached, and why not.
    fn health(&mut self) -> Result<(), String> {
        if self.tables().is_none() {
            return Err(format!(
                "instance '{}' is not up: run `vtep up`",
                self.inst.name
            ));
        }
        datapath::decap_program_id(self.inst)
            .map(|_| ())
            .map_err(|e| format!("the decap program is not attached: {e:#}"))
    }

    fn answer(&mut self, ask: Ask) {
        // A requester that gave up is no concern of ours.
        match ask {
            Ask::Metrics(reply) => {
                let inst = self.inst;
                let evpn = self.evpn.clone();
                let body = match self.tables() {
                    Some(t) => {
                        metrics::render(&inst.name, t, &evpn.borrow()).map_err(|e| format!("{e:#}"))
                    }
                    None => Err(format!("instance '{}' is not up", inst.name)),
                };
                let _ = reply.send(body);
            }
            Ask::Health(reply) => {
                let _ = reply.send(self.health());
            }
        }
    }
}

async fn serve(
    inst: &Instance,
    opts: &Options,
    tables: Tables,
    evpn: Option<EvpnPlan>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(opts.listen).await.with_context(|| {
        format!(
            "cannot listen on {} for metrics; pick another --metrics",
            opts.listen
        )
    })?;
    info!(
        "metrics on http://{}/metrics, health on /healthz",
        opts.listen
    );
    let (asks_tx, mut asks) = mpsc::channel::<Ask>(64);
    let server = tokio::spawn(http::serve(listener, asks_tx));
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut log_tick = tokio::time::interval(Duration::from_millis(200));
    let mut kernel_log = KernelLog::default();
    let status = evpn::Shared::default();
    let (plans, plans_rx) = watch::channel(evpn);
    let agent = evpn::run(inst, plans_rx, status.clone());
    tokio::pin!(agent);
    let mut held = Held {
        inst,
        tables: Some(tables),
        evpn: status,
    };
    let routes = changes::Watcher::start()?;
    loop {
        tokio::select! {
            () = &mut agent => {}
            () = routes.changed.notified() => {
                if let Some(t) = held.tables() {
                    t.routes_changed();
                }
            }
            _ = tick.tick() => {
                routes.vouch(inst);
                if let Err(e) = held.reap() {
                    warn!("housekeeping: {e:#}");
                }
                kernel_log.follow(inst);
            }
            _ = log_tick.tick() => kernel_log.flush(),
            Some(ask) = asks.recv() => held.answer(ask),
            _ = hup.recv() => {
                match &opts.config {
                    Some(path) => match config::load(path).and_then(|p| Ok((Edit::begin(inst)?.reconcile(&p)?, p.evpn))) {
                        Ok((c, evpn)) => {
                            info!("SIGHUP: configuration applied: {c:?}");
                            plans.send_if_modified(|old| {
                                let changed = *old != evpn;
                                *old = evpn;
                                changed
                            });
                        }
                        Err(e) => warn!("SIGHUP: configuration not applied: {e:#}"),
                    },
                    None => info!("SIGHUP: no --config to reload"),
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    server.abort();
    changes::withdraw(inst);
    info!("stopping; the data plane keeps running");
    Ok(())
}

/// The kernel programs' log records (aya-log), read from the log ring of
/// the programs running now: an upgrade brings new programs with a new
/// ring, so the reader follows the XDP link's program id (checked once a
/// second).
#[derive(Default)]
struct KernelLog {
    program_id: u32,
    logger: Option<aya_log::EbpfLogger<&'static dyn log::Log>>,
}

impl KernelLog {
    /// Reads from the programs attached now.
    fn follow(&mut self, inst: &Instance) {
        let id = datapath::decap_program_id(inst).unwrap_or(0);
        if id == self.program_id {
            return;
        }
        self.program_id = id;
        self.logger = match aya_log::EbpfLogger::init_from_id(id) {
            Ok(l) => Some(l),
            Err(e) => {
                if id != 0 {
                    warn!("cannot read the kernel programs' log records: {e}");
                }
                None
            }
        };
    }

    fn flush(&mut self) {
        if let Some(l) = &mut self.logger {
            l.flush();
        }
    }
}
