//! Bounds-checked header parsing over packet memory (XDP and TC direct
//! packet access), on `network-types` headers: a cursor that advances one
//! header at a time, reads at an offset of an skb, and the parse of a
//! whole VXLAN packet for us (outer Ethernet, IPv4 or IPv6, UDP, VXLAN,
//! inner Ethernet) in one place.
//!
//! Byte order: EtherTypes are compared on-wire (`EtherType::X as u16` is
//! the on-wire value); addresses stay in on-wire bytes.

use core::mem::{offset_of, size_of};

use aya_ebpf::programs::TcContext;
use network_types::{
    eth::{EthHdr, EtherType},
    ip::{IpProto, Ipv4Hdr, Ipv6Hdr},
    udp::UdpHdr,
    vxlan::{VXLAN_I_FLAG_MASK, VxlanHdr},
};
use vtep_common::{
    addr::Addr,
    consts::{ETH_HLEN, IPV4_HLEN, IPV6_HLEN, UDP_HLEN, VXLAN_HLEN},
    counters::DropReason,
    ecn,
    maps::Config,
    vxlan::ipv4_header_ok,
};

use crate::{
    maps::{Dropped, NO_SLOT},
    pkt,
};

/// A `T` at `offset` in the frame of `ctx`: read straight from the skb's
/// linear data when it lies there (no helper call), else copied out by
/// `bpf_skb_load_bytes` (headers in paged data); `None` past the end of
/// the frame. Precondition: `T` is plain bytes; `offset` is a constant or
/// bounded (the verifier checks the access).
#[inline(always)]
pub fn read<T: Copy>(ctx: &TcContext, offset: usize) -> Option<T> {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + offset + size_of::<T>() <= end {
        // SAFETY: [data + offset, + size_of::<T>()) lies within the linear
        // data, checked just above; `T` is plain bytes.
        return Some(unsafe { pkt::read(data + offset) });
    }
    ctx.load(offset).ok()
}

/// A position in packet memory, between `data` and `data_end`.
pub struct Cursor {
    pos: usize,
    end: usize,
}

impl Cursor {
    /// A cursor at `start`; `end` is the packet's `data_end`.
    #[inline(always)]
    pub fn new(start: usize, end: usize) -> Self {
        Self { pos: start, end }
    }

    /// The current position (the start of the next header).
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The packet's end (`data_end`).
    #[inline(always)]
    pub fn end(&self) -> usize {
        self.end
    }

    /// The next header as `T`, or `None` if the packet ends before it.
    /// Precondition: `T` is a `#[repr(C)]` header type; the pointer may be
    /// unaligned, read fields through it only (no references to wider
    /// fields).
    #[inline(always)]
    pub fn next<T>(&mut self) -> Option<*const T> {
        let start = self.pos;
        if start + size_of::<T>() > self.end {
            return None;
        }
        self.pos = start + size_of::<T>();
        Some(start as *const T)
    }

    /// The next header as `T` without moving past it, or `None` if the
    /// packet ends before it (same precondition as [`Cursor::next`]).
    #[inline(always)]
    pub fn peek<T>(&self) -> Option<*const T> {
        if self.pos + size_of::<T>() > self.end {
            return None;
        }
        Some(self.pos as *const T)
    }

    /// Skips `len` bytes (at most 40, IPv4 options), or `None` past the end.
    #[inline(always)]
    pub fn skip(&mut self, len: usize) -> Option<()> {
        let len = len & 0x3f;
        if self.pos + len > self.end {
            return None;
        }
        self.pos += len;
        Some(())
    }
}

/// The 4 bytes at `at` as an on-wire word, if they lie before `end`
/// (direct packet access; the read is unaligned).
#[inline(always)]
pub fn word_at(at: usize, end: usize) -> Option<u32> {
    if at + 4 > end {
        return None;
    }
    // SAFETY: [at, at + 4) lies before the packet's end, checked just
    // above, and `at` is at or after its start (the caller's header).
    Some(unsafe { pkt::u32_at(at) })
}

/// Whether a MAC is a group (broadcast or multicast) address: the I/G bit.
#[inline(always)]
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// Whether an on-wire EtherType is `t`.
#[inline(always)]
pub fn is(ether_type: u16, t: EtherType) -> bool {
    ether_type == t as u16
}

/// Whether an on-wire EtherType is a VLAN tag (802.1Q or 802.1ad).
#[inline(always)]
pub fn is_vlan(ether_type: u16) -> bool {
    is(ether_type, EtherType::Ieee8021q) || is(ether_type, EtherType::Ieee8021ad)
}

