//! Group policy and rate limits: memberships, rules and limits, each
//! checked by its value type and applied by the tables
//! (`tables::identity`), which keep the VNI's policy flag in step.

use std::collections::BTreeMap;

use super::{Edit, plan::IdentityPlan};
use crate::{
    tables::identity::{Limit, Limited},
    values::{Action, Burst, Group, Mac, Rate, UnicastMac, Vni},
};

impl Edit<'_> {
    /// Puts `mac` of `vni` in `group`.
    pub fn group_set(&mut self, vni: Vni, mac: UnicastMac, group: Group) -> anyhow::Result<()> {
        Ok(self.t.group_set(vni, mac, group)?)
    }

    /// Takes `mac` of `vni` out of its group.
    pub fn group_del(&mut self, vni: Vni, mac: UnicastMac) -> anyhow::Result<()> {
        Ok(self.t.group_del(vni, mac)?)
    }

    /// Adds (or changes the action of) the rule `from` → `to` in `vni`.
    pub fn rule_add(
        &mut self,
        vni: Vni,
        from: Group,
        to: Group,
        action: Action,
    ) -> anyhow::Result<()> {
        Ok(self.t.rule_add(vni, (from, to), action)?)
    }

    /// Removes the rule `from` → `to` in `vni`.
    pub fn rule_del(&mut self, vni: Vni, from: Group, to: Group) -> anyhow::Result<()> {
        Ok(self.t.rule_del(vni, (from, to))?)
    }

    /// Sets the limits of `who`: each rate given with `burst` (default:
    /// `Burst::default_for` the rate), the other direction left as it
    /// is.
    pub fn rate_set(
        &mut self,
        who: Limited,
        (egress, ingress): (Option<Rate>, Option<Rate>),
        burst: Option<Burst>,
    ) -> anyhow::Result<()> {
        if egress.is_none() && ingress.is_none() {
            anyhow::bail!("no rate given: add --egress RATE and/or --ingress RATE (like 100mbit)");
        }
        let limit = |rate: Rate| Limit {
            rate,
            burst: burst.unwrap_or_else(|| Burst::default_for(rate)),
        };
        Ok(self
            .t
            .rate_set(who, egress.map(limit), ingress.map(limit))?)
    }

    /// Removes the limits of `who`.
    pub fn rate_del(&mut self, who: Limited) -> anyhow::Result<()> {
        Ok(self.t.rate_del(who)?)
    }
}

/// Makes the memberships, rules and rate limits of the instance `e`
/// edits those of `plan` (what it does not name removed); returns how
/// many were set or removed.
pub(super) fn reconcile(e: &mut Edit<'_>, plan: &IdentityPlan) -> anyhow::Result<usize> {
    let mut n = 0;
    let members: BTreeMap<(Vni, Mac), Group> =
        e.t.member_views(None)?
            .into_iter()
            .map(|m| ((m.vni, m.mac), m.group))
            .collect();
    for m in &plan.members {
        if members.get(&(m.vni, m.mac.mac())) != Some(&m.group) {
            e.t.group_set(m.vni, m.mac, m.group)?;
            n += 1;
        }
    }
    for (vni, mac) in members.keys() {
        if !plan
            .members
            .iter()
            .any(|m| (m.vni, m.mac.mac()) == (*vni, *mac))
        {
            e.t.group_del(*vni, UnicastMac::try_from(*mac)?)?;
            n += 1;
        }
    }
    let rules: BTreeMap<(Vni, Group, Group), Action> =
        e.t.rule_views(None)?
            .into_iter()
            .map(|r| ((r.vni, r.from, r.to), r.action))
            .collect();
    for r in &plan.rules {
        if rules.get(&(r.vni, r.from, r.to)) != Some(&r.action) {
            e.t.rule_add(r.vni, (r.from, r.to), r.action)?;
            n += 1;
        }
    }
    for (vni, from, to) in rules.keys() {
        if !plan
            .rules
            .iter()
            .any(|r| (r.vni, r.from, r.to) == (*vni, *from, *to))
        {
            e.t.rule_del(*vni, (*from, *to))?;
            n += 1;
        }
    }
    let mut rates: BTreeMap<Limited, (Option<Limit>, Option<Limit>)> = BTreeMap::new();
    for r in e.t.rate_views()? {
        let who = match r.mac {
            Some(mac) => Limited::Vm(r.vni, UnicastMac::try_from(mac)?),
            None => Limited::Vni(r.vni),
        };
        let limit = Some(Limit {
            rate: r.rate,
            burst: r.burst,
        });
        let entry = rates.entry(who).or_default();
        if r.direction == "egress" {
            entry.0 = limit;
        } else {
            entry.1 = limit;
        }
    }
    for r in &plan.rates {
        let now = rates.get(&r.who).copied().unwrap_or_default();
        if now != (r.egress, r.ingress) {
            if now != (None, None) {
                e.t.rate_del(r.who)?;
            }
            e.t.rate_set(r.who, r.egress, r.ingress)?;
            n += 1;
        }
    }
    for who in rates.keys() {
        if !plan.rates.iter().any(|r| r.who == *who) {
            e.t.rate_del(*who)?;
            n += 1;
        }
    }
    Ok(n)
}
