//! The host's routing and neighbour tables (what kind of device a port
//! is, and an instance's merge device) over rtnetlink
//! (`netlink-packet-route` messages on a `netlink-sys` socket, one
//! request at a time, synchronously): the next hop towards a remote VTEP,
//! whether it has a neighbour entry, and managed entries (`NTF_EXT_MANAGED`,
//! Linux 5.16+) made and removed.
//!
//! Flood copies and non-IP frames (ARP) cannot wait in the kernel's
//! neighbour queue the way `bpf_redirect_neigh` lets IP unicast wait, so
//! the next hop of every remote VTEP gets a neighbour entry: where the host
//! has none, a managed one, which the kernel resolves at once and keeps
//! resolved, so `bpf_fib_lookup` always finds its MAC. An entry the host
//! already has is left alone.

use std::{io, net::IpAddr};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
    Nla,
};
use netlink_packet_route::{
    AddressFamily, RouteNetlinkMessage,
    link::{
        InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkLayerType,
        LinkMessage,
    },
    neighbour::{
        NeighbourAddress, NeighbourAttribute, NeighbourExtFlags, NeighbourMessage, NeighbourState,
    },
    route::{RouteAddress, RouteAttribute, RouteMessage},
};
use netlink_sys::{Socket, protocols::NETLINK_ROUTE};

use crate::sys;

/// Why a netlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(io::Error),
    #[error("{what}: {err}")]
    Io { what: String, err: io::Error },
    #[error("{what}: the kernel says: {err}")]
    Kernel { what: String, err: io::Error },
    #[error("{what}: cannot decode the kernel's answer: {reason}")]
    Decode { what: String, reason: String },
    #[error("{what}: the kernel's answer has no {missing}")]
    Missing { what: String, missing: &'static str },
}

/// A port's kind of device, as far as delivering frames to it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortKind {
    /// A tap (a tun device carrying Ethernet).
    Tap,
    /// A veth; `peer_elsewhere`: its peer is in another network namespace.
    Veth { peer_elsewhere: bool },
    /// Anything else.
    Other,
}

/// What the kernel says of a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Its kind (IFLA_INFO_KIND), if it has one.
    pub kind: Option<InfoKind>,
    /// Whether it carries Ethernet.
    pub ether: bool,
    /// For a veth, whether its peer is in another network namespace.
    pub peer_elsewhere: bool,
    /// The ifindex of its master (a bridge), 0 if none.
    pub master: u32,
    /// The room it asks senders to leave in front of their frames'
    /// headers (`needed_headroom`; 0 where the kernel does not say).
    pub headroom: u16,
}

impl Link {
    /// Its kind as far as delivering frames to it goes.
    pub fn port_kind(&self) -> PortKind {
        match self.kind {
            Some(InfoKind::Veth) => PortKind::Veth {
                peer_elsewhere: self.peer_elsewhere,
            },
            Some(InfoKind::Tun) if self.ether => PortKind::Tap,
            _ => PortKind::Other,
        }
    }
}

/// IFLA_HEADROOM (Linux 6.8+), which the crate does not name.
const IFLA_HEADROOM: u16 = 68;

/// A route-netlink socket.
pub struct Rtnl {
    socket: Socket,
    seq: u32,
}

/// Netlink messages are 4-byte aligned.
const fn align(len: usize) -> usize {
    (len + 3) & !3
}

