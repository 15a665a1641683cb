//! Binding an interface to a VNI: forwarding on, the encap program
//! attached, the tables told; and the reverse. A failing step undoes the
//! ones before it.

use anyhow::bail;
use vtep_common::maps::{PORT_F_FWD_SET, PORT_F_PEER, PORT_F_XDP};

use super::Edit;
use crate::{
    datapath,
    netlink::{PortKind, Rtnl},
    sys,
    values::{Deliver, Vni},
};

/// The delivery port `iface` (`ifindex`) gets when `want` is asked for:
/// `auto` chosen by its kind of device, `peer` refused where the kernel
/// could not do it.
pub(super) fn delivery(iface: &str, ifindex: u32, want: Deliver) -> anyhow::Result<Deliver> {
    if !matches!(want, Deliver::Auto | Deliver::Peer) {
        return Ok(want);
    }
    let kind = Rtnl::open()?.port_kind(ifindex)?;
    Ok(match (want, kind) {
        (
            _,
            PortKind::Veth {
                peer_elsewhere: true,
            },
        ) => Deliver::Peer,
        (Deliver::Peer, _) => bail!(
            "port '{iface}' cannot take frames into its peer: it is not a veth whose peer is in \
             another network namespace (the kernel refuses a peer redirect within one); use \
             --deliver auto or skb"
        ),
        (_, PortKind::Tap) => Deliver::Xdp,
        _ => Deliver::Skb,
    })
}

impl Edit<'_> {
    /// Binds `iface` to `vni`, frames delivered as `deliver` says.
    pub fn port_add(&mut self, iface: &str, vni: Vni, deliver: Deliver) -> anyhow::Result<()> {
        let ifindex = sys::ifindex(iface)?;
        self.t.port_check(iface, ifindex, vni)?;
        let deliver = delivery(iface, ifindex, deliver)?;
        // The encap program's FIB lookup is a forwarding lookup from the
        // port, in the underlay's family (see vtep-ebpf/src/encap.rs,
        // `next_hop`).
        let family = self.t.local_ip().ip();
        let fwd_was_on = sys::set_forwarding(iface, family, true)?;
        let mut flags = match deliver {
            Deliver::Xdp => PORT_F_XDP,
            Deliver::Peer => PORT_F_PEER,
            Deliver::Skb | Deliver::Auto => 0,
        };
        if !fwd_was_on {
            flags |= PORT_F_FWD_SET;
        }
        let result = datapath::attach_port(self.inst, iface, ifindex).and_then(|()| {
            self.t
                .port_add(iface, ifindex, vni, flags)
                .map_err(anyhow::Error::from)
                .inspect_err(|_| {
                    if let Err(e) = datapath::detach_port(self.inst, ifindex) {
                        log::warn!("cannot undo the attachment to '{iface}': {e:#}");
                    }
                })
        });
        if result.is_err() && !fwd_was_on {
            sys::set_forwarding(iface, family, false)?;
        }
        result
    }

    /// Unbinds `iface`: tables first, then the attachment, then the
    /// forwarding flag `port_add` set.
    pub fn port_del(&mut self, iface: &str) -> anyhow::Result<()> {
        let ifindex = sys::ifindex(iface)?;
        if !self.unbind(ifindex)? {
            bail!(
                "interface '{iface}' is not a port of instance '{}'",
                self.inst.name
            );
        }
        Ok(())
    }

    /// Unbinds port `ifindex` (whose interface may be gone); whether it
    /// was bound.
    pub(super) fn unbind(&mut self, ifindex: u32) -> anyhow::Result<bool> {
        let Some(port) = self.t.port_del(ifindex)? else {
            return Ok(false);
        };
        datapath::detach_port(self.inst, ifindex)?;
        if port.flags & PORT_F_FWD_SET != 0 {
            let iface = sys::ifname(ifindex);
            if let Err(e) = sys::set_forwarding(&iface, self.t.local_ip().ip(), false) {
                log::warn!("port '{iface}' unbound, but forwarding stays on: {e:#}");
            }
        }
        Ok(true)
    }
}
