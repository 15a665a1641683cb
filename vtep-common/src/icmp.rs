//! ICMP "fragmentation needed" for a frame too large for the underlay once
//! encapsulated (RFC 792 type 3 code 4, with the next-hop MTU of
//! RFC 1191 §4), built the way `vxlan::outer_headers` is: as 16-bit words
//! whose bytes are on-wire order, no memset or memcpy.

use crate::{consts::IPV4_HLEN, vxlan::fold_checksum};

/// IPv4 header + ICMP header + the quoted IPv4 header and 8 bytes.
pub const FRAG_NEEDED_LEN: usize = IPV4_HLEN + 8 + IPV4_HLEN + 8;

/// The IPv4 packet (as words) answering `orig_ip` (a 20-byte IPv4 header,
/// no options) whose payload starts with `orig_l4`: from its destination
/// to its source, "fragmentation needed, next-hop MTU `mtu`".
#[inline(always)]
pub fn frag_needed(
    orig_ip: &[u8; IPV4_HLEN],
    orig_l4: &[u8; 8],
    mtu: u16,
) -> [u16; FRAG_NEEDED_LEN / 2] {
    let w = |i: usize| u16::from_ne_bytes([orig_ip[i], orig_ip[i + 1]]);
    let l = |i: usize| u16::from_ne_bytes([orig_l4[i], orig_l4[i + 1]]);
    let quoted = [
        w(0),
        w(2),
        w(4),
        w(6),
        w(8),
        w(10),
        w(12),
        w(14),
        w(16),
        w(18),
        l(0),
        l(2),
        l(4),
        l(6),
    ];
    let icmp = [u16::from_ne_bytes([3, 4]), 0, 0, mtu.to_be()];
    // Sums written out: a loop over a stack array is a variable-offset
    // stack read, which the BPF verifier refuses.
    let v = |x: u16| u32::from(u16::from_be(x));
    let q = &quoted;
    let sum = v(icmp[0])
        + v(icmp[3])
        + v(q[0])
        + v(q[1])
        + v(q[2])
        + v(q[3])
        + v(q[4])
        + v(q[5])
        + v(q[6])
        + v(q[7])
        + v(q[8])
        + v(q[9])
        + v(q[10])
        + v(q[11])
        + v(q[12])
        + v(q[13]);
    let icmp_csum = fold_checksum(sum).to_be();
    let total = (FRAG_NEEDED_LEN as u16).to_be();
    // From the original destination (the VTEP answers for the path, as an
    // unnumbered router would), to the original source.
    let ip = [
        u16::from_ne_bytes([0x45, 0xc0]),
        total,
        0,
        0,
        u16::from_ne_bytes([64, 1]),
        0,
        w(16),
        w(18),
        w(12),
        w(14),
    ];
    let isum = v(ip[0]) + v(ip[1]) + v(ip[4]) + v(ip[6]) + v(ip[7]) + v(ip[8]) + v(ip[9]);
    let ip_csum = fold_checksum(isum).to_be();
    [
        ip[0], ip[1], ip[2], ip[3], ip[4], ip_csum, ip[6], ip[7], ip[8], ip[9], icmp[0], icmp_csum,
        icmp[2], icmp[3], quoted[0], quoted[1], quoted[2], quoted[3], quoted[4], quoted[5],
        quoted[6], quoted[7], quoted[8], quoted[9], quoted[10], quoted[11], quoted[12], quoted[13],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums_to_ffff(b: &[u8]) -> bool {
        let mut s: u32 = b
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        s == 0xffff
    }

    #[test]
    fn answers_the_sender_with_the_mtu() {
        let orig: [u8; 20] = [
            0x45, 0, 0x05, 0xdc, 0x12, 0x34, 0x40, 0, 64, 1, 0xab, 0xcd, 198, 19, 0, 1, 198, 19, 0,
            2,
        ];
        let l4 = [8, 0, 0x11, 0x22, 0, 1, 0, 1];
        let words = frag_needed(&orig, &l4, 1450);
        let b: std::vec::Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(b.len(), FRAG_NEEDED_LEN);
        assert_eq!(b[0], 0x45);
        assert_eq!(u16::from_be_bytes([b[2], b[3]]), 56);
        assert_eq!(b[9], 1, "ICMP");
        assert_eq!(
            &b[12..16],
            &[198, 19, 0, 2],
            "from the original destination"
        );
        assert_eq!(&b[16..20], &[198, 19, 0, 1], "to the original source");
        assert!(sums_to_ffff(&b[..20]), "IPv4 header checksum");
        assert_eq!(
            &b[20..22],
            &[3, 4],
            "destination unreachable, fragmentation needed"
        );
        assert_eq!(u16::from_be_bytes([b[26], b[27]]), 1450);
        assert!(sums_to_ffff(&b[20..]), "ICMP checksum");
        assert_eq!(&b[28..48], &orig);
        assert_eq!(&b[48..56], &l4);
    }
}
