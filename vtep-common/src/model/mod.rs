//! Reference models of the decap program (`vtep_decap`, XDP: [`decap`])
//! and the encap program (`vtep_encap`, TC on a port): given the tables
//! (group policy's among them: [`policy`]) and a frame, what the program
//! must do with it. Pure and host-testable; the BPF programs
//! are checked against them by differential testing
//! (tests/tests/prog_test_run/reference.rs). Data-plane learning, ARP
//! suppression, storm control and rate limits are outside the models: they
//! change the tables (or depend on time), and the models take the tables
//! without them (no learning, no ARP bindings, no BUM limit, no policer).

mod decap;
pub mod policy;

pub use self::decap::{DecapTables, Verdict, decap, mark_ce};
use self::policy::PolicyTables;
use crate::{
    addr::Addr,
    consts::{
        ENCAP_L3_LEN, ENCAP6_L3_LEN, ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_IP, ETH_P_IPV6,
        IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, IPV6_HLEN, MAX_FLOOD, MAX_VNI_PORTS, VID_MASK,
        VLAN_HLEN,
    },
    counters::DropReason,
    ecn::{self, outer_dsfield},
    icmp::{
        FRAG_NEEDED_LEN, FRAG_QUOTE, PACKET_TOO_BIG_LEN, PTB_QUOTE, frag_needed, may_answer_v6,
        packet_too_big,
    },
    maps::{
        CONFIG_F_DF, Config, FdbEntry, PORT_F_GBP, PORT_F_POLICY, PortInfo, PortKey, VniInfo,
        port_tos,
    },
    policy::gbp_word,
    vxlan::{
        FlowKey, Outer, OuterHeaders, VXLAN_FLAG_I, flow_hash, fold_addr, mac_words, outer_macs,
    },
};

fn be16(f: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([f[at], f[at + 1]])
}

fn is_group(mac: &[u8]) -> bool {
    mac[0] & 1 != 0
}

/// What the encap model needs to look up (group policy's tables come
/// apart).
pub trait EncapTables {
    /// The binding (port, VLAN) of `key`.
    fn port(&self, key: PortKey) -> Option<PortInfo>;
    /// The configuration of `vni`.
    fn vni(&self, vni: u32) -> Option<VniInfo>;
    /// The FDB entry of (`vni`, `mac`).
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry>;
    /// The kernel FIB's next hop towards `remote`; `None` when there is no
    /// route.
    fn next_hop(&self, remote: Addr) -> Option<NextHop>;
    /// The MTU of device `ifindex` (0: no such device).
    fn mtu(&self, ifindex: u32) -> u32;
}

/// A next hop as the FIB gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// The egress device.
    pub ifindex: u32,
    /// The neighbour is resolved: `src_mac`/`dst_mac` are known.
    pub resolved: bool,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
}

/// The verdict of the encap program on a frame from a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapVerdict {
    /// Dropped (unchanged), for this reason.
    Drop(DropReason),
    /// Switched to local port `ifindex`, untagged as every frame from a
    /// port is, tagged `vid` there (an skb tag: not in the frame).
    Switch { ifindex: u32, vid: u16 },
    /// Encapsulated: `outer` in front of the frame, redirected out of
    /// `ifindex` (through the neighbour subsystem when not `resolved`,
    /// with zero MACs).
    Unicast {
        ifindex: u32,
        resolved: bool,
        outer: OuterHeaders,
    },
    /// Too big for the underlay once encapsulated, IPv4 with DF: the frame
    /// becomes this ICMP fragmentation-needed reply, sent back out of the
    /// port (and counted as a `too_big` drop).
    FragNeeded {
        reply: [u8; ETH_HLEN + FRAG_NEEDED_LEN],
    },
    /// Too big, IPv6: the frame becomes this ICMPv6 Packet Too Big, sent
    /// back out of the port (and counted as a `too_big` drop).
    PacketTooBig {
        reply: [u8; ETH_HLEN + PACKET_TOO_BIG_LEN],
    },
    /// BUM or unknown unicast: copies to the VNI's other ports and remote
    /// VTEPs, the original consumed.
    Flood(Flood),
}

