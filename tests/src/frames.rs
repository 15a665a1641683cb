//! Building frames byte by byte, for the tests' fixtures and the bench's
//! generator alike: Ethernet, IPv4 (with a correct header checksum), IPv6,
//! UDP, and a VXLAN packet (over either) around an inner frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vtep_common::{
    consts::{ETH_HLEN, IPV4_HLEN, UDP_HLEN},
    vxlan::fold_checksum,
};

/// EtherType IPv4.
pub const ETH_IPV4: u16 = 0x0800;
/// EtherType ARP.
pub const ETH_ARP: u16 = 0x0806;
/// EtherType IPv6.
pub const ETH_IPV6: u16 = 0x86dd;
/// EtherType 802.1Q.
pub const ETH_8021Q: u16 = 0x8100;
/// IPv4 flags and fragment offset with DF set.
pub const IPV4_DF: u16 = 0x4000;
/// IP protocol UDP.
pub const PROTO_UDP: u8 = 17;

/// An Ethernet frame: `dst`, `src`, `ethertype`, then `payload`.
/// A MAC address as `ip` and `vtep` print it ("02:00:00:00:00:01").
pub fn mac(s: &str) -> [u8; 6] {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad MAC {s}")))
        .collect();
    bytes.try_into().unwrap_or_else(|_| panic!("bad MAC {s}"))
}

pub fn eth(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (TTL 64, ID 0, `frags` the flags and fragment offset
/// word, `options` whole words) with its checksum, then `payload`.
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    frags: u16,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let ihl = 5 + options.len() / 4;
    let total = (ihl * 4 + payload.len()) as u16;
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&frags.to_be_bytes());
    p.extend_from_slice(&[64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(options);
    let sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    p[10..12].copy_from_slice(&fold_checksum(sum).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 header (traffic class and flow label 0, hop limit 64; RFC
/// 8200 §3) with next header `next`, then `payload`.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A UDP header (checksum zero) whose length field is `len_delta` off the
/// true one, then `payload`.
pub fn udp(sport: u16, dport: u16, len_delta: i32, payload: &[u8]) -> Vec<u8> {
    let len = (UDP_HLEN as i32 + payload.len() as i32 + len_delta) as u16;
    let mut u = Vec::with_capacity(UDP_HLEN + payload.len());
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&len.to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// An Ethernet/IPv4/UDP frame of `len` bytes from `src` to `dst` (MACs),
/// 198.19.0.1:`sport` to 198.19.0.2:`dport`, DF set, padded with `fill`.
pub fn ipv4_udp(
    dst: [u8; 6],
    src: [u8; 6],
    sport: u16,
    dport: u16,
    len: usize,
    fill: u8,
) -> Vec<u8> {
    let payload = vec![fill; len.saturating_sub(ETH_HLEN + IPV4_HLEN + UDP_HLEN)];
    let (a, b) = (Ipv4Addr::new(198, 19, 0, 1), Ipv4Addr::new(198, 19, 0, 2));
    eth(
        dst,
        src,
        ETH_IPV4,
        &ipv4(
            a,
            b,
            PROTO_UDP,
            IPV4_DF,
            &[],
            &udp(sport, dport, 0, &payload),
        ),
    )
}

/// The outer side of a VXLAN packet.
#[derive(Clone, Copy, Debug)]
pub struct Tunnel {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The outer addresses: both IPv4 or both IPv6.
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The first four bytes of the VXLAN header (flags and reserved).
    pub flags: [u8; 4],
    pub vni: u32,
}

/// The VXLAN flags word with only the I flag (RFC 7348 §5).
pub const VXLAN_I: [u8; 4] = [0x08, 0, 0, 0];

/// `inner` in VXLAN as `t` says (outer IPv4 with DF, or IPv6; UDP
/// checksum zero).
pub fn vxlan(t: &Tunnel, inner: &[u8]) -> Vec<u8> {
    let v = t.vni.to_be_bytes();
    let mut hdr = t.flags.to_vec();
    hdr.extend_from_slice(&[v[1], v[2], v[3], 0]);
    hdr.extend_from_slice(inner);
    let udp = udp(t.sport, t.dport, 0, &hdr);
    match (t.src, t.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth(
            t.dst_mac,
            t.src_mac,
            ETH_IPV4,
            &ipv4(s, d, PROTO_UDP, IPV4_DF, &[], &udp),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            eth(t.dst_mac, t.src_mac, ETH_IPV6, &ipv6(s, d, PROTO_UDP, &udp))
        }
        _ => panic!("tunnel of mixed families: {t:?}"),
    }
}
