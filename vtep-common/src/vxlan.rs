//! VXLAN header building and the inner-flow hash (RFC 7348).
//!
//! Pure functions over plain values: the kernel programs call them with
//! fields they have read from the packet, the tests call them directly.
//! Everything returned is in on-wire byte order.

use crate::{
    addr::Addr,
    consts::{
        ENCAP_LEN, ENCAP6_LEN, ETH_P_IP, ETH_P_IPV6, IPPROTO_UDP, IPV4_HLEN, SRC_PORT_MIN,
        UDP_HLEN, VNI_MAX, VXLAN_HLEN,
    },
};

/// The I flag: "MUST be set to 1 for a valid VXLAN Network ID" (RFC 7348 §5).
pub const VXLAN_FLAG_I: u8 = 0x08;

/// The inner fields that identify a flow for the outer source port.
///
/// Non-IP frames leave the IP fields zero; IP fragments and protocols other
/// than TCP and UDP leave `ports` zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    /// Inner destination then source MAC: their 12 on-wire bytes as three
    /// native words ([`mac_words`]).
    pub macs: [u32; 3],
    /// Inner IPv4 source (on-wire bytes), an inner IPv6 source folded by
    /// [`fold_addr`], or 0.
    pub saddr: u32,
    /// Inner destination, as `saddr`.
    pub daddr: u32,
    /// Inner L4 source and destination ports, as the 4 on-wire bytes, or 0.
    pub ports: u32,
    /// Inner IP protocol (IPv6: next header) or 0.
    pub proto: u32,
}

/// The 12 bytes of an Ethernet header's MACs (`b[..12]`) as
/// [`FlowKey::macs`] holds them.
pub fn mac_words(b: &[u8]) -> [u32; 3] {
    let w = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    [w(0), w(4), w(8)]
}

/// An inner IPv6 address as one flow-key word: its four words XORed
/// (on-wire bytes). Flows differing in one address keep differing.
#[inline(always)]
pub fn fold_addr(a: &[u8; 16]) -> u32 {
    let w = |i: usize| u32::from_ne_bytes([a[i], a[i + 1], a[i + 2], a[i + 3]]);
    w(0) ^ w(4) ^ w(8) ^ w(12)
}

/// The outer IPv6 flow label for a flow hash (RFC 6438: the same label for
/// every packet of a flow, 20 bits).
#[inline(always)]
pub fn flow_label(hash: u32) -> u32 {
    hash & 0x000f_ffff
}

/// A well-mixed 32-bit hash of the inner flow, so that distinct flows get
/// distinct outer source ports and spread over the underlay's ECMP paths.
///
/// The key's seven words are paired into three 64-bit words, each
/// multiplied by an odd constant of its own (a bijection: no two values
/// of one word collide), the products folded together with the protocol
/// and mixed by MurmurHash3's 64-bit finaliser (`fmix64`), which carries
/// every input bit to every output bit. The three multiplies do not wait
/// on each other, where a word-by-word hash (MurmurHash3 x86_32, tried) is
/// one chain of dependent multiplies: some 100 cycles a frame, the largest
/// single cost of the encap program in a profile.
#[inline(always)]
pub fn flow_hash(k: &FlowKey) -> u32 {
    let m = &k.macs;
    let pair = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    let a = pair(m[0], m[1]).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let b = pair(m[2], k.saddr).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    let c = pair(k.daddr, k.ports).wrapping_mul(0x1656_67b1_9e37_79f9);
    let mut h = a ^ b.rotate_left(21) ^ c.rotate_left(42) ^ u64::from(k.proto);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h as u32
}

/// Outer UDP source port for a flow hash: uniform over 49152-65535
/// (RFC 7348 §5, "Outer UDP Header").
#[inline(always)]
pub fn src_port(hash: u32) -> u16 {
    // Multiply-shift maps the 32-bit hash onto the 16384 ports without a
    // division and without favouring the low ports.
    SRC_PORT_MIN + ((u64::from(hash) * 16384) >> 32) as u16
}