/// The copies a flood makes to local ports before anything else (made
/// even when the frame then turns out too big for the underlay).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortCopies {
    /// Copies sent.
    pub sent: u32,
    /// Ports skipped: the frame is larger than they take (`too_big`).
    pub too_big: u32,
}

/// What a flood did towards remote VTEPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flood {
    /// The VNI has remote VTEPs: the frame was grown for them.
    pub grown: bool,
    /// Copies encapsulated and sent to remote VTEPs.
    pub sent: u32,
    /// Remote VTEPs skipped: next hop not resolved (`no_neighbour`).
    pub no_neighbour: u32,
    /// Remote VTEPs skipped: no route (`no_route`).
    pub no_route: u32,
    /// The outer headers of the last copy sent: what the frame left behind
    /// carries.
    pub last: Option<OuterHeaders>,
}

fn ne32(f: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

/// The inner fields the outer UDP source port is hashed from.
pub fn flow_key(frame: &[u8]) -> FlowKey {
    let mut k = FlowKey {
        macs: mac_words(frame),
        ..FlowKey::default()
    };
    let ty = be16(frame, 12);
    if ty == ETH_P_IPV6 && frame.len() >= ETH_HLEN + IPV6_HLEN {
        let addr = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&frame[at..at + 16]);
            fold_addr(&a)
        };
        k.saddr = addr(22);
        k.daddr = addr(38);
        let next = frame[20];
        k.proto = u32::from(next);
        let l4 = ETH_HLEN + IPV6_HLEN;
        if (next == IPPROTO_TCP || next == IPPROTO_UDP) && l4 + 4 <= frame.len() {
            k.ports = ne32(frame, l4);
        }
        return k;
    }
    if ty != ETH_P_IP || frame.len() < ETH_HLEN + IPV4_HLEN {
        return k;
    }
    k.saddr = ne32(frame, 26);
    k.daddr = ne32(frame, 30);
    let proto = frame[23];
    k.proto = u32::from(proto);
    let not_fragment = be16(frame, 20) & 0x3fff == 0;
    if not_fragment && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
        let l4 = ETH_HLEN + usize::from(frame[14] & 0x0f) * 4;
        if l4 + 4 <= frame.len() {
            k.ports = ne32(frame, l4);
        }
    }
    k
}

/// The largest frame the encap model takes (a jumbo frame).
pub const MODEL_FRAME_MAX: usize = 9216 + ETH_HLEN + VLAN_HLEN;

/// The frame from a port as the rest of the encap program sees it: its
/// 802.1Q tag, if it has one, removed (copied into `out`, which must hold
/// the frame); the VID (0: untagged or priority tagged) and the length.
/// An 802.1ad tag is refused (`qinq`), a second tag is RFC 7348 §6.1's
/// inner tag (`inner_vlan`). A refusal says how many tags the kernel
/// already took off the frame (its pop takes a second tag with the first).
pub fn untag(frame: &[u8], out: &mut [u8]) -> Result<(u16, usize), (DropReason, usize)> {
    if frame.len() < ETH_HLEN {
        return Err((DropReason::InnerTooShort, 0));
    }
    let (vid, body) = match be16(frame, 12) {
        ETH_P_8021Q if frame.len() < ETH_HLEN + 2 => return Err((DropReason::InnerTooShort, 0)),
        // The kernel's pop wants the whole tagged header writable.
        ETH_P_8021Q if frame.len() < ETH_HLEN + VLAN_HLEN => {
            return Err((DropReason::KernelRefused, 0));
        }
        ETH_P_8021Q => (be16(frame, 14) & VID_MASK, &frame[16..]),
        ETH_P_8021AD => return Err((DropReason::Qinq, 0)),
        _ => (0, &frame[12..]),
    };
    out[..12].copy_from_slice(&frame[..12]);
    out[12..12 + body.len()].copy_from_slice(body);
    let len = 12 + body.len();
    if body.len() < frame.len() - 12 && matches!(be16(out, 12), ETH_P_8021Q | ETH_P_8021AD) {
        return Err(if len < ETH_HLEN + VLAN_HLEN {
            (DropReason::KernelRefused, 1)
        } else {
            (DropReason::InnerVlan, 2)
        });
    }
    Ok((vid, len))
}

