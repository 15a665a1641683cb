//! 802.1Q on ports (TC): the VLAN a frame from a trunk came in with, and
//! the tag a binding's frames leave with.
//!
//! A port binding is (port, VID), VID 0 standing for untagged frames (as
//! OVSDB `hardware_vtep`'s `vlan_bindings` key 0). On receipt the kernel
//! has usually moved the tag into the skb (`skb_vlan_untag` runs before TC
//! ingress): `vlan_present`/`vlan_tci`/`vlan_proto`; a tag still in the
//! frame (BPF_PROG_TEST_RUN builds the skb without untagging it) is read
//! there. Either way `bpf_skb_vlan_pop` removes it, so what follows sees
//! the frame as an access port's. Towards a binding the tag is pushed
//! into the skb (`bpf_skb_vlan_push`, accelerated: the device or the
//! kernel writes it on transmit, and a peer redirect keeps it).
//!
//! A VID 0 tag (priority tagged, IEEE 802.1Q §9.6) is the port's untagged
//! traffic. An 802.1ad (0x88a8) outer tag is refused: bindings are 802.1Q
//! VLANs (no QinQ). A second tag behind the first is RFC 7348 §6.1's
//! inner tag, refused here too (`take_ingress`).

use aya_ebpf::{
    helpers::{bpf_skb_vlan_pop, bpf_skb_vlan_push},
    programs::TcContext,
};
use vtep_common::{
    consts::{ETH_P_8021AD, ETH_P_8021Q, VID_MASK},
    counters::DropReason,
};

use crate::parse::read;

/// Where a tag's TPID (or the EtherType) is: behind the two MACs.
const TPID_AT: usize = 12;

/// The VID a frame from a port came in with (0: untagged or priority
/// tagged), its tag removed from the skb. Errors: an 802.1ad tag
/// (`Qinq`); a second 802.1Q tag behind the first (`InnerVlan`); the
/// kernel refusing the pop.
#[inline(always)]
pub fn take_ingress(ctx: &TcContext) -> Result<u16, DropReason> {
    let skb = ctx.skb.skb;
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    let (present, proto, tci) =
        unsafe { ((*skb).vlan_present, (*skb).vlan_proto, (*skb).vlan_tci) };
    let vid = if present != 0 {
        // `vlan_proto` holds the on-wire (big-endian) TPID.
        if proto == u32::from(ETH_P_8021AD.to_be()) {
            return Err(DropReason::Qinq);
        }
        tci as u16 & VID_MASK
    } else {
        let tpid: [u8; 2] = read(ctx, TPID_AT).ok_or(DropReason::InnerTooShort)?;
        match u16::from_be_bytes(tpid) {
            ETH_P_8021Q => {
                let tci: [u8; 2] = read(ctx, TPID_AT + 2).ok_or(DropReason::InnerTooShort)?;
                u16::from_be_bytes(tci) & VID_MASK
            }
            ETH_P_8021AD => return Err(DropReason::Qinq),
            _ => return Ok(0),
        }
    };
    // SAFETY: `skb` as above; the helper checks the frame itself.
    if unsafe { bpf_skb_vlan_pop(skb) } != 0 {
        return Err(DropReason::KernelRefused);
    }
    // The pop moves a tag behind the first into the skb.
    // SAFETY: as above.
    if unsafe { (*skb).vlan_present } != 0 {
        return Err(DropReason::InnerVlan);
    }
    Ok(vid)
}

/// Gives the skb binding `vid`'s tag (nothing for 0); whether the kernel
/// took it.
#[inline(always)]
pub fn push(ctx: &TcContext, vid: u16) -> bool {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    vid == 0 || unsafe { bpf_skb_vlan_push(ctx.skb.skb, ETH_P_8021Q.to_be(), vid) } == 0
}

/// Takes the tag [`push`] gave back off the skb; whether the kernel did.
#[inline(always)]
pub fn pop(ctx: &TcContext, vid: u16) -> bool {
    // SAFETY: `skb` is the __sk_buff the kernel passed to the program.
    vid == 0 || unsafe { bpf_skb_vlan_pop(ctx.skb.skb) } == 0
}
