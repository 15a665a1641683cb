//! Binding an interface to a VNI: forwarding on, the encap program
//! attached, the tables told, room made for outer headers in front of
//! its VM's frames (`headroom`); and the reverse. A failing step undoes the
//! ones before it.

use anyhow::bail;
use vtep_common::maps::{PORT_F_FWD_SET, PORT_F_PEER, PORT_F_XDP, PortKey};

use super::{Edit, plan::PortPlan};
use crate::{
    datapath, headroom,
    netlink::{PortKind, Rtnl},
    sys,
    values::{Deliver, Vid},
};

/// The delivery port `iface` (`ifindex`) gets when `want` is asked for
/// on an instance that has XDP on its underlay (`xdp`) or not: `auto`
/// chosen by its kind of device, `peer` refused where the kernel could not
/// do it, `xdp` where no XDP decapsulates.
pub(super) fn delivery(
    iface: &str,
    ifindex: u32,
    want: Deliver,
    xdp: bool,
) -> anyhow::Result<Deliver> {
    if want == Deliver::Xdp && !xdp {
        bail!(
            "port '{iface}' cannot take frames from XDP: this instance decapsulates in TC, with \
             no XDP on its underlay; use --deliver auto, peer or skb (or bring the instance up \
             with --xdp-mode native)"
        );
    }
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
        (_, PortKind::Tap) if xdp => Deliver::Xdp,
        _ => Deliver::Skb,
    })
}

impl Edit<'_> {
    /// Binds `p.iface` (its untagged frames, or VLAN `p.vid` of it as a
    /// trunk) to `p.vni`, frames delivered as `p.deliver` says, with
    /// default group `p.group`. The port's first binding attaches the
    /// encap program and turns forwarding on.
    pub fn port_add(&mut self, p: &PortPlan) -> anyhow::Result<()> {
        let (iface, vid, vni) = (p.iface.as_str(), p.vid, p.vni);
        let ifindex = sys::ifindex(iface)?;
        self.t.port_check(iface, (ifindex, vid), vni)?;
        let deliver = delivery(iface, ifindex, p.deliver, self.t.has_xdp())?;
        let first = self.t.bindings(ifindex)?.is_empty();
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
        let attached = if first {
            datapath::attach_port(self.inst, iface, ifindex)
        } else {
            Ok(())
        };
        let result = attached.and_then(|()| {
            self.t
                .port_add(iface, (ifindex, vid), vni, (flags, p.group))
                .map_err(anyhow::Error::from)
                .inspect_err(|_| {
                    if first && let Err(e) = datapath::detach_port(self.inst, ifindex) {
                        log::warn!("cannot undo the attachment to '{iface}': {e:#}");
                    }
                })
        });
        if result.is_err() && !fwd_was_on {
            sys::set_forwarding(iface, family, false)?;
        }
        result?;
        if first && let Err(e) = headroom::raise(self.t.underlay_ifindex(), family, ifindex) {
            log::warn!("{e}");
        }
        Ok(())
    }

    /// Unbinds VLAN `vid` of `iface` (0: its untagged frames), or every
    /// binding of it when `vid` is `None`.
    pub fn port_del(&mut self, iface: &str, vid: Option<Vid>) -> anyhow::Result<()> {
        let ifindex = sys::ifindex(iface)?;
        let keys: Vec<PortKey> = match vid {
            Some(v) => vec![PortKey::new(ifindex, v.get())],
            None => self
                .t
                .bindings(ifindex)?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
        };
        let mut any = false;
        for key in keys {
            any |= self.unbind(key)?;
        }
        if !any {
            bail!(
                "interface '{iface}'{} is not a port of instance '{}'",
                vid.unwrap_or_default().suffix(),
                self.inst.name
            );
        }
        Ok(())
    }

    /// Unbinds `key` (whose interface may be gone); whether it was bound.
    /// The port's last binding takes the attachment and the forwarding
    /// flag `port_add` set with it; until then another binding keeps the
    /// flag's record.
    pub(super) fn unbind(&mut self, key: PortKey) -> anyhow::Result<bool> {
        let Some(port) = self.t.port_del(key)? else {
            return Ok(false);
        };
        let fwd_set = port.flags & PORT_F_FWD_SET != 0;
        if let Some((other, _)) = self.t.bindings(key.ifindex)?.first() {
            if fwd_set {
                self.t.port_flags_add(*other, PORT_F_FWD_SET)?;
            }
            return Ok(true);
        }
        datapath::detach_port(self.inst, key.ifindex)?;
        headroom::release(self.t.underlay_ifindex(), key.ifindex);
        if fwd_set {
            let iface = sys::ifname(key.ifindex);
            if let Err(e) = sys::set_forwarding(&iface, self.t.local_ip().ip(), false) {
                log::warn!("port '{iface}' unbound, but forwarding stays on: {e:#}");
            }
        }
        Ok(true)
    }
}
