//! The frames the tables and the differential tests feed the programs,
//! and the outputs they expect (built here independently of the models).

use super::*;

/// An inner frame: IPv4/UDP from 198.19.0.1:1000 to 198.19.0.2:2000.
pub(crate) fn inner_frame(dst: [u8; 6]) -> Vec<u8> {
    let a = Ipv4Addr::new(198, 19, 0, 1);
    let b = Ipv4Addr::new(198, 19, 0, 2);
    eth(
        dst,
        MAC_A,
        0x0800,
        &ipv4(a, b, 17, 0, &[], &udp(1000, 2000, 0, b"hello, tenant")),
    )
}

/// An 802.1Q-tagged frame (VLAN 100) carrying IPv4.
pub(crate) fn vlan_frame(dst: [u8; 6]) -> Vec<u8> {
    tagged(&inner_frame(dst), 0x8100, 100)
}

/// Sets the dsfield (IPv4 TOS and its header checksum, or IPv6 traffic
/// class) of the IP header at `ip` in `frame` to `ds`.
pub(crate) fn set_ds(frame: &mut [u8], ip: usize, ds: u8) {
    if frame[ip] >> 4 == 4 {
        let old = u16::from_be_bytes([frame[ip], frame[ip + 1]]);
        frame[ip + 1] = ds;
        let check = u16::from_be_bytes([frame[ip + 10], frame[ip + 11]]);
        let new = ecn::checksum_update(check, old, u16::from_be_bytes([frame[ip], ds]));
        frame[ip + 10..ip + 12].copy_from_slice(&new.to_be_bytes());
    } else {
        frame[ip] = 0x60 | ds >> 4;
        frame[ip + 1] = (ds << 4) | (frame[ip + 1] & 0x0f);
    }
}

/// `frame` with a tag (TPID `tpid`, TCI `tci`) in front of its EtherType.
pub(crate) fn tagged(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame.to_vec();
    let tag: Vec<u8> = [tpid.to_be_bytes(), tci.to_be_bytes()].concat();
    f.splice(12..12, tag);
    f
}

/// An IPv4 frame whose source MAC is a multicast address.
pub(crate) fn from_group(dst: [u8; 6]) -> Vec<u8> {
    let mut f = inner_frame(dst);
    f[6] = 0x01;
    f
}

/// An ARP request (a non-IP inner frame).
pub(crate) fn arp_frame(dst: [u8; 6]) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[198, 19, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[198, 19, 0, 2]);
    eth(dst, MAC_A, 0x0806, &arp)
}

/// A VXLAN packet as a remote VTEP sends it (to LOCAL, or LOCAL6 from an
/// IPv6 `src`).
pub(crate) fn vxlan(src: IpAddr, dport: u16, flags: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let t = Tunnel {
        src_mac: [2, 0xee, 0, 0, 0, 2],
        dst_mac: [2, 0xee, 0, 0, 0, 1],
        src,
        dst: if src.is_ipv4() { LOCAL } else { LOCAL6 },
        sport: 50000,
        dport,
        flags,
        vni,
    };
    frames::vxlan(&t, inner)
}

pub(crate) const I: [u8; 4] = VXLAN_I;

pub(crate) fn meta(action: u32, vni: u32, ifindex: u32) -> Vec<u8> {
    tagged_meta(action, vni, ifindex, 0)
}

/// [`meta`] for a binding with VLAN `vid` (the tag TC pushes).
pub(crate) fn tagged_meta(action: u32, vni: u32, ifindex: u32, vid: u16) -> Vec<u8> {
    [DECAP_META_MAGIC, action, vni, ifindex, u32::from(vid)]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

/// The frame `inner` encapsulated as we expect it towards `remote` (from
/// LOCAL or LOCAL6, by the family of `remote`): the flow key written out
/// here, independently of the model's.
pub(crate) fn encapsulated(
    inner: &[u8],
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    remote: IpAddr,
    vni: u32,
) -> Vec<u8> {
    encapsulated_tos(inner, (src_mac, dst_mac), remote, (vni, 0))
}

/// [`encapsulated`] in a VNI with outer TOS setting `tos` (`VniInfo::tos`).
pub(crate) fn encapsulated_tos(
    inner: &[u8],
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    remote: IpAddr,
    (vni, tos): (u32, u32),
) -> Vec<u8> {
    let ne = |at: usize| u32::from_ne_bytes(inner[at..at + 4].try_into().unwrap());
    let mut k = FlowKey {
        macs: mac_words(inner),
        ..FlowKey::default()
    };
    if inner[12..14] == [8, 0] {
        k.saddr = ne(26);
        k.daddr = ne(30);
        k.proto = u32::from(inner[23]);
        k.ports = ne(34);
    } else if inner[12..14] == [0x86, 0xdd] {
        k.saddr = ne(22) ^ ne(26) ^ ne(30) ^ ne(34);
        k.daddr = ne(38) ^ ne(42) ^ ne(46) ^ ne(50);
        k.proto = u32::from(inner[20]);
        if matches!(inner[20], 6 | 17) {
            k.ports = ne(54);
        }
    }
    let hash = flow_hash(&k);
    let o = Outer {
        macs: outer_macs(dst_mac, src_mac),
        src_ip: ip(if remote.is_ipv4() { LOCAL } else { LOCAL6 }),
        dst_ip: ip(remote),
        dst_port: VXLAN_PORT,
        vni,
        ttl: 64,
        df: true,
        ip_id: 0,
        hash,
        tos: outer_dsfield(tos, model::inner_dsfield(inner)),
    };
    let mut f: Vec<u8> = OuterHeaders::new(&o, inner.len() as u32)
        .words()
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect();
    f.extend_from_slice(inner);
    f
}

/// Tenant IPv6 addresses of the inner frames.
pub(crate) const T6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0x100, 0, 0, 0, 1);
pub(crate) const T6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 2, 0, 0x100, 0, 0, 0, 2);

/// An IPv6/UDP frame of `len` bytes (padded) from T6_A:1000 to
/// T6_B:2000.
pub(crate) fn sized_frame6(dst: [u8; 6], len: usize) -> Vec<u8> {
    let payload = vec![0x6b; len.saturating_sub(14 + 40 + 8)];
    eth(
        dst,
        MAC_A,
        0x86dd,
        &ipv6(T6_A, T6_B, 17, &udp(1000, 2000, 0, &payload)),
    )
}

/// An IPv4/UDP frame of `len` bytes (padded), DF set or not.
pub(crate) fn sized_frame(dst: [u8; 6], len: usize, df: bool) -> Vec<u8> {
    let a = Ipv4Addr::new(198, 19, 0, 1);
    let b = Ipv4Addr::new(198, 19, 0, 2);
    let payload = vec![0x5a; len.saturating_sub(14 + 20 + 8)];
    let frags = if df { 0x4000 } else { 0 };
    eth(
        dst,
        MAC_A,
        0x0800,
        &ipv4(a, b, 17, frags, &[], &udp(1000, 2000, 0, &payload)),
    )
}
