//! The subcommands, one module each.

mod daemon;
mod down;
mod events;
mod fdb;
mod maps;
mod neigh;
pub mod port;
mod stats;
mod status;
pub mod up;

pub use port::Deliver;
mod vni;

use crate::instance::Instance;

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
    Stats(stats::Args),
    Events(events::Args),
    /// Inspect the BPF maps: list them, dump one decoded.
    #[command(subcommand)]
    Maps(maps::Command),
    Status(status::Args),
    Daemon(daemon::Args),
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
        Command::Stats(a) => stats::run(a, inst),
        Command::Events(a) => events::run(a, inst),
        Command::Maps(c) => maps::run(c, inst),
        Command::Status(a) => status::run(a, inst),
        Command::Daemon(a) => daemon::run(a, inst),
    }
}
