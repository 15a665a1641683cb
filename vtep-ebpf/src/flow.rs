//! What the outer headers take from the inner packet (encap, TC): the
//! flow's hash (outer UDP source port, IPv6 flow label; RFC 7348 §5, RFC
//! 6438) and the outer dsfield (RFC 6040 §4.1), read together.

use aya_ebpf::programs::TcContext;
use network_types::{eth::EtherType, ip::IpProto};
use vtep_common::{
    consts::{ETH_HLEN, IPV6_HLEN},
    ecn::{dsfield, outer_dsfield},
    vxlan::{FlowKey, flow_hash},
};

use crate::{
    maps::set_outer_ds,
    parse::{IPV4_MF, is, read},
};

/// What the outer headers take from the inner packet of EtherType
/// `ether_type` (on-wire) and MACs `macs`: the flow's hash (outer UDP
/// source port, IPv6 flow label), returned, and the outer dsfield under
/// the VNI's TOS setting `tos` (RFC 6040 §4.1), left in `OUTER_DS` (see
/// there for why not returned). Not inlined, and computed here rather
/// than by the caller: only a word comes back (a key returned through the
/// stack, and the MACs taken byte by byte from it again, cost ~10 ns a
/// frame, measured). The MACs come as words (`Macs::lo`, `Macs::hi`, read
/// from the packet once): taken from a header on the stack, they were
/// loaded, spilled and put together again byte by byte.
#[inline(never)]
pub fn inner_flow(ctx: &TcContext, ether_type: u16, tos: u32, lo: u64, hi: u32) -> u32 {
    let (mut key, inner_ds) = flow_key(ctx, ether_type);
    key.macs = [lo as u32, (lo >> 32) as u32, hi];
    set_outer_ds(outer_dsfield(tos, inner_ds));
    flow_hash(&key)
}

/// The inner fields hashed into the outer UDP source port (and the IPv6
/// flow label), as vtep-common's `model::flow_key` takes them, and the
/// inner packet's dsfield as `model::inner_dsfield` (IP with its whole
/// fixed header; read with the fields, not by a read of its own: each
/// read multiplies the paths the verifier walks).
#[inline(always)]
fn flow_key(ctx: &TcContext, ether_type: u16) -> (FlowKey, Option<u8>) {
    let mut k = FlowKey {
        macs: [0; 3],
        saddr: 0,
        daddr: 0,
        ports: 0,
        proto: 0,
    };
    if is(ether_type, EtherType::Ipv6) {
        // A header cut short is hashed by its MACs alone.
        if (ctx.len() as usize) < ETH_HLEN + IPV6_HLEN {
            return (k, None);
        }
        let word = |at: usize| read::<u32>(ctx, ETH_HLEN + at).unwrap_or(0);
        let Some(first) = read::<[u8; 8]>(ctx, ETH_HLEN) else {
            return (k, None);
        };
        let next = first[6];
        k.saddr = word(8) ^ word(12) ^ word(16) ^ word(20);
        k.daddr = word(24) ^ word(28) ^ word(32) ^ word(36);
        k.proto = u32::from(next);
        if next == IpProto::Tcp as u8 || next == IpProto::Udp as u8 {
            k.ports = word(IPV6_HLEN);
        }
        return (k, Some(dsfield(false, [first[0], first[1]])));
    }
    if !is(ether_type, EtherType::Ipv4) {
        return (k, None);
    }
    // The whole header, as on-wire bytes in little-endian words:
    // version/IHL is byte 0 of the first, flags/fragment offset bytes 2..4
    // of the second, the protocol byte 1 of the third. One read: a read
    // per word multiplies the paths the verifier walks (tried: over its
    // million instructions).
    let Some([w0, w1, w2, saddr, daddr]) = read::<[u32; 5]>(ctx, ETH_HLEN) else {
        return (k, None);
    };
    let ds = Some(dsfield(true, [w0 as u8, (w0 >> 8) as u8]));
    let proto = (w2 >> 8) as u8;
    k.saddr = saddr;
    k.daddr = daddr;
    k.proto = u32::from(proto);
    // Fragment offset and MF (RFC 791 §3.1): only an unfragmented packet
    // has its ports where they are looked for.
    let frag = u16::from_be_bytes([(w1 >> 16) as u8, (w1 >> 24) as u8]);
    let not_fragment = frag & 0x1fff == 0 && (frag >> 13) as u8 & IPV4_MF == 0;
    if not_fragment && (proto == IpProto::Tcp as u8 || proto == IpProto::Udp as u8) {
        let l4 = ETH_HLEN + usize::from(w0 as u8 & 0x0f) * 4;
        if let Some(ports) = read::<u32>(ctx, l4) {
            k.ports = ports;
        }
    }
    (k, ds)
}
