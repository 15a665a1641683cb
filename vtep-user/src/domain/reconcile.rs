//! Making an instance match a plan: what the plan names is added or
//! updated, what it does not name is removed, and nothing else is touched
//! (traffic of unchanged tenants never notices). A fresh `vtep up
//! --config` is this against an empty instance.

use std::collections::{BTreeMap, BTreeSet};

use super::{Edit, plan::Plan, ports::delivery};
use crate::{
    sys,
    tables::{Location, ports::deliver_of},
    values::{Deliver, Group, UnicastMac, Vid, Vni},
};

/// What changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub vnis_added: usize,
    pub vnis_removed: usize,
    pub ports_added: usize,
    pub ports_removed: usize,
    pub fdb_set: usize,
    pub fdb_removed: usize,
    /// Memberships, rules and rate limits set or removed.
    pub policy_changes: usize,
}

/// Applies `plan` (its VNIs, ports and FDB) to the instance `e` edits.
pub(super) fn reconcile(e: &mut Edit<'_>, plan: &Plan) -> anyhow::Result<Changes> {
    let mut c = Changes::default();
    let want_ports: BTreeMap<(&str, Vid), (Vni, Deliver, Group)> = plan
        .ports
        .iter()
        .map(|p| ((p.iface.as_str(), p.vid), (p.vni, p.deliver, p.group)))
        .collect();
    let want_vnis: BTreeSet<Vni> = plan.vnis.iter().map(|v| v.vni).collect();

    // Ports that go, or change VNI, delivery or group, first: a VNI can
    // only go once its ports have.
    let mut kept = BTreeSet::new();
    for (key, p) in e.t.ports()? {
        let name = sys::ifname(key.ifindex);
        let vid = Vid::recorded(key.vid);
        let now = (
            Vni::recorded(p.vni),
            deliver_of(&p),
            Group::recorded(p.group),
        );
        let want = want_ports
            .get(&(name.as_str(), vid))
            .and_then(|(vni, d, g)| {
                let d = delivery(&name, key.ifindex, *d, e.t.has_xdp()).ok()?;
                Some((*vni, d, *g))
            });
        if want == Some(now) {
            kept.insert((name, vid));
        } else {
            e.unbind(key)?;
            c.ports_removed += 1;
        }
    }

    let configured: BTreeSet<Vni> = e.t.vnis()?.into_iter().map(|(v, _)| v).collect();
    for v in &plan.vnis {
        if !configured.contains(&v.vni) {
            c.vnis_added += 1;
        }
        e.vni_add(v)?;
    }
    for vni in configured.difference(&want_vnis) {
        e.vni_del(*vni)?;
        c.vnis_removed += 1;
    }

    for p in &plan.ports {
        if !kept.contains(&(p.iface.clone(), p.vid)) {
            e.port_add(p)?;
            c.ports_added += 1;
        }
    }

    let mut current: BTreeMap<(Vni, UnicastMac), Location> = BTreeMap::new();
    for row in e.t.fdb_rows(None)?.into_iter().filter(|r| r.is_static) {
        let mac = UnicastMac::try_from(row.mac)?;
        current.insert((row.vni, mac), row.location);
    }
    let mut wanted = BTreeSet::new();
    for f in &plan.fdb {
        let at = e.location(&f.at)?;
        if current.get(&(f.vni, f.mac)) != Some(&at) {
            e.t.fdb_add(&crate::tables::fdb::EntryAt {
                vni: f.vni,
                mac: f.mac,
                at,
            })?;
            c.fdb_set += 1;
        }
        wanted.insert((f.vni, f.mac));
    }
    for (vni, mac) in current.keys().filter(|k| !wanted.contains(k)) {
        e.fdb_del(*vni, mac.mac())?;
        c.fdb_removed += 1;
    }
    c.policy_changes = super::policy::reconcile(e, &plan.identity)?;
    Ok(c)
}
