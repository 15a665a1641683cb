//! QoS markings across the tunnel: the outer DSCP a VNI gives its frames
//! and the ECN field both ways, RFC 6040 (normal mode), as the kernel's
//! vxlan does (`ip_tunnel_ecn_encap`, `INET_ECN_decapsulate`).
//!
//! A "dsfield" is the IPv4 TOS byte or the IPv6 traffic class: DSCP in
//! its high six bits, ECN in its low two.

/// ECN codepoints (RFC 3168 §5).
pub const NOT_ECT: u8 = 0;
pub const ECT_1: u8 = 1;
pub const ECT_0: u8 = 2;
pub const CE: u8 = 3;
/// The ECN bits of a dsfield.
pub const ECN_MASK: u8 = 3;

/// The dsfield of an IP header whose first two bytes are `b`: IPv4's TOS
/// byte, or IPv6's traffic class (across the two).
#[inline(always)]
pub const fn dsfield(ipv4: bool, b: [u8; 2]) -> u8 {
    if ipv4 {
        b[1]
    } else {
        (b[0] << 4) | (b[1] >> 4)
    }
}

/// A VNI's outer TOS setting (`VniInfo::tos`): the fixed TOS byte in the
/// low eight bits, or this bit: copy the inner DSCP.
pub const TOS_INHERIT: u32 = 0x100;

/// The outer dsfield of a frame whose inner packet has dsfield `inner`
/// (`None`: not IP), under the VNI's TOS setting `setting`: DSCP fixed or
/// inherited (0 for a non-IP frame), ECN copied from the inner packet but
/// CE, which becomes ECT(0) (RFC 6040 §4.1, normal mode: a congestion mark
/// is never created by encapsulation).
#[inline(always)]
pub const fn outer_dsfield(setting: u32, inner: Option<u8>) -> u8 {
    let dscp = if setting & TOS_INHERIT != 0 {
        match inner {
            Some(ds) => ds & !ECN_MASK,
            None => 0,
        }
    } else {
        setting as u8 & !ECN_MASK
    };
    let ecn = match inner {
        Some(ds) if ds & ECN_MASK == CE => ECT_0,
        Some(ds) => ds & ECN_MASK,
        None => NOT_ECT,
    };
    dscp | ecn
}

/// What decapsulation does with the inner packet's ECN (RFC 6040 §4.2, as
/// the kernel's `INET_ECN_decapsulate`: only CE is propagated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decap {
    /// Left as it is.
    Keep,
    /// Marked CE: the outer header carried CE over an ECN-capable packet.
    MarkCe,
    /// Dropped: CE over a packet that is not ECN-capable (the congestion
    /// signal cannot be passed on, RFC 6040 §4.2).
    Drop,
}

/// The decision for an outer dsfield `outer` over an inner packet with
/// dsfield `inner` (`None`: not IP, left alone).
#[inline(always)]
pub const fn decap(outer: u8, inner: Option<u8>) -> Decap {
    match inner {
        Some(ds) if outer & ECN_MASK == CE => match ds & ECN_MASK {
            NOT_ECT => Decap::Drop,
            CE => Decap::Keep,
            _ => Decap::MarkCe,
        },
        _ => Decap::Keep,
    }
}

/// An IPv4 header checksum after one of its 16-bit words (network order
/// values, as numbers) changed from `old` to `new` (RFC 1624 eqn. 3).
#[inline(always)]
pub const fn checksum_update(check: u16, old: u16, new: u16) -> u16 {
    let sum = (!check) as u32 + (!old) as u32 + new as u32;
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encapsulation_copies_ecn_but_never_ce() {
        // TOS 0xba: DSCP 46 (EF), ECT(0).
        assert_eq!(outer_dsfield(TOS_INHERIT, Some(0xba)), 0xba);
        assert_eq!(outer_dsfield(0, Some(0xba)), ECT_0);
        assert_eq!(outer_dsfield(0x20, Some(0xb9)), 0x20 | ECT_1);
        assert_eq!(outer_dsfield(TOS_INHERIT, Some(0xbb)), 0xb8 | ECT_0);
        assert_eq!(outer_dsfield(0x20, Some(0x00)), 0x20);
        // Not IP: fixed DSCP, Not-ECT; inherit gives 0.
        assert_eq!(outer_dsfield(0x20, None), 0x20);
        assert_eq!(outer_dsfield(TOS_INHERIT, None), 0);
        // A fixed TOS's own ECN bits never leak out.
        assert_eq!(outer_dsfield(0x23, Some(0)), 0x20);
    }

    #[test]
    fn decapsulation_passes_ce_on_or_drops() {
        for inner in [ECT_0, ECT_1] {
            assert_eq!(decap(CE, Some(inner)), Decap::MarkCe);
            assert_eq!(decap(ECT_0, Some(inner)), Decap::Keep);
        }
        assert_eq!(decap(CE, Some(NOT_ECT)), Decap::Drop);
        assert_eq!(decap(CE | 0xb8, Some(0xb8 | CE)), Decap::Keep);
        assert_eq!(decap(ECT_1, Some(NOT_ECT)), Decap::Keep);
        assert_eq!(decap(CE, None), Decap::Keep);
    }

    #[test]
    fn checksum_update_matches_a_full_recomputation() {
        // 20-byte IPv4 header, TOS ECT(0) -> CE.
        let mut h: [u16; 10] = [
            0x4502, 0x0054, 0x1c46, 0x4000, 0x4001, 0, 0xc613, 0x0001, 0xc613, 0x0002,
        ];
        let full = |h: &[u16; 10]| {
            let s: u32 = h.iter().map(|w| u32::from(*w)).sum();
            crate::vxlan::fold_checksum(s)
        };
        h[5] = full(&h);
        let updated = checksum_update(h[5], 0x4502, 0x4503);
        h[0] = 0x4503;
        h[5] = 0;
        assert_eq!(updated, full(&h));
    }
}
