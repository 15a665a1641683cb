//! Values of group policy and rate limits: a group, a rule's action, a
//! rate and a burst.

use std::{fmt, str::FromStr};

use vtep_common::policy::{MIN_RATE_BITS, RULE_ALLOW, RULE_DENY};

use super::ValueError;

/// A policy group (VXLAN-GBP Group Policy ID): 1 to 65535, or 0,
/// "unknown" (what a peer sending no GBP header gives; rules may name it,
/// a VM or port is never put in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Group(u16);

impl Group {
    /// The unknown group.
    pub const UNKNOWN: Group = Group(0);

    pub const fn get(self) -> u16 {
        self.0
    }

    /// A group the instance's tables hold.
    pub(crate) const fn recorded(g: u16) -> Self {
        Group(g)
    }

    /// The group, for a membership: refused if it is the unknown group.
    pub fn member(self) -> Result<Self, ValueError> {
        if self.0 == 0 {
            return Err(ValueError::UnknownGroup);
        }
        Ok(self)
    }
}

impl From<u16> for Group {
    fn from(g: u16) -> Self {
        Group(g)
    }
}

impl FromStr for Group {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<u16>()
            .map(Group)
            .map_err(|_| ValueError::Group(s.to_owned()))
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Group {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

/// What a rule does with the frames it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Deny,
}

impl Action {
    /// As the datapath has it (`Rule::action`).
    pub const fn setting(self) -> u32 {
        match self {
            Action::Allow => RULE_ALLOW,
            Action::Deny => RULE_DENY,
        }
    }

