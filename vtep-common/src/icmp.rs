//! The answers to a frame too large for the underlay once encapsulated:
//! ICMP "fragmentation needed" for IPv4 (RFC 792 type 3 code 4, with the
//! next-hop MTU of RFC 1191 §4) and ICMPv6 Packet Too Big for IPv6 (RFC
//! 4443 §3.2, for path MTU discovery, RFC 8201), built the way
//! `vxlan::outer_headers` is: as 16-bit words whose bytes are on-wire
//! order, no memset or memcpy.

use crate::{
    consts::{IPPROTO_ICMPV6, IPV4_HLEN, IPV6_HLEN},
    vxlan::fold_checksum,
};

/// What "fragmentation needed" quotes of the packet that invoked it: its
/// IPv4 header (20 bytes: one with options is not answered) and the 8
/// bytes after it (RFC 792).
pub const FRAG_QUOTE: usize = IPV4_HLEN + 8;
/// IPv4 header + ICMP header + the quoted IPv4 header and 8 bytes.
pub const FRAG_NEEDED_LEN: usize = IPV4_HLEN + 8 + FRAG_QUOTE;

/// The share of a quoted word `w` in the ICMP checksum of a
/// "fragmentation needed" (the quote is in the message once). Summed over
/// the quote, word by word as it is copied.
#[inline(always)]
pub fn frag_quote_sum(w: u16) -> u32 {
    u32::from(u16::from_be(w))
}

/// Emits the IPv4 and ICMP headers (14 words, the first 28 bytes) of the
/// "fragmentation needed, next-hop MTU `mtu`" answering the IPv4 packet
/// whose first [`FRAG_QUOTE`] bytes are the words `q(0..14)` and whose
/// [`frag_quote_sum`]s add up to `quoted`, through `put(word index,
/// word)`: from its destination (the VTEP answers for the path, as an
/// unnumbered router would) to its source, TTL 64, both checksums. The
/// quoted bytes follow these words; the caller puts them there.
#[inline(always)]
pub fn emit_frag_needed(
    q: impl Fn(usize) -> u16,
    quoted: u32,
    mtu: u16,
    put: &mut impl FnMut(usize, u16),
) {
    let v = |x: u16| u32::from(u16::from_be(x));
    let (vers, total, ttl_proto) = (
        u16::from_ne_bytes([0x45, 0xc0]),
        (FRAG_NEEDED_LEN as u16).to_be(),
        u16::from_ne_bytes([64, 1]),
    );
    // Source: the original destination (words 8, 9); destination: the
    // original source (words 6, 7).
    let (s0, s1, d0, d1) = (q(8), q(9), q(6), q(7));
    let isum = v(vers) + v(total) + v(ttl_proto) + v(s0) + v(s1) + v(d0) + v(d1);
    let (type_code, mtu_be) = (u16::from_ne_bytes([3, 4]), mtu.to_be());
    let icmp_sum = v(type_code) + v(mtu_be) + quoted;
    put(0, vers);
    put(1, total);
    put(2, 0);
    put(3, 0);
    put(4, ttl_proto);
    put(5, fold_checksum(isum).to_be());
    put(6, s0);
    put(7, s1);
    put(8, d0);
    put(9, d1);
    put(10, type_code);
    put(11, fold_checksum(icmp_sum).to_be());
    put(12, 0);
    put(13, mtu_be);
}

/// The whole "fragmentation needed" for `quoted` (host side: the models
/// and tests), as [`emit_frag_needed`] and the quote make it.
pub fn frag_needed(quoted: &[u8; FRAG_QUOTE], mtu: u16) -> [u16; FRAG_NEEDED_LEN / 2] {
    let q = |i: usize| u16::from_ne_bytes([quoted[2 * i], quoted[2 * i + 1]]);
    let sum = (0..FRAG_QUOTE / 2).map(|i| frag_quote_sum(q(i))).sum();
    let mut out = [0u16; FRAG_NEEDED_LEN / 2];
    emit_frag_needed(q, sum, mtu, &mut |i, w| out[i] = w);
    for i in 0..FRAG_QUOTE / 2 {
        out[14 + i] = q(i);
    }
    out
}