/// Folds a one's-complement sum of 16-bit words into the RFC 791 header
/// checksum (already complemented).
#[inline(always)]
pub fn fold_checksum(sum: u32) -> u16 {
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}

/// Whether an IPv4 header whose 32-bit words add up to `sum` (at most 15
/// words, read in either byte order) carries a right checksum: the
/// one's-complement sum of all its 16-bit words, the checksum's included,
/// is 0xffff (RFC 791 §3.1; the sum is the same in either byte order,
/// RFC 1071 §2(B)). A host MUST verify it and silently discard a
/// datagram whose checksum is bad (RFC 1122 §3.2.1.2).
#[inline(always)]
pub fn ipv4_header_ok(sum: u64) -> bool {
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    fold_checksum(sum as u32) == 0
}

/// What goes into the outer headers of one encapsulated frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outer {
    /// Outer destination MAC (the next hop towards the remote VTEP) then
    /// source MAC (our underlay interface): their 12 on-wire bytes as
    /// three native words ([`mac_words`], [`outer_macs`]).
    pub macs: [u32; 3],
    /// Our underlay address (the family of both addresses picks the
    /// builder: [`outer_headers`] or [`outer_headers_v6`]).
    pub src_ip: Addr,
    /// The remote VTEP.
    pub dst_ip: Addr,
    /// Outer UDP destination port (host order), normally 4789.
    pub dst_port: u16,
    /// The VNI (24 bits).
    pub vni: u32,
    /// Outer IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// Set DF in the outer IPv4 header.
    pub df: bool,
    /// Outer IPv4 identification (host order).
    pub ip_id: u16,
    /// The inner flow's hash: the outer UDP source port ([`src_port`])
    /// and IPv6 flow label ([`flow_label`]) are made from it. (One field
    /// for both: the encap program builds this struct on a stack that
    /// has no byte to spare.)
    pub hash: u32,
    /// Outer IPv4 TOS or IPv6 traffic class (DSCP and ECN), see
    /// [`crate::ecn::outer_dsfield`].
    pub tos: u8,
}

/// [`Outer::macs`] for a destination and a source MAC.
pub fn outer_macs(dst: [u8; 6], src: [u8; 6]) -> [u32; 3] {
    let mut b = [0; 12];
    b[..6].copy_from_slice(&dst);
    b[6..].copy_from_slice(&src);
    mac_words(&b)
}

/// The outer Ethernet, IPv4, UDP and VXLAN headers (50 bytes) as 16-bit
/// words whose in-memory bytes are the on-wire bytes.
pub type OuterWords = [u16; ENCAP_LEN / 2];

/// The outer Ethernet, IPv6, UDP and VXLAN headers (70 bytes), as
/// [`OuterWords`] are for IPv4.
pub type Outer6Words = [u16; ENCAP6_LEN / 2];

/// Emitted headers' bytes as 16-bit words whose in-memory bytes are
/// theirs.
fn words<const W: usize>(b: &[u8]) -> [u16; W] {
    let mut out = [0; W];
    for (w, c) in out.iter_mut().zip(b.chunks(2)) {
        *w = u16::from_ne_bytes([c[0], c[1]]);
    }
    out
}

/// The outer headers for an inner frame of `inner_len` bytes (inner
/// Ethernet header included), as [`emit_outer`] writes them.
pub fn outer_headers(o: &Outer, inner_len: u32) -> OuterWords {
    let mut b = [0; ENCAP_LEN];
    emit_outer(o, inner_len, &mut |at, v| {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    });
    words(&b)
}

/// The outer headers over an IPv6 underlay, as [`emit_outer_v6`] writes
/// them.
pub fn outer_headers_v6(o: &Outer, inner_len: u32) -> Outer6Words {
    let mut b = [0; ENCAP6_LEN];
    emit_outer_v6(o, inner_len, &mut |at, v| {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    });
    words(&b)
}