    /// An action the tables hold (they only ever hold checked ones).
    pub(crate) const fn recorded(action: u32) -> Self {
        if action == RULE_DENY {
            Action::Deny
        } else {
            Action::Allow
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The highest rate a policer takes: 10 Tbit/s.
const MAX_RATE_BITS: u64 = 10_000_000_000_000;

/// A rate in bits per second, written as `tc` writes bit rates: a number
/// with `bit`, `kbit`, `mbit`, `gbit` or `tbit` (decimal multiples):
/// `100mbit`, `1gbit`. `tc`'s byte rates (`mbps`) are refused rather than
/// guessed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rate(u64);

impl Rate {
    /// Bits per second.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// A rate the tables hold.
    pub(crate) const fn recorded(bits: u64) -> Self {
        Rate(bits)
    }
}

impl FromStr for Rate {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || ValueError::Rate(s.to_owned());
        let split = t
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let (num, unit) = t.split_at(split);
        let mult: u64 = match unit {
            "bit" => 1,
            "kbit" => 1_000,
            "mbit" => 1_000_000,
            "gbit" => 1_000_000_000,
            "tbit" => 1_000_000_000_000,
            _ => return Err(bad()),
        };
        let v: f64 = num.parse().map_err(|_| bad())?;
        let bits = (v * mult as f64).round();
        if !(MIN_RATE_BITS as f64..=MAX_RATE_BITS as f64).contains(&bits) {
            return Err(bad());
        }
        Ok(Rate(bits as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, m) in [
            ("tbit", 1_000_000_000_000u64),
            ("gbit", 1_000_000_000),
            ("mbit", 1_000_000),
            ("kbit", 1_000),
        ] {
            if self.0 >= m && self.0.is_multiple_of(m) {
                return write!(f, "{}{unit}", self.0 / m);
            }
        }
        write!(f, "{}bit", self.0)
    }
}

impl serde::Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// The smallest burst: one 64 KiB GSO packet (a VM with the default
/// offloads sends TCP in packets that large; a smaller bucket would drop
/// every one of them).
pub const MIN_BURST: u64 = 65_536;

/// The largest burst.
const MAX_BURST: u64 = 1 << 32;

/// The default burst, as time at the rate (ms): longer than TCP's
/// shortest retransmission timeout (200 ms, RFC 6298 §2.4 as Linux has
/// it). A policer has no queue, and on a path of sub-millisecond RTT
/// even TCP's smallest window exceeds most rates: a sender loses whole
/// flights and waits out a timeout. With a bucket that outlasts the
/// timeout, what it did not send while waiting is still there for it
/// afterwards, and TCP gets its rate over time (measured over 3 s in the
/// namespaces, limit 100 Mbit/s: a 4 MB bucket 96 Mbit/s beyond the
/// burst, a 64 KiB one 3 Mbit/s).
pub const DEFAULT_BURST_MS: u64 = 250;

/// A policer's bucket depth in bytes: a number with an optional `k`, `m`
/// or `g` (binary multiples: `64k` = 65536), at least [`MIN_BURST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Burst(u64);

impl Burst {
    pub const fn bytes(self) -> u64 {
        self.0
    }

    /// The default for `rate`: [`DEFAULT_BURST_MS`] of it, at least
    /// [`MIN_BURST`], at most 4 GiB.
    pub fn default_for(rate: Rate) -> Self {
        let bytes = rate.bits() / 8 * DEFAULT_BURST_MS / 1000;
        Burst(bytes.clamp(MIN_BURST, MAX_BURST))
    }

    /// A burst the tables hold.
    pub(crate) const fn recorded(bytes: u64) -> Self {
        Burst(bytes)
    }
}

impl FromStr for Burst {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let bad = || ValueError::Burst(s.to_owned());
        let (num, mult) = [("k", 1u64 << 10), ("m", 1 << 20), ("g", 1 << 30)]
            .iter()
            .find_map(|(suffix, m)| t.strip_suffix(suffix).map(|n| (n, *m)))
            .unwrap_or((t.as_str(), 1));
        let bytes = num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or_else(bad)?;
        if !(MIN_BURST..=MAX_BURST).contains(&bytes) {
            return Err(bad());
        }
        Ok(Burst(bytes))
    }
}

impl fmt::Display for Burst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Burst {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_tc_writes_them_and_print_back() {
        assert_eq!("100mbit".parse::<Rate>().map(Rate::bits), Ok(100_000_000));
        assert_eq!("1gbit".parse::<Rate>().map(Rate::bits), Ok(1_000_000_000));
        assert_eq!("1.5Gbit".parse::<Rate>().map(Rate::bits), Ok(1_500_000_000));
        assert_eq!("8kbit".parse::<Rate>().map(Rate::bits), Ok(8_000));
        for r in ["100mbit", "1gbit", "1500mbit", "8kbit", "10tbit"] {
            assert_eq!(r.parse::<Rate>().unwrap().to_string(), r);
        }
        for bad in ["100mbps", "100", "mbit", "7kbit", "11tbit", "-1mbit", ""] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn bursts_and_groups() {
        assert_eq!("64k".parse::<Burst>().map(Burst::bytes), Ok(65_536));
        assert_eq!("1m".parse::<Burst>().map(Burst::bytes), Ok(1 << 20));
        assert_eq!("131072".parse::<Burst>().map(Burst::bytes), Ok(131_072));
        for bad in ["1500", "63k", "x", "5g", ""] {
            assert!(bad.parse::<Burst>().is_err(), "{bad}");
        }
        let r = "1gbit".parse::<Rate>().unwrap();
        assert_eq!(Burst::default_for(r).bytes(), 31_250_000);
        let r = "1mbit".parse::<Rate>().unwrap();
        assert_eq!(Burst::default_for(r).bytes(), MIN_BURST);
        let r = "10tbit".parse::<Rate>().unwrap();
        assert_eq!(Burst::default_for(r).bytes(), MAX_BURST);
        assert_eq!("0".parse::<Group>(), Ok(Group::UNKNOWN));
        assert!("0".parse::<Group>().unwrap().member().is_err());
        assert_eq!("65535".parse::<Group>().map(Group::get), Ok(65535));
        assert!("65536".parse::<Group>().is_err());
    }
}
