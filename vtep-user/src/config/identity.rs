//! The group policy and rate-limit sections of the configuration file,
//! checked into an [`IdentityPlan`]:
//!
//! ```toml
//! [[member]]               # a VM's group (the same on every host)
//! vni = 100
//! mac = "02:00:00:00:01:01"
//! group = 10
//!
//! [[rule]]                 # rules between groups of a VNI
//! vni = 100
//! from = 10
//! to = 20
//! action = "deny"          # allow | deny
//!
//! [[rate]]                 # a VM's limits, or without mac the VNI's
//! vni = 100
//! mac = "02:00:00:00:01:01"
//! egress = "100mbit"       # optional
//! ingress = "1gbit"        # optional
//! burst = "4m"             # optional: default 250 ms of the rate
//! ```

use std::collections::BTreeSet;

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::{
    domain::plan::{IdentityPlan, MemberPlan, RatePlan, RulePlan},
    tables::identity::{Limit, Limited},
    values::{Action, Burst, Group, Rate, UnicastMac, Vni},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MemberEntry {
    vni: u32,
    mac: String,
    group: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RuleEntry {
    vni: u32,
    from: u16,
    to: u16,
    action: Action,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateEntry {
    vni: u32,
    mac: Option<String>,
    egress: Option<String>,
    ingress: Option<String>,
    burst: Option<String>,
}

/// A VNI an entry names, which must have its `[[vni]]`.
fn configured(vni: u32, vnis: &BTreeSet<Vni>, what: &str) -> anyhow::Result<Vni> {
    let vni = Vni::try_from(vni)?;
    if !vnis.contains(&vni) {
        bail!("{what} names VNI {vni}, which has no [[vni]] entry");
    }
    Ok(vni)
}

/// The sections, checked: every value by its type, every VNI configured,
/// nothing twice.
pub(super) fn plan(
    members: Vec<MemberEntry>,
    rules: Vec<RuleEntry>,
    rates: Vec<RateEntry>,
    vnis: &BTreeSet<Vni>,
) -> anyhow::Result<IdentityPlan> {
    let mut p = IdentityPlan::default();
    let mut seen = BTreeSet::new();
    for m in members {
        let mac: UnicastMac = m.mac.parse().context("[[member]]")?;
        let vni = configured(m.vni, vnis, &format!("[[member]] {mac}"))?;
        let group = Group::from(m.group)
            .member()
            .with_context(|| format!("[[member]] {mac} in VNI {vni}"))?;
        if !seen.insert((vni, mac)) {
            bail!("[[member]] {mac} in VNI {vni} is configured twice");
        }
        p.members.push(MemberPlan { vni, mac, group });
    }
    let mut seen = BTreeSet::new();
    for r in rules {
        let (from, to) = (Group::from(r.from), Group::from(r.to));
        let vni = configured(r.vni, vnis, &format!("[[rule]] {from} -> {to}"))?;
        if !seen.insert((vni, from, to)) {
            bail!("[[rule]] from group {from} to group {to} in VNI {vni} is configured twice");
        }
        p.rules.push(RulePlan {
            vni,
            from,
            to,
            action: r.action,
        });
    }
    let mut seen = BTreeSet::new();
    for r in rates {
        let vni = configured(r.vni, vnis, "[[rate]]")?;
        let who = match &r.mac {
            Some(m) => Limited::Vm(vni, m.parse().context("[[rate]]")?),
            None => Limited::Vni(vni),
        };
        let what = match who {
            Limited::Vm(_, mac) => format!("[[rate]] {mac} in VNI {vni}"),
            Limited::Vni(_) => format!("[[rate]] of VNI {vni}"),
        };
        if !seen.insert((vni, r.mac.clone())) {
            bail!("{what} is configured twice");
        }
        let burst = r
            .burst
            .as_deref()
            .map(str::parse::<Burst>)
            .transpose()
            .with_context(|| what.clone())?;
        let limit = |rate: &Option<String>| -> anyhow::Result<Option<Limit>> {
            let Some(rate) = rate else { return Ok(None) };
            let rate: Rate = rate.parse().with_context(|| what.clone())?;
            Ok(Some(Limit {
                rate,
                burst: burst.unwrap_or_else(|| Burst::default_for(rate)),
            }))
        };
        let (egress, ingress) = (limit(&r.egress)?, limit(&r.ingress)?);
        if egress.is_none() && ingress.is_none() {
            bail!("{what}: give egress and/or ingress (like \"100mbit\")");
        }
        p.rates.push(RatePlan {
            who,
            egress,
            ingress,
        });
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::super::parse;

    const HEAD: &str = "underlay = \"eth1\"\nlocal_ip = \"198.18.1.1\"\n[[vni]]\nvni = 100\n";

    #[test]
    fn members_rules_and_rates_are_read() {
        let p = parse(&format!(
            "{HEAD}[[member]]\nvni = 100\nmac = \"02:00:00:00:01:01\"\ngroup = 10\n\
             [[rule]]\nvni = 100\nfrom = 0\nto = 10\naction = \"allow\"\n\
             [[rate]]\nvni = 100\negress = \"1gbit\"\nburst = \"1m\"\n\
             [[rate]]\nvni = 100\nmac = \"02:00:00:00:01:01\"\ningress = \"10mbit\"\n"
        ))
        .unwrap();
        let i = &p.identity;
        assert_eq!(i.members.len(), 1);
        assert_eq!(i.members[0].group.get(), 10);
        assert_eq!((i.rules[0].from.get(), i.rules[0].to.get()), (0, 10));
        let vni = i.rates[0].egress.unwrap();
        assert_eq!(
            (vni.rate.bits(), vni.burst.bytes()),
            (1_000_000_000, 1 << 20)
        );
        assert!(i.rates[0].ingress.is_none());
        let vm = i.rates[1].ingress.unwrap();
        assert_eq!(vm.burst.bytes(), 312_500, "250 ms of 10 Mbit/s");
    }

    #[test]
    fn refusals_name_the_entry() {
        for (body, says) in [
            (
                "[[member]]\nvni = 200\nmac = \"02:00:00:00:01:01\"\ngroup = 1\n",
                "VNI 200, which has no [[vni]] entry",
            ),
            (
                "[[member]]\nvni = 100\nmac = \"02:00:00:00:01:01\"\ngroup = 0\n",
                "group 0 is \"unknown\"",
            ),
            (
                "[[member]]\nvni = 100\nmac = \"02:00:00:00:01:01\"\ngroup = 1\n\
                 [[member]]\nvni = 100\nmac = \"02:00:00:00:01:01\"\ngroup = 2\n",
                "configured twice",
            ),
            (
                "[[rule]]\nvni = 100\nfrom = 1\nto = 2\naction = \"drop\"\n",
                "unknown variant `drop`",
            ),
            ("[[rate]]\nvni = 100\n", "give egress and/or ingress"),
            (
                "[[rate]]\nvni = 100\negress = \"100mbps\"\n",
                "invalid rate",
            ),
            (
                "[[rate]]\nvni = 100\negress = \"1gbit\"\nburst = \"1500\"\n",
                "invalid burst",
            ),
        ] {
            let e = format!("{:#}", parse(&format!("{HEAD}{body}")).unwrap_err());
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
