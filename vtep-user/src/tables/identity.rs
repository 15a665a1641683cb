//! Group policy and rate limits in the tables: memberships (`MEMBERS`,
//! (VNI, MAC) -> group and policers), rules (`RULES`, their hits counted
//! per CPU), policers (`POLICERS`, by slot), and the VNI's policy flag
//! kept in step with them: a VNI has `VNI_F_POLICY` exactly when it has
//! something for the programs to look up (GBP, a default deny, rules,
//! members, VNI rate limits, a port with a default group), copied to its
//! bindings and remotes.

use serde::Serialize;
use vtep_common::{
    consts::POLICERS_CAPACITY,
    maps::{FdbKey, VNI_F_DEFAULT_DENY, VNI_F_GBP, VNI_F_POLICY, VniInfo},
    policy::{MEMBER_F_EVPN, Member, Policer, Rule, RuleKey},
};

use super::{TableError, Tables, TablesMut, map::KvMap, vnis::bindings_of};
use crate::values::{Action, Burst, Group, Mac, Rate, UnicastMac, Vni};

/// A rate limit: its rate and bucket depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub rate: Rate,
    pub burst: Burst,
}

/// Whose traffic a rate limit is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Limited {
    /// One VM: what it sends (egress) and receives (ingress).
    Vm(Vni, UnicastMac),
    /// A VNI as a whole: what its ports send over the underlay (egress)
    /// and what arrives for them from it (ingress).
    Vni(Vni),
}

/// A membership as `group show` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct MemberView {
    pub vni: Vni,
    pub mac: Mac,
    pub group: Group,
    /// "static" (configured) or "evpn" (from the VM's EVPN route).
    pub origin: &'static str,
}

/// A rule as `policy show` lists it, with its hits on all CPUs.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    pub vni: Vni,
    pub from: Group,
    pub to: Group,
    pub action: Action,
    pub packets: u64,
    pub bytes: u64,
}

/// A rate limit as `rate show` lists it, with what it dropped since it
/// was set.
#[derive(Clone, Debug, Serialize)]
pub struct RateView {
    pub vni: Vni,
    /// The VM's MAC; absent: the VNI's aggregate limit.
    pub mac: Option<Mac>,
    pub direction: &'static str,
    pub rate: Rate,
    pub burst: Burst,
    pub dropped_packets: u64,
    pub dropped_bytes: u64,
}

impl Tables {
    /// The membership of `mac` in `vni`, if it has one.
    fn member(&self, vni: Vni, mac: UnicastMac) -> Result<Option<Member>, TableError> {
        self.members
            .lookup(&FdbKey::new(vni.get(), mac.mac().0))
            .map_err(TableError::map("read", "member"))
    }

    /// The group of `mac` in `vni` by its membership, whatever its origin
    /// (0: none).
    pub fn member_group(&self, vni: Vni, mac: UnicastMac) -> Result<u16, TableError> {
        Ok(self.member(vni, mac)?.map_or(0, |m| m.group))
    }

    /// Every VM with a group, by VNI then MAC (of `vni` only, if given).
    pub fn member_views(&self, vni: Option<Vni>) -> Result<Vec<MemberView>, TableError> {
        let mut v: Vec<MemberView> = self
            .members
            .entries()
            .map_err(TableError::map("read", "member"))?
            .into_iter()
            .filter(|(k, m)| m.group != 0 && vni.is_none_or(|v| v.get() == k.vni))
            .map(|(k, m)| MemberView {
                vni: Vni::recorded(k.vni),
                mac: Mac(k.mac),
                group: Group::recorded(m.group),
                origin: if m.flags & MEMBER_F_EVPN != 0 {
                    "evpn"
                } else {
                    "static"
                },
            })
            .collect();
        v.sort_by_key(|m| (m.vni, m.mac.0));
        Ok(v)
    }

    /// Every rule with its hits, by VNI, source and destination group (of
    /// `vni` only, if given).
    pub fn rule_views(&self, vni: Option<Vni>) -> Result<Vec<RuleView>, TableError> {
        let read = TableError::map("read", "rule");
        let mut out = Vec::new();
        for key in self.rules.keys() {
            let key = key.map_err(|e| read(e.into()))?;
            if vni.is_some_and(|v| v.get() != key.vni) {
                continue;
            }
            let Ok(per_cpu) = self.rules.get(&key, 0) else {
                // Deleted while listed.
                continue;
            };
            let first = per_cpu.first().copied().unwrap_or_default();
            out.push(RuleView {
                vni: Vni::recorded(key.vni),
                from: Group::recorded(key.from),
                to: Group::recorded(key.to),
                action: Action::recorded(first.action),
                packets: per_cpu.iter().map(|r| r.packets).sum(),
                bytes: per_cpu.iter().map(|r| r.bytes).sum(),
            });
        }
        out.sort_by_key(|r| (r.vni, r.from, r.to));
        Ok(out)
    }

