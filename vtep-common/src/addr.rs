//! One address type for both families, as the maps and programs hold it:
//! 16 on-wire bytes in four words, an IPv4 address as its IPv4-mapped IPv6
//! form `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2). All zero (`::`) means "no
//! address" (an FDB entry for a local port, an empty event side).
//!
//! Why mapped addresses cannot collide with real senders: an instance
//! carries one underlay family (userspace refuses remotes of the other),
//! its decap reads an IPv4 sender from an IPv4 header and an IPv6 sender
//! from an IPv6 header only when its own address is of that family, and
//! RFC 4291 §2.5.5.2 addresses never appear as IPv6 sources on the wire
//! (userspace refuses them as remote VTEPs).

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The third word of an IPv4-mapped address (bytes `00 00 ff ff`).
const MAPPED: u32 = u32::from_ne_bytes([0, 0, 0xff, 0xff]);

/// An IPv4 or IPv6 address, on-wire bytes (see the module docs).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    /// The 16 bytes as four words whose in-memory bytes are on-wire order.
    pub w: [u32; 4],
}

impl Addr {
    /// No address.
    pub const NONE: Addr = Addr { w: [0; 4] };

    /// An IPv4 address from its on-wire word (`u32::from_ne_bytes(octets)`).
    #[inline(always)]
    pub const fn v4(word: u32) -> Self {
        Addr {
            w: [0, 0, MAPPED, word],
        }
    }

    /// An IPv6 address from its 16 on-wire bytes.
    #[inline(always)]
    pub const fn v6(b: [u8; 16]) -> Self {
        Addr {
            w: [
                u32::from_ne_bytes([b[0], b[1], b[2], b[3]]),
                u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
                u32::from_ne_bytes([b[8], b[9], b[10], b[11]]),
                u32::from_ne_bytes([b[12], b[13], b[14], b[15]]),
            ],
        }
    }

    /// Whether this is "no address".
    #[inline(always)]
    pub const fn is_none(&self) -> bool {
        self.w[0] | self.w[1] | self.w[2] | self.w[3] == 0
    }

    /// Whether this is an IPv4 address (IPv4-mapped).
    #[inline(always)]
    pub const fn is_v4(&self) -> bool {
        self.w[0] == 0 && self.w[1] == 0 && self.w[2] == MAPPED
    }

    /// The IPv4 address's on-wire word (meaningful when [`Addr::is_v4`]).
    #[inline(always)]
    pub const fn v4_word(&self) -> u32 {
        self.w[3]
    }

    /// The 16 on-wire bytes.
    pub const fn octets(&self) -> [u8; 16] {
        let (a, b, c, d) = (
            self.w[0].to_ne_bytes(),
            self.w[1].to_ne_bytes(),
            self.w[2].to_ne_bytes(),
            self.w[3].to_ne_bytes(),
        );
        [
            a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1],
            d[2], d[3],
        ]
    }

    /// The address as the standard type; `None` for "no address".
    pub fn ip(&self) -> Option<IpAddr> {
        if self.is_none() {
            None
        } else if self.is_v4() {
            Some(IpAddr::V4(Ipv4Addr::from(self.w[3].to_ne_bytes())))
        } else {
            Some(IpAddr::V6(Ipv6Addr::from(self.octets())))
        }
    }
}

impl From<Ipv4Addr> for Addr {
    fn from(ip: Ipv4Addr) -> Self {
        Addr::v4(u32::from_ne_bytes(ip.octets()))
    }
}

impl From<Ipv6Addr> for Addr {
    fn from(ip: Ipv6Addr) -> Self {
        Addr::v6(ip.octets())
    }
}

impl From<IpAddr> for Addr {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => v4.into(),
            IpAddr::V6(v6) => v6.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_round_trip() {
        let v4: IpAddr = "198.18.1.2".parse().unwrap();
        let a = Addr::from(v4);
        assert!(a.is_v4() && !a.is_none());
        assert_eq!(a.v4_word().to_ne_bytes(), [198, 18, 1, 2]);
        assert_eq!(a.ip(), Some(v4));
        assert_eq!(a.octets()[10..], [0xff, 0xff, 198, 18, 1, 2]);
        let v6: IpAddr = "2001:2:0:1::1".parse().unwrap();
        let b = Addr::from(v6);
        assert!(!b.is_v4() && !b.is_none());
        assert_eq!(b.ip(), Some(v6));
        assert_eq!(Addr::v6(b.octets()), b);
        assert!(Addr::NONE.is_none());
        assert_eq!(Addr::NONE.ip(), None);
    }
}
