//! Group policy and rate limits in the programs: the VXLAN-GBP word
//! written on encap (the sender's membership, else its binding's group)
//! and read on decap (G, A and D bits), rule verdicts where the receiver
//! is (decap, local switching) and their hits, a default-deny VNI, and
//! the policers' arithmetic against `vtep_common::policy` on a sequence
//! of frames.

use aya::maps::{Array, PerCpuHashMap};
use vtep_common::{
    consts::{MAP_MEMBERS, MAP_POLICERS, MAP_RULES},
    maps::{
        PORT_F_GBP, PORT_F_POLICY, REMOTE_F_GBP, REMOTE_F_POLICY, VNI_F_DEFAULT_DENY, VNI_F_GBP,
        VNI_F_POLICY,
    },
    policy::{self, Member, Policer, RULE_ALLOW, RULE_DENY, Rule, RuleKey},
};

use super::*;

impl Loaded {
    /// Turns policy (and GBP) on for `vni` as userspace does: its flags,
    /// and its remote `remote`'s.
    fn with_policy(&mut self, vni: u32, vni_flags: u32, remote: Option<IpAddr>) {
        let mut m: HashMap<_, u32, VniInfo> =
            HashMap::try_from(self.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
        let mut info = m.get(&vni, 0).unwrap();
        info.flags |= VNI_F_POLICY | vni_flags;
        m.insert(vni, info, 0).unwrap();
        if let Some(remote) = remote {
            let mut r: HashMap<_, RemoteKey, RemoteInfo> =
                HashMap::try_from(self.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
            let key = RemoteKey {
                vni,
                ip: ip(remote),
            };
            let mut e = r.get(&key, 0).unwrap();
            e.flags |= REMOTE_F_POLICY | REMOTE_F_GBP;
            r.insert(key, e, 0).unwrap();
        }
        self.generation.bump(vni);
    }

    /// Writes a membership, and bumps the VNI's generation as userspace
    /// does (decisions cache the receiver's and the sender's identity).
    fn member(&mut self, vni: u32, mac: [u8; 6], m: Member) {
        let mut t: HashMap<_, FdbKey, Member> =
            HashMap::try_from(self.ebpf.map_mut(MAP_MEMBERS).unwrap()).unwrap();
        t.insert(FdbKey::new(vni, mac), m, 0).unwrap();
        self.generation.bump(vni);
    }

    /// Writes a rule (its hits from 0), counted in the VNI's record as
    /// userspace counts it (and bumps its generation, as a VNI record's
    /// change does).
    fn rule(&mut self, vni: u32, (from, to): (u16, u16), action: u32) {
        let mut t: PerCpuHashMap<_, RuleKey, Rule> =
            PerCpuHashMap::try_from(self.ebpf.map_mut(MAP_RULES).unwrap()).unwrap();
        let r = Rule {
            action,
            ..Rule::default()
        };
        let key = RuleKey { vni, from, to };
        let new = t.get(&key, 0).is_err();
        let v = PerCpuValues::try_from(vec![r; nr_cpus().unwrap()]).unwrap();
        t.insert(key, v, 0).unwrap();
        if new {
            let mut m: HashMap<_, u32, VniInfo> =
                HashMap::try_from(self.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
            let mut info = m.get(&vni, 0).unwrap();
            info.rules += 1;
            m.insert(vni, info, 0).unwrap();
            self.generation.bump(vni);
        }
    }

    /// The frames rule from → to of `vni` decided, on all CPUs.
    fn rule_hits(&self, vni: u32, (from, to): (u16, u16)) -> u64 {
        let t: PerCpuHashMap<_, RuleKey, Rule> =
            PerCpuHashMap::try_from(self.ebpf.map(MAP_RULES).unwrap()).unwrap();
        let v = t.get(&RuleKey { vni, from, to }, 0).unwrap();
        v.iter().map(|r| r.packets).sum()
    }

    fn set_policer(&mut self, slot: u32, p: Policer) {
        let mut t: Array<_, Policer> =
            Array::try_from(self.ebpf.map_mut(MAP_POLICERS).unwrap()).unwrap();
        t.set(slot, p, 0).unwrap();
    }

    fn policer(&self, slot: u32) -> Policer {
        let t: Array<_, Policer> = Array::try_from(self.ebpf.map(MAP_POLICERS).unwrap()).unwrap();
        t.get(&slot, 0).unwrap()
    }
}

/// A VXLAN header word with the G bit, group `g` and flag bits `second`
/// (`GBP_FLAG_A`, `GBP_FLAG_D`) in its second byte.
fn gbp(g: u16, second: u8) -> [u8; 4] {
    let b = g.to_be_bytes();
    [0x88, second, b[0], b[1]]
}

const ACCESS: Member = Member {
    group: 20,
    flags: 0,
    egress: 0,
    ingress: 0,
};

#[test]
fn decap_judges_the_group_in_the_header_against_the_receivers() {
    let mut l = decap_loaded();
    l.with_policy(100, VNI_F_GBP, Some(REMOTE));
    l.member(100, MAC_XDP_PORT, ACCESS);
    l.rule(100, (10, 20), RULE_DENY);
    l.rule(100, (0, 20), RULE_DENY);
    l.rule(100, (30, 20), RULE_ALLOW);
    let to_vm = inner_frame(MAC_XDP_PORT);
    let denied = Bump::Drop(DropReason::PolicyDenied);
    let delivered = Bump::Event(Counter::DecapXdp);
    let case = |what, flags, action, bump| Case {
        what,
        input: vxlan(REMOTE, VXLAN_PORT, flags, 100, &to_vm),
        action,
        output: (action == XDP_REDIRECT).then(|| to_vm.clone()),
        bump,
    };
    let cases = vec![
        case("group 10 -> 20: denied", gbp(10, 0), XDP_DROP, denied),
        case(
            "group 30 -> 20: allowed by its rule",
            gbp(30, 0),
            XDP_REDIRECT,
            delivered,
        ),
        case(
            "group 40 -> 20: no rule, allowed by default",
            gbp(40, 0),
            XDP_REDIRECT,
            delivered,
        ),
        case(
            "group 10 -> 20 with the A bit: applied by the sender",
            gbp(10, policy::GBP_FLAG_A),
            XDP_REDIRECT,
            delivered,
        ),
        case("no G bit: group 0 -> 20, denied", I, XDP_DROP, denied),
    ];
    check(&l, cases, run_xdp(&l));
    assert_eq!(l.rule_hits(100, (10, 20)), 1);
    assert_eq!(l.rule_hits(100, (30, 20)), 1);
    assert_eq!(l.rule_hits(100, (0, 20)), 1);
    // Through TC (an skb port, no membership: the binding's group 0):
    // judged in XDP before it goes up.
    let to_skb = inner_frame(MAC_SKB_PORT);
    l.rule(100, (10, 0), RULE_DENY);
    let cases = vec![Case {
        what: "group 10 -> an skb port's group 0: denied before it goes up",
        input: vxlan(REMOTE, VXLAN_PORT, gbp(10, 0), 100, &to_skb),
        action: XDP_DROP,
        output: None,
        bump: denied,
    }];
    check(&l, cases, run_xdp(&l));
    // A default-deny VNI: only what a rule allows.
    l.with_policy(100, VNI_F_DEFAULT_DENY, None);
    let cases = vec![
        case(
            "default deny: group 40 -> 20 dropped",
            gbp(40, 0),
            XDP_DROP,
            denied,
        ),
        case(
            "default deny: group 30 -> 20 allowed",
            gbp(30, 0),
            XDP_REDIRECT,
            delivered,
        ),
    ];
    check(&l, cases, run_xdp(&l));
    // The receiver's group is part of the cached decision: moved to group
    // 30 (no rule 30 -> 30), it is judged by its new group from the next
    // frame on.
    l.member(
        100,
        MAC_XDP_PORT,
        Member {
            group: 30,
            ..ACCESS
        },
    );
    let cases = vec![case(
        "the receiver now in group 30: 30 -> 30 has no rule, denied",
        gbp(30, 0),
        XDP_DROP,
        denied,
    )];
    check(&l, cases, run_xdp(&l));
}

/// The receiver's identity is part of the cached decision (no MEMBERS or
/// VNIS lookup per frame): a membership changed behind the cache's back
/// is not seen, and is from the next frame once the VNI's generation
/// moves, as it does after every change `vtep` makes. The rules are still
/// read per frame.
#[test]
fn a_cached_decision_keeps_the_receivers_identity_until_its_vni_moves() {
    private_netns();
    let p2 = ifindex("p2");
    let mut l = Loaded::new(config(1));
    l.vni(100, &[REMOTE], &[p2]);
    l.port(p2, 100, 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    l.with_policy(100, VNI_F_GBP, Some(REMOTE));
    l.member(100, MAC_SKB_PORT, ACCESS);
    l.rule(100, (10, 30), RULE_DENY);
    let fills =
        |l: &Loaded| l.counters(MAP_COUNTERS, Counter::COUNT)[Counter::DecapCacheFill as usize];
    let frame = vxlan(
        REMOTE,
        VXLAN_PORT,
        gbp(10, 0),
        100,
        &inner_frame(MAC_SKB_PORT),
    );
    for _ in 0..3 {
        assert_eq!(passed_up_to(&l, &frame), p2, "group 10 -> 20: no rule");
    }
    assert_eq!(fills(&l), 1, "the frames after the first, from the cache");
    {
        let mut t: HashMap<_, FdbKey, Member> =
            HashMap::try_from(l.ebpf.map_mut(MAP_MEMBERS).unwrap()).unwrap();
        let moved = Member {
            group: 30,
            ..ACCESS
        };
        t.insert(FdbKey::new(100, MAC_SKB_PORT), moved, 0).unwrap();
    }
    assert_eq!(passed_up_to(&l, &frame), p2, "no bump: the cached group");
    l.generation.bump(100);
    let mut out = vec![0u8; frame.len() + 64];
    assert_eq!(run_xdp(&l)(&frame, &mut out).0, XDP_DROP, "10 -> 30 denied");
    assert_eq!(fills(&l), 2);
    // A rule's action changes (hits from 0, no bump: the VNI's record
    // stays): read per frame, it holds at once.
    l.rule(100, (10, 30), RULE_ALLOW);
    assert_eq!(passed_up_to(&l, &frame), p2, "10 -> 30 allowed now");
    assert_eq!(l.rule_hits(100, (10, 30)), 1);
    assert_eq!(fills(&l), 2, "from the cache");
}

#[test]
fn decap_without_gbp_ignores_the_g_bit_and_the_d_bit_stops_learning() {
    let mut l = decap_loaded();
    // Policy but no GBP in VNI 100: the header's group is not read.
    l.with_policy(100, 0, None);
    let mut r: HashMap<_, RemoteKey, RemoteInfo> =
        HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
    let key = RemoteKey {
        vni: 100,
        ip: ip(REMOTE),
    };
    let mut e = r.get(&key, 0).unwrap();
    e.flags |= REMOTE_F_POLICY | REMOTE_F_LEARN;
    r.insert(key, e, 0).unwrap();
    l.member(100, MAC_XDP_PORT, ACCESS);
    l.rule(100, (10, 20), RULE_DENY);
    let to_vm = inner_frame(MAC_XDP_PORT);
    let cases = vec![Case {
        what: "G bit in a VNI without GBP: group 0, the 10 -> 20 rule does not apply",
        input: vxlan(REMOTE, VXLAN_PORT, gbp(10, policy::GBP_FLAG_D), 100, &to_vm),
        action: XDP_REDIRECT,
        output: Some(to_vm.clone()),
        bump: Bump::Event(Counter::DecapXdp),
    }];
    check(&l, cases, run_xdp(&l));
    // Without GBP the D bit is not ours to read either: the source learned.
    let learned = |l: &Loaded| {
        let t: HashMap<_, FdbKey, LearnedEntry> =
            HashMap::try_from(l.ebpf.map(MAP_LEARNED).unwrap()).unwrap();
        t.get(&FdbKey::new(100, MAC_A), 0).is_ok()
    };
    assert!(learned(&l));
    // With GBP, a D bit: nothing learned from the frame.
    let mut l = decap_loaded();
    l.with_policy(100, VNI_F_GBP, Some(REMOTE));
    let mut r: HashMap<_, RemoteKey, RemoteInfo> =
        HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
    let mut e = r.get(&key, 0).unwrap();
    e.flags |= REMOTE_F_LEARN;
    r.insert(key, e, 0).unwrap();
    let mut out = vec![0u8; to_vm.len() + 256];
    let frame = vxlan(REMOTE, VXLAN_PORT, gbp(10, policy::GBP_FLAG_D), 100, &to_vm);
    assert_eq!(run_xdp(&l)(&frame, &mut out).0, XDP_REDIRECT);
    assert!(!learned(&l), "learned from a frame with the D bit");
    let frame = vxlan(REMOTE, VXLAN_PORT, gbp(10, 0), 100, &to_vm);
    assert_eq!(run_xdp(&l)(&frame, &mut out).0, XDP_REDIRECT);
    assert!(learned(&l));
}

/// The encap decision cache keeps the sender (its group and limits), as
/// the decap one keeps the receiver: valid until the VNI's generation
/// moves.
#[test]
fn encap_writes_the_senders_group_and_judges_local_switching() {
    let (ul0, _) = private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1, p2]);
    let flags = PORT_F_POLICY | PORT_F_GBP;
    l.port(p1, 100, flags);
    l.port(p2, 100, flags);
    l.with_policy(100, VNI_F_GBP, None);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let word = |l: &Loaded| {
        let f = inner_frame(MAC_BEHIND_REMOTE);
        let mut out = vec![0u8; f.len() + 256];
        let (action, _) = run_tc(l, p1)(&f, &mut out);
        assert_eq!(action, TC_ACT_REDIRECT);
        // The VXLAN header after outer Ethernet, IPv4 and UDP.
        [out[42], out[43], out[44], out[45]]
    };
    assert_eq!(word(&l), [0x08, 0, 0, 0], "no group: plain RFC 7348");
    // The binding's default group.
    let mut m: HashMap<_, PortKey, PortInfo> =
        HashMap::try_from(l.ebpf.map_mut(MAP_PORTS).unwrap()).unwrap();
    let key = PortKey::new(p1, 0);
    let mut info = m.get(&key, 0).unwrap();
    info.group = 7;
    m.insert(key, info, 0).unwrap();
    // Bound anew, as `vtep port add` does it, the VNI's generation moves:
    // the sender is part of the cached decision.
    assert_eq!(word(&l), [0x08, 0, 0, 0], "no bump: the cached sender");
    l.generation.bump(100);
    assert_eq!(word(&l), gbp(7, 0), "the port's group");
    // The sender's own membership first.
    l.member(
        100,
        MAC_A,
        Member {
            group: 10,
            ..Member::default()
        },
    );
    assert_eq!(word(&l), gbp(10, 0), "the VM's group");
    // Local switching to a VM of group 20.
    l.member(100, MAC_SKB_PORT, ACCESS);
    l.rule(100, (10, 20), RULE_DENY);
    let cases = vec![Case {
        what: "switched locally, 10 -> 20: denied",
        input: inner_frame(MAC_SKB_PORT),
        action: TC_ACT_SHOT,
        output: None,
        bump: Bump::Drop(DropReason::PolicyDenied),
    }];
    check(&l, cases, run_tc(&l, p1));
    l.rule(100, (10, 20), RULE_ALLOW);
    let cases = vec![Case {
        what: "switched locally, 10 -> 20 allowed",
        input: inner_frame(MAC_SKB_PORT),
        action: TC_ACT_REDIRECT,
        output: None,
        bump: Bump::Event(Counter::LocalSwitch),
    }];
    check(&l, cases, run_tc(&l, p1));
    // Counted since the rule was written again (as allow).
    assert_eq!(l.rule_hits(100, (10, 20)), 1);
}

/// A policer of 8 kbit/s (a byte a millisecond: a test's own duration
/// refills nothing worth a frame) whose bucket holds `frames` frames of
/// `len` bytes exactly.
fn slow_policer(frames: u64, len: u64) -> Policer {
    let mut p = Policer::new(8_000, frames * len);
    assert_eq!(policy::cost(p.cost_fp16, len), len * 1_000_000);
    p.tat_ns = 0;
    p
}

#[test]
fn policers_pass_their_bucket_and_count_the_rest() {
    // Egress: what a VM sends, on encap.
    let (ul0, _) = private_netns();
    let p1 = ifindex("p1");
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1]);
    l.port(p1, 100, PORT_F_POLICY);
    l.with_policy(100, 0, None);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    let f = inner_frame(MAC_BEHIND_REMOTE);
    let len = f.len() as u64;
    l.set_policer(3, slow_policer(3, len));
    l.member(
        100,
        MAC_A,
        Member {
            egress: 3,
            ..Member::default()
        },
    );
    let mut out = vec![0u8; f.len() + 256];
    let mut tat = 0u64;
    let p = l.policer(3);
    for i in 0..5 {
        let (action, _) = run_tc(&l, p1)(&f, &mut out);
        // The model: from a full bucket, what passes moves the arrival
        // time on by the frame's cost (the clock's own advance in the
        // test is far below one byte's cost).
        let now = coarse_now_ns();
        let model = policy::admit(tat, now, policy::cost(p.cost_fp16, len), p.tolerance_ns);
        let want = if model.is_some() {
            TC_ACT_REDIRECT
        } else {
            TC_ACT_SHOT
        };
        assert_eq!(action, want, "frame {i}");
        if let Some(t) = model {
            tat = t;
        }
    }
    let after = l.policer(3);
    assert_eq!((after.dropped_packets, after.dropped_bytes), (2, 2 * len));
    assert!(
        after.tat_ns > 3 * 1_000_000 * len,
        "three frames' cost taken"
    );
    // Ingress: what a VM receives, on decap.
    let mut l = decap_loaded();
    l.with_policy(100, 0, Some(REMOTE));
    let to_vm = inner_frame(MAC_XDP_PORT);
    let len = to_vm.len() as u64;
    l.set_policer(4, slow_policer(2, len));
    l.member(
        100,
        MAC_XDP_PORT,
        Member {
            ingress: 4,
            ..Member::default()
        },
    );
    let frame = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_vm);
    let mut out = vec![0u8; frame.len() + 64];
    let actions: Vec<u32> = (0..3).map(|_| run_xdp(&l)(&frame, &mut out).0).collect();
    assert_eq!(actions, [XDP_REDIRECT, XDP_REDIRECT, XDP_DROP]);
    assert_eq!(l.policer(4).dropped_packets, 1);
    assert_eq!(
        l.counters(MAP_DROPS, DropReason::COUNT)[DropReason::RateLimited as usize],
        1
    );
}