    /// Every rate limit with its drops, VNIs' before their VMs'.
    pub fn rate_views(&self) -> Result<Vec<RateView>, TableError> {
        let mut out = Vec::new();
        for (vni, info) in self.vnis()? {
            self.push_rates(&mut out, (vni, None), (info.egress, info.ingress))?;
        }
        let mut members = self
            .members
            .entries()
            .map_err(TableError::map("read", "member"))?;
        members.sort_by_key(|(k, _)| (k.vni, k.mac));
        for (k, m) in members {
            let at = (Vni::recorded(k.vni), Some(Mac(k.mac)));
            self.push_rates(&mut out, at, (m.egress, m.ingress))?;
        }
        Ok(out)
    }

    /// The rows of policers `slots` (egress, ingress; 0: none) of `at`.
    fn push_rates(
        &self,
        out: &mut Vec<RateView>,
        (vni, mac): (Vni, Option<Mac>),
        (egress, ingress): (u32, u32),
    ) -> Result<(), TableError> {
        for (direction, slot) in [("egress", egress), ("ingress", ingress)] {
            if slot == 0 {
                continue;
            }
            let p = self.policer(slot)?;
            out.push(RateView {
                vni,
                mac,
                direction,
                rate: Rate::recorded(p.rate_bits),
                burst: Burst::recorded(p.burst_bytes),
                dropped_packets: p.dropped_packets,
                dropped_bytes: p.dropped_bytes,
            });
        }
        Ok(())
    }

    fn policer(&self, slot: u32) -> Result<Policer, TableError> {
        self.policers
            .get(&slot, 0)
            .map_err(|e| TableError::map("read", "rate limit")(e.into()))
    }

    /// What frames without a rule get, per VNI with policy (of `vni` only,
    /// if given): "allow" or "deny".
    pub fn policy_defaults(&self, vni: Option<Vni>) -> Result<Vec<(Vni, Action)>, TableError> {
        Ok(self
            .vnis()?
            .into_iter()
            .filter(|(v, i)| i.flags & VNI_F_POLICY != 0 && vni.is_none_or(|w| w == *v))
            .map(|(v, i)| {
                let deny = i.flags & VNI_F_DEFAULT_DENY != 0;
                (v, if deny { Action::Deny } else { Action::Allow })
            })
            .collect())
    }

