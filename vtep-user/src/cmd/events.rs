//! `vtep events`: a line per learned, moved, aged-out and frozen MAC.

use crate::{
    domain::events::{EventRow, Events},
    instance::Instance,
    tables::views::At,
};

/// Follow MAC mobility: one line per MAC learned, moved, aged out or
/// frozen, with its VNI, old and new location and a timestamp, until
/// interrupted. The kernel programs report learned, moved and frozen
/// MACs; this command also removes learned MACs idle for the ageing time
/// and reports them as aged. One reader at a time.
///
/// Example: vtep events --json
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// One JSON object per line: {time, vni, mac, event, old, new}.
    #[arg(long)]
    json: bool,
}

/// Where a MAC is, as the text lines show it.
fn place(at: Option<&At>) -> String {
    at.map_or_else(|| "-".into(), At::to_string)
}

fn print(ev: &EventRow, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(ev)?);
    } else {
        println!(
            "{:.3} {:<7} vni {} {} {} -> {}",
            ev.time,
            ev.event,
            ev.vni,
            ev.mac,
            place(ev.old.as_ref()),
            place(ev.new.as_ref())
        );
    }
    Ok(())
}

pub fn run(args: Args, inst: &Instance) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut events = Events::open(inst)?;
        loop {
            for ev in events.next_batch().await? {
                print(&ev, args.json)?;
            }
        }
    })
}
