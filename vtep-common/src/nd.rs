//! IPv6 Neighbor Discovery (RFC 4861) for ND suppression, the IPv6
//! counterpart of ARP suppression: what a Neighbor Solicitation or
//! Advertisement says, and the Neighbor Advertisement a VTEP answers a
//! solicitation with, built as 16-bit words whose bytes are on-wire order
//! (as `vxlan::outer_headers` are).
//!
//! Only the plain form is understood: ICMPv6 right after the IPv6 header
//! (no extension headers), hop limit 255 (RFC 4861 §7.1.1, §7.1.2: anything
//! else did not come from the link), code 0.

use crate::{
    addr::Addr,
    consts::{ETH_HLEN, IPPROTO_ICMPV6, IPV6_HLEN},
    vxlan::fold_checksum,
};

/// Neighbor Solicitation (RFC 4861 §4.3).
const NEIGHBOR_SOLICITATION: u8 = 135;
/// Neighbor Advertisement (RFC 4861 §4.4).
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The hop limit of every ND message (RFC 4861 §7.1).
const ND_HOP_LIMIT: u8 = 255;

/// Offset of the ICMPv6 header in a frame (Ethernet, IPv6).
const ICMP: usize = ETH_HLEN + IPV6_HLEN;
/// Offset of the target address in a frame (after type, code, checksum
/// and 4 bytes of flags/reserved).
const TARGET: usize = ICMP + 8;

/// The Neighbor Advertisement the VTEP answers with: IPv6 header, ICMPv6
/// header with flags, target, Target Link-Layer Address option.
pub const NA_LEN: usize = IPV6_HLEN + 8 + 16 + 8;
/// The answer's frame: Ethernet header and [`NA_LEN`].
pub const NA_FRAME_LEN: usize = ETH_HLEN + NA_LEN;

/// What a Neighbor Discovery message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nd {
    /// A solicitation (else an advertisement).
    pub solicit: bool,
    /// The IPv6 source address.
    pub src: Addr,
    /// The target address.
    pub target: Addr,
}

impl Nd {
    /// The binding this message teaches, as (address, owner): a
    /// solicitation's source (not a duplicate address detection probe,
    /// whose source is unspecified: RFC 4862 §5.4.2), an advertisement's
    /// target; the owner is the frame's Ethernet source (the caller's).
    /// `None` when it teaches nothing or names a multicast address.
    #[inline(always)]
    pub fn teaches(&self) -> Option<Addr> {
        let ip = if self.solicit { self.src } else { self.target };
        (!ip.is_none() && !is_multicast(&ip)).then_some(ip)
    }

    /// Whether the VTEP may answer it: a solicitation that is not a
    /// duplicate address detection probe (RFC 4862 §5.4.3: only the owner
    /// may answer those), for a unicast target.
    #[inline(always)]
    pub fn answerable(&self) -> bool {
        self.solicit && !self.src.is_none() && !is_multicast(&self.target)
    }
}

/// Whether `a` is an IPv6 multicast address (ff00::/8).
#[inline(always)]
fn is_multicast(a: &Addr) -> bool {
    a.w[0].to_ne_bytes()[0] == 0xff
}

/// Whether an Ethernet frame carrying IPv6, whose on-wire word (4 bytes)
/// at byte offset `o` is `word(o)` (`None` past the end), is a Neighbor
/// Solicitation (`Some(true)`) or Advertisement (`Some(false)`).
#[inline(always)]
pub fn kind(word: &impl Fn(usize) -> Option<u32>) -> Option<bool> {
    // Payload length, next header, hop limit.
    let [_, _, next, hops] = word(ETH_HLEN + 4)?.to_ne_bytes();
    if next != IPPROTO_ICMPV6 || hops != ND_HOP_LIMIT {
        return None;
    }
    match word(ICMP)?.to_ne_bytes() {
        [NEIGHBOR_SOLICITATION, 0, _, _] => Some(true),
        [NEIGHBOR_ADVERTISEMENT, 0, _, _] => Some(false),
        _ => None,
    }
}

/// The ND message of an Ethernet frame carrying IPv6, read as [`kind`]
/// reads it.
#[inline(always)]
pub fn parse(word: impl Fn(usize) -> Option<u32>) -> Option<Nd> {
    let solicit = kind(&word)?;
    let addr = |at: usize| -> Option<Addr> {
        Some(Addr {
            w: [word(at)?, word(at + 4)?, word(at + 8)?, word(at + 12)?],
        })
    };
    Some(Nd {
        solicit,
        src: addr(ETH_HLEN + 8)?,
        target: addr(TARGET)?,
    })
}