    /// Whether `info` needs the programs to look identities up.
    fn needs_policy(&self, info: &VniInfo) -> Result<bool, TableError> {
        if info.flags & (VNI_F_GBP | VNI_F_DEFAULT_DENY) != 0
            || info.members != 0
            || info.rules != 0
            || info.egress != 0
            || info.ingress != 0
        {
            return Ok(true);
        }
        for key in bindings_of(info) {
            if self.port(key)?.is_some_and(|p| p.group != 0) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// `info`'s flags with `VNI_F_POLICY` as its settings make it.
    pub(super) fn with_policy_flag(&self, info: &VniInfo) -> Result<u32, TableError> {
        Ok(if self.needs_policy(info)? {
            info.flags | VNI_F_POLICY
        } else {
            info.flags & !VNI_F_POLICY
        })
    }
}

impl TablesMut {
    /// Writes `info` of `vni` with its policy flag brought up to date,
    /// copied to its ports and remotes if it changed.
    pub(super) fn put_vni_policy(&mut self, vni: Vni, mut info: VniInfo) -> Result<(), TableError> {
        let before = info.flags;
        info.flags = self.with_policy_flag(&info)?;
        self.vnis
            .put(vni.get(), info)
            .map_err(TableError::map("write", "VNI"))?;
        if info.flags != before {
            self.copy_to_ports(vni, &info)?;
        }
        Ok(())
    }

    /// Re-decides the policy flag of `vni` (a port's group changed).
    pub fn refresh_policy(&mut self, vni: Vni) -> Result<(), TableError> {
        let info = self.require_vni(vni)?;
        self.put_vni_policy(vni, info)
    }

    /// Writes membership `m` of `mac` in `vni` (`had`: whether it had one),
    /// or removes it if it holds nothing any more; keeps the VNI's count.
    fn put_member(
        &mut self,
        (vni, mac): (Vni, UnicastMac),
        had: bool,
        m: Member,
    ) -> Result<(), TableError> {
        let key = FdbKey::new(vni.get(), mac.mac().0);
        let keep = m.group != 0 || m.egress != 0 || m.ingress != 0;
        let mut info = self.require_vni(vni)?;
        if keep {
            self.members.put(key, m).map_err(|e| match e {
                super::map::MapFault::Full => TableError::MembersFull {
                    vni,
                    mac: mac.mac(),
                },
                e => TableError::map("write", "member")(e),
            })?;
        } else {
            self.members
                .delete(&key)
                .map_err(TableError::map("write", "member"))?;
        }
        match (had, keep) {
            (false, true) => info.members += 1,
            (true, false) => info.members = info.members.saturating_sub(1),
            _ => {}
        }
        self.put_vni_policy(vni, info)
    }

    /// Puts `mac` of `vni` in `group` (never the unknown group).
    pub fn group_set(&mut self, vni: Vni, mac: UnicastMac, group: Group) -> Result<(), TableError> {
        let group = group.member()?;
        self.require_vni(vni)?;
        let had = self.member(vni, mac)?;
        let m = Member {
            group: group.get(),
            flags: 0,
            ..had.unwrap_or_default()
        };
        self.put_member((vni, mac), had.is_some(), m)
    }

    /// Gives `mac` of `vni` the group its EVPN route carries (0: none, an
    /// EVPN group it had goes), unless it has a configured one. Nothing
    /// for a VNI that is not configured here.
    pub fn group_evpn(&mut self, vni: Vni, mac: UnicastMac, group: u16) -> Result<(), TableError> {
        if self.vni(vni)?.is_none() {
            return Ok(());
        }
        let had = self.member(vni, mac)?;
        let m = had.unwrap_or_default();
        let configured = m.group != 0 && m.flags & MEMBER_F_EVPN == 0;
        if configured || (group == 0 && m.group == 0) || (m.group == group && group != 0) {
            return Ok(());
        }
        let flags = if group == 0 { 0 } else { MEMBER_F_EVPN };
        self.put_member((vni, mac), had.is_some(), Member { group, flags, ..m })
    }

    /// Takes `mac` of `vni` out of its group (its rate limits stay).
    pub fn group_del(&mut self, vni: Vni, mac: UnicastMac) -> Result<(), TableError> {
        let had = self.member(vni, mac)?;
        let Some(m) = had.filter(|m| m.group != 0) else {
            return Err(TableError::NoMember {
                vni,
                mac: mac.mac(),
            });
        };
        self.put_member((vni, mac), true, Member { group: 0, ..m })
    }

    /// Adds the rule from group `from` to group `to` in `vni`, or changes
    /// its action (its hits stay).
    pub fn rule_add(
        &mut self,
        vni: Vni,
        (from, to): (Group, Group),
        action: Action,
    ) -> Result<(), TableError> {
        let mut info = self.require_vni(vni)?;
        let key = RuleKey {
            vni: vni.get(),
            from: from.get(),
            to: to.get(),
        };
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, e)| TableError::map("write", "rule")(super::map::MapFault::Cpus(e)))?;
        let existing = self.rules.get(&key, 0).ok();
        let values: Vec<Rule> = match &existing {
            Some(per_cpu) => per_cpu
                .iter()
                .map(|r| Rule {
                    action: action.setting(),
                    ..*r
                })
                .collect(),
            None => vec![
                Rule {
                    action: action.setting(),
                    ..Rule::default()
                };
                cpus
            ],
        };
        let values = aya::maps::PerCpuValues::try_from(values)
            .map_err(|e| TableError::map("write", "rule")(super::map::MapFault::Cpus(e)))?;
        self.rules
            .insert(key, values, 0)
            .map_err(|e| match super::map::MapFault::from(e) {
                super::map::MapFault::Full => TableError::RulesFull(vni),
                e => TableError::map("write", "rule")(e),
            })?;
        if existing.is_none() {
            info.rules += 1;
        }
        self.put_vni_policy(vni, info)
    }

    /// Removes the rule from group `from` to group `to` in `vni`.
    pub fn rule_del(&mut self, vni: Vni, (from, to): (Group, Group)) -> Result<(), TableError> {
        let mut info = self.require_vni(vni)?;
        let key = RuleKey {
            vni: vni.get(),
            from: from.get(),
            to: to.get(),
        };
        if self.rules.remove(&key).is_err() {
            return Err(TableError::NoRule { vni, from, to });
        }
        info.rules = info.rules.saturating_sub(1);
        self.put_vni_policy(vni, info)
    }

