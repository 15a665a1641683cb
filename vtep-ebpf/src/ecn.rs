//! ECN across the tunnel on decap (RFC 6040 §4.2), the datapath side of
//! `vtep_common::ecn`: the outer congestion mark passed on, or the packet
//! dropped. (On encap the inner dsfield is read with the flow's fields,
//! `flow::flow_key`.)

use network_types::eth::EtherType;
use vtep_common::{
    consts::{ETH_HLEN, IPV4_HLEN, IPV6_HLEN},
    counters::{Counter, DropReason},
    ecn::{self, Decap},
};

use crate::{
    maps::count,
    parse::{Vxlan, is},
    pkt,
};

/// RFC 6040 §4.2 on the inner packet of `pkt` (decap side, before its
/// outer headers go): an outer CE is passed on to an ECN-capable IP
/// packet, and a packet that is not ECN-capable under it is refused
/// (`CeNotEct`). Only an outer CE costs more than one test.
#[inline(always)]
pub fn decap(pkt: &Vxlan) -> Result<(), DropReason> {
    if pkt.outer_ds & ecn::ECN_MASK != ecn::CE {
        return Ok(());
    }
    let v4 = is(pkt.inner_type, EtherType::Ipv4);
    if !v4 && !is(pkt.inner_type, EtherType::Ipv6) {
        return Ok(());
    }
    // IP with its whole fixed header, as `model::inner_dsfield`.
    let ip = pkt.eth as usize + ETH_HLEN;
    if ip + if v4 { IPV4_HLEN } else { IPV6_HLEN } > pkt.rest.end() {
        return Ok(());
    }
    // SAFETY: the fixed header, [ip, ip + 20) at least, lies within the
    // packet, checked just above.
    let b = unsafe { pkt::read::<[u8; 2]>(ip) };
    match ecn::decap(pkt.outer_ds, Some(ecn::dsfield(v4, b))) {
        Decap::Keep => return Ok(()),
        Decap::Drop => return Err(DropReason::CeNotEct),
        Decap::MarkCe => {}
    }
    if v4 {
        let new = [b[0], b[1] | ecn::CE];
        // SAFETY: as above; the checksum follows the TOS word (RFC 1624).
        unsafe {
            pkt::write(ip, new);
            let check = u16::from_be(pkt::u16_off::<IPV4_CHECK>(ip));
            let check = ecn::checksum_update(check, u16::from_be_bytes(b), u16::from_be_bytes(new));
            pkt::put_u16_off::<IPV4_CHECK>(ip, check.to_be());
        }
    } else {
        // SAFETY: as above.
        unsafe { ((ip + 1) as *mut u8).write(b[1] | (ecn::CE << 4)) };
    }
    count(Counter::EcnCeMarked);
    Ok(())
}

/// Offset of the IPv4 header checksum.
const IPV4_CHECK: usize = 10;

const _: () = assert!(IPV4_CHECK + 2 <= IPV4_HLEN);