/// Emits the Neighbor Advertisement (from the IPv6 header on, [`NA_LEN`]
/// bytes as words) answering a solicitation from `to` for `target`, owned
/// by `mac`, through `put(word index, word)`: hop limit 255, router flag
/// clear, solicited set (RFC 4861 §7.2.4: it answers a solicitation),
/// override set (§7.2.4: the target is a unicast address and the Target
/// Link-Layer Address option, the owner's own MAC, is included: the VTEP
/// answers as the owner would, it is not a proxy offering its own
/// address), the checksum over the pseudo-header (RFC 8200 §8.1).
#[inline(always)]
pub fn emit_neighbor_advert(
    target: &Addr,
    to: &Addr,
    mac: [u8; 6],
    put: &mut impl FnMut(usize, u16),
) {
    let w = |a: u8, b: u8| u16::from_ne_bytes([a, b]);
    let v = |x: u16| u32::from(u16::from_be(x));
    let icmp_len = (NA_LEN - IPV6_HLEN) as u16;
    let (kind, flags, option) = (
        w(NEIGHBOR_ADVERTISEMENT, 0),
        w(0x60, 0),
        [
            w(2, 1),
            w(mac[0], mac[1]),
            w(mac[2], mac[3]),
            w(mac[4], mac[5]),
        ],
    );
    // Each address appears twice: in the pseudo-header and in the packet
    // (`to` as the destination, `target` as source and target).
    let mut sum = u32::from(icmp_len) + u32::from(IPPROTO_ICMPV6) + v(kind) + v(flags);
    sum += v(option[0]) + v(option[1]) + v(option[2]) + v(option[3]);
    put(0, w(0x60, 0));
    put(1, 0);
    put(2, icmp_len.to_be());
    put(3, w(IPPROTO_ICMPV6, ND_HOP_LIMIT));
    for i in 0..4 {
        let (t, d) = (target.w[i].to_ne_bytes(), to.w[i].to_ne_bytes());
        let (t0, t1, d0, d1) = (w(t[0], t[1]), w(t[2], t[3]), w(d[0], d[1]), w(d[2], d[3]));
        sum += 2 * (v(t0) + v(t1)) + v(d0) + v(d1);
        put(4 + 2 * i, t0);
        put(5 + 2 * i, t1);
        put(12 + 2 * i, d0);
        put(13 + 2 * i, d1);
        put(24 + 2 * i, t0);
        put(25 + 2 * i, t1);
    }
    put(20, kind);
    put(21, fold_checksum(sum).to_be());
    put(22, flags);
    put(23, 0);
    put(32, option[0]);
    put(33, option[1]);
    put(34, option[2]);
    put(35, option[3]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vxlan::sums_to_ffff;

    fn v6(s: &str) -> Addr {
        Addr::from(s.parse::<core::net::Ipv6Addr>().unwrap())
    }

    /// A Neighbor Solicitation frame from `src` for `target`.
    fn ns(src: Addr, target: Addr, hops: u8) -> std::vec::Vec<u8> {
        let mut f = std::vec![0u8; ETH_HLEN];
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 32, 58, hops]);
        f.extend_from_slice(&src.octets());
        f.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2]);
        f.extend_from_slice(&[135, 0, 0, 0, 0, 0, 0, 0]);
        f.extend_from_slice(&target.octets());
        f.extend_from_slice(&[1, 1, 2, 0, 0, 0, 0, 1]);
        f
    }

    fn word_of(f: &[u8]) -> impl Fn(usize) -> Option<u32> + '_ {
        |o| {
            f.get(o..o + 4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        }
    }

    #[test]
    fn solicitations_and_probes() {
        let (a, b) = (v6("2001:2:0:100::1"), v6("2001:2:0:100::2"));
        let f = ns(a, b, 255);
        let nd = parse(word_of(&f)).expect("an NS");
        assert_eq!(
            nd,
            Nd {
                solicit: true,
                src: a,
                target: b
            }
        );
        assert_eq!(nd.teaches(), Some(a));
        assert!(nd.answerable());
        let dad = parse(word_of(&ns(Addr::NONE, b, 255))).unwrap();
        assert_eq!(dad.teaches(), None, "a DAD probe teaches nothing");
        assert!(!dad.answerable(), "a DAD probe is never answered");
        assert_eq!(parse(word_of(&ns(a, b, 64))), None, "hop limit not 255");
        assert_eq!(parse(word_of(&f[..70])), None, "cut short");
        let mut na = f.clone();
        na[ICMP] = 136;
        let nd = parse(word_of(&na)).unwrap();
        assert!(!nd.solicit && !nd.answerable());
        assert_eq!(nd.teaches(), Some(b));
    }

    #[test]
    fn the_advertisement_follows_rfc4861() {
        let (a, b) = (v6("2001:2:0:100::1"), v6("2001:2:0:100::2"));
        let mac = [2, 0, 0, 0x64, 0, 2];
        let mut words = [0u16; NA_LEN / 2];
        emit_neighbor_advert(&b, &a, mac, &mut |i, w| words[i] = w);
        let m: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(m[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([m[4], m[5]]), 32, "payload length");
        assert_eq!((m[6], m[7]), (58, 255), "ICMPv6, hop limit 255");
        assert_eq!(&m[8..24], &b.octets(), "from the target");
        assert_eq!(&m[24..40], &a.octets(), "to the solicitor");
        assert_eq!((m[40], m[41]), (136, 0));
        assert_eq!(m[44], 0x60, "solicited and override, not router");
        assert_eq!(&m[48..64], &b.octets(), "target");
        assert_eq!(&m[64..66], &[2, 1], "target link-layer address option");
        assert_eq!(&m[66..72], &mac);
        let mut pseudo = std::vec::Vec::new();
        pseudo.extend_from_slice(&m[8..40]);
        pseudo.extend_from_slice(&[0, 0, 0, 32, 0, 0, 0, 58]);
        pseudo.extend_from_slice(&m[40..]);
        assert!(sums_to_ffff(&pseudo), "ICMPv6 checksum");
    }
}
