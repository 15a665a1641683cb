//! Parsing and printing of the values users type: VNIs, MAC addresses,
//! IPv4 addresses and lists of them. Shared by the CLI and the config file.

use std::{fmt, net::Ipv4Addr, str::FromStr};

use vtep_common::consts::VNI_MAX;

/// A value that does not parse, with what was expected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error("invalid VNI '{0}': expected a number from 1 to {VNI_MAX}")]
    Vni(String),
    #[error("invalid MAC address '{0}': expected six hex bytes like 02:00:00:00:00:01")]
    Mac(String),
    #[error("invalid IPv4 address '{0}': expected dotted quad like 198.18.0.1")]
    Ipv4(String),
    #[error("invalid IPv4 address '{0}': a remote VTEP must be a unicast address")]
    NotUnicast(String),
}

/// A VXLAN Network Identifier: 1 to 2^24-1 (0 is reserved here: the kernel
/// vxlan driver and EVPN deployments treat it as "no VNI").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vni(pub u32);

impl FromStr for Vni {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<u32>() {
            Ok(v) if (1..=VNI_MAX).contains(&v) => Ok(Vni(v)),
            _ => Err(ValueError::Vni(s.to_owned())),
        }
    }
}

impl TryFrom<u32> for Vni {
    type Error = ValueError;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        if (1..=VNI_MAX).contains(&v) {
            Ok(Vni(v))
        } else {
            Err(ValueError::Vni(v.to_string()))
        }
    }
}

impl fmt::Display for Vni {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An Ethernet MAC address; printed lower-case, colon-separated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::Mac(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An IPv4 address typed by a user.
pub fn parse_ipv4(s: &str) -> Result<Ipv4Addr, ValueError> {
    s.trim()
        .parse::<Ipv4Addr>()
        .map_err(|_| ValueError::Ipv4(s.to_owned()))
}

/// A remote VTEP address: IPv4 unicast (not 0.0.0.0, broadcast or
/// multicast; multicast underlays are not supported).
pub fn parse_remote(s: &str) -> Result<Ipv4Addr, ValueError> {
    let ip = parse_ipv4(s)?;
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(ValueError::NotUnicast(s.to_owned()));
    }
    Ok(ip)
}

/// A comma-separated list of remote VTEP addresses, duplicates removed,
/// order kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteList(pub Vec<Ipv4Addr>);

impl FromStr for RemoteList {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let ip = parse_remote(part)?;
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Ok(RemoteList(out))
    }
}

/// An IPv4 address as the BPF maps store it (on-wire bytes in a u32).
pub fn ip_to_map(ip: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(ip.octets())
}

/// The inverse of [`ip_to_map`].
pub fn ip_from_map(v: u32) -> Ipv4Addr {
    Ipv4Addr::from(v.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vni_range() {
        assert_eq!("1".parse::<Vni>(), Ok(Vni(1)));
        assert_eq!("16777215".parse::<Vni>(), Ok(Vni(VNI_MAX)));
        for bad in ["0", "16777216", "-1", "", "abc", "1.5", "99999999999"] {
            assert!(bad.parse::<Vni>().is_err(), "{bad}");
        }
        assert!(Vni::try_from(0).is_err());
        assert!(Vni::try_from(1 << 24).is_err());
    }

    #[test]
    fn mac_round_trip_and_rejects() {
        let m: Mac = "02:AB:cd:00:0f:ff".parse().unwrap();
        assert_eq!(m.0, [0x02, 0xab, 0xcd, 0x00, 0x0f, 0xff]);
        assert_eq!(m.to_string(), "02:ab:cd:00:0f:ff");
        assert_eq!("2-0-0-0-0-1".parse::<Mac>().unwrap().0, [2, 0, 0, 0, 0, 1]);
        for bad in [
            "",
            "02:00:00:00:00",
            "02:00:00:00:00:00:00",
            "02:00:00:00:00:0g",
            "002:00:00:00:00:00",
            "02::00:00:00:00",
        ] {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }

    #[test]
    fn remotes() {
        assert_eq!(
            "198.18.0.1, 198.18.0.2,198.18.0.1"
                .parse::<RemoteList>()
                .unwrap()
                .0,
            vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)]
        );
        assert!("198.18.0.1,nope".parse::<RemoteList>().is_err());
        for bad in ["0.0.0.0", "255.255.255.255", "239.1.1.1", "1.2.3"] {
            assert!(parse_remote(bad).is_err(), "{bad}");
        }
        let ip = Ipv4Addr::new(198, 18, 1, 2);
        assert_eq!(ip_from_map(ip_to_map(ip)), ip);
        assert_eq!(ip_to_map(ip).to_ne_bytes(), [198, 18, 1, 2]);
    }
}
