//! The group policy both differential tests give VNI 100, for the
//! programs (written into their maps) and for the models (as
//! `model::policy::PolicyTables`): memberships, binding groups and rules
//! that stay, and the VNI's policy switched off, on (with GBP) and to
//! default deny as the frames go by, as `vtep` switches it (flags on the
//! VNI, its bindings and its remotes, the generation bumped).

use aya::maps::PerCpuHashMap;
use vtep_common::{
    consts::{MAP_MEMBERS, MAP_RULES},
    maps::{
        PORT_F_GBP, PORT_F_POLICY, REMOTE_F_GBP, REMOTE_F_POLICY, VNI_F_DEFAULT_DENY, VNI_F_GBP,
        VNI_F_POLICY,
    },
    policy::{Member, RULE_ALLOW, RULE_DENY, Rule, RuleKey},
};

use super::*;

/// The VNI the policy is in.
pub(crate) const POLICY_VNI: u32 = 100;

/// The rules (from, to, action): denials between the fixtures' groups,
/// allowances that matter under default deny, group 0 (no GBP, no
/// membership) named too.
const RULES: [(u16, u16, u32); 6] = [
    (10, 20, RULE_DENY),
    (0, 10, RULE_DENY),
    (10, 30, RULE_ALLOW),
    (20, 10, RULE_ALLOW),
    (5, 20, RULE_ALLOW),
    (7, 0, RULE_DENY),
];

/// The groups the generators put in VXLAN-GBP headers: the rules' and
/// one no rule names.
pub(crate) const HEADER_GROUPS: [u16; 7] = [0, 5, 7, 10, 20, 30, 99];

/// VNI 100's policy, in one of its states.
pub(crate) struct PolicyFixture {
    /// 0: off; 1: on, with GBP; 2: on, GBP and default deny.
    state: u32,
    members: Vec<([u8; 6], u16)>,
    groups: Vec<(PortKey, u16)>,
}

impl PolicyFixture {
    /// Memberships `members` (MAC, group) and binding groups `groups`,
    /// written into `l`'s maps; the policy off.
    pub(crate) fn install(
        l: &mut Loaded,
        members: &[([u8; 6], u16)],
        groups: &[(PortKey, u16)],
    ) -> Self {
        let mut m: HashMap<_, FdbKey, Member> =
            HashMap::try_from(l.ebpf.map_mut(MAP_MEMBERS).unwrap()).unwrap();
        for (mac, group) in members {
            let member = Member {
                group: *group,
                ..Member::default()
            };
            m.insert(FdbKey::new(POLICY_VNI, *mac), member, 0).unwrap();
        }
        let mut r: PerCpuHashMap<_, RuleKey, Rule> =
            PerCpuHashMap::try_from(l.ebpf.map_mut(MAP_RULES).unwrap()).unwrap();
        for (from, to, action) in RULES {
            let rule = Rule {
                action,
                ..Rule::default()
            };
            let v = PerCpuValues::try_from(vec![rule; nr_cpus().unwrap()]).unwrap();
            let key = RuleKey {
                vni: POLICY_VNI,
                from,
                to,
            };
            r.insert(key, v, 0).unwrap();
        }
        // Counted in the VNI's record, as userspace counts them.
        let mut v: HashMap<_, u32, VniInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
        let mut info = v.get(&POLICY_VNI, 0).unwrap();
        info.rules = RULES.len() as u32;
        v.insert(POLICY_VNI, info, 0).unwrap();
        let mut p: HashMap<_, PortKey, PortInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_PORTS).unwrap()).unwrap();
        for (key, group) in groups {
            let mut info = p.get(key, 0).unwrap();
            info.group = *group;
            p.insert(*key, info, 0).unwrap();
        }
        PolicyFixture {
            state: 0,
            members: members.to_vec(),
            groups: groups.to_vec(),
        }
    }

    /// Whether the policy is on.
    pub(crate) fn on(&self) -> bool {
        self.state != 0
    }

    /// The `PORT_F_*` policy bits VNI 100's bindings have now.
    pub(crate) fn port_bits(&self) -> u32 {
        if self.on() {
            PORT_F_POLICY | PORT_F_GBP
        } else {
            0
        }
    }

    /// The next state, its flags written into `l`: VNI 100's, its
    /// bindings `bindings`' and its remote `remote`'s.
    pub(crate) fn next(&mut self, l: &mut Loaded, bindings: &[PortKey], remote: Option<IpAddr>) {
        self.state = (self.state + 1) % 3;
        let mut v: HashMap<_, u32, VniInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
        let mut info = v.get(&POLICY_VNI, 0).unwrap();
        let all = VNI_F_POLICY | VNI_F_GBP | VNI_F_DEFAULT_DENY;
        info.flags &= !all;
        info.flags |= match self.state {
            0 => 0,
            1 => VNI_F_POLICY | VNI_F_GBP,
            _ => all,
        };
        v.insert(POLICY_VNI, info, 0).unwrap();
        let mut p: HashMap<_, PortKey, PortInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_PORTS).unwrap()).unwrap();
        for key in bindings {
            let mut info = p.get(key, 0).unwrap();
            info.flags = (info.flags & !(PORT_F_POLICY | PORT_F_GBP)) | self.port_bits();
            p.insert(*key, info, 0).unwrap();
        }
        if let Some(remote) = remote {
            let mut r: HashMap<_, RemoteKey, RemoteInfo> =
                HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
            let key = RemoteKey {
                vni: POLICY_VNI,
                ip: ip(remote),
            };
            let mut e = r.get(&key, 0).unwrap();
            e.flags &= !(REMOTE_F_POLICY | REMOTE_F_GBP);
            if self.on() {
                e.flags |= REMOTE_F_POLICY | REMOTE_F_GBP;
            }
            r.insert(key, e, 0).unwrap();
        }
        l.generation.bump(POLICY_VNI);
    }
}

impl model::policy::PolicyTables for PolicyFixture {
    fn member(&self, vni: u32, mac: [u8; 6]) -> Option<Member> {
        let (_, group) = self
            .members
            .iter()
            .find(|(m, _)| vni == POLICY_VNI && *m == mac)?;
        Some(Member {
            group: *group,
            ..Member::default()
        })
    }
    fn binding_group(&self, key: PortKey) -> u16 {
        self.groups
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |(_, g)| *g)
    }
    fn rule(&self, vni: u32, from: u16, to: u16) -> Option<u32> {
        RULES
            .iter()
            .find(|r| vni == POLICY_VNI && (r.0, r.1) == (from, to))
            .map(|r| r.2)
    }
    fn default_deny(&self, vni: u32) -> bool {
        vni == POLICY_VNI && self.state == 2
    }
}

/// A VXLAN header word: mostly plain, now and then VXLAN-GBP with one of
/// [`HEADER_GROUPS`] and any of the A and D bits, now and then anything
/// in the flags byte.
pub(crate) fn random_vxlan_word(r: &mut Rng) -> [u8; 4] {
    match r.below(8) {
        0 => [r.next_u64() as u8, 0, 0, 0],
        1..=3 => {
            let g = r.pick(&HEADER_GROUPS).to_be_bytes();
            let any = r.next_u64() as u8;
            let flags = r.pick(&[0u8, 0, 0x08, 0x40, 0x48, any]);
            [0x88, flags, g[0], g[1]]
        }
        _ => I,
    }
}
