//! `vtep`: loads the VXLAN datapath onto interfaces, configures it and
//! reads its counters. The work is done by the `vtep_user` library; this
//! is argument parsing and error reporting.

use std::process::ExitCode;

use clap::Parser;
use vtep_user::{
    cmd::{self, Cli},
    instance,
};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: clap prints them as they are.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line, as for every other error: clap's first line names
            // the argument and the problem; its usage hint follows in
            // `vtep --help`.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or_default();
            eprintln!("vtep: {first}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, cmd::Command::Daemon(_)) {
        // A reader that stops early (`vtep fdb show | head`) ends a
        // command quietly, as it does any Unix filter, instead of a panic
        // on the failed write. Not the daemon's: it must outlive its
        // readers.
        // SAFETY: setting a signal's disposition to the default before
        // any thread is started.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Our records and the kernel programs' (aya-log) go through `log` into
    // tracing; RUST_LOG overrides the default level.
    let default = if matches!(cli.command, cmd::Command::Daemon(_)) {
        "info"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = if cli.command.needs_instance() {
        vtep_user::sys::check_privileges()
            .and_then(|()| instance::Instance::new(&cli.pin_root, &cli.instance))
            .and_then(|inst| cmd::run(cli.command, &inst))
    } else {
        instance::Instance::new(&cli.pin_root, &cli.instance)
            .and_then(|inst| cmd::run(cli.command, &inst))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vtep: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
