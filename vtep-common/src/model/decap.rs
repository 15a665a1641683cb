//! The model of decapsulation: `vtep_decap` (XDP), or `vtep_decap_tc` on
//! an underlay without XDP (`CONFIG_F_DECAP_TC`).

use super::{be16, inner_dsfield, is_group, ne32, policy::PolicyTables};
use crate::{
    addr::Addr,
    consts::{
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6, IPPROTO_UDP, IPV4_HLEN,
        IPV6_HLEN, UDP_HLEN, VLAN_HLEN, VXLAN_HLEN,
    },
    counters::DropReason,
    ecn,
    maps::{
        CONFIG_F_DECAP_TC, Config, FDB_F_XDP, FdbEntry, META_ACTION_FLOOD, PortKey, REMOTE_F_GBP,
        REMOTE_F_POLICY, deliver_action,
    },
    policy::Gbp,
    vxlan::{VXLAN_FLAG_I, ipv4_header_ok},
};

/// What the model needs to look up (group policy's tables come apart).
pub trait DecapTables {
    /// Whether `ip` may send `vni` (a REMOTES entry).
    fn remote_allowed(&self, vni: u32, ip: Addr) -> bool;
    /// The `REMOTE_F_*` bits of `ip`'s entry for `vni` (policy, GBP).
    fn remote_flags(&self, _vni: u32, _ip: Addr) -> u32 {
        0
    }
    /// The number of local ports of `vni`, if it is configured.
    fn vni_ports(&self, vni: u32) -> Option<u32>;
    /// The FDB entry of (`vni`, `mac`).
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry>;
    /// The MTU of port `ifindex`, if the device exists.
    fn port_mtu(&self, ifindex: u32) -> Option<u32>;
}

/// The verdict on a frame. `strip` is how many bytes of outer headers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not VXLAN for us: to the kernel, unchanged.
    Pass,
    /// Dropped, for this reason.
    Drop(DropReason),
    /// Decapsulated and redirected from XDP to `ifindex`; with a `vid`
    /// (not 0) the inner frame tagged with it (802.1Q, behind its MACs);
    /// `ce`: its IP packet marked CE ([`mark_ce`]).
    Redirect {
        strip: usize,
        ifindex: u32,
        vid: u16,
        ce: bool,
    },
    /// Decapsulated and passed up with metadata: `action`
    /// (`META_ACTION_*`) to `ifindex` (0 for a flood), tagged `vid` there;
    /// `ce` as for `Redirect`. Without XDP (`CONFIG_F_DECAP_TC`), TC does
    /// that itself, and every delivery is one of these.
    Up {
        strip: usize,
        vni: u32,
        ifindex: u32,
        action: u32,
        vid: u16,
        ce: bool,
    },
}

/// The outer IPv4 or IPv6 header of `frame` if it carries UDP to our
/// address and port (the family of our address): the sender and the
/// offset of the UDP header; `Err` for a verdict reached on the way.
fn outer(frame: &[u8], cfg: &Config) -> Result<(Addr, usize), Verdict> {
    let end = frame.len();
    if end < ETH_HLEN {
        return Err(Verdict::Pass);
    }
    let ty = be16(frame, 12);
    let ip = &frame[ETH_HLEN..];
    let malformed = Verdict::Drop(DropReason::Malformed);
    if ty == ETH_P_IP && cfg.local_ip.is_v4() && end >= ETH_HLEN + IPV4_HLEN {
        let (vihl, ttl, proto) = (ip[0], ip[8], ip[9]);
        let frags = be16(ip, 6);
        let saddr = Addr::v4(ne32(ip, 12));
        if vihl >> 4 != 4
            || Addr::v4(ne32(ip, 16)) != cfg.local_ip
            || proto != IPPROTO_UDP
            || frags & 0x1fff != 0
        {
            return Err(Verdict::Pass);
        }
        let ihl = usize::from(vihl & 0x0f) * 4;
        let udp = ETH_HLEN + ihl;
        if ihl < IPV4_HLEN || udp + UDP_HLEN > end || be16(frame, udp + 2) != cfg.udp_port {
            return Err(Verdict::Pass);
        }
        let tot_len = usize::from(be16(ip, 2));
        let udp_len = usize::from(be16(frame, udp + 4));
        let sum = (0..ihl).step_by(4).map(|i| u64::from(ne32(ip, i))).sum();
        if !ipv4_header_ok(sum)
            || frags & 0x2000 != 0
            || ttl == 0
            || bad_udp_len(udp_len, end - udp)
            || tot_len < ihl + udp_len
            || tot_len > end - ETH_HLEN
        {
            return Err(malformed);
        }
        return Ok((saddr, udp));
    }
    if ty == ETH_P_IPV6 && !cfg.local_ip.is_v4() && end >= ETH_HLEN + IPV6_HLEN {
        let mut a = [0u8; 16];
        a.copy_from_slice(&ip[24..40]);
        let udp = ETH_HLEN + IPV6_HLEN;
        // No extension headers: anything but UDP right after the header
        // is the kernel's.
        if ip[0] >> 4 != 6
            || Addr::v6(a) != cfg.local_ip
            || ip[6] != IPPROTO_UDP
            || udp + UDP_HLEN > end
            || be16(frame, udp + 2) != cfg.udp_port
        {
            return Err(Verdict::Pass);
        }
        a.copy_from_slice(&ip[8..24]);
        let payload_len = usize::from(be16(ip, 4));
        let udp_len = usize::from(be16(frame, udp + 4));
        if ip[7] == 0
            || bad_udp_len(udp_len, end - udp)
            || payload_len < udp_len
            || payload_len > end - udp
        {
            return Err(malformed);
        }
        return Ok((Addr::v6(a), udp));
    }
    Err(Verdict::Pass)
}