/// The inner IPv4 header of a frame whose EtherType says IPv4, if the
/// frame is long enough for one (the one place it is read, for the
/// flow hash, the GSO size check and the ICMP answer; its
/// version is for the caller to judge).
#[inline(always)]
pub fn inner_ipv4(ctx: &TcContext, eth: &EthHdr) -> Option<Ipv4Hdr> {
    if !is(eth.ether_type, EtherType::Ipv4) {
        return None;
    }
    read::<Ipv4Hdr>(ctx, ETH_HLEN)
}

/// IPv4 "more fragments" flag, in `Ipv4Hdr::frag_flags` (RFC 791 §3.1).
pub const IPV4_MF: u8 = 1;
/// IPv4 "don't fragment" flag, in `Ipv4Hdr::frag_flags`.
pub const IPV4_DF: u8 = 2;

/// A VXLAN packet for this VTEP, parsed up to its inner Ethernet header.
pub struct Vxlan {
    /// The outer source address: the sending VTEP.
    pub saddr: Addr,
    /// The VNI.
    pub vni: u32,
    /// The inner Ethernet header (its 14 bytes are within the packet).
    pub eth: *const EthHdr,
    /// The inner EtherType, on-wire.
    pub inner_type: u16,
    /// Bytes of outer headers in front of the inner frame.
    pub strip: usize,
    /// Length of the inner frame.
    pub inner_len: u32,
    /// Just after the inner Ethernet header.
    pub rest: Cursor,
    /// The outer IP header's dsfield (DSCP and ECN).
    pub outer_ds: u8,
    /// The VXLAN header's first word (flags and, with VXLAN-GBP, the
    /// group), on-wire bytes.
    pub vx: u32,
}

/// Parses the packet at `data` as VXLAN to this VTEP (`cfg`): its headers
/// within `[data, end)` (XDP: the frame; TC: the skb's linear data), its
/// lengths checked against `len`, the whole frame's (an skb's may go on
/// in paged data).
/// `Ok(None)` for anything else (left to the kernel: not of our underlay
/// family, not to our address or UDP port, a later IPv4 fragment, an IPv6
/// extension header, headers cut short before the UDP port), a counted
/// drop for VXLAN to us that is wrong (RFC 7348 §4.3, §5).
#[inline(always)]
pub fn vxlan(data: usize, end: usize, len: usize, cfg: &Config) -> Result<Option<Vxlan>, Dropped> {
    let last = data + len;
    let mut c = Cursor::new(data, end);
    let Some(eth) = c.next::<EthHdr>() else {
        return Ok(None);
    };
    // SAFETY: `next` checked that the header lies within the packet.
    let ty = unsafe { (*eth).ether_type };
    let saddr = if cfg.local_ip.is_v4() {
        if !is(ty, EtherType::Ipv4) {
            return Ok(None);
        }
        ipv4_udp(&mut c, (data, last), cfg)?
    } else {
        if !is(ty, EtherType::Ipv6) {
            return Ok(None);
        }
        ipv6_udp(&mut c, (data, last), cfg)?
    };
    let Some(saddr) = saddr else {
        return Ok(None);
    };
    // VXLAN for us from here on: the UDP length was checked to cover the
    // VXLAN and inner Ethernet headers within the packet.
    let malformed = (DropReason::Malformed, NO_SLOT);
    let at = c.next::<VxlanHdr>().ok_or(malformed)? as usize;
    // SAFETY: as above: the header's two words lie within the packet.
    let (vx, vni) = unsafe {
        (
            pkt::u32_at(at),
            pkt::u32_off::<{ offset_of!(VxlanHdr, vni) }>(at),
        )
    };
    // RFC 7348 §5: the I flag MUST be set; reserved bits are ignored on
    // receipt.
    if vx as u8 & VXLAN_I_FLAG_MASK == 0 {
        return Err((DropReason::NoIFlag, NO_SLOT));
    }
    // The VNI: the first 3 bytes of the second word (RFC 7348 §5).
    let vni = u32::from_be(vni) >> 8;
    // The outer IP header was parsed; the check is for the verifier.
    if data + ETH_HLEN + 2 > end {
        return Err(malformed);
    }
    // SAFETY: [data + 14, data + 16) lies within the packet, checked.
    let ip = unsafe { pkt::read::<[u8; 2]>(data + ETH_HLEN) };
    let outer_ds = ecn::dsfield(cfg.local_ip.is_v4(), ip);
    // The check is for the verifier.
    let inner = c.next::<EthHdr>().ok_or(malformed)?;
    let inner_start = c.pos() - ETH_HLEN;
    Ok(Some(Vxlan {
        saddr,
        vni,
        eth: inner,
        // SAFETY: as above.
        inner_type: unsafe { (*inner).ether_type },
        strip: inner_start - data,
        inner_len: (last - inner_start) as u32,
        rest: c,
        outer_ds,
        vx,
    }))
}