/// A 16-bit field's on-wire (big-endian) bytes as the low lane of a word
/// whose in-memory (little-endian) bytes are on-wire bytes.
#[inline(always)]
fn be16(v: u16) -> u64 {
    u64::from(u16::from_le_bytes(v.to_be_bytes()))
}

/// Four on-wire bytes held as a native word (addresses, [`Outer::macs`])
/// as the low lane of such a word.
#[inline(always)]
fn bytes4(w: u32) -> u64 {
    u64::from(u32::from_le_bytes(w.to_ne_bytes()))
}

/// The outer Ethernet header's first 12 bytes and the EtherType, then
/// the first two bytes after it (`next`, a lane): the words at 0 and 8.
#[inline(always)]
fn eth_words(o: &Outer, ether_type: u16, next: u64) -> (u64, u64) {
    let m = &o.macs;
    (
        bytes4(m[0]) | bytes4(m[1]) << 32,
        bytes4(m[2]) | be16(ether_type) << 32 | next << 48,
    )
}

/// The UDP header (8 bytes; checksum zero, RFC 7348 §5: "SHOULD be
/// transmitted as zero") and the VXLAN header (I flag set, reserved bits
/// zero, the VNI).
#[inline(always)]
fn udp_vxlan_words(o: &Outer, udp_len: u16) -> (u64, u64) {
    let vni = u64::from(o.vni & VNI_MAX);
    let sport = be16(src_port(o.hash));
    (
        sport | be16(o.dst_port) << 16 | be16(udp_len) << 32,
        u64::from(VXLAN_FLAG_I)
            | (vni >> 16 & 0xff) << 32
            | (vni >> 8 & 0xff) << 40
            | (vni & 0xff) << 48,
    )
}

/// Emits the outer Ethernet, IPv4, UDP and VXLAN headers (50 bytes) for an
/// inner frame of `inner_len` bytes as `put(offset, word)`: 8-byte words
/// whose in-memory (little-endian) bytes are the on-wire bytes, at byte
/// offsets 0, 8, 16, 24, 32, 34 and 42 (the words at 32 and 34 overlap,
/// each byte of the overlap written the same by both). Seven stores: the
/// kernel program writes them straight into the packet, with no block on
/// its stack (no memset or memcpy either, which cost the BPF verifier a
/// loop each); written as 25 two-byte words, put together a byte at a
/// time, the encap program took some 5 ns more a frame (94 against 89 ns,
/// `cargo xtask bench --only encap`, Intel Xeon).
///
/// RFC 7348 §5: I flag set, reserved bits zero; UDP checksum zero ("SHOULD
/// be transmitted as zero"). Lengths saturate at 65535: a GSO super-packet
/// gets correct lengths per segment from the kernel's segmentation.
#[inline(always)]
pub fn emit_outer(o: &Outer, inner_len: u32, put: &mut impl FnMut(usize, u64)) {
    let udp_len = sat16(inner_len + (UDP_HLEN + VXLAN_HLEN) as u32);
    let ip_len = sat16(u32::from(udp_len) + IPV4_HLEN as u32);
    let (w0, w8) = eth_words(o, ETH_P_IP, 0x45 | u64::from(o.tos) << 8);
    let w16 = be16(ip_len)
        | be16(o.ip_id) << 16
        | u64::from(if o.df { 0x40u8 } else { 0 }) << 32
        | u64::from(o.ttl) << 48
        | u64::from(IPPROTO_UDP) << 56;
    let (src, dst) = (bytes4(o.src_ip.v4_word()), bytes4(o.dst_ip.v4_word()));
    // Bytes 24..32: the checksum (zero while summing), the source, the
    // destination's first two bytes.
    let w24 = src << 16 | (dst & 0xffff) << 48;
    let (udp, vxlan) = udp_vxlan_words(o, udp_len);
    // RFC 791 §3.1 header checksum over bytes 14..34, as a one's-complement
    // sum of little-endian lanes: the same sum byte-swapped, and stored
    // little-endian it is the on-wire checksum (RFC 1071 §2(B)).
    let sum = (w8 >> 48)
        + (w16 & 0xffff_ffff)
        + (w16 >> 32)
        + (w24 >> 16 & 0xffff_ffff)
        + (w24 >> 48)
        + (dst >> 16);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    let sum = (sum & 0xffff_ffff) + (sum >> 32);
    put(0, w0);
    put(8, w8);
    put(16, w16);
    put(24, w24 | u64::from(fold_checksum(sum as u32)));
    put(32, dst >> 16 | udp << 16);
    put(34, udp);
    put(42, vxlan);
}

