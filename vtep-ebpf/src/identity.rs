//! Group policy and rate limits: who a VM is (its group and policers,
//! `MEMBERS` by (VNI, MAC), else its binding's default group), whether a
//! frame from one group may reach another (`RULES`, the VNI's default),
//! and the policers (`POLICERS`, GCRA shared by all CPUs:
//! `vtep_common::policy`).
//!
//! Only VNIs with `VNI_F_POLICY` come here (their bindings' and remotes'
//! flags say so): the others pay nothing.
//!
//! Where each is applied:
//! - The sender's group and egress limit as a frame enters from a port
//!   ([`egress`]; [`egress_as`] with the sender the encap cache kept), the
//!   sender then kept in this CPU's scratch for the GBP header ([`stamp`])
//!   and the rules; the VNI's egress limit on frames that leave over the
//!   underlay ([`to_underlay`]), not on those switched locally.
//! - Rules and the receiver's ingress limit where the destination is known
//!   and local: local switching ([`to_local`], both groups local) and
//!   decap ([`from_remote`], the sender's group from the VXLAN-GBP header:
//!   draft-smith-vxlan-group-policy; the A bit means policy was applied by
//!   the sender and is not applied again), with the VNI's ingress limit.
//!   On decap the receiver (its group and policer, its VNI's default and
//!   policer) is looked up once per conversation ([`receiver`]) and kept
//!   in the decision cache with the rest of the decision.
//! - Broadcast, multicast and unknown unicast are not filtered by group
//!   (ARP and ND must reach every VM for allowed unicast to work): only
//!   rate limits apply to them.
//!
//! The subprograms are not inlined (the encap and decap frames, each with
//! `learn`'s, are at the verifier's 512 bytes), and they return only a
//! bool: what else they found goes through a per-CPU slot (`SENDER`; see
//! `maps::OUTER_DS` for why) or into the caller's record ([`receiver`]).

use core::intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd};

use aya_ebpf::{helpers::bpf_ktime_get_ns, macros::map, maps::PerCpuArray};
use vtep_common::{
    counters::DropReason,
    maps::{FdbKey, PortKey, VNI_F_DEFAULT_DENY},
    policy::{
        self, Gbp, Member, RECEIVER_F_DEFAULT_DENY, RECEIVER_F_RULES, Receiver, RuleKey, Sender,
        gbp_word,
    },
};

use crate::maps::{MEMBERS, POLICERS, PORTS, RULES, VNIS, count_drop};

/// The sender of the frame being encapsulated, as [`egress`] found it or
/// [`egress_as`] was given it (one per CPU; not pinned).
#[map]
static SENDER: PerCpuArray<Sender> = PerCpuArray::with_max_entries(1, 0);

/// How often a policer's compare-and-swap is retried when another CPU
/// changed the bucket in between; a frame that loses every time is
/// dropped (as over the limit: the bucket was just being drained).
const CAS_TRIES: usize = 4;

/// Whether a frame of `len` bytes conforms to the policer in `slot` (0 or
/// an unused slot: no limit); a frame over it is counted against the
/// policer.
#[inline(never)]
pub fn police(slot: u32, len: u32) -> bool {
    if slot == 0 {
        return true;
    }
    let Some(p) = POLICERS.get_ptr_mut(slot) else {
        return true;
    };
    // SAFETY: map values live as long as the map; userspace rewrites the
    // settings whole, the programs only `tat_ns` and the drop counters,
    // atomically.
    let (cost_fp16, tolerance) = unsafe { ((*p).cost_fp16, (*p).tolerance_ns) };
    if cost_fp16 == 0 {
        return true;
    }
    let cost = policy::cost(cost_fp16, u64::from(len));
    // SAFETY: plain helper call.
    let now = unsafe { bpf_ktime_get_ns() };
    // SAFETY: as above; an aligned u64 in the map value.
    let tat = unsafe { &raw mut (*p).tat_ns };
    // SAFETY: as above (a torn read is impossible for an aligned u64).
    let mut seen = unsafe { tat.read_volatile() };
    for _ in 0..CAS_TRIES {
        let Some(next) = policy::admit(seen, now, cost, tolerance) else {
            break;
        };
        // SAFETY: as above; BPF_ATOMIC | BPF_CMPXCHG on the map value.
        let (was, ok) = unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                tat, seen, next,
            )
        };
        if ok {
            return true;
        }
        seen = was;
    }
    // SAFETY: as above; atomic adds.
    unsafe {
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*p).dropped_packets, 1);
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
            &raw mut (*p).dropped_bytes,
            u64::from(len),
        );
    }
    false
}