    /// A policer slot no VM or VNI uses (slot 0 never: it stands for none).
    fn free_policer_slot(&mut self) -> Result<u32, TableError> {
        let t = &mut **self;
        let (members, vnis) = (&t.members, &t.vnis);
        t.policer_slots
            .take(1..POLICERS_CAPACITY, || {
                let mut used: std::collections::BTreeSet<u32> = members
                    .entries()?
                    .into_iter()
                    .flat_map(|(_, m)| [m.egress, m.ingress])
                    .collect();
                used.extend(
                    vnis.entries()?
                        .into_iter()
                        .flat_map(|(_, i)| [i.egress, i.ingress]),
                );
                Ok(used)
            })
            .map_err(TableError::map("read", "rate limit"))?
            .ok_or(TableError::PolicersFull)
    }

    /// Slot `slot` (0: a new one) set to `limit`, with a full bucket and
    /// no drops counted; `None` frees `slot`. Returns the slot (0: none).
    fn set_policer(&mut self, slot: u32, limit: Option<Limit>) -> Result<u32, TableError> {
        let Some(limit) = limit else {
            if slot != 0 {
                self.write_policer(slot, Policer::default())?;
                self.policer_slots.release(slot);
            }
            return Ok(0);
        };
        let slot = if slot == 0 {
            self.free_policer_slot()?
        } else {
            slot
        };
        self.write_policer(slot, Policer::new(limit.rate.bits(), limit.burst.bytes()))?;
        Ok(slot)
    }

    fn write_policer(&mut self, slot: u32, p: Policer) -> Result<(), TableError> {
        self.policers
            .set(slot, p, 0)
            .map_err(|e| TableError::map("write", "rate limit")(e.into()))
    }

    /// Sets the limits of `who`: each direction given replaces its limit,
    /// `None` leaves it as it is.
    pub fn rate_set(
        &mut self,
        who: Limited,
        egress: Option<Limit>,
        ingress: Option<Limit>,
    ) -> Result<(), TableError> {
        match who {
            Limited::Vni(vni) => {
                let mut info = self.require_vni(vni)?;
                if egress.is_some() {
                    info.egress = self.set_policer(info.egress, egress)?;
                }
                if ingress.is_some() {
                    info.ingress = self.set_policer(info.ingress, ingress)?;
                }
                self.put_vni_policy(vni, info)
            }
            Limited::Vm(vni, mac) => {
                self.require_vni(vni)?;
                let had = self.member(vni, mac)?;
                let mut m = had.unwrap_or_default();
                if egress.is_some() {
                    m.egress = self.set_policer(m.egress, egress)?;
                }
                if ingress.is_some() {
                    m.ingress = self.set_policer(m.ingress, ingress)?;
                }
                self.put_member((vni, mac), had.is_some(), m)
            }
        }
    }

    /// Removes the limits of `who` (both directions).
    pub fn rate_del(&mut self, who: Limited) -> Result<(), TableError> {
        match who {
            Limited::Vni(vni) => {
                let mut info = self.require_vni(vni)?;
                if info.egress == 0 && info.ingress == 0 {
                    return Err(TableError::NoRate(format!("VNI {vni}")));
                }
                info.egress = self.set_policer(info.egress, None)?;
                info.ingress = self.set_policer(info.ingress, None)?;
                self.put_vni_policy(vni, info)
            }
            Limited::Vm(vni, mac) => {
                let had = self.member(vni, mac)?;
                let Some(mut m) = had.filter(|m| m.egress != 0 || m.ingress != 0) else {
                    return Err(TableError::NoRate(format!("{mac} in VNI {vni}")));
                };
                m.egress = self.set_policer(m.egress, None)?;
                m.ingress = self.set_policer(m.ingress, None)?;
                self.put_member((vni, mac), true, m)
            }
        }
    }

    /// Removes every membership, rule and rate limit of `vni` (going
    /// away, its record `info`).
    pub(super) fn identity_flush(&mut self, vni: Vni, info: &VniInfo) -> Result<(), TableError> {
        for slot in [info.egress, info.ingress] {
            self.set_policer(slot, None)?;
        }
        let members = self
            .members
            .entries()
            .map_err(TableError::map("read", "member"))?;
        for (k, m) in members.into_iter().filter(|(k, _)| k.vni == vni.get()) {
            self.set_policer(m.egress, None)?;
            self.set_policer(m.ingress, None)?;
            self.members
                .delete(&k)
                .map_err(TableError::map("write", "member"))?;
        }
        let keys: Vec<RuleKey> = self.rules.keys().filter_map(Result::ok).collect();
        for k in keys.into_iter().filter(|k| k.vni == vni.get()) {
            // Gone already is as good.
            let _ = self.rules.remove(&k);
        }
        Ok(())
    }
}
