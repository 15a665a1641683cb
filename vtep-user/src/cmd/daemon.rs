//! `vtep daemon`: its arguments; the daemon itself is `crate::daemon`.

use std::{net::SocketAddr, path::PathBuf};

use crate::{daemon, instance::Instance};

/// Run the housekeeping daemon for an instance: ages learned MACs, logs
/// the kernel programs' records, serves /metrics (Prometheus) and
/// /healthz, and with --config brings the instance up and makes it match
/// the file again on SIGHUP (only the differences are applied). The data
/// plane never depends on it.
///
/// Examples:
///   vtep daemon --config /etc/vtep/vtep.toml
///   vtep daemon --metrics 127.0.0.1:9469
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Configuration to bring up and keep applied (re-read on SIGHUP).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where to serve /metrics and /healthz (loopback unless told
    /// otherwise).
    #[arg(long, default_value = "127.0.0.1:9469")]
    metrics: SocketAddr,
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    daemon::run(
        inst,
        &daemon::Options {
            config: args.config,
            listen: args.metrics,
        },
    )
}
