//! The frames the generator sends, built with the tests' frame builder
//! (`vtep_tests::frames`): a VXLAN packet for decap, an inner frame for
//! encap. Checksums are correct (the kernel's stack checks the outer IPv4
//! header).

use std::net::IpAddr;

use vtep_common::consts::{ETH_HLEN, IPV4_HLEN, VXLAN_PORT};
use vtep_tests::frames::{self, Tunnel, VXLAN_I};

/// Offset of the inner UDP source port in an inner frame (the field the
/// generator varies to make many flows).
pub const INNER_SPORT: usize = ETH_HLEN + IPV4_HLEN;

/// An Ethernet/IPv4/UDP frame of `len` bytes from `src` to `dst` (MACs).
pub fn inner(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    frames::ipv4_udp(dst, src, 1024, 5201, len, 0xab)
}

/// `inner` in VXLAN from `src_ip` to `dst_ip`, outer MACs `src_mac` ->
/// `dst_mac`.
pub fn vxlan(
    inner: &[u8],
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: IpAddr,
    dst_ip: IpAddr,
    vni: u32,
) -> Vec<u8> {
    let t = Tunnel {
        src_mac,
        dst_mac,
        src: src_ip,
        dst: dst_ip,
        sport: 50000,
        dport: VXLAN_PORT,
        flags: VXLAN_I,
        vni,
    };
    frames::vxlan(&t, inner)
}