/// A frame of `len` bytes from MAC `src` entering binding `at` (port in
/// the low word, VID above) of `vni`, whose stats slot is `slot`: finds
/// who the sender is (its group: its membership, else the binding's
/// default; its and its VNI's egress limits) for what follows ([`sender`]
/// for the encap cache), and polices the sender's egress. `false`: over
/// the limit (counted).
#[inline(never)]
pub fn egress(at: u64, vni: u32, slot: u32, src: &[u8; 6], len: u32) -> bool {
    let m = member(vni, src);
    // SAFETY: map values stay valid for the duration of the program.
    let vni_policer = VNIS.get_ptr(vni).map_or(0, |v| unsafe { (*v).egress });
    let s = Sender {
        group: group_of(&m, at),
        _pad16: 0,
        policer: m.egress,
        vni_policer,
        _pad: 0,
    };
    let_out(&s, slot, len)
}

/// [`egress`] for a frame whose sender `s` is known (a cached decision's).
#[inline(never)]
pub fn egress_as(s: &Sender, slot: u32, len: u32) -> bool {
    let_out(s, slot, len)
}

/// Keeps `s` as the frame's sender, and polices its egress.
#[inline(always)]
fn let_out(s: &Sender, slot: u32, len: u32) -> bool {
    if let Some(p) = SENDER.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this CPU uses it while we run.
        unsafe { *p = *s };
    }
    if !police(s.policer, len) {
        count_drop(DropReason::RateLimited, slot);
        return false;
    }
    true
}

/// The sender of the frame [`egress`] or [`egress_as`] let in.
#[inline(always)]
pub fn sender() -> Sender {
    SENDER.get(0).copied().unwrap_or_default()
}

/// The identity of `mac` in `vni` (none: group 0, no limits).
#[inline(always)]
fn member(vni: u32, mac: &[u8; 6]) -> Member {
    MEMBERS
        .get_ptr(FdbKey::new(vni, *mac))
        // SAFETY: map values stay valid for the duration of the program.
        .map_or(Member::default(), |m| unsafe { *m })
}

/// The group of member `m` behind binding `at` (port in the low word,
/// VID above): its own, else the binding's default (0 if none).
#[inline(always)]
fn group_of(m: &Member, at: u64) -> u16 {
    if m.group != 0 {
        return m.group;
    }
    let key = PortKey::new(at as u32, (at >> 32) as u16);
    // SAFETY: map values stay valid for the duration of the program.
    PORTS.get_ptr(key).map_or(0, |p| unsafe { (*p).group })
}

/// A frame of `len` bytes that [`egress`] or [`egress_as`] let in leaves
/// over the underlay: polices its VNI's egress. `false`: over the limit
/// (counted against `slot`).
#[inline(never)]
pub fn to_underlay(slot: u32, len: u32) -> bool {
    if !police(sender().vni_policer, len) {
        count_drop(DropReason::RateLimited, slot);
        return false;
    }
    true
}

/// The first word of the VXLAN header for the frame [`egress`] let in
/// (on-wire): I and G flags and the sender's group.
#[inline(always)]
pub fn stamp() -> u32 {
    u32::from_ne_bytes(gbp_word(sender().group))
}

