//! The `vtep` command's library.
//!
//! Layers, each calling only the ones below it:
//! - `cmd/`: the command line (clap) and printing, one module per
//!   subcommand; `daemon/`: housekeeping, metrics and health over HTTP;
//!   `evpn/`: the daemon's BGP EVPN agent (gobgpd's gRPC API);
//! - `domain/`: every operation on an instance, serialised per instance;
//!   `config` parses files into its plans;
//! - `tables/`: typed access to the pinned maps, by concern, with the
//!   rules that keep them consistent, and the views printers render;
//! - `values`: validated newtypes shared by all of the above, and `cause`:
//!   how an error shows what caused it (once);
//! - system edges: `datapath` (loading, attaching, pinning), `generation`,
//!   `headroom`, `merge_dev`, `netlink`, `sys`, `instance` (pins, lock), `watched`.

pub mod cause;
pub mod cmd;
pub mod config;
pub mod daemon;
pub mod datapath;
pub mod domain;
pub mod evpn;
pub mod generation;
pub mod headroom;
pub mod instance;
pub mod merge_dev;
pub mod netlink;
pub mod sys;
pub mod tables;
pub mod values;
pub mod watched;