/// The UDP header at `c`: its length if it is to our port (the cursor
/// then after it), `None` otherwise.
#[inline(always)]
fn udp_to_us(c: &mut Cursor, cfg: &Config) -> Option<usize> {
    let udp = c.next::<UdpHdr>()? as usize;
    // SAFETY: `next` checked that the header lies within the packet.
    let (dst, len) = unsafe {
        (
            pkt::u16_off::<{ offset_of!(UdpHdr, dst) }>(udp),
            pkt::u16_off::<{ offset_of!(UdpHdr, len) }>(udp),
        )
    };
    (dst == cfg.udp_port.to_be()).then(|| usize::from(u16::from_be(len)))
}

/// Whether a UDP length lies: shorter than VXLAN with an inner Ethernet
/// header, or longer than the `avail` bytes from the UDP header on.
#[inline(always)]
fn bad_udp_len(udp_len: usize, avail: usize) -> bool {
    udp_len < UDP_HLEN + VXLAN_HLEN + ETH_HLEN || udp_len > avail
}

/// The outer IPv4 and UDP headers at `c` (just after the outer Ethernet
/// header of the packet at `data`, whose last byte is before `last`): the
/// sender if they carry UDP to our address and port, the cursor then after
/// the UDP header.
#[inline(always)]
fn ipv4_udp(
    c: &mut Cursor,
    (data, last): (usize, usize),
    cfg: &Config,
) -> Result<Option<Addr>, Dropped> {
    let Some(ip) = c.next::<Ipv4Hdr>() else {
        return Ok(None);
    };
    let at = ip as usize;
    // SAFETY: `next` checked that the header lies within the packet.
    let (ip, [saddr, daddr], frags) = unsafe {
        (
            &*ip,
            [
                pkt::u32_off::<{ offset_of!(Ipv4Hdr, src_addr) }>(at),
                pkt::u32_off::<{ offset_of!(Ipv4Hdr, dst_addr) }>(at),
            ],
            u16::from_be(pkt::u16_off::<{ offset_of!(Ipv4Hdr, frags) }>(at)),
        )
    };
    // Our address is IPv4 (the caller checked): one word to compare.
    if ip.version() != 4 || daddr != cfg.local_ip.v4_word() || ip.proto != IpProto::Udp as u8 {
        return Ok(None);
    }
    // A later fragment carries no UDP header: the kernel's business
    // (flags and fragment offset, RFC 791 §3.1).
    if frags & 0x1fff != 0 {
        return Ok(None);
    }
    let ihl = usize::from(ip.ihl());
    if ihl < IPV4_HLEN {
        return Ok(None);
    }
    // The options' sum first: after the skip's and the UDP header's
    // checks, LLVM drops the first option words' own checks (the UDP
    // header's end covers them), which the verifier needs (tried: summing
    // with the checksum's test below is refused, "R9 offset is outside of
    // the packet").
    // SAFETY: the header's first bytes lie within the packet (`next`).
    let Some(options) = (unsafe { options_sum(at, c.end()) }) else {
        return Ok(None);
    };
    if c.skip(ihl - IPV4_HLEN).is_none() {
        return Ok(None);
    }
    let Some(udp_len) = udp_to_us(c, cfg) else {
        return Ok(None);
    };
    // A bad header checksum: discarded (RFC 1122 §3.2.1.2), as the
    // kernel's IP layer would. A first fragment (MF set): VTEPs never
    // fragment (RFC 7348 §4.3), and we do not reassemble. TTL 0 never
    // arrives from a real sender.
    // Lengths that lie are malformed: a UDP length beyond the frame or
    // beyond the IPv4 total length, and a total length claiming more than
    // the frame holds (shorter is Ethernet padding: fine).
    // SAFETY: as above.
    let tot_len = usize::from(u16::from_be(unsafe {
        pkt::u16_off::<{ offset_of!(Ipv4Hdr, tot_len) }>(at)
    }));
    // SAFETY: as above.
    let sum = unsafe { fixed_sum(at) } + options;
    if !ipv4_header_ok(sum)
        || (frags >> 13) as u8 & IPV4_MF != 0
        || ip.ttl == 0
        || bad_udp_len(udp_len, last - (c.pos() - UDP_HLEN))
        || tot_len < ihl + udp_len
        || tot_len > last - (data + ETH_HLEN)
    {
        return Err((DropReason::Malformed, NO_SLOT));
    }
    Ok(Some(Addr::v4(saddr)))
}

