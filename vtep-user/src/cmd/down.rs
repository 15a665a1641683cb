//! `vtep down`: detach everything and remove the instance's pins.

use crate::{domain, instance::Instance};

/// Detach the datapath from every interface and remove the instance's maps
/// and pins. Safe to run when the instance is already down.
///
/// Example: vtep down
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {}

pub fn run(_args: Args, inst: &Instance) -> anyhow::Result<()> {
    if !domain::down(inst)? {
        eprintln!("vtep: instance '{}' is not up; nothing to do", inst.name);
    }
    Ok(())
}