/// A frame [`egress`] let in, switched to binding `to` (packed as for
/// `egress`) of `vni` for MAC `dst`: the rules from the sender's group to
/// the receiver's, and the receiver's ingress limit. `false`: denied or
/// over the limit (counted against `slot`).
#[inline(never)]
pub fn to_local(to: u64, vni: u32, slot: u32, dst: &[u8; 6], len: u32) -> bool {
    let from = sender().group;
    admit(&receiver_of(to, vni, dst), (vni, from, false), len, slot)
}

/// The receiver of frames for MAC `dst` behind binding `to` (packed as for
/// `egress`) of `vni` as the tables have it now, written to `out` (what
/// [`from_remote`] judges by; the decap decision cache keeps it).
#[inline(never)]
pub fn receiver(to: u64, vni: u32, dst: &[u8; 6], out: &mut Receiver) {
    *out = receiver_of(to, vni, dst);
}

/// See [`receiver`]. A VNI that is not there has no rules, allows, and
/// has no limit.
#[inline(always)]
fn receiver_of(to: u64, vni: u32, dst: &[u8; 6]) -> Receiver {
    let m = member(vni, dst);
    // SAFETY: map values stay valid for the duration of the program.
    let (vni_flags, rules, vni_policer) = VNIS.get_ptr(vni).map_or((0, 0, 0), |v| unsafe {
        ((*v).flags, (*v).rules, (*v).ingress)
    });
    let mut flags = 0;
    if vni_flags & VNI_F_DEFAULT_DENY != 0 {
        flags |= RECEIVER_F_DEFAULT_DENY;
    }
    if rules != 0 {
        flags |= RECEIVER_F_RULES;
    }
    Receiver {
        group: group_of(&m, to),
        flags,
        policer: m.ingress,
        vni_policer,
        _pad: 0,
    }
}

/// A frame decapsulated for receiver `r` in `vni` (stats slot `slot`),
/// whose VXLAN header word (on-wire bytes; 0 from a sender whose VNI reads
/// no GBP) and length are packed in `vx_len` (word low, length high): the
/// rules from the group in the header to the receiver's, unless the
/// sender applied them (A bit); the receiver's and the VNI's ingress
/// limits. `false`: denied or over a limit (counted).
#[inline(never)]
pub fn from_remote(r: &Receiver, vni: u32, slot: u32, vx_len: u64) -> bool {
    let gbp = Gbp::parse((vx_len as u32).to_ne_bytes());
    let len = (vx_len >> 32) as u32;
    if !admit(r, (vni, gbp.group, gbp.applied), len, slot) {
        return false;
    }
    if !police(r.vni_policer, len) {
        count_drop(DropReason::RateLimited, slot);
        return false;
    }
    true
}

/// The rules of `vni` from group `from` (unless `applied` by the sender)
/// to receiver `r`, then the receiver's ingress limit; `false` counted
/// against `slot`.
#[inline(always)]
fn admit(r: &Receiver, (vni, from, applied): (u32, u16, bool), len: u32, slot: u32) -> bool {
    if !applied && !rules_allow(r, vni, from, len) {
        count_drop(DropReason::PolicyDenied, slot);
        return false;
    }
    if !police(r.policer, len) {
        count_drop(DropReason::RateLimited, slot);
        return false;
    }
    true
}

/// Whether the rules of `vni` let a frame of `len` bytes from group
/// `from` reach receiver `r`; the deciding rule's hits counted. A VNI
/// without rules is not looked up in them.
#[inline(always)]
fn rules_allow(r: &Receiver, vni: u32, from: u16, len: u32) -> bool {
    let key = RuleKey {
        vni,
        from,
        to: r.group,
    };
    let action = if r.flags & RECEIVER_F_RULES == 0 {
        None
    } else {
        RULES.get_ptr_mut(key).map(|rule| {
            // SAFETY: per-CPU value, only this CPU writes it while we run.
            unsafe {
                (*rule).packets += 1;
                (*rule).bytes += u64::from(len);
                (*rule).action
            }
        })
    };
    policy::allowed(action, r.flags & RECEIVER_F_DEFAULT_DENY != 0)
}
