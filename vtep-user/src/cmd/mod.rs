//! The command line and its subcommands, one module each: each parses
//! its arguments, calls the domain layer and prints what it returns.

mod daemon;
pub mod docs;
mod down;
mod events;
mod evpn;
mod fdb;
mod group;
mod maps;
mod neigh;
mod policy;
mod port;
mod rate;
mod stats;
mod status;
mod up;
mod vni;

use std::path::PathBuf;

use crate::instance::Instance;

/// A VXLAN tunnel endpoint (RFC 7348) in eBPF: XDP decapsulation on the
/// underlay, TC encapsulation on the VM ports.
///
/// Example (one host):
///   vtep up --underlay eth1 --local-ip 198.18.1.1
///   vtep vni add 100 --flood 198.18.2.1,198.18.3.1
///   vtep port add vm1 --vni 100
///   vtep fdb add 02:00:00:00:02:01 --vni 100 --remote 198.18.2.1
///   vtep stats
#[derive(clap::Parser)]
#[command(
    name = "vtep",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VTEP_GIT_REVISION"), ")"),
    verbatim_doc_comment
)]
pub struct Cli {
    /// Instance name: several independent VTEPs can run on one machine.
    #[arg(long, global = true, default_value = "default")]
    pub instance: String,
    /// Directory on a bpf filesystem for the pinned datapath (a bpffs is
    /// mounted there if none is).
    #[arg(long, global = true, default_value = "/sys/fs/bpf/vtep")]
    pub pin_root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    Up(up::Args),
    Down(down::Args),
    /// Add or remove VNIs (tenants) and their flood lists.
    #[command(subcommand)]
    Vni(vni::Command),
    /// Bind interfaces (VM or container ports) to VNIs, or unbind them.
    #[command(subcommand)]
    Port(port::Command),
    /// Add, remove and show where MAC addresses live.
    #[command(subcommand)]
    Fdb(fdb::Command),
    /// ARP suppression: add, remove and show IPv4-to-MAC bindings.
    #[command(subcommand)]
    Neigh(neigh::Command),
    /// Group policy: which group a VM is in.
    #[command(subcommand)]
    Group(group::Command),
    /// Group policy: the rules between groups of a VNI.
    #[command(subcommand)]
    Policy(policy::Command),
    /// Rate limits of VMs and VNIs.
    #[command(subcommand)]
    Rate(rate::Command),
    Stats(stats::Args),
    Events(events::Args),
    /// BGP EVPN (run by `vtep daemon` with an `[evpn]` configuration).
    #[command(subcommand)]
    Evpn(evpn::Command),
    /// Inspect the BPF maps: list them, dump one decoded.
    #[command(subcommand)]
    Maps(maps::Command),
    Status(status::Args),
    Daemon(daemon::Args),
    Completions(docs::CompletionsArgs),
    Man(docs::ManArgs),
}

impl Command {
    /// Whether the command works on an instance (and so needs the
    /// privileges to); the others only print what the binary knows.
    pub fn needs_instance(&self) -> bool {
        !matches!(self, Command::Completions(_) | Command::Man(_))
    }
}

/// Runs one subcommand against `inst`.
pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Up(a) => up::run(a, inst),
        Command::Down(a) => down::run(a, inst),
        Command::Vni(c) => vni::run(c, inst),
        Command::Port(c) => port::run(c, inst),
        Command::Fdb(c) => fdb::run(c, inst),
        Command::Neigh(c) => neigh::run(c, inst),
        Command::Group(c) => group::run(c, inst),
        Command::Policy(c) => policy::run(c, inst),
        Command::Rate(c) => rate::run(c, inst),
        Command::Stats(a) => stats::run(a, inst),
        Command::Events(a) => events::run(a, inst),
        Command::Evpn(c) => evpn::run(c, inst),
        Command::Maps(c) => maps::run(c, inst),
        Command::Status(a) => status::run(a, inst),
        Command::Daemon(a) => daemon::run(a, inst),
        Command::Completions(a) => docs::completions(&a),
        Command::Man(_) => docs::man(),
    }
}

/// Prints `value` as the `--json` output of every command: pretty JSON,
/// one document, newline-terminated.
fn print_json<T: serde::Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
