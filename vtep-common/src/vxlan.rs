//! VXLAN header building and the inner-flow hash (RFC 7348).
//!
//! Pure functions over plain values: the kernel programs call them with
//! fields they have read from the packet, the tests call them directly.
//! Everything returned is in on-wire byte order.

use crate::consts::{
    ENCAP_LEN, ETH_P_IP, IPPROTO_UDP, IPV4_HLEN, SRC_PORT_MIN, UDP_HLEN, VNI_MAX, VXLAN_HLEN,
};

/// The I flag: "MUST be set to 1 for a valid VXLAN Network ID" (RFC 7348 §5).
pub const VXLAN_FLAG_I: u8 = 0x08;

/// The inner fields that identify a flow for the outer source port.
///
/// Non-IP frames leave the IP fields zero; IP fragments and protocols other
/// than TCP and UDP leave `ports` zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    /// Inner destination then source MAC.
    pub macs: [u8; 12],
    /// Inner IPv4 source (on-wire bytes) or 0.
    pub saddr: u32,
    /// Inner IPv4 destination (on-wire bytes) or 0.
    pub daddr: u32,
    /// Inner L4 source and destination ports, as the 4 on-wire bytes, or 0.
    pub ports: u32,
    /// Inner IP protocol or 0.
    pub proto: u32,
}