/// The sum of the 5 32-bit words of the fixed IPv4 header at `at`, as
/// [`ipv4_header_ok`] takes it with the options'.
///
/// # Safety
/// `[at, at + 20)` lies within the packet.
#[inline(always)]
unsafe fn fixed_sum(at: usize) -> u64 {
    // SAFETY: the caller guarantees the 20 bytes lie within the packet.
    unsafe {
        pkt::u32_wide_off::<0>(at)
            + pkt::u32_wide_off::<4>(at)
            + pkt::u32_wide_off::<8>(at)
            + pkt::u32_wide_off::<12>(at)
            + pkt::u32_wide_off::<16>(at)
    }
}

/// The sum of the words of the options of the IPv4 header at `at` (its
/// IHL at least 5; at most 10 words of options, RFC 791 §3.1), or `None`
/// if the packet (before `end`) ends first.
///
/// The IHL is read here again, not taken from the caller: the loop's
/// tests narrow the range the verifier knows of the value they test, and
/// narrowed differently on each of the loop's 11 ways out, the caller's
/// IHL (and the cursor moved by it) would split every later state of the
/// program eleven ways (`vtep_decap_tc` then ran past the verifier's
/// million instructions).
///
/// # Safety
/// `[at, at + 2)` lies within the packet.
#[inline(always)]
unsafe fn options_sum(at: usize, end: usize) -> Option<u64> {
    // The IHL: the low half of the first byte, the low one of a
    // little-endian load.
    // SAFETY: the caller guarantees the 2 bytes lie within the packet.
    let words = usize::from(unsafe { pkt::u16_at(at) } & 0x0f);
    let mut sum = 0;
    for w in IPV4_HLEN / 4..15 {
        if w >= words {
            break;
        }
        sum += u64::from(word_at(at + 4 * w, end)?);
    }
    Some(sum)
}

/// As [`ipv4_udp`] for an outer IPv6 header (RFC 8200). Only UDP right
/// after the fixed header is ours: a packet with extension headers is
/// passed to the kernel untouched. The UDP checksum is not verified (zero
/// is what tunnels send, RFC 6935 §5; a non-zero one is not checked, as
/// for IPv4).
#[inline(always)]
fn ipv6_udp(
    c: &mut Cursor,
    (data, last): (usize, usize),
    cfg: &Config,
) -> Result<Option<Addr>, Dropped> {
    let Some(ip) = c.next::<Ipv6Hdr>() else {
        return Ok(None);
    };
    let at = ip as usize;
    // SAFETY: as in `ipv4_udp`.
    let (ip, saddr, daddr) = unsafe {
        (
            &*ip,
            addr_at(at + offset_of!(Ipv6Hdr, src_addr)),
            addr_at(at + offset_of!(Ipv6Hdr, dst_addr)),
        )
    };
    if ip.version() != 6 || ip.next_hdr != IpProto::Udp as u8 || daddr != cfg.local_ip {
        return Ok(None);
    }
    let Some(udp_len) = udp_to_us(c, cfg) else {
        return Ok(None);
    };
    // Hop limit 0 never arrives from a real sender; lengths that lie (a
    // payload length claiming more than the frame holds included) are
    // malformed.
    // SAFETY: as above.
    let payload_len = usize::from(u16::from_be(unsafe {
        pkt::u16_off::<{ offset_of!(Ipv6Hdr, payload_len) }>(at)
    }));
    if ip.hop_limit == 0
        || bad_udp_len(udp_len, last - (c.pos() - UDP_HLEN))
        || payload_len < udp_len
        || payload_len > last - (data + ETH_HLEN + IPV6_HLEN)
    {
        return Err((DropReason::Malformed, NO_SLOT));
    }
    Ok(Some(saddr))
}

/// The IPv6 address at `at`.
///
/// # Safety
/// `[at, at + 16)` lies within the packet (see `load`).
#[inline(always)]
unsafe fn addr_at(at: usize) -> Addr {
    // SAFETY: the caller guarantees the 16 bytes lie within the packet.
    unsafe {
        Addr {
            w: [
                pkt::u32_at(at),
                pkt::u32_off::<4>(at),
                pkt::u32_off::<8>(at),
                pkt::u32_off::<12>(at),
            ],
        }
    }
}
