//! What runs where: the instance's settings, attachments, tables in
//! brief and daemon, as one typed view.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    datapath::{self, Attachment},
    instance::Instance,
    tables::{
        Tables,
        views::{InstanceView, PortView},
    },
    watched,
};

/// FDB entries by origin.
#[derive(Serialize)]
pub struct FdbCounts {
    #[serde(rename = "static")]
    pub statics: usize,
    pub learned: usize,
}

/// The instance's daemon.
#[derive(Serialize)]
pub struct Daemon {
    pub pid: i32,
    /// Whether it vouches that it hears link, route and neighbour changes
    /// (cached decisions then live up to 5 s, not 0.5).
    pub hears_changes: bool,
}

/// What `vtep status` shows.
#[derive(Serialize)]
pub struct Status {
    pub instance: String,
    pub pinned_at: String,
    pub datapath: InstanceView,
    /// By pin name: `link_xdp`, `link_decap_tc`, `link_port_N`.
    pub attachments: BTreeMap<String, Attachment>,
    pub vnis: usize,
    pub ports: Vec<PortView>,
    pub fdb: FdbCounts,
    pub daemon: Option<Daemon>,
}

/// The status of `inst`, which must be up.
pub fn status(inst: &Instance) -> anyhow::Result<Status> {
    let t = Tables::open(inst)?;
    let fdb = t.fdb_rows(None)?;
    let learned = fdb.iter().filter(|r| r.learned.is_some()).count();
    Ok(Status {
        instance: inst.name.clone(),
        pinned_at: inst.dir.display().to_string(),
        datapath: t.instance_view(),
        attachments: datapath::attachments(inst)?,
        vnis: t.vnis()?.len(),
        ports: t.port_views()?,
        fdb: FdbCounts {
            statics: fdb.len() - learned,
            learned,
        },
        daemon: inst.daemon_pid().map(|pid| Daemon {
            pid,
            hears_changes: watched::vouched(inst),
        }),
    })
}
