//! Group-based policy and rate limits that follow a VM: the identity a
//! VM has in its VNI (`MEMBERS`: (VNI, MAC) → group and policers), the
//! rules between groups (`RULES`), the policers (`POLICERS`), the VXLAN
//! Group Policy header (draft-smith-vxlan-group-policy) and the
//! arithmetic the programs and the models share.
//!
//! Group 0 is "unknown": a frame from a peer that sends no GBP header, or
//! from a VM with no membership on a port with no default group. Rules may
//! name it like any other group.

use core::mem::size_of;

/// The G bit: the VXLAN header carries a Group Policy ID (draft-smith-
/// vxlan-group-policy §2, in the first flags byte, next to the I flag).
pub const GBP_FLAG_G: u8 = 0x80;
/// The D bit (second flags byte): the receiver must not learn the inner
/// source MAC from this packet.
pub const GBP_FLAG_D: u8 = 0x40;
/// The A bit (second flags byte): policy has already been applied; the
/// receiver must not apply it again.
pub const GBP_FLAG_A: u8 = 0x08;

/// What a VXLAN header's first word says of group policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gbp {
    /// The Group Policy ID (0: no G bit, or group 0 sent).
    pub group: u16,
    /// The A bit: policy was applied by the sender.
    pub applied: bool,
    /// The D bit: do not learn from this packet.
    pub dont_learn: bool,
}

impl Gbp {
    /// The group-policy fields of the VXLAN header whose first 4 bytes are
    /// `w` (on-wire). Without the G bit the word is plain RFC 7348
    /// (reserved bits ignored on receipt): group 0, no flags.
    #[inline(always)]
    pub fn parse(w: [u8; 4]) -> Self {
        if w[0] & GBP_FLAG_G == 0 {
            return Self::default();
        }
        Self {
            group: u16::from_be_bytes([w[2], w[3]]),
            applied: w[1] & GBP_FLAG_A != 0,
            dont_learn: w[1] & GBP_FLAG_D != 0,
        }
    }
}

/// The first word of a VXLAN header (on-wire) that carries `group`: the I
/// and G flags, no D or A bit. Group 0 is sent as a plain RFC 7348 word
/// (what the kernel's vxlan does for mark 0).
#[inline(always)]
pub fn gbp_word(group: u16) -> [u8; 4] {
    let g = group.to_be_bytes();
    if group == 0 {
        return [crate::vxlan::VXLAN_FLAG_I, 0, 0, 0];
    }
    [crate::vxlan::VXLAN_FLAG_I | GBP_FLAG_G, 0, g[0], g[1]]
}

/// The first word of the VXLAN header (on-wire) that the kernel's vxlan
/// parsed into `md`, the `gbp` of its `struct vxlan_metadata`
/// (include/net/vxlan.h: the group in the low 16 bits, D and A at their
/// own bit positions in the host-order header word, 22 and 19; 0 without
/// the G bit): a plain RFC 7348 word when it carries nothing, as
/// [`gbp_word`] sends group 0.
#[inline(always)]
pub fn gbp_word_of_metadata(md: u32) -> [u8; 4] {
    const D: u32 = (GBP_FLAG_D as u32) << 16;
    const A: u32 = (GBP_FLAG_A as u32) << 16;
    let md = md & (0xffff | D | A);
    if md == 0 {
        return [crate::vxlan::VXLAN_FLAG_I, 0, 0, 0];
    }
    let b = md.to_be_bytes();
    [crate::vxlan::VXLAN_FLAG_I | GBP_FLAG_G, b[1], b[2], b[3]]
}

/// A VM's identity in its VNI (value of `MEMBERS`, keyed like the FDB by
/// (VNI, MAC)).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// Its group (0: none of its own, its binding's default group applies;
    /// a member with only rate limits).
    pub group: u16,
    /// `MEMBER_F_*` bits (userspace's: the programs do not read them).
    pub flags: u16,
    /// Its `POLICERS` slot for what it sends (0: no limit).
    pub egress: u32,
    /// Its `POLICERS` slot for what it receives (0: no limit).
    pub ingress: u32,
}