/// A UDP length that lies: shorter than VXLAN with an inner Ethernet
/// header, or longer than the `avail` bytes from the UDP header on.
fn bad_udp_len(udp_len: usize, avail: usize) -> bool {
    udp_len < UDP_HLEN + VXLAN_HLEN + ETH_HLEN || udp_len > avail
}

/// The model of `vtep_decap` on `frame`: where it goes, then what its
/// outer ECN does to it (RFC 6040 §4.2, [`ecn::decap`]).
pub fn decap(
    frame: &[u8],
    cfg: &Config,
    t: &impl DecapTables,
    policy: &impl PolicyTables,
) -> Verdict {
    let mut v = decap_to(frame, cfg, t, policy);
    if let Verdict::Redirect { strip, ce, .. } | Verdict::Up { strip, ce, .. } = &mut v {
        match ecn::decap(
            inner_dsfield(frame).unwrap_or(0),
            inner_dsfield(&frame[*strip..]),
        ) {
            ecn::Decap::Keep => {}
            ecn::Decap::MarkCe => *ce = true,
            ecn::Decap::Drop => return Verdict::Drop(DropReason::CeNotEct),
        }
    }
    v
}

/// What decapsulation does to an inner frame whose IP packet is marked
/// CE: the ECN bits of its dsfield set, the IPv4 header checksum updated.
/// Precondition: `frame` is IP with a dsfield ([`inner_dsfield`]).
pub fn mark_ce(frame: &mut [u8]) {
    if be16(frame, 12) == ETH_P_IP {
        let old = be16(frame, ETH_HLEN);
        frame[ETH_HLEN + 1] |= ecn::CE;
        let check = be16(frame, ETH_HLEN + 10);
        let new = ecn::checksum_update(check, old, be16(frame, ETH_HLEN));
        frame[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&new.to_be_bytes());
    } else {
        frame[ETH_HLEN + 1] |= ecn::CE << 4;
    }
}

/// Where [`decap`] sends `frame`, before ECN.
fn decap_to(
    frame: &[u8],
    cfg: &Config,
    t: &impl DecapTables,
    policy: &impl PolicyTables,
) -> Verdict {
    let end = frame.len();
    let (saddr, udp) = match outer(frame, cfg) {
        Ok(o) => o,
        Err(v) => return v,
    };
    let vx = udp + UDP_HLEN;
    if frame[vx] & VXLAN_FLAG_I == 0 {
        return Verdict::Drop(DropReason::NoIFlag);
    }
    let vni = u32::from_be_bytes([0, frame[vx + 4], frame[vx + 5], frame[vx + 6]]);
    if !t.remote_allowed(vni, saddr) {
        return Verdict::Drop(if t.vni_ports(vni).is_some() {
            DropReason::UnknownRemote
        } else {
            DropReason::UnknownVni
        });
    }
    let inner = vx + VXLAN_HLEN;
    let inner_type = be16(frame, inner + 12);
    if inner_type == ETH_P_8021Q || inner_type == ETH_P_8021AD {
        return Verdict::Drop(DropReason::InnerVlan);
    }
    if is_group(&frame[inner + 6..inner + 12]) {
        return Verdict::Drop(DropReason::GroupSourceMac);
    }
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&frame[inner..inner + 6]);
    let entry = if is_group(&dst) {
        None
    } else {
        t.fdb(vni, dst)
    };
    let Some(e) = entry else {
        return if t.vni_ports(vni).unwrap_or(0) == 0 {
            Verdict::Drop(DropReason::NoFloodTarget)
        } else {
            Verdict::Up {
                strip: inner,
                vni,
                ifindex: 0,
                action: META_ACTION_FLOOD,
                vid: 0,
                ce: false,
            }
        };
    };
    if e.ifindex == 0 {
        return Verdict::Drop(DropReason::RemoteToRemote);
    }
    let xdp = e.flags & FDB_F_XDP != 0 && cfg.flags & CONFIG_F_DECAP_TC == 0;
    // A tag pushed in XDP is part of the frame the port must take.
    let tag = if xdp && e.vid != 0 { VLAN_HLEN } else { 0 };
    // The port would drop it silently: count it.
    if t.port_mtu(e.ifindex)
        .is_some_and(|mtu| end - inner + tag > mtu as usize + ETH_HLEN + VLAN_HLEN)
    {
        return Verdict::Drop(DropReason::TooBig);
    }
    let flags = t.remote_flags(vni, saddr);
    if flags & REMOTE_F_POLICY != 0 {
        let gbp = if flags & REMOTE_F_GBP != 0 {
            Gbp::parse([frame[vx], frame[vx + 1], frame[vx + 2], frame[vx + 3]])
        } else {
            Gbp::default()
        };
        let to = PortKey::new(e.ifindex, e.vid);
        if !super::policy::admits(policy, vni, (gbp.group, gbp.applied), (dst, to)) {
            return Verdict::Drop(DropReason::PolicyDenied);
        }
    }
    if xdp {
        Verdict::Redirect {
            strip: inner,
            ifindex: e.ifindex,
            vid: e.vid,
            ce: false,
        }
    } else {
        Verdict::Up {
            strip: inner,
            vni,
            ifindex: e.ifindex,
            action: deliver_action(e.flags),
            vid: e.vid,
            ce: false,
        }
    }
}
