//! A reference model of the decap program (`vtep_decap`, XDP): given the
//! tables and a frame, what the program must do with it. Pure and
//! host-testable; the BPF program is checked against it by differential
//! testing (tests/tests/prog_test_run.rs). Data-plane learning is outside
//! the model: it changes the tables, not the verdict on the frame.

use crate::{
    consts::{
        ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, IPPROTO_UDP, IPV4_HLEN, UDP_HLEN, VXLAN_HLEN,
    },
    counters::DropReason,
    maps::{Config, FDB_F_XDP, FdbEntry},
    vxlan::VXLAN_FLAG_I,
};

/// What the model needs to look up.
pub trait DecapTables {
    /// Whether `ip` may send `vni` (a REMOTES entry).
    fn remote_allowed(&self, vni: u32, ip: [u8; 4]) -> bool;
    /// The number of local ports of `vni`, if it is configured.
    fn vni_ports(&self, vni: u32) -> Option<u32>;
    /// The FDB entry of (`vni`, `mac`).
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry>;
}

/// The verdict on a frame. `strip` is how many bytes of outer headers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not VXLAN for us: to the kernel, unchanged.
    Pass,
    /// Dropped, for this reason.
    Drop(DropReason),
    /// Decapsulated and redirected from XDP to `ifindex`.
    Redirect { strip: usize, ifindex: u32 },
    /// Decapsulated and passed up with metadata: deliver to `ifindex`
    /// (flood when `ifindex` is 0).
    Up {
        strip: usize,
        vni: u32,
        ifindex: u32,
    },
}

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn is_group(mac: &[u8]) -> bool {
    mac[0] & 1 != 0
}

/// The model of `vtep_decap` on `frame`.
pub fn decap(frame: &[u8], cfg: &Config, t: &impl DecapTables) -> Verdict {
    let end = frame.len();
    if end < ETH_HLEN || be16(frame, 12) != ETH_P_IP || end < ETH_HLEN + IPV4_HLEN {
        return Verdict::Pass;
    }
    let ip = &frame[ETH_HLEN..];
    let (vihl, ttl, proto) = (ip[0], ip[8], ip[9]);
    let frags = be16(ip, 6);
    let tot_len = usize::from(be16(ip, 2));
    let saddr = [ip[12], ip[13], ip[14], ip[15]];
    let daddr = u32::from_ne_bytes([ip[16], ip[17], ip[18], ip[19]]);
    if vihl >> 4 != 4 || daddr != cfg.local_ip || proto != IPPROTO_UDP || frags & 0x1fff != 0 {
        return Verdict::Pass;
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    let udp = ETH_HLEN + ihl;
    if ihl < IPV4_HLEN || udp + UDP_HLEN > end {
        return Verdict::Pass;
    }
    if be16(frame, udp + 2) != cfg.udp_port {
        return Verdict::Pass;
    }
    let malformed = Verdict::Drop(DropReason::Malformed);
    if frags & 0x2000 != 0 || ttl == 0 {
        return malformed;
    }
    let udp_len = usize::from(be16(frame, udp + 4));
    if udp_len < UDP_HLEN + VXLAN_HLEN + ETH_HLEN || udp_len > end - udp || tot_len < ihl + udp_len
    {
        return malformed;
    }
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
            }
        };
    };
    if e.ifindex == 0 {
        return Verdict::Drop(DropReason::RemoteToRemote);
    }
    if e.flags & FDB_F_XDP != 0 {
        Verdict::Redirect {
            strip: inner,
            ifindex: e.ifindex,
        }
    } else {
        Verdict::Up {
            strip: inner,
            vni,
            ifindex: e.ifindex,
        }
    }
}