/// The model of `vtep_encap` on `frame`, arriving on port `from`: the
/// verdict, and the copies made to local ports on the way.
pub fn encap(
    frame: &[u8],
    from: u32,
    cfg: &Config,
    t: &impl EncapTables,
    policy: &impl PolicyTables,
) -> (EncapVerdict, PortCopies) {
    assert!(
        frame.len() <= MODEL_FRAME_MAX,
        "the model takes frames up to {MODEL_FRAME_MAX} bytes"
    );
    let none = PortCopies::default();
    let mut buf = [0u8; MODEL_FRAME_MAX];
    let (vid, len) = match untag(frame, &mut buf) {
        Ok(v) => v,
        Err((reason, _)) => return (EncapVerdict::Drop(reason), none),
    };
    let frame = &buf[..len];
    let Some(port) = t.port(PortKey::new(from, vid)) else {
        return (EncapVerdict::Drop(DropReason::UnboundVlan), none);
    };
    if frame.len() < ETH_HLEN {
        return (EncapVerdict::Drop(DropReason::InnerTooShort), none);
    }
    if is_group(&frame[6..12]) {
        return (EncapVerdict::Drop(DropReason::GroupSourceMac), none);
    }
    let vni = port.vni;
    let mut dst = [0u8; 6];
    dst.copy_from_slice(&frame[..6]);
    let mut src = [0u8; 6];
    src.copy_from_slice(&frame[6..12]);
    let group = self::policy::group_of(policy, vni, src, PortKey::new(from, vid));
    let vx = if port.flags & PORT_F_GBP != 0 {
        gbp_word(group)
    } else {
        [VXLAN_FLAG_I, 0, 0, 0]
    };
    let entry = if is_group(&dst) {
        None
    } else {
        t.fdb(vni, dst)
    };
    let verdict = match entry {
        Some(e) if e.ifindex != 0 => {
            if (e.ifindex, e.vid) == (from, vid) {
                EncapVerdict::Drop(DropReason::Hairpin)
            } else if t
                .port(PortKey::new(e.ifindex, e.vid))
                .is_none_or(|p| p.vni != vni)
            {
                EncapVerdict::Drop(DropReason::VniMismatch)
            } else if !fits(frame, t.mtu(e.ifindex)) {
                EncapVerdict::Drop(DropReason::TooBig)
            } else if port.flags & PORT_F_POLICY != 0
                && !self::policy::admits(
                    policy,
                    vni,
                    (group, false),
                    (dst, PortKey::new(e.ifindex, e.vid)),
                )
            {
                EncapVerdict::Drop(DropReason::PolicyDenied)
            } else {
                EncapVerdict::Switch {
                    ifindex: e.ifindex,
                    vid: e.vid,
                }
            }
        }
        Some(e) => encap_unicast(frame, (&port, vx), e.remote, cfg, t),
        None => return encap_flood(frame, (from, vid), (&port, vx), cfg, t),
    };
    (verdict, none)
}

/// The dsfield of `frame`'s IP packet (IPv4 TOS, IPv6 traffic class), if
/// it is IP with its whole fixed header (a header cut short is not read,
/// as for the flow key).
pub fn inner_dsfield(frame: &[u8]) -> Option<u8> {
    let ipv4 = match be16(frame, 12) {
        ETH_P_IP if frame.len() >= ETH_HLEN + IPV4_HLEN => true,
        ETH_P_IPV6 if frame.len() >= ETH_HLEN + IPV6_HLEN => false,
        _ => return None,
    };
    Some(ecn::dsfield(ipv4, [frame[ETH_HLEN], frame[ETH_HLEN + 1]]))
}