/// The group came from an EVPN route (the VM's group where it lives),
/// not from configuration: configuration wins over it, and it goes with
/// the route.
pub const MEMBER_F_EVPN: u16 = 1;

/// What group policy judges a frame's receiver by, as the tables say for
/// it: its group and ingress policer (its membership, else its binding's
/// default group), its VNI's default and ingress policer. Looked up once
/// per conversation: the decap decision cache keeps it, valid as long as
/// the decision is (every change to a membership, a binding or a VNI
/// bumps the VNI's generation).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Receiver {
    /// Its group (0: unknown).
    pub group: u16,
    /// `RECEIVER_F_*` bits.
    pub flags: u16,
    /// Its `POLICERS` slot for what it receives (0: no limit).
    pub policer: u32,
    /// Its VNI's `POLICERS` slot for what the VNI receives (0: no limit).
    pub vni_policer: u32,
    /// Always zero.
    pub _pad: u32,
}

/// What group policy and rate limits take of a frame's sender, as the
/// tables say for it: its group (its membership, else its binding's
/// default group: written in the VXLAN-GBP header, judged by the
/// receiver's rules), its `POLICERS` slot for what it sends, its VNI's
/// for what the VNI's ports send over the underlay. Looked up once per
/// conversation: the encap decision cache keeps it, valid as long as the
/// decision is.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    /// Its group (0: unknown).
    pub group: u16,
    /// Always zero.
    pub _pad16: u16,
    /// Its egress policer slot (0: no limit).
    pub policer: u32,
    /// Its VNI's egress policer slot (0: no limit).
    pub vni_policer: u32,
    /// Always zero.
    pub _pad: u32,
}

/// The receiver's VNI denies what no rule allows (`VNI_F_DEFAULT_DENY`).
pub const RECEIVER_F_DEFAULT_DENY: u16 = 1;
/// The receiver's VNI has rules to look up.
pub const RECEIVER_F_RULES: u16 = 2;

/// A rule's key: from one group to another in one VNI.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleKey {
    pub vni: u32,
    pub from: u16,
    pub to: u16,
}

/// A rule (value of the per-CPU `RULES`): its action, the same on every
/// CPU, and this CPU's hits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// `RULE_ALLOW` or `RULE_DENY`.
    pub action: u32,
    pub _pad: u32,
    /// Frames the rule decided, and their bytes.
    pub packets: u64,
    pub bytes: u64,
}

/// A rule's action: let the frame through.
pub const RULE_ALLOW: u32 = 1;
/// A rule's action: drop the frame (`policy_denied`).
pub const RULE_DENY: u32 = 2;

/// Whether a frame from group to group is allowed: by its rule's action
/// if there is a rule, else by the VNI's default (allow unless
/// `default_deny`).
#[inline(always)]
pub fn allowed(rule: Option<u32>, default_deny: bool) -> bool {
    match rule {
        Some(action) => action == RULE_ALLOW,
        None => !default_deny,
    }
}

/// A policer (value of `POLICERS`, one array shared by all CPUs): a token
/// bucket of `rate` bytes per second and depth `burst`, kept as GCRA
/// (virtual scheduling, ITU-T I.371): one word, the theoretical arrival
/// time, that every CPU advances with compare-and-swap, so N CPUs share
/// one budget instead of passing N times the rate.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policer {
    /// When the bucket is full again (ns, `bpf_ktime_get_ns`): the only
    /// field the programs write, by compare-and-swap.
    pub tat_ns: u64,
    /// What one byte costs, in 1/65536 ns (0: the slot is unused, every
    /// frame passes).
    pub cost_fp16: u64,
    /// The bucket's depth as time: `burst` bytes' cost (ns).
    pub tolerance_ns: u64,
    /// Frames dropped for exceeding the rate, and their bytes (added
    /// atomically by the programs).
    pub dropped_packets: u64,
    pub dropped_bytes: u64,
    /// The settings as given, for userspace to show (the programs read
    /// only the two above derived from them).
    pub rate_bits: u64,
    pub burst_bytes: u64,
}

