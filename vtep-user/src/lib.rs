//! The `vtep` command's library: everything but argument parsing.
//!
//! Every subcommand is one module under `cmd/`; the datapath and its maps
//! are pinned under `PIN_ROOT/INSTANCE`, so each command is a separate,
//! short-lived invocation working on the pins.

pub mod cmd;
pub mod config;
pub mod datapath;
pub mod generation;
pub mod instance;
pub mod neigh;
pub mod reconcile;
pub mod sys;
pub mod values;