/// The outer headers of `frame` from binding `port` towards `remote`,
/// with VXLAN header word `vx`.
fn outer_for(
    frame: &[u8],
    (port, vx): (&PortInfo, [u8; 4]),
    remote: Addr,
    hop: &NextHop,
    cfg: &Config,
) -> OuterHeaders {
    let df = cfg.flags & CONFIG_F_DF != 0;
    let hash = flow_hash(&flow_key(frame));
    let o = Outer {
        macs: outer_macs(hop.dst_mac, hop.src_mac),
        src_ip: cfg.local_ip,
        dst_ip: remote,
        dst_port: cfg.udp_port,
        vni: port.vni,
        ttl: cfg.ttl,
        df,
        // Random without DF: the model only covers DF.
        ip_id: 0,
        tos: outer_dsfield(port_tos(port.flags), inner_dsfield(frame)),
        hash,
    };
    OuterHeaders::new(&o, frame.len() as u32).with_vxlan_word(vx)
}

/// Whether `frame` fits a device of MTU `mtu` (0: unknown, not judged),
/// as the kernel's forwarding check has it: MTU, Ethernet header and the 4
/// bytes of a VLAN tag.
fn fits(frame: &[u8], mtu: u32) -> bool {
    mtu == 0 || frame.len() <= mtu as usize + ETH_HLEN + VLAN_HLEN
}

/// Outer bytes from the outer IP header to the inner Ethernet header, for
/// the instance's family.
fn encap_l3_len(cfg: &Config) -> usize {
    if cfg.local_ip.is_v4() {
        ENCAP_L3_LEN
    } else {
        ENCAP6_L3_LEN
    }
}

fn too_big(frame: &[u8], mtu: u32, cfg: &Config) -> bool {
    mtu != 0 && frame.len() + encap_l3_len(cfg) > mtu as usize
}

/// The reply's Ethernet header: back to the sender, as `ether_type`.
fn reply_eth(frame: &[u8], ether_type: u16, reply: &mut [u8]) {
    reply[..6].copy_from_slice(&frame[6..12]);
    reply[6..12].copy_from_slice(&frame[..6]);
    reply[12..14].copy_from_slice(&ether_type.to_be_bytes());
}

/// RFC 7348 §4.3 (no fragmentation), RFC 1191 and RFC 4443 §3.2 (the
/// replies).
fn answer_too_big(frame: &[u8], mtu: u32, cfg: &Config) -> EncapVerdict {
    let drop = EncapVerdict::Drop(DropReason::TooBig);
    let inner_mtu = mtu.saturating_sub((encap_l3_len(cfg) + ETH_HLEN) as u32) as u16;
    if be16(frame, 12) == ETH_P_IPV6 {
        if frame.len() < ETH_HLEN + PTB_QUOTE || frame[ETH_HLEN] >> 4 != 6 {
            return drop;
        }
        let mut quoted = [0u8; PTB_QUOTE];
        quoted.copy_from_slice(&frame[ETH_HLEN..ETH_HLEN + PTB_QUOTE]);
        let q = |i: usize| u16::from_ne_bytes([quoted[2 * i], quoted[2 * i + 1]]);
        if !may_answer_v6(q) {
            return drop;
        }
        let mut reply = [0u8; ETH_HLEN + PACKET_TOO_BIG_LEN];
        reply_eth(frame, ETH_P_IPV6, &mut reply);
        for (i, w) in packet_too_big(&quoted, u32::from(inner_mtu))
            .iter()
            .enumerate()
        {
            reply[ETH_HLEN + 2 * i..ETH_HLEN + 2 * i + 2].copy_from_slice(&w.to_ne_bytes());
        }
        return EncapVerdict::PacketTooBig { reply };
    }
    if be16(frame, 12) != ETH_P_IP || frame.len() < ETH_HLEN + IPV4_HLEN {
        return drop;
    }
    // A 20-byte header with DF, and the 8 bytes after it to quote.
    if frame.len() < ETH_HLEN + FRAG_QUOTE
        || frame[ETH_HLEN] != 0x45
        || frame[ETH_HLEN + 6] & 0x40 == 0
    {
        return drop;
    }
    let mut quoted = [0u8; FRAG_QUOTE];
    quoted.copy_from_slice(&frame[ETH_HLEN..ETH_HLEN + FRAG_QUOTE]);
    let words = frag_needed(&quoted, inner_mtu);
    let mut reply = [0u8; ETH_HLEN + FRAG_NEEDED_LEN];
    reply_eth(frame, ETH_P_IP, &mut reply);
    for (i, w) in words.iter().enumerate() {
        reply[ETH_HLEN + 2 * i..ETH_HLEN + 2 * i + 2].copy_from_slice(&w.to_ne_bytes());
    }
    EncapVerdict::FragNeeded { reply }
}

