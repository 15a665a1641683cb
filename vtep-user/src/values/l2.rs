//! Values of a VNI's edge: the 802.1Q VLAN of a port binding and the
//! outer DSCP a VNI gives its frames.

use std::{fmt, str::FromStr};

use vtep_common::{
    consts::VID_MAX,
    ecn::{ECN_MASK, TOS_INHERIT},
};

use super::ValueError;

/// The outer DSCP a VNI gives its frames, as the kernel vxlan's `tos`
/// option: a fixed TOS byte (ECN bits zero; default 0), or `inherit`, the
/// inner packet's. ECN is always the inner packet's (RFC 6040 §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tos {
    Fixed(u8),
    Inherit,
}

impl Default for Tos {
    fn default() -> Self {
        Tos::Fixed(0)
    }
}

impl Tos {
    /// As the datapath has it (`VniInfo::tos`).
    pub const fn setting(self) -> u32 {
        match self {
            Tos::Fixed(t) => t as u32,
            Tos::Inherit => TOS_INHERIT,
        }
    }

    /// A setting the instance's tables hold (they only ever hold checked
    /// ones).
    pub(crate) const fn recorded(setting: u32) -> Self {
        if setting & TOS_INHERIT != 0 {
            Tos::Inherit
        } else {
            Tos::Fixed(setting as u8)
        }
    }
}

impl FromStr for Tos {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t == "inherit" {
            return Ok(Tos::Inherit);
        }
        let v = match t.strip_prefix("0x") {
            Some(hex) => u8::from_str_radix(hex, 16),
            None => t.parse::<u8>(),
        }
        .map_err(|_| ValueError::Tos(s.to_owned()))?;
        if v & ECN_MASK != 0 {
            return Err(ValueError::Tos(s.to_owned()));
        }
        Ok(Tos::Fixed(v))
    }
}

impl fmt::Display for Tos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tos::Inherit => f.write_str("inherit"),
            Tos::Fixed(t) => write!(f, "{t:#04x}"),
        }
    }
}

impl serde::Serialize for Tos {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The 802.1Q VLAN of a port binding: 1 to 4094, or 0 for the port's
/// untagged frames (as `hardware_vtep`'s `vlan_bindings` key 0; VID 4095
/// is reserved, IEEE 802.1Q §9.6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vid(u16);

impl Vid {
    /// The port's untagged frames.
    pub const UNTAGGED: Vid = Vid(0);

    /// The number (0: untagged).
    pub const fn get(self) -> u16 {
        self.0
    }

    /// A VID the instance's tables hold (they only ever hold checked ones).
    pub(crate) const fn recorded(v: u16) -> Self {
        Vid(v)
    }

    /// What follows a port's name where a binding is meant: " VLAN N",
    /// nothing for the untagged one.
    pub fn suffix(self) -> String {
        match self.0 {
            0 => String::new(),
            v => format!(" VLAN {v}"),
        }
    }

    /// A binding of port `port` as tables and lists name it: the port, and
    /// its VLAN if tagged ("tr0 VLAN 10").
    pub fn binding(self, port: &str) -> String {
        format!("{port}{}", self.suffix())
    }

    /// The option that names this binding in a command: " --vlan N",
    /// nothing for the untagged one.
    pub fn arg(self) -> String {
        match self.0 {
            0 => String::new(),
            v => format!(" --vlan {v}"),
        }
    }
}

impl FromStr for Vid {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let v = s
            .trim()
            .parse::<u16>()
            .map_err(|_| ValueError::Vid(s.to_owned()))?;
        Self::try_from(v)
    }
}

impl TryFrom<u16> for Vid {
    type Error = ValueError;
    fn try_from(v: u16) -> Result<Self, Self::Error> {
        if v <= VID_MAX {
            Ok(Vid(v))
        } else {
            Err(ValueError::Vid(v.to_string()))
        }
    }
}

impl fmt::Display for Vid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl serde::Serialize for Vid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vid_and_tos_ranges() {
        assert_eq!("0".parse::<Vid>(), Ok(Vid::UNTAGGED));
        assert_eq!("4094".parse::<Vid>().map(Vid::get), Ok(4094));
        for bad in ["4095", "-1", "", "ten"] {
            assert!(bad.parse::<Vid>().is_err(), "{bad}");
        }
        assert_eq!("inherit".parse::<Tos>(), Ok(Tos::Inherit));
        assert_eq!("184".parse::<Tos>(), Ok(Tos::Fixed(0xb8)));
        assert_eq!("0xb8".parse::<Tos>(), Ok(Tos::Fixed(0xb8)));
        assert_eq!(Tos::Fixed(0xb8).to_string(), "0xb8");
        assert_eq!(Tos::default().setting(), 0);
        for bad in ["0xba", "185", "256", "inherits", ""] {
            assert!(bad.parse::<Tos>().is_err(), "{bad}");
        }
    }
}