/// Emits the outer headers over an IPv6 underlay (70 bytes) as
/// [`emit_outer`] does, at byte offsets 0, 8, ..., 48, then 54 (UDP,
/// overlapping the word at 48 as there) and 62 (VXLAN): traffic class
/// `o.tos`, the flow label of `o`, hop limit `o.ttl`, no extension
/// headers. The UDP checksum is zero (RFC 6935 §5
/// allows it for tunnel protocols; RFC 6936 §5: receivers must be
/// configured for it, as the kernel's vxlan is with `udp6zerocsumrx`).
#[inline(always)]
pub fn emit_outer_v6(o: &Outer, inner_len: u32, put: &mut impl FnMut(usize, u64)) {
    let udp_len = sat16(inner_len + (UDP_HLEN + VXLAN_HLEN) as u32);
    let label = flow_label(o.hash);
    // Version, traffic class and the label's top 4 bits (RFC 8200 §3).
    let first = 0x6000 | (u16::from(o.tos) << 4) | (label >> 16) as u16;
    let (w0, w8) = eth_words(o, ETH_P_IPV6, be16(first));
    let (s, d) = (&o.src_ip.w, &o.dst_ip.w);
    // Bytes 16..24: the label's low 16 bits, the payload length, next
    // header, hop limit, the source's first two bytes.
    let w16 = be16(label as u16)
        | be16(udp_len) << 16
        | u64::from(IPPROTO_UDP) << 32
        | u64::from(o.ttl) << 40
        | (bytes4(s[0]) & 0xffff) << 48;
    // Eight address bytes from 2 bytes into word `a` on: its last two,
    // `b`, the first two of `c`.
    let mid =
        |a: u32, b: u32, c: u32| bytes4(a) >> 16 | bytes4(b) << 16 | (bytes4(c) & 0xffff) << 48;
    let (udp, vxlan) = udp_vxlan_words(o, udp_len);
    put(0, w0);
    put(8, w8);
    put(16, w16);
    put(24, mid(s[0], s[1], s[2]));
    put(32, mid(s[2], s[3], d[0]));
    put(40, mid(d[0], d[1], d[2]));
    put(
        48,
        bytes4(d[2]) >> 16 | bytes4(d[3]) << 16 | (udp & 0xffff) << 48,
    );
    put(54, udp);
    put(62, vxlan);
}

/// The outer headers of either family (host-side: the models and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OuterHeaders {
    V4(OuterWords),
    V6(Outer6Words),
}

impl OuterHeaders {
    /// The headers for the family of `o.dst_ip`.
    pub fn new(o: &Outer, inner_len: u32) -> Self {
        if o.dst_ip.is_v4() {
            OuterHeaders::V4(outer_headers(o, inner_len))
        } else {
            OuterHeaders::V6(outer_headers_v6(o, inner_len))
        }
    }