impl Rtnl {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&netlink_sys::SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Self { socket, seq: 0 })
    }

    /// Sends `msg` and collects the kernel's answers: every message of a
    /// dump (`dump`; `NLM_F_DUMP` shares bits with `NLM_F_EXCL`, so it is
    /// not told from `flags`), else the reply, if any, up to the
    /// acknowledgement. `what` names the request in errors.
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        dump: bool,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        let io = |err| NetlinkError::Io {
            what: what.to_owned(),
            err,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | flags | if dump { NLM_F_DUMP } else { NLM_F_ACK };
        req.header.sequence_number = self.seq;
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(io)?;
        let mut out = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(io)?;
            let mut at = 0;
            while at < data.len() {
                let m = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[at..]).map_err(
                    |e| NetlinkError::Decode {
                        what: what.to_owned(),
                        reason: e.to_string(),
                    },
                )?;
                at += align(m.header.length as usize).max(1);
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::Done(_) => return Ok(out),
                    NetlinkPayload::Error(e) if e.code.is_none() => return Ok(out),
                    NetlinkPayload::Error(e) => {
                        return Err(NetlinkError::Kernel {
                            what: what.to_owned(),
                            err: e.to_io(),
                        });
                    }
                    NetlinkPayload::InnerMessage(inner) => out.push(inner),
                    _ => {}
                }
            }
        }
    }

    /// The next hop (the gateway, or `remote` itself when on-link) and the
    /// interface the kernel routes `remote` through from `local`.
    pub fn route_to(
        &mut self,
        remote: IpAddr,
        local: IpAddr,
    ) -> Result<(IpAddr, u32), NetlinkError> {
        let what = format!("route to remote VTEP {remote} from {local}");
        let mut m = RouteMessage::default();
        let full = if remote.is_ipv4() { 32 } else { 128 };
        m.header.address_family = family(remote);
        m.header.destination_prefix_length = full;
        m.header.source_prefix_length = full;
        m.attributes
            .push(RouteAttribute::Destination(route_address(remote)));
        m.attributes
            .push(RouteAttribute::Source(route_address(local)));
        let answers = self.request(RouteNetlinkMessage::GetRoute(m), 0, false, &what)?;
        let route = answers
            .into_iter()
            .find_map(|a| match a {
                RouteNetlinkMessage::NewRoute(r) => Some(r),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Missing {
                what: what.clone(),
                missing: "route",
            })?;
        let mut hop = remote;
        let mut oif = None;
        for a in route.attributes {
            match a {
                RouteAttribute::Gateway(RouteAddress::Inet(g)) => hop = g.into(),
                RouteAttribute::Gateway(RouteAddress::Inet6(g)) => hop = g.into(),
                RouteAttribute::Oif(i) => oif = Some(i),
                _ => {}
            }
        }
        let oif = oif.ok_or(NetlinkError::Missing {
            what,
            missing: "output interface",
        })?;
        Ok((hop, oif))
    }

    /// What kind of device interface `ifindex` is, as far as delivering
    /// frames to it goes.
    pub fn port_kind(&mut self, ifindex: u32) -> Result<PortKind, NetlinkError> {
        Ok(self.link(ifindex)?.port_kind())
    }

    /// What the kernel says of link `ifindex`.
    pub fn link(&mut self, ifindex: u32) -> Result<Link, NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        let what = format!("link {}", sys::ifname(ifindex));
        let answers = self.request(RouteNetlinkMessage::GetLink(m), 0, false, &what)?;
        let link = answers
            .into_iter()
            .find_map(|a| match a {
                RouteNetlinkMessage::NewLink(l) => Some(l),
                _ => None,
            })
            .ok_or(NetlinkError::Missing {
                what,
                missing: "link",
            })?;
        let mut out = Link {
            kind: None,
            ether: link.header.link_layer_type == LinkLayerType::Ether,
            peer_elsewhere: false,
            master: 0,
            headroom: 0,
        };
        for a in &link.attributes {
            match a {
                LinkAttribute::LinkInfo(infos) => {
                    out.kind = infos.iter().find_map(|i| match i {
                        LinkInfo::Kind(k) => Some(k.clone()),
                        _ => None,
                    });
                }
                // IFLA_LINK_NETNSID: only there when the peer is in
                // another namespace.
                LinkAttribute::LinkNetNsId(_) => out.peer_elsewhere = true,
                LinkAttribute::Controller(m) => out.master = *m,
                LinkAttribute::Other(nla) if nla.kind() == IFLA_HEADROOM => {
                    let mut v = [0; 2];
                    nla.emit_value(&mut v);
                    out.headroom = u16::from_ne_bytes(v);
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Makes `name`, a bridge, down.
    pub fn add_bridge(&mut self, name: &str) -> Result<(), NetlinkError> {
        let what = format!("bridge {name}");
        self.new_link(name, vec![LinkInfo::Kind(InfoKind::Bridge)], &what)
    }

    /// Makes link `name` of kind and settings `info`, down.
    fn new_link(
        &mut self,
        name: &str,
        info: Vec<LinkInfo>,
        what: &str,
    ) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        m.attributes.push(LinkAttribute::LinkInfo(info));
        self.request(
            RouteNetlinkMessage::NewLink(m),
            NLM_F_CREATE | NLM_F_EXCL,
            false,
            what,
        )
        .map(drop)
    }

    /// Makes `name`, a vxlan device of VNI `vni` on UDP port `port` from
    /// `local`, down, no learning.
    pub fn add_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        port: u16,
        local: IpAddr,
    ) -> Result<(), NetlinkError> {
        let info = vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(vni),
                InfoVxlan::Port(port),
                match local {
                    IpAddr::V4(a) => InfoVxlan::Local(a),
                    IpAddr::V6(a) => InfoVxlan::Local6(a),
                },
                InfoVxlan::Learning(false),
            ])),
        ];
        let what = format!("vxlan device {name} (VNI {vni}, UDP port {port}, from {local})");
        self.new_link(name, info, &what)
    }

    /// Makes link `ifindex` a member of `master` (0: of none).
    pub fn set_master(&mut self, ifindex: u32, master: u32) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        m.attributes.push(LinkAttribute::Controller(master));
        let what = format!(
            "link {} into {}",
            sys::ifname(ifindex),
            if master == 0 {
                "no master".to_owned()
            } else {
                sys::ifname(master)
            }
        );
        self.request(RouteNetlinkMessage::SetLink(m), 0, false, &what)
            .map(drop)
    }

    /// Makes `name`, a vxlan device in metadata mode (`external`) on UDP
    /// port `port`, down: no VNI or remote of its own, no learning; it
    /// takes zero UDP checksums over IPv6 (RFC 6935 §5: what VTEPs send)
    /// and parses VXLAN-GBP into the frames' metadata.
    pub fn add_vxlan_metadata(&mut self, name: &str, port: u16) -> Result<(), NetlinkError> {
        let info = vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::CollectMetadata(true),
                InfoVxlan::Port(port),
                InfoVxlan::Learning(false),
                InfoVxlan::UDPZeroCsumRX(true),
                InfoVxlan::Gbp,
            ])),
        ];
        let what = format!("vxlan device {name} (metadata mode, UDP port {port})");
        self.new_link(name, info, &what)
    }

    /// Brings link `ifindex` up.
    pub fn set_up(&mut self, ifindex: u32) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        let what = format!("link {} up", sys::ifname(ifindex));
        self.request(RouteNetlinkMessage::SetLink(m), 0, false, &what)
            .map(drop)
    }

    /// Removes link `ifindex` (a veth with its peer).
    pub fn delete_link(&mut self, ifindex: u32) -> Result<(), NetlinkError> {
        let mut m = LinkMessage::default();
        m.header.index = ifindex;
        let what = format!("link {}", sys::ifname(ifindex));
        self.request(RouteNetlinkMessage::DelLink(m), 0, false, &what)
            .map(drop)
    }

    /// Whether `hop` has a neighbour entry on interface `ifindex`.
    pub fn has_neighbour(&mut self, hop: IpAddr, ifindex: u32) -> Result<bool, NetlinkError> {
        let mut m = NeighbourMessage::default();
        m.header.family = family(hop);
        let what = format!("neighbours of {}", sys::ifname(ifindex));
        let answers = self.request(RouteNetlinkMessage::GetNeighbour(m), 0, true, &what)?;
        Ok(answers.into_iter().any(|a| match a {
            RouteNetlinkMessage::NewNeighbour(n) => {
                n.header.ifindex == ifindex
                    && n.attributes
                        .contains(&NeighbourAttribute::Destination(neighbour_address(hop)))
            }
            _ => false,
        }))
    }

    fn neighbour(hop: IpAddr, ifindex: u32) -> NeighbourMessage {
        let mut m = NeighbourMessage::default();
        m.header.family = family(hop);
        m.header.ifindex = ifindex;
        m.attributes
            .push(NeighbourAttribute::Destination(neighbour_address(hop)));
        m
    }

    /// Makes a managed neighbour entry for `hop` on `ifindex`.
    pub fn add_managed(&mut self, hop: IpAddr, ifindex: u32) -> Result<(), NetlinkError> {
        let mut m = Self::neighbour(hop, ifindex);
        m.header.state = NeighbourState::None;
        m.attributes
            .push(NeighbourAttribute::ExtFlags(NeighbourExtFlags::Managed));
        let what = format!(
            "managed neighbour entry for {hop} on {}",
            sys::ifname(ifindex)
        );
        self.request(
            RouteNetlinkMessage::NewNeighbour(m),
            NLM_F_CREATE | NLM_F_EXCL,
            false,
            &what,
        )
        .map(drop)
    }

    /// Removes the neighbour entry of `hop` on `ifindex`.
    pub fn delete_neighbour(&mut self, hop: IpAddr, ifindex: u32) -> Result<(), NetlinkError> {
        let what = format!("neighbour entry of {hop} on {}", sys::ifname(ifindex));
        self.request(
            RouteNetlinkMessage::DelNeighbour(Self::neighbour(hop, ifindex)),
            0,
            false,
            &what,
        )
        .map(drop)
    }
}