/// What a Packet Too Big quotes of the packet that invoked it: its IPv6
/// header and the 8 bytes after it (the ports: enough for the sender's
/// stack to find the flow whose path MTU shrinks).
pub const PTB_QUOTE: usize = IPV6_HLEN + 8;
/// A Packet Too Big message: IPv6 header, ICMPv6 header with the MTU, the
/// quoted packet.
pub const PACKET_TOO_BIG_LEN: usize = IPV6_HLEN + 8 + PTB_QUOTE;

/// Whether the IPv6 packet whose first [`PTB_QUOTE`] bytes are the words
/// `q(0..24)` may be answered with an ICMPv6 error (RFC 4443 §2.4 (e)):
/// not when its source is unspecified or multicast, nor when it is itself
/// an ICMPv6 error message (type below 128, with no extension headers
/// in between: the ones we quote).
#[inline(always)]
pub fn may_answer_v6(q: impl Fn(usize) -> u16) -> bool {
    let first = |i: usize| q(i).to_ne_bytes()[0];
    let unspecified = q(4) | q(5) | q(6) | q(7) | q(8) | q(9) | q(10) | q(11) == 0;
    let multicast = first(4) == 0xff;
    let icmp_error = first(3) == IPPROTO_ICMPV6 && first(20) < 128;
    !(unspecified || multicast || icmp_error)
}

/// The share of quoted word `i` (`w`) in a Packet Too Big's checksum:
/// the quoted packet is in the ICMPv6 message, and its two addresses
/// (words 4 to 19) are in the pseudo-header too, swapped (RFC 8200 §8.1).
/// Summed over the quote, word by word as it is copied.
#[inline(always)]
pub fn quote_sum(i: usize, w: u16) -> u32 {
    let weight = if (4..20).contains(&i) { 2 } else { 1 };
    weight * u32::from(u16::from_be(w))
}

/// Emits the IPv6 and ICMPv6 headers (24 words, the first 48 bytes of a
/// Packet Too Big) through `put(word index, word)`, answering the IPv6
/// packet whose first [`PTB_QUOTE`] bytes are the words `q(0..24)`, whose
/// [`quote_sum`]s add up to `quoted`: from its destination (as the
/// kernel's tunnels answer, for the path) to its source, hop limit 64,
/// "packet too big, MTU `mtu`", with the ICMPv6 checksum. The quoted
/// bytes follow these words in the message; the caller puts them there.
#[inline(always)]
pub fn emit_packet_too_big(
    q: impl Fn(usize) -> u16,
    quoted: u32,
    mtu: u32,
    put: &mut impl FnMut(usize, u16),
) {
    let icmp_len = (8 + PTB_QUOTE) as u32;
    let (type_code, mtu_hi, mtu_lo) = (
        u16::from_ne_bytes([2, 0]),
        ((mtu >> 16) as u16).to_be(),
        (mtu as u16).to_be(),
    );
    let v = |x: u16| u32::from(u16::from_be(x));
    // Pseudo-header length and next header, the ICMPv6 header, the quote.
    let sum = icmp_len + u32::from(IPPROTO_ICMPV6) + v(type_code) + v(mtu_hi) + v(mtu_lo) + quoted;
    put(0, u16::from_ne_bytes([0x60, 0]));
    put(1, 0);
    put(2, (icmp_len as u16).to_be());
    put(3, u16::from_ne_bytes([IPPROTO_ICMPV6, 64]));
    // Source: the original destination (words 12..20); destination: the
    // original source (words 4..12).
    for i in 0..8 {
        put(4 + i, q(12 + i));
        put(12 + i, q(4 + i));
    }
    put(20, type_code);
    put(21, fold_checksum(sum).to_be());
    put(22, mtu_hi);
    put(23, mtu_lo);
}

