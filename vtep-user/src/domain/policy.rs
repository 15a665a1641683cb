//! Group policy and rate limits: memberships, rules and limits, each
//! checked by its value type and applied by the tables
//! (`tables::identity`), which keep the VNI's policy flag in step.

use super::Edit;
use crate::{
    tables::identity::{Limit, Limited},
    values::{Action, Burst, Group, Rate, UnicastMac, Vni},
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
