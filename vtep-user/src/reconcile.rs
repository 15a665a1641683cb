//! Making a running instance match a configuration: what the plan names is
//! added or updated, what it does not name is removed, and nothing else is
//! touched (traffic of unchanged tenants never notices).

use std::collections::{BTreeMap, BTreeSet};

use vtep_common::maps::PORT_F_XDP;

use crate::{
    cmd::{Deliver, port},
    config::{Plan, PlanLocation},
    instance::{Instance, Location},
    sys,
    values::{Mac, Vni},
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
}

/// Applies `plan` to the up instance `inst`.
pub fn reconcile(inst: &Instance, plan: &Plan) -> anyhow::Result<Changes> {
    let mut c = Changes::default();
    let want_ports: BTreeMap<&str, (Vni, Deliver)> = plan
        .ports
        .iter()
        .map(|(name, vni, d)| (name.as_str(), (*vni, *d)))
        .collect();
    let want_vnis: BTreeSet<Vni> = plan.vnis.iter().map(|v| v.vni).collect();

    // Ports that go or change VNI or delivery.
    let bound = inst.open()?.ports();
    let mut kept = BTreeSet::new();
    for (ifindex, p) in bound {
        let name = sys::ifname(ifindex);
        let deliver = if p.flags & PORT_F_XDP != 0 {
            Deliver::Xdp
        } else {
            Deliver::Skb
        };
        if want_ports.get(name.as_str()) == Some(&(Vni(p.vni), deliver)) {
            kept.insert(name);
        } else {
            port::del(inst, &name)?;
            c.ports_removed += 1;
        }
    }

    let mut t = inst.open()?;
    for v in &plan.vnis {
        if t.vni(v.vni).is_none() {
            c.vnis_added += 1;
        }
        t.vni_add(v.vni, &v.flood, v.learning, v.bum_pps)?;
    }
    for (vni, _) in t.vnis() {
        let vni = Vni(vni);
        if !want_vnis.contains(&vni) {
            t.vni_del(vni)?;
            c.vnis_removed += 1;
        }
    }
    drop(t);

    for (name, vni, deliver) in &plan.ports {
        if !kept.contains(name) {
            port::add(inst, name, *vni, *deliver)?;
            c.ports_added += 1;
        }
    }

    let mut t = inst.open()?;
    let mut want_fdb = BTreeSet::new();
    for (mac, vni, at) in &plan.fdb {
        let at = match at {
            PlanLocation::Remote(ip) => Location::Remote(*ip),
            PlanLocation::Port(p) => Location::Port(sys::ifindex(p)?),
        };
        let current = t
            .fdb_rows(Some(*vni))?
            .into_iter()
            .find(|r| r.is_static && r.mac == *mac);
        if current.map(|r| r.location) != Some(at) {
            t.fdb_add(*vni, *mac, at)?;
            c.fdb_set += 1;
        }
        want_fdb.insert((*vni, *mac));
    }
    for row in t.fdb_rows(None)?.into_iter().filter(|r| r.is_static) {
        let key: (Vni, Mac) = (Vni(row.vni), row.mac);
        if !want_fdb.contains(&key) {
            t.fdb_del(key.0, key.1)?;
            c.fdb_removed += 1;
        }
    }
    Ok(c)
}