/// The whole Packet Too Big message for `quoted` (host side: the models
/// and tests), as [`emit_packet_too_big`] and the quote make it.
pub fn packet_too_big(quoted: &[u8; PTB_QUOTE], mtu: u32) -> [u16; PACKET_TOO_BIG_LEN / 2] {
    let q = |i: usize| u16::from_ne_bytes([quoted[2 * i], quoted[2 * i + 1]]);
    let sum = (0..PTB_QUOTE / 2).map(|i| quote_sum(i, q(i))).sum();
    let mut out = [0u16; PACKET_TOO_BIG_LEN / 2];
    emit_packet_too_big(q, sum, mtu, &mut |i, w| out[i] = w);
    for i in 0..PTB_QUOTE / 2 {
        out[24 + i] = q(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::sums_to_ffff;

    #[test]
    fn answers_the_sender_with_the_mtu() {
        let orig: [u8; 20] = [
            0x45, 0, 0x05, 0xdc, 0x12, 0x34, 0x40, 0, 64, 1, 0xab, 0xcd, 198, 19, 0, 1, 198, 19, 0,
            2,
        ];
        let l4 = [8, 0, 0x11, 0x22, 0, 1, 0, 1];
        let mut quoted = [0u8; FRAG_QUOTE];
        quoted[..20].copy_from_slice(&orig);
        quoted[20..].copy_from_slice(&l4);
        let words = frag_needed(&quoted, 1450);
        let b: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(b.len(), FRAG_NEEDED_LEN);
        assert_eq!(b[0], 0x45);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 56);
        assert_eq!(b[9], 1, "ICMP");
        assert_eq!(
            &b[12..16],
            &[198, 19, 0, 2],
            "from the original destination"
        );
        assert_eq!(&b[16..20], &[198, 19, 0, 1], "to the original source");
        assert!(sums_to_ffff(&b[..20]), "IPv4 header checksum");
        assert_eq!(
            &b[20..22],
            &[3, 4],
            "destination unreachable, fragmentation needed"
        );
        assert_eq!(u16::from_be_bytes([b[26], b[27]]), 1450);
        assert!(sums_to_ffff(&b[20..]), "ICMP checksum");
        assert_eq!(&b[28..48], &orig);
        assert_eq!(&b[48..56], &l4);
    }

    #[test]
    fn packet_too_big_follows_rfc4443() {
        let mut orig = [0u8; PTB_QUOTE];
        orig[0] = 0x60;
        orig[4..6].copy_from_slice(&1400u16.to_be_bytes());
        orig[6] = 6; // TCP
        orig[7] = 64;
        let a: [u8; 16] = [0x20, 1, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut b = a;
        b[15] = 2;
        orig[8..24].copy_from_slice(&a);
        orig[24..40].copy_from_slice(&b);
        orig[40..48].copy_from_slice(&[0xc3, 0x50, 0x14, 0x51, 1, 2, 3, 4]);
        let words = packet_too_big(&orig, 1430);
        let m: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(m.len(), PACKET_TOO_BIG_LEN);
        assert_eq!(m[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([m[4], m[5]]), 56, "payload length");
        assert_eq!((m[6], m[7]), (58, 64), "ICMPv6, hop limit 64");
        assert_eq!(&m[8..24], &b, "from the original destination");
        assert_eq!(&m[24..40], &a, "to the original source");
        assert_eq!((m[40], m[41]), (2, 0), "packet too big");
        assert_eq!(u32::from_be_bytes([m[44], m[45], m[46], m[47]]), 1430);
        assert_eq!(&m[48..], &orig, "the quoted packet");
        // The checksum with the pseudo-header (RFC 8200 §8.1) sums to
        // 0xffff.
        let mut pseudo = std::vec::Vec::new();
        pseudo.extend_from_slice(&m[8..40]);
        pseudo.extend_from_slice(&[0, 0, 0, 56, 0, 0, 0, 58]);
        pseudo.extend_from_slice(&m[40..]);
        assert!(sums_to_ffff(&pseudo), "ICMPv6 checksum");
        let q = |o: &[u8; PTB_QUOTE]| {
            let o = *o;
            move |i: usize| u16::from_ne_bytes([o[2 * i], o[2 * i + 1]])
        };
        assert!(may_answer_v6(q(&orig)));
        let mut error = orig;
        error[6] = 58;
        error[40] = 2;
        assert!(!may_answer_v6(q(&error)), "never an error for an error");
        error[40] = 128;
        assert!(may_answer_v6(q(&error)), "an echo request is answered");
        let mut multicast = orig;
        multicast[8] = 0xff;
        assert!(!may_answer_v6(q(&multicast)));
        let mut unspecified = orig;
        unspecified[8..24].fill(0);
        assert!(!may_answer_v6(q(&unspecified)));
    }
}