/// `vni`'s aggregate policer slots set to `egress` and `ingress`.
fn vni_limits(l: &mut Loaded, vni: u32, (egress, ingress): (u32, u32)) {
    let mut m: HashMap<_, u32, VniInfo> =
        HashMap::try_from(l.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
    let mut info = m.get(&vni, 0).unwrap();
    (info.egress, info.ingress) = (egress, ingress);
    m.insert(vni, info, 0).unwrap();
    // As every write of a VNI's record by `vtep` does.
    l.generation.bump(vni);
}

#[test]
fn a_vnis_limits_police_what_crosses_the_underlay_only() {
    // Egress: what the VNI's ports send to remote VTEPs; switching
    // between its ports is not the underlay's traffic.
    let (ul0, _) = private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1, p2]);
    l.port(p1, 100, PORT_F_POLICY);
    l.port(p2, 100, PORT_F_POLICY);
    l.with_policy(100, 0, None);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let f = inner_frame(MAC_BEHIND_REMOTE);
    l.set_policer(5, slow_policer(1, f.len() as u64));
    vni_limits(&mut l, 100, (5, 0));
    let mut out = vec![0u8; f.len() + 256];
    let remote: Vec<u32> = (0..2).map(|_| run_tc(&l, p1)(&f, &mut out).0).collect();
    assert_eq!(remote, [TC_ACT_REDIRECT, TC_ACT_SHOT]);
    let local = inner_frame(MAC_SKB_PORT);
    assert_eq!(run_tc(&l, p1)(&local, &mut out).0, TC_ACT_REDIRECT);
    assert_eq!(l.policer(5).dropped_packets, 1);
    // Ingress: what arrives for the VNI's ports from remote VTEPs.
    let mut l = decap_loaded();
    l.with_policy(100, 0, Some(REMOTE));
    let to_vm = inner_frame(MAC_XDP_PORT);
    l.set_policer(6, slow_policer(1, to_vm.len() as u64));
    vni_limits(&mut l, 100, (0, 6));
    let frame = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_vm);
    let mut out = vec![0u8; frame.len() + 64];
    let actions: Vec<u32> = (0..2).map(|_| run_xdp(&l)(&frame, &mut out).0).collect();
    assert_eq!(actions, [XDP_REDIRECT, XDP_DROP]);
    assert_eq!(l.policer(6).dropped_packets, 1);
}
