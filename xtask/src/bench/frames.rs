//! The frames the generator sends: a VXLAN packet for decap, an inner
//! frame for encap. Checksums are correct (the kernel's stack checks the
//! outer IPv4 header).

use vtep_common::{
    consts::{ETH_HLEN, IPV4_HLEN, VXLAN_PORT},
    vxlan::{Outer, fold_checksum, outer_headers},
};

/// Offset of the inner UDP source port in an inner frame (the field the
/// generator varies to make many flows).
pub const INNER_SPORT: usize = ETH_HLEN + IPV4_HLEN;

/// An Ethernet/IPv4/UDP frame of `len` bytes from `src` to `dst` (MACs).
pub fn inner(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let payload = len - ETH_HLEN - IPV4_HLEN - 8;
    let mut f = Vec::with_capacity(len);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (IPV4_HLEN + 8 + payload) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&ip_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0, 198, 19, 0, 1, 198, 19, 0, 2]);
    let sum: u32 = ip
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    ip[10..12].copy_from_slice(&fold_checksum(sum).to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&1024u16.to_be_bytes());
    f.extend_from_slice(&5201u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.resize(len, 0xab);
    f
}

/// `inner` in VXLAN from `src_ip` to `dst_ip` (on-wire u32s), outer MACs
/// `src_mac` -> `dst_mac`.
pub fn vxlan(
    inner: &[u8],
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: u32,
    dst_ip: u32,
    vni: u32,
) -> Vec<u8> {
    let o = Outer {
        src_mac,
        dst_mac,
        src_ip,
        dst_ip,
        src_port: 50000,
        dst_port: VXLAN_PORT,
        vni,
        ttl: 64,
        df: true,
        ip_id: 0,
    };
    let mut f: Vec<u8> = outer_headers(&o, inner.len() as u32)
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    f.extend_from_slice(inner);
    f
}