fn encap_unicast(
    frame: &[u8],
    port: (&PortInfo, [u8; 4]),
    remote: Addr,
    cfg: &Config,
    t: &impl EncapTables,
) -> EncapVerdict {
    let Some(hop) = t.next_hop(remote) else {
        return EncapVerdict::Drop(DropReason::NoRoute);
    };
    let ty = be16(frame, 12);
    if !hop.resolved && ty != ETH_P_IP && ty != ETH_P_IPV6 {
        return EncapVerdict::Drop(DropReason::NoNeighbour);
    }
    let mtu = t.mtu(hop.ifindex);
    if too_big(frame, mtu, cfg) {
        return answer_too_big(frame, mtu, cfg);
    }
    EncapVerdict::Unicast {
        ifindex: hop.ifindex,
        resolved: hop.resolved,
        outer: outer_for(frame, port, remote, &hop, cfg),
    }
}

fn encap_flood(
    frame: &[u8],
    from: (u32, u16),
    (port, vx): (&PortInfo, [u8; 4]),
    cfg: &Config,
    t: &impl EncapTables,
) -> (EncapVerdict, PortCopies) {
    let Some(info) = t.vni(port.vni) else {
        return (
            EncapVerdict::Drop(DropReason::UnknownVni),
            PortCopies::default(),
        );
    };
    let n_remotes = (info.n_remotes as usize).min(MAX_FLOOD);
    let n_ports = (info.n_ports as usize).min(MAX_VNI_PORTS);
    if info.n_ports <= 1 && n_remotes == 0 {
        return (
            EncapVerdict::Drop(DropReason::NoFloodTarget),
            PortCopies::default(),
        );
    }
    let targets = info.ports[..n_ports]
        .iter()
        .zip(&info.vids[..n_ports])
        .filter(|(p, v)| (**p, **v) != from);
    let oversize = targets
        .clone()
        .filter(|(p, _)| !fits(frame, t.mtu(**p)))
        .count() as u32;
    let copies = PortCopies {
        sent: targets.count() as u32 - oversize,
        too_big: oversize,
    };
    let mut flood = Flood {
        grown: false,
        sent: 0,
        no_neighbour: 0,
        no_route: 0,
        last: None,
    };
    if n_remotes == 0 {
        return (EncapVerdict::Flood(flood), copies);
    }
    let mtu = t.mtu(cfg.underlay_ifindex);
    if too_big(frame, mtu, cfg) {
        return (answer_too_big(frame, mtu, cfg), copies);
    }
    flood.grown = true;
    for remote in &info.remotes[..n_remotes] {
        match t.next_hop(*remote) {
            Some(hop) if hop.resolved => {
                flood.sent += 1;
                flood.last = Some(outer_for(frame, (port, vx), *remote, &hop, cfg));
            }
            Some(_) => flood.no_neighbour += 1,
            None => flood.no_route += 1,
        }
    }
    (EncapVerdict::Flood(flood), copies)
}