/// A socket that hears of changes to the host's routes, neighbours and
/// links (the rtnetlink multicast groups), for what caches their answers.
pub struct Changes {
    socket: Socket,
}

impl Changes {
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        for group in [
            libc::RTNLGRP_LINK,
            libc::RTNLGRP_NEIGH,
            libc::RTNLGRP_IPV4_ROUTE,
            libc::RTNLGRP_IPV6_ROUTE,
        ] {
            socket.add_membership(group).map_err(NetlinkError::Socket)?;
        }
        Ok(Self { socket })
    }

    /// Blocks until the kernel tells of a change (or that it dropped some
    /// for want of room, which is as good as one).
    pub fn wait(&mut self) -> Result<(), NetlinkError> {
        let mut buf = vec![0u8; 1 << 16];
        match self.socket.recv(&mut &mut buf[..], 0) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(()),
            Err(err) => Err(NetlinkError::Io {
                what: "route, neighbour and link changes".to_owned(),
                err,
            }),
        }
    }
}

/// The netlink address family of `ip`.
fn family(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

fn neighbour_address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_s_answer_is_printed_once() {
        let e = NetlinkError::Kernel {
            what: "vxlan device vtx3".to_owned(),
            err: io::Error::from_raw_os_error(libc::EEXIST),
        };
        let printed = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(
            printed,
            "vxlan device vtx3: the kernel says: File exists (os error 17)"
        );
    }
}