/// Fixed-point shift of `Policer::cost_fp16`.
const COST_SHIFT: u32 = 16;

impl Policer {
    /// A policer of `rate` bits per second (> 0) and a bucket of `burst`
    /// bytes, full.
    pub fn new(rate_bits: u64, burst_bytes: u64) -> Self {
        let cost_fp16 = ((8_000_000_000u128 << COST_SHIFT) / u128::from(rate_bits.max(1))) as u64;
        let cost_fp16 = cost_fp16.max(1);
        Self {
            tat_ns: 0,
            cost_fp16,
            tolerance_ns: cost(cost_fp16, burst_bytes),
            dropped_packets: 0,
            dropped_bytes: 0,
            rate_bits,
            burst_bytes,
        }
    }
}

/// What `len` bytes cost at `cost_fp16` per byte (ns, rounded up).
/// Precondition: the product fits 64 bits: rates of at least
/// `MIN_RATE_BITS` (`cost_fp16` < 2^36) and frames under 2^27 bytes (a
/// plain multiply: BPF has no 128-bit one).
#[inline(always)]
pub fn cost(cost_fp16: u64, len: u64) -> u64 {
    (len.wrapping_mul(cost_fp16) + (1 << COST_SHIFT) - 1) >> COST_SHIFT
}

/// The lowest rate a policer takes (bits per second).
pub const MIN_RATE_BITS: u64 = 8_000;

/// GCRA: a frame of cost `cost` arriving at `now` conforms to a bucket
/// whose theoretical arrival time is `tat` and depth `tolerance` if the
/// bucket holds its bytes: the new theoretical arrival time if it does
/// (the frame passes), `None` if not (it is dropped and the bucket is left
/// as it was). Equivalent to a token bucket that starts full.
#[inline(always)]
pub fn admit(tat: u64, now: u64, cost: u64, tolerance: u64) -> Option<u64> {
    let start = if tat > now { tat } else { now };
    if start - now + cost > tolerance {
        return None;
    }
    Some(start + cost)
}

