//! Group policy in the models: the tables it reads and the verdict on a
//! frame between two groups, as `vtep-ebpf`'s `identity` gives it. Rate
//! limits are outside the models (they depend on time, as storm control
//! does); their arithmetic is `policy::admit`, shared with the programs.

use crate::{
    maps::PortKey,
    policy::{Member, allowed},
};

/// What the policy model looks up. The defaults are a VNI without
/// policy.
pub trait PolicyTables {
    /// The membership of (`vni`, `mac`).
    fn member(&self, _vni: u32, _mac: [u8; 6]) -> Option<Member> {
        None
    }
    /// The default group of binding `key`.
    fn binding_group(&self, _key: PortKey) -> u16 {
        0
    }
    /// The action of the rule from → to in `vni`.
    fn rule(&self, _vni: u32, _from: u16, _to: u16) -> Option<u32> {
        None
    }
    /// Whether `vni` denies what no rule allows.
    fn default_deny(&self, _vni: u32) -> bool {
        false
    }
}

/// The group of `mac` behind binding `at` in `vni`: its own, else the
/// binding's.
pub fn group_of(t: &impl PolicyTables, vni: u32, mac: [u8; 6], at: PortKey) -> u16 {
    match t.member(vni, mac) {
        Some(m) if m.group != 0 => m.group,
        _ => t.binding_group(at),
    }
}

/// Whether a frame from group `from` (policy already `applied` by its
/// sender: VXLAN-GBP's A bit) may reach `dst` behind binding `to` in
/// `vni`.
pub fn admits(
    t: &impl PolicyTables,
    vni: u32,
    (from, applied): (u16, bool),
    (dst, to): ([u8; 6], PortKey),
) -> bool {
    applied
        || allowed(
            t.rule(vni, from, group_of(t, vni, dst, to)),
            t.default_deny(vni),
        )
}