#[inline(always)]
fn mix(h: u32, k: u32) -> u32 {
    // MurmurHash3 x86_32 block step.
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// A well-mixed 32-bit hash of the inner flow (MurmurHash3 over the key's
/// words, with its finaliser), so that distinct flows get distinct outer
/// source ports and spread over the underlay's ECMP paths.
#[inline(always)]
pub fn flow_hash(k: &FlowKey) -> u32 {
    let m = &k.macs;
    // Written out rather than looped: no loop for the BPF verifier to walk.
    let mut h = 0x5654_4550_u32;
    h = mix(h, u32::from_ne_bytes([m[0], m[1], m[2], m[3]]));
    h = mix(h, u32::from_ne_bytes([m[4], m[5], m[6], m[7]]));
    h = mix(h, u32::from_ne_bytes([m[8], m[9], m[10], m[11]]));
    h = mix(h, k.saddr);
    h = mix(h, k.daddr);
    h = mix(h, k.ports);
    h = mix(h, k.proto);
    h ^= 28;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
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

/// What goes into the outer headers of one encapsulated frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outer {
    /// Outer source MAC (our underlay interface).
    pub src_mac: [u8; 6],
    /// Outer destination MAC (the next hop towards the remote VTEP).
    pub dst_mac: [u8; 6],
    /// Our underlay IPv4 (on-wire bytes).
    pub src_ip: u32,
    /// Remote VTEP IPv4 (on-wire bytes).
    pub dst_ip: u32,
    /// Outer UDP source port (host order), see [`src_port`].
    pub src_port: u16,
    /// Outer UDP destination port (host order), normally 4789.
    pub dst_port: u16,
    /// The VNI (24 bits).
    pub vni: u32,
    /// Outer IPv4 TTL.
    pub ttl: u8,
    /// Set DF in the outer IPv4 header.
    pub df: bool,
    /// Outer IPv4 identification (host order).
    pub ip_id: u16,
}

/// The outer Ethernet, IPv4, UDP and VXLAN headers (50 bytes) as 16-bit
/// words whose in-memory bytes are the on-wire bytes.
pub type OuterWords = [u16; ENCAP_LEN / 2];

/// A 16-bit word whose in-memory bytes are `a`, `b`.
#[inline(always)]
const fn w(a: u8, b: u8) -> u16 {
    u16::from_ne_bytes([a, b])
}

/// The outer headers for an inner frame of `inner_len` bytes (inner
/// Ethernet header included), built word by word (no memset or memcpy,
/// which cost the BPF verifier a loop each).
///
/// RFC 7348 §5: I flag set, reserved bits zero; UDP checksum zero ("SHOULD
/// be transmitted as zero"). Lengths saturate at 65535: a GSO super-packet
/// gets correct lengths per segment from the kernel's segmentation.
#[inline(always)]
pub fn outer_headers(o: &Outer, inner_len: u32) -> OuterWords {
    let d = o.dst_mac;
    let s = o.src_mac;
    let udp_len = sat16(inner_len + (UDP_HLEN + VXLAN_HLEN) as u32);
    let ip_len = sat16(u32::from(udp_len) + IPV4_HLEN as u32);
    let src = o.src_ip.to_ne_bytes();
    let dst = o.dst_ip.to_ne_bytes();
    let ip = [
        w(0x45, 0),
        ip_len.to_be(),
        o.ip_id.to_be(),
        w(if o.df { 0x40 } else { 0 }, 0),
        w(o.ttl, IPPROTO_UDP),
        w(src[0], src[1]),
        w(src[2], src[3]),
        w(dst[0], dst[1]),
        w(dst[2], dst[3]),
    ];
    // One's-complement sum of the header words in network order; the
    // checksum word itself is zero.
    let sum = u32::from(u16::from_be(ip[0]))
        + u32::from(u16::from_be(ip[1]))
        + u32::from(u16::from_be(ip[2]))
        + u32::from(u16::from_be(ip[3]))
        + u32::from(u16::from_be(ip[4]))
        + u32::from(u16::from_be(ip[5]))
        + u32::from(u16::from_be(ip[6]))
        + u32::from(u16::from_be(ip[7]))
        + u32::from(u16::from_be(ip[8]));
    let vni = (o.vni & VNI_MAX).to_be_bytes();
    [
        w(d[0], d[1]),
        w(d[2], d[3]),
        w(d[4], d[5]),
        w(s[0], s[1]),
        w(s[2], s[3]),
        w(s[4], s[5]),
        ETH_P_IP.to_be(),
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        ip[4],
        fold_checksum(sum).to_be(),
        ip[5],
        ip[6],
        ip[7],
        ip[8],
        o.src_port.to_be(),
        o.dst_port.to_be(),
        udp_len.to_be(),
        0,
        w(VXLAN_FLAG_I, 0),
        0,
        w(vni[1], vni[2]),
        w(vni[3], 0),
    ]
}

#[inline(always)]
fn sat16(v: u32) -> u16 {
    if v > 0xffff { 0xffff } else { v as u16 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consts::{SRC_PORT_MAX, VXLAN_PORT};

    fn bytes(words: &OuterWords) -> std::vec::Vec<u8> {
        words.iter().flat_map(|w| w.to_ne_bytes()).collect()
    }

    /// RFC 1071 check: a header with a correct checksum sums to 0xffff.
    fn header_sums_to_ffff(h: &[u8]) -> bool {
        let mut sum = 0u32;
        for c in h.chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum == 0xffff
    }

    fn sample() -> Outer {
        Outer {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src_ip: u32::from_ne_bytes([198, 18, 1, 1]),
            dst_ip: u32::from_ne_bytes([198, 18, 2, 1]),
            src_port: 50000,
            dst_port: VXLAN_PORT,
            vni: 0x12_3456,
            ttl: 64,
            df: true,
            ip_id: 0,
        }
    }

    #[test]
    fn checksum_matches_known_header() {
        // A well-known example header whose checksum is 0xb861.
        let o = Outer {
            src_ip: u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0x01]),
            dst_ip: u32::from_ne_bytes([0xc0, 0xa8, 0x00, 0xc7]),
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

    #[test]
    fn outer_headers_follow_rfc7348() {
        let o = sample();
        let h = bytes(&outer_headers(&o, 98));
        assert_eq!(h.len(), ENCAP_LEN);
        assert_eq!(&h[0..6], &o.dst_mac);
        assert_eq!(&h[6..12], &o.src_mac);
        assert_eq!(&h[12..14], &[0x08, 0x00]);
        assert_eq!(h[14], 0x45);
        assert_eq!(u16::from_be_bytes([h[16], h[17]]), 98 + 36);
        assert_eq!(h[20], 0x40, "DF");
        assert_eq!(h[22], 64);
        assert_eq!(h[23], 17);
        assert!(header_sums_to_ffff(&h[14..34]));
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
                dst_ip: i.wrapping_mul(0x9e37_79b9),
                src_ip: i,
                ip_id: i as u16,
                ttl: i as u8,
                df: i % 2 == 0,
                ..sample()
            };
            let h = bytes(&outer_headers(&o, i * 13));
            assert!(header_sums_to_ffff(&h[14..34]), "{o:?}");
        }
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
                macs: [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2],
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
    fn hash_depends_on_every_field() {
        let base = FlowKey {
            macs: [1; 12],
            saddr: 2,
            daddr: 3,
            ports: 4,
            proto: 5,
        };
        let h = flow_hash(&base);
        let variants = [
            FlowKey {
                macs: [9; 12],
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