    /// The same headers with the VXLAN header's first word `word` (the
    /// flags and, with VXLAN-GBP, the group: `policy::gbp_word`).
    pub fn with_vxlan_word(mut self, word: [u8; 4]) -> Self {
        let at = self.words().len() - VXLAN_HLEN / 2;
        let w = match &mut self {
            OuterHeaders::V4(w) => &mut w[..],
            OuterHeaders::V6(w) => &mut w[..],
        };
        w[at] = u16::from_ne_bytes([word[0], word[1]]);
        w[at + 1] = u16::from_ne_bytes([word[2], word[3]]);
        self
    }

    /// The words, as on the wire.
    pub fn words(&self) -> &[u16] {
        match self {
            OuterHeaders::V4(w) => w,
            OuterHeaders::V6(w) => w,
        }
    }
}

#[inline(always)]
fn sat16(v: u32) -> u16 {
    if v > 0xffff { 0xffff } else { v as u16 }
}

/// RFC 1071 check (for the tests of every builder here): bytes with a
/// correct checksum sum to 0xffff.
#[cfg(test)]
pub(crate) fn sums_to_ffff(b: &[u8]) -> bool {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{SRC_PORT_MAX, VXLAN_PORT};

    fn bytes(words: &OuterWords) -> std::vec::Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    fn sample() -> Outer {
        Outer {
            macs: outer_macs([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]),
            src_ip: Addr::v4(u32::from_ne_bytes([198, 18, 1, 1])),
            dst_ip: Addr::v4(u32::from_ne_bytes([198, 18, 2, 1])),
            dst_port: VXLAN_PORT,
            vni: 0x12_3456,
            ttl: 64,
            df: true,
            ip_id: 0,
            // Source port 50000.
            hash: 0x0d40_0000,
            tos: 0,
        }
    }

    #[test]
    fn the_outer_dsfield_is_written_in_both_families() {
        let o = Outer {
            tos: 0xba,
            ..sample()
        };
        let b = bytes(&outer_headers(&o, 100));
        assert_eq!(b[15], 0xba);
        assert!(sums_to_ffff(&b[14..34]));
        let v6 = Outer {
            src_ip: Addr::v6([0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            dst_ip: Addr::v6([0x20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]),
            hash: 0xf_ffff,
            ..o
        };
        let w: std::vec::Vec<u8> = outer_headers_v6(&v6, 100)
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        // Version 6, traffic class 0xba, flow label all ones.
        assert_eq!(&w[14..18], &[0x6b, 0xaf, 0xff, 0xff]);
    }

    #[test]
    fn checksum_matches_known_header() {
        // A well-known example header whose checksum is 0xb861.
        let o = Outer {
            src_ip: Addr::v4(u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0x01])),
            dst_ip: Addr::v4(u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0xc7])),
            ttl: 0x40,
            df: true,
            ..Outer::default()
        };
        // total length 0x73 = 115 = 20 + 8 + 8 + 79
        let h = bytes(&outer_headers(&o, 79));
        assert_eq!(
            &h[14..34],
            &[
                0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
                0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
            ]
        );
    }

    /// The sum [`ipv4_header_ok`] takes: `b`'s 32-bit words, native.
    fn word_sum(b: &[u8]) -> u64 {
        b.chunks(4)
            .map(|w| u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]])))
            .sum()
    }

    #[test]
    fn ipv4_header_ok_is_rfc1071s_check() {
        let h = bytes(&outer_headers(&sample(), 98));
        assert!(ipv4_header_ok(word_sum(&h[14..34])));
        // Every single bit flipped is caught.
        for bit in 0..160 {
            let mut b = h[14..34].to_vec();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(!ipv4_header_ok(word_sum(&b)), "bit {bit}");
        }
        // Agrees with the 16-bit sum on arbitrary headers, options
        // included (up to 60 bytes), all-ones words among them.
        // Half of them given their right checksum.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..2000 {
            let len = 20 + 4 * (n % 11);
            let mut b: std::vec::Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if n % 3 == 0 { 0xff } else { x as u8 }
                })
                .collect();
            if n % 2 == 0 {
                b[10..12].fill(0);
                let sum = b
                    .chunks(2)
                    .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                    .sum();
                b[10..12].copy_from_slice(&fold_checksum(sum).to_be_bytes());
                assert!(ipv4_header_ok(word_sum(&b)), "{b:?}");
            }
            assert_eq!(ipv4_header_ok(word_sum(&b)), sums_to_ffff(&b), "{b:?}");
        }
    }

    #[test]
    fn outer_headers_follow_rfc7348() {
        let o = sample();
        let h = bytes(&outer_headers(&o, 98));
        assert_eq!(h.len(), ENCAP_LEN);
        assert_eq!(&h[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&h[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(&h[12..14], &[0x08, 0x00]);
        assert_eq!(h[14], 0x45);
        assert_eq!(u16::from_be_bytes([h[16], h[17]]), 98 + 36);
        assert_eq!(h[20], 0x40, "DF");
        assert_eq!(h[22], 64);
        assert_eq!(h[23], 17);
        assert!(sums_to_ffff(&h[14..34]));
        assert_eq!(&h[26..30], &[198, 18, 1, 1]);
        assert_eq!(&h[30..34], &[198, 18, 2, 1]);
        assert_eq!(u16::from_be_bytes([h[34], h[35]]), 50000);
        assert_eq!(u16::from_be_bytes([h[36], h[37]]), 4789);
        assert_eq!(u16::from_be_bytes([h[38], h[39]]), 98 + 16);
        assert_eq!(&h[40..42], &[0, 0], "UDP checksum zero");
        assert_eq!(&h[42..50], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    }

    #[test]
    fn checksum_holds_for_many_headers() {
        for i in 0..5000u32 {
            let o = Outer {
                dst_ip: Addr::v4(i.wrapping_mul(0x9e37_79b9)),
                src_ip: Addr::v4(i),
                ip_id: i as u16,
                ttl: i as u8,
                df: i % 2 == 0,
                ..sample()
            };
            let h = bytes(&outer_headers(&o, i * 13));
            assert!(sums_to_ffff(&h[14..34]), "{o:?}");
        }
    }

    #[test]
    fn ipv6_outer_headers_follow_rfc7348_and_rfc8200() {
        let o = Outer {
            src_ip: Addr::v6([0x20, 1, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]),
            dst_ip: Addr::v6([0x20, 1, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]),
            hash: 0xfab_cdef,
            ..sample()
        };
        let h: std::vec::Vec<u8> = outer_headers_v6(&o, 98)
            .iter()
            .flat_map(|w| w.to_ne_bytes())
            .collect();
        assert_eq!(h.len(), ENCAP6_LEN);
        assert_eq!(&h[0..12], &[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
        assert_eq!(&h[12..14], &[0x86, 0xdd]);
        // Version 6, traffic class 0, the hash's low 20 bits as label.
        assert_eq!(&h[14..18], &[0x60, 0x0b, 0xcd, 0xef]);
        assert_eq!(
            u16::from_be_bytes([h[18], h[19]]),
            98 + 16,
            "payload length"
        );
        assert_eq!((h[20], h[21]), (17, 64), "next header UDP, hop limit");
        assert_eq!(&h[22..38], &o.src_ip.octets());
        assert_eq!(&h[38..54], &o.dst_ip.octets());
        assert_eq!(u16::from_be_bytes([h[54], h[55]]), src_port(o.hash));
        assert_eq!(u16::from_be_bytes([h[56], h[57]]), 4789);
        assert_eq!(u16::from_be_bytes([h[58], h[59]]), 98 + 16);
        assert_eq!(&h[60..62], &[0, 0], "UDP checksum zero");
        assert_eq!(&h[62..70], &[0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
    }

    #[test]
    fn df_clear_and_lengths_saturate() {
        let o = Outer {
            df: false,
            ..Outer::default()
        };
        let h = bytes(&outer_headers(&o, 70_000));
        assert_eq!(h[20], 0);
        assert_eq!(&h[16..18], &[0xff, 0xff]);
        assert_eq!(&h[38..40], &[0xff, 0xff]);
    }

    #[test]
    fn source_ports_stay_in_range_and_spread() {
        let mut seen = std::collections::BTreeSet::new();
        for p in 0..2000u32 {
            let k = FlowKey {
                macs: mac_words(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]),
                saddr: u32::from_ne_bytes([198, 19, 0, 1]),
                daddr: u32::from_ne_bytes([198, 19, 0, 2]),
                ports: (p << 16) | 5201,
                proto: 6,
            };
            let port = src_port(flow_hash(&k));
            assert!((SRC_PORT_MIN..=SRC_PORT_MAX).contains(&port));
            seen.insert(port);
        }
        // 2000 flows into 16384 ports: collisions are expected but rare.
        assert!(seen.len() > 1850, "only {} distinct ports", seen.len());
        assert_eq!(src_port(0), SRC_PORT_MIN);
        assert_eq!(src_port(u32::MAX), SRC_PORT_MAX);
    }

    #[test]
    fn every_input_bit_moves_the_hash_and_its_port() {
        let base = FlowKey {
            macs: mac_words(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2]),
            saddr: u32::from_ne_bytes([198, 19, 0, 1]),
            daddr: u32::from_ne_bytes([198, 19, 0, 2]),
            ports: u32::from_ne_bytes([0x9c, 0x40, 0x14, 0x51]),
            proto: 6,
        };
        let h = flow_hash(&base);
        let (mut ports_moved, mut flips) = (0, 0);
        for bit in 0..32 {
            let x = 1u32 << bit;
            let mut flipped = [base; 7];
            flipped[0].macs[0] ^= x;
            flipped[1].macs[1] ^= x;
            flipped[2].macs[2] ^= x;
            flipped[3].saddr ^= x;
            flipped[4].daddr ^= x;
            flipped[5].ports ^= x;
            flipped[6].proto ^= x;
            for f in flipped {
                let g = flow_hash(&f);
                // About half the output bits change for any one input bit.
                let changed = (g ^ h).count_ones();
                assert!((6..=26).contains(&changed), "{f:?}: {changed} bits");
                flips += 1;
                ports_moved += usize::from(src_port(g) != src_port(h));
            }
        }
        assert!(ports_moved >= flips - 2, "{ports_moved} of {flips}");
    }

    #[test]
    fn sequential_addresses_and_macs_spread() {
        let mut ports = std::collections::BTreeSet::new();
        let mut labels = std::collections::BTreeSet::new();
        for i in 0..2000u32 {
            let k = FlowKey {
                macs: mac_words(&[2, 0, 0, 0, (i >> 8) as u8, i as u8, 2, 0, 0, 0, 0, 2]),
                saddr: u32::from_ne_bytes([198, 19, (i >> 8) as u8, i as u8]),
                daddr: u32::from_ne_bytes([198, 19, 255, 1]),
                ports: 0,
                proto: 17,
            };
            let h = flow_hash(&k);
            ports.insert(src_port(h));
            labels.insert(flow_label(h));
        }
        assert!(ports.len() > 1850, "only {} distinct ports", ports.len());
        assert!(labels.len() > 1990, "only {} distinct labels", labels.len());
    }

    #[test]
    fn hash_depends_on_every_field() {
        let base = FlowKey {
            macs: [1; 3],
            saddr: 2,
            daddr: 3,
            ports: 4,
            proto: 5,
        };
        let h = flow_hash(&base);
        let variants = [
            FlowKey {
                macs: [9; 3],
                ..base
            },
            FlowKey { saddr: 7, ..base },
            FlowKey { daddr: 7, ..base },
            FlowKey { ports: 7, ..base },
            FlowKey { proto: 7, ..base },
        ];
        for v in variants {
            assert_ne!(flow_hash(&v), h, "{v:?}");
        }
    }
}
