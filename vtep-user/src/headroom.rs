//! Room for the outer headers in front of a VM's frames.
//!
//! The encap program pushes 50 bytes of outer headers (70 over IPv6) in
//! front of a frame a VM sent. A VM's stack reserves in front of its
//! frames what its interface asks for (`needed_headroom`): nothing on a
//! veth or tap as they come, so a UDP or ICMP frame has 16 bytes or so
//! and every one of them is copied into a larger buffer first
//! (`pskb_expand_head`: some 45 ns of the encap program's 135 with a VM's
//! skbs, measured). TCP reserves room for headers of its own and is not
//! concerned.
//!
//! The kernel lets only a master device raise a port's headroom
//! (`ndo_set_rx_headroom`, which veth and tun pass on to the VM's side):
//! the bridge does, to the largest any of its members needs, which is how
//! the kernel's vxlan behind a bridge avoids the copy. So does this
//! module: each instance has a bridge `vth<N>` (`N` the underlay's
//! ifindex) that is never up, whose one other member is a vxlan device
//! `vthx<N>`, never up either (no socket), that asks for room for its
//! outer headers: 64 bytes over IPv4, 84 over IPv6. A veth or tap port
//! that has no master becomes a member when it is bound (the VM's frames
//! then have room for the outer headers) and stops being one when its
//! last binding goes; the instance takes both devices down with it.
//!
//! The bridge never sees a frame: the encap program on the port's TC
//! ingress redirects or drops every frame before a master's receive
//! handler could take it, and a member of a bridge that is down forwards
//! nothing. Neither device speaks IPv6 of its own: were the bridge
//! brought up by someone, it would not send router solicitations or
//! MLD reports out to the VMs. A port that already has a master (a bridge of the host's, an
//! Open vSwitch) is left alone.

use std::net::IpAddr;

use netlink_packet_route::link::InfoKind;

use crate::{
    netlink::{Link, PortKind, Rtnl},
    sys,
};

/// The UDP port the vxlan device would use (never up, it never does):
/// one no VXLAN device of the host's is on, so that its VNI, the
/// underlay's ifindex, cannot clash with one of theirs.
const HOLDER_UDP_PORT: u16 = 1;

/// The bridge of the instance on underlay `underlay_ifindex`.
pub fn bridge_name(underlay_ifindex: u32) -> String {
    format!("vth{underlay_ifindex}")
}

/// The vxlan device in it.
fn holder_name(underlay_ifindex: u32) -> String {
    format!("vthx{underlay_ifindex}")
}

/// Why a port's headroom was not raised.
#[derive(Debug, thiserror::Error)]
pub enum Kept {
    #[error(
        "port '{port}' is a member of '{master}' already: only a master raises the room a VM \
         leaves for headers, and the encap program copies each of its UDP and ICMP frames \
         into a larger buffer (`ip link set {port} nomaster` and bind it again to change that)"
    )]
    HasMaster { port: String, master: String },
    #[error("cannot raise the headroom of port '{port}': {reason}")]
    Failed { port: String, reason: String },
}

/// Makes port `port` (a veth or tap) a member of the instance's bridge,
/// made with its vxlan device where missing (`local`: the underlay's
/// address, whose family sizes the outer headers). Other kinds of
/// ports are left as they are: their VMs' frames come with what their
/// driver leaves.
pub fn raise(underlay_ifindex: u32, local: IpAddr, port: u32) -> Result<(), Kept> {
    let failed = |e: &dyn std::fmt::Display| Kept::Failed {
        port: sys::ifname(port),
        reason: e.to_string(),
    };
    let mut rtnl = Rtnl::open().map_err(|e| failed(&e))?;
    let link = rtnl.link(port).map_err(|e| failed(&e))?;
    if !matches!(link.port_kind(), PortKind::Veth { .. } | PortKind::Tap) {
        return Ok(());
    }
    if in_bridge(underlay_ifindex, &link) {
        return Ok(());
    }
    if link.master != 0 {
        return Err(Kept::HasMaster {
            port: sys::ifname(port),
            master: sys::ifname(link.master),
        });
    }
    let br = holder(&mut rtnl, underlay_ifindex, local).map_err(|e| failed(&e))?;
    rtnl.set_master(port, br).map_err(|e| failed(&e))
}

/// Takes port `port` out of the instance's bridge, if it is a member (a
/// port gone, or moved to a master of the operator's, is left alone).
pub fn release(underlay_ifindex: u32, port: u32) {
    if !raised(underlay_ifindex, port) {
        return;
    }
    if let Err(e) = Rtnl::open().and_then(|mut r| r.set_master(port, 0)) {
        log::warn!(
            "port '{}' stays in its headroom bridge: {e}",
            sys::ifname(port)
        );
    }
}

/// Whether port `port` is a member of the instance's bridge.
pub fn raised(underlay_ifindex: u32, port: u32) -> bool {
    Rtnl::open()
        .and_then(|mut r| r.link(port))
        .is_ok_and(|l| in_bridge(underlay_ifindex, &l))
}

/// Whether `link`'s master is the instance's bridge.
fn in_bridge(underlay_ifindex: u32, link: &Link) -> bool {
    link.master != 0 && sys::ifname(link.master) == bridge_name(underlay_ifindex)
}

/// Removes the instance's bridge and vxlan device, where they are (each
/// by name, and only if it is of its kind); a failure is only logged.
pub fn remove(underlay_ifindex: u32) {
    let Ok(mut rtnl) = Rtnl::open() else {
        return;
    };
    for (name, kind) in [
        (bridge_name(underlay_ifindex), InfoKind::Bridge),
        (holder_name(underlay_ifindex), InfoKind::Vxlan),
    ] {
        let Ok(ifindex) = sys::ifindex(&name) else {
            continue;
        };
        if is(&mut rtnl, ifindex, &kind)
            && let Err(e) = rtnl.delete_link(ifindex)
        {
            log::warn!("the headroom device {name} stays: {e}");
        }
    }
}

/// The instance's bridge: its ifindex, made with its vxlan device if
/// missing (nothing left behind on failure).
fn holder(rtnl: &mut Rtnl, underlay_ifindex: u32, local: IpAddr) -> anyhow::Result<u32> {
    let bridge = bridge_name(underlay_ifindex);
    if let Ok(br) = sys::ifindex(&bridge) {
        if !is(rtnl, br, &InfoKind::Bridge) {
            anyhow::bail!(
                "'{bridge}' is not this instance's bridge (`ip link del {bridge}` if it is left \
                 from an instance gone)"
            );
        }
        return Ok(br);
    }
    let vx = holder_name(underlay_ifindex);
    let made = (|| -> anyhow::Result<u32> {
        rtnl.add_bridge(&bridge)?;
        rtnl.add_vxlan(&vx, underlay_ifindex & 0xff_ffff, HOLDER_UDP_PORT, local)?;
        for dev in [&bridge, &vx] {
            sys::disable_ipv6(dev)?;
        }
        let br = sys::ifindex(&bridge)?;
        rtnl.set_master(sys::ifindex(&vx)?, br)?;
        Ok(br)
    })();
    if made.is_err() {
        remove(underlay_ifindex);
    }
    made
}

/// Whether link `ifindex` is of kind `kind`.
fn is(rtnl: &mut Rtnl, ifindex: u32, kind: &InfoKind) -> bool {
    rtnl.link(ifindex)
        .is_ok_and(|l| l.kind.as_ref() == Some(kind))
}