const _: () = assert!(size_of::<Member>() == 12);
const _: () = assert!(size_of::<Receiver>() == 16);
const _: () = assert!(size_of::<Sender>() == 16);
const _: () = assert!(size_of::<RuleKey>() == 8);
const _: () = assert!(size_of::<Rule>() == 24);
const _: () = assert!(size_of::<Policer>() == 56);

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: each type is #[repr(C)], made only of integers, with every
    // gap filled by an explicit `_pad` field (the size assertions above
    // pin the layouts), so any bit pattern is valid.
    unsafe impl aya::Pod for Member {}
    // SAFETY: as above.
    unsafe impl aya::Pod for RuleKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Rule {}
    // SAFETY: as above.
    unsafe impl aya::Pod for Policer {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_gbp_metadata_reads_as_the_header_it_came_in() {
        // include/net/vxlan.h: VXLAN_GBP_DONT_LEARN is BIT(6) << 16,
        // VXLAN_GBP_POLICY_APPLIED BIT(3) << 16.
        let (d, a) = (1u32 << 22, 1u32 << 19);
        assert_eq!(gbp_word_of_metadata(0), [0x08, 0, 0, 0]);
        for g in [1u16, 0x1234, u16::MAX] {
            assert_eq!(gbp_word_of_metadata(g.into()), gbp_word(g));
        }
        assert_eq!(
            Gbp::parse(gbp_word_of_metadata(d | a | 7)),
            Gbp {
                group: 7,
                applied: true,
                dont_learn: true,
            }
        );
        assert_eq!(
            Gbp::parse(gbp_word_of_metadata(d)),
            Gbp {
                group: 0,
                applied: false,
                dont_learn: true,
            }
        );
    }

    #[test]
    fn gbp_words_round_trip_and_plain_words_carry_no_group() {
        for g in [1u16, 10, 20, 0x1234, u16::MAX] {
            let w = gbp_word(g);
            assert_eq!(w[0], 0x88, "I and G");
            assert_eq!(
                Gbp::parse(w),
                Gbp {
                    group: g,
                    applied: false,
                    dont_learn: false
                }
            );
        }
        assert_eq!(gbp_word(0), [0x08, 0, 0, 0]);
        // Reserved bits without G: plain RFC 7348, nothing read from them.
        assert_eq!(Gbp::parse([0x08, 0x48, 0x12, 0x34]), Gbp::default());
        let p = Gbp::parse([0x88, 0x48, 0, 7]);
        assert_eq!((p.group, p.applied, p.dont_learn), (7, true, true));
    }

    #[test]
    fn rules_decide_and_the_default_decides_without_one() {
        assert!(allowed(Some(RULE_ALLOW), true));
        assert!(!allowed(Some(RULE_DENY), false));
        assert!(allowed(None, false));
        assert!(!allowed(None, true));
    }

    #[test]
    fn a_full_bucket_passes_its_burst_then_the_rate() {
        // 8 Mbit/s = 1 byte per µs; a 10,000-byte bucket.
        let p = Policer::new(8_000_000, 10_000);
        assert_eq!(cost(p.cost_fp16, 1000), 1_000_000);
        assert_eq!(p.tolerance_ns, 10_000_000);
        let now = 1_000_000_000;
        let mut tat = p.tat_ns;
        // Ten 1000-byte frames at once: the burst.
        for _ in 0..10 {
            tat = admit(tat, now, cost(p.cost_fp16, 1000), p.tolerance_ns).unwrap();
        }
        assert_eq!(
            admit(tat, now, cost(p.cost_fp16, 1000), p.tolerance_ns),
            None
        );
        // 1 ms later one frame's worth came back, not two.
        let later = now + 1_000_000;
        tat = admit(tat, later, cost(p.cost_fp16, 1000), p.tolerance_ns).unwrap();
        assert_eq!(
            admit(tat, later, cost(p.cost_fp16, 1), p.tolerance_ns),
            None
        );
        // A frame larger than the bucket never passes.
        assert_eq!(
            admit(0, now * 10, cost(p.cost_fp16, 10_001), p.tolerance_ns),
            None
        );
    }

    #[test]
    fn over_a_long_run_the_rate_holds_within_two_frames() {
        // 100 Mbit/s, 64 KiB bucket, 1500-byte frames offered at 1 Gbit/s
        // for one second: what passes is the rate plus the burst.
        let p = Policer::new(100_000_000, 65_536);
        let (mut tat, mut passed) = (0u64, 0u64);
        let gap = 12_000; // ns between 1500-byte frames at 1 Gbit/s
        let mut t = 5_000_000_000u64;
        let end = t + 1_000_000_000;
        while t < end {
            if let Some(n) = admit(tat, t, cost(p.cost_fp16, 1500), p.tolerance_ns) {
                tat = n;
                passed += 1500;
            }
            t += gap;
        }
        let want = 12_500_000 + 65_536;
        assert!(passed.abs_diff(want) <= 2 * 1500, "{passed} vs {want}");
    }

    #[test]
    fn costs_keep_precision_from_kbit_to_tbit() {
        for rate in [
            8_000u64,
            1_000_000,
            100_000_000,
            10_000_000_000,
            1_000_000_000_000,
        ] {
            let p = Policer::new(rate, 65_536);
            let ns = cost(p.cost_fp16, 1_000_000);
            let want = 8_000_000_000_000_000u128 / u128::from(rate);
            let err = (u128::from(ns)).abs_diff(want) as f64 / want as f64;
            assert!(err < 0.001, "rate {rate}: {ns} vs {want}");
        }
    }
}
