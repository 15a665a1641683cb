//! EVPN routes as vtep means them, and their GoBGP API form: a MAC/IP
//! advertisement (type 2, RFC 7432 §7.2) and an inclusive multicast
//! Ethernet tag route (type 3, §7.3), for VXLAN (RFC 8365). Pure
//! conversions, no I/O.
//!
//! What we send, as FRR expects it: route distinguisher `router_id:n`
//! (type 1, unique per VNI of this VTEP), Ethernet tag 0 (VLAN-based
//! service, RFC 8365 §5.1.2), the VNI in the label field (§5.1.3), the
//! route target `asn:VNI` (what FRR derives by itself), the encapsulation
//! extended community with tunnel type 8 (VXLAN, RFC 9012 / RFC 8365
//! §5.1.3), a MAC mobility extended community when the sequence number
//! is not 0 or the MAC is sticky (RFC 7432 §7.7), the MAC's policy group
//! in a transitive opaque extended community (RFC 7153 §3.6, see
//! [`SUBTYPE_GROUP`]) when it has one, and for type 3 a PMSI
//! tunnel attribute of type 6, ingress replication, carrying our address
//! and the VNI (RFC 8365 §5.1.3).

use std::net::{IpAddr, Ipv4Addr};

use gobgp_api as api;
use prost::Message;
use prost_types::Any;

use crate::values::{LocalIp, Mac, PeerVtep, UnicastIp, UnicastMac, ValueError, Vni};

/// BGP ORIGIN IGP.
const ORIGIN_IGP: u32 = 0;
/// Encapsulation extended community tunnel type: VXLAN.
const TUNNEL_VXLAN: u32 = 8;
/// Two-octet AS specific extended community sub-type: route target.
const SUBTYPE_ROUTE_TARGET: u32 = 2;
/// Transitive opaque extended community sub-type of a MAC's policy group
/// (draft-smith-vxlan-group-policy's Group Policy ID) in its type-2
/// route: this project's choice, not an IANA assignment (the draft that
/// would make one, draft-wlin-bess-group-policy-id-extended-community,
/// has none); the group in the last two of the six value bytes. FRR and
/// GoBGP carry it on as any transitive community, and ignore it.
const SUBTYPE_GROUP: u8 = 0x47;
/// PMSI tunnel type: ingress replication.
const PMSI_INGRESS_REPLICATION: u32 = 6;

/// A type-2 route: `mac` (with `ip`, if bound) of `vni` lives behind
/// `vtep`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacRoute {
    pub vni: Vni,
    pub mac: UnicastMac,
    pub ip: Option<UnicastIp>,
    /// MAC-mobility sequence number.
    pub seq: u32,
    /// A static MAC: never to be moved by learning (RFC 7432 §15.2).
    pub sticky: bool,
    /// Its policy group (0: none), so that a host it moves to has it.
    pub group: u16,
}

/// A route as read from GoBGP's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The VTEP it is from; `None`: one of ours.
    pub from: Option<PeerVtep>,
    pub route: Route,
}

/// What a route says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// A MAC (and maybe its IPv4) is behind the route's VTEP.
    Mac(MacRoute),
    /// The route's VTEP wants the VNI's BUM traffic.
    Flood(Vni),
}

/// Why a received route is not used; counted by reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejected {
    /// One of ours, as GoBGP echoes it (not installed).
    Own,
    /// A route type other than 2 and 3 (or a family other than EVPN).
    Unsupported,
    /// No route target `asn:VNI` for a VNI configured here.
    UnknownVni,
    /// Not VXLAN: an encapsulation other than tunnel type 8.
    NotVxlan,
    /// Next hop missing, IPv6, or not unicast.
    NextHop,
    /// A type-3 route without ingress replication.
    NotIngressReplication,
    /// A field that does not decode (MAC, address, label).
    Malformed,
    /// The flood list of its VNI is full.
    FloodFull,
    /// A configured (static) entry holds the MAC.
    StaticWins,
}

impl Rejected {
    /// Every reason, for the metrics.
    pub const ALL: [Rejected; 9] = [
        Rejected::Own,
        Rejected::Unsupported,
        Rejected::UnknownVni,
        Rejected::NotVxlan,
        Rejected::NextHop,
        Rejected::NotIngressReplication,
        Rejected::Malformed,
        Rejected::FloodFull,
        Rejected::StaticWins,
    ];

    /// Stable name (metrics label, `evpn show`).
    pub const fn name(self) -> &'static str {
        match self {
            Rejected::Own => "own",
            Rejected::Unsupported => "unsupported_type",
            Rejected::UnknownVni => "unknown_vni",
            Rejected::NotVxlan => "not_vxlan",
            Rejected::NextHop => "bad_next_hop",
            Rejected::NotIngressReplication => "not_ingress_replication",
            Rejected::Malformed => "malformed",
            Rejected::FloodFull => "flood_list_full",
            Rejected::StaticWins => "static_wins",
        }
    }
}

/// The EVPN address family.
pub fn family() -> api::Family {
    api::Family {
        afi: api::family::Afi::L2vpn as i32,
        safi: api::family::Safi::Evpn as i32,
    }
}

fn pack<M: Message>(name: &str, m: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/apipb.{name}"),
        value: m.encode_to_vec(),
    }
}

fn unpack<M: Message + Default>(any: &Any, name: &str) -> Option<M> {
    let (_, ty) = any.type_url.rsplit_once('/')?;
    (ty.strip_prefix("apipb.")? == name)
        .then(|| M::decode(any.value.as_slice()).ok())
        .flatten()
}

/// What we advertise with: our address and AS, and the number in the
/// route distinguishers of each VNI.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    pub local_ip: LocalIp,
    pub router_id: Ipv4Addr,
    pub asn: u32,
}

impl Origin {
    fn rd(&self, rd_number: u16) -> Any {
        pack(
            "RouteDistinguisherIPAddress",
            &api::RouteDistinguisherIpAddress {
                admin: self.router_id.to_string(),
                assigned: u32::from(rd_number),
            },
        )
    }

    /// Attributes every route of ours carries, with `extra` extended
    /// communities.
    fn attrs(&self, vni: Vni, extra: Vec<Any>) -> Vec<Any> {
        let mut communities = vec![
            pack(
                "TwoOctetAsSpecificExtended",
                &api::TwoOctetAsSpecificExtended {
                    is_transitive: true,
                    sub_type: SUBTYPE_ROUTE_TARGET,
                    asn: self.asn,
                    local_admin: vni.get(),
                },
            ),
            pack(
                "EncapExtended",
                &api::EncapExtended {
                    tunnel_type: TUNNEL_VXLAN,
                },
            ),
        ];
        communities.extend(extra);
        vec![
            pack(
                "OriginAttribute",
                &api::OriginAttribute { origin: ORIGIN_IGP },
            ),
            pack(
                "NextHopAttribute",
                &api::NextHopAttribute {
                    next_hop: self.local_ip.ip().to_string(),
                },
            ),
            pack(
                "ExtendedCommunitiesAttribute",
                &api::ExtendedCommunitiesAttribute { communities },
            ),
        ]
    }

    /// Our type-2 route for `r` (withdrawn if `withdraw`).
    pub fn mac_path(&self, r: &MacRoute, rd_number: u16, withdraw: bool) -> api::Path {
        let nlri = api::EvpnmacipAdvertisementRoute {
            rd: Some(self.rd(rd_number)),
            esi: Some(api::EthernetSegmentIdentifier {
                r#type: 0,
                value: vec![0; 9],
            }),
            ethernet_tag: 0,
            mac_address: r.mac.to_string(),
            ip_address: r.ip.map_or_else(String::new, |ip| ip.to_string()),
            labels: vec![r.vni.get()],
        };
        let mobility = (r.seq != 0 || r.sticky).then(|| {
            pack(
                "MacMobilityExtended",
                &api::MacMobilityExtended {
                    is_sticky: r.sticky,
                    sequence_num: r.seq,
                },
            )
        });
        let group = (r.group != 0).then(|| {
            let g = r.group.to_be_bytes();
            pack(
                "OpaqueExtended",
                &api::OpaqueExtended {
                    is_transitive: true,
                    value: vec![SUBTYPE_GROUP, 0, 0, 0, 0, g[0], g[1]],
                },
            )
        });
        api::Path {
            nlri: Some(pack("EVPNMACIPAdvertisementRoute", &nlri)),
            pattrs: self.attrs(r.vni, mobility.into_iter().chain(group).collect()),
            family: Some(family()),
            is_withdraw: withdraw,
            ..api::Path::default()
        }
    }

    /// Our type-3 route for `vni` (withdrawn if `withdraw`).
    pub fn flood_path(&self, vni: Vni, rd_number: u16, withdraw: bool) -> api::Path {
        let ip = self.local_ip.ip();
        let nlri = api::EvpnInclusiveMulticastEthernetTagRoute {
            rd: Some(self.rd(rd_number)),
            ethernet_tag: 0,
            ip_address: ip.to_string(),
        };
        let mut pattrs = self.attrs(vni, Vec::new());
        pattrs.push(pack(
            "PmsiTunnelAttribute",
            &api::PmsiTunnelAttribute {
                flags: 0,
                r#type: PMSI_INGRESS_REPLICATION,
                label: vni.get(),
                // RFC 6514 §5: the tunnel identifier is the endpoint's
                // address, 4 or 16 bytes.
                id: match ip {
                    IpAddr::V4(v4) => v4.octets().to_vec(),
                    IpAddr::V6(v6) => v6.octets().to_vec(),
                },
            },
        ));
        api::Path {
            nlri: Some(pack("EVPNInclusiveMulticastEthernetTagRoute", &nlri)),
            pattrs,
            family: Some(family()),
            is_withdraw: withdraw,
            ..api::Path::default()
        }
    }
}

/// What the attributes of a received path say.
#[derive(Default)]
struct Attrs {
    next_hop: Option<String>,
    targets: Vec<(u32, u32)>,
    encap: Option<u32>,
    mobility: Option<api::MacMobilityExtended>,
    group: u16,
    pmsi: Option<api::PmsiTunnelAttribute>,
}

fn attrs_of(path: &api::Path) -> Attrs {
    let mut a = Attrs::default();
    for any in &path.pattrs {
        if let Some(n) = unpack::<api::NextHopAttribute>(any, "NextHopAttribute") {
            a.next_hop = Some(n.next_hop);
        } else if let Some(m) = unpack::<api::MpReachNlriAttribute>(any, "MpReachNLRIAttribute") {
            a.next_hop = m.next_hops.into_iter().next();
        } else if let Some(p) = unpack::<api::PmsiTunnelAttribute>(any, "PmsiTunnelAttribute") {
            a.pmsi = Some(p);
        } else if let Some(c) =
            unpack::<api::ExtendedCommunitiesAttribute>(any, "ExtendedCommunitiesAttribute")
        {
            for c in &c.communities {
                if let Some(t) =
                    unpack::<api::TwoOctetAsSpecificExtended>(c, "TwoOctetAsSpecificExtended")
                {
                    if t.sub_type == SUBTYPE_ROUTE_TARGET {
                        a.targets.push((t.asn, t.local_admin));
                    }
                } else if let Some(e) = unpack::<api::EncapExtended>(c, "EncapExtended") {
                    a.encap = Some(e.tunnel_type);
                } else if let Some(m) = unpack::<api::MacMobilityExtended>(c, "MacMobilityExtended")
                {
                    a.mobility = Some(m);
                } else if let Some(o) = unpack::<api::OpaqueExtended>(c, "OpaqueExtended")
                    && o.is_transitive
                    && o.value.len() == 7
                    && o.value[0] == SUBTYPE_GROUP
                {
                    a.group = u16::from_be_bytes([o.value[5], o.value[6]]);
                }
            }
        }
    }
    a
}

/// Reads a path of GoBGP's table: a route (of another VTEP, or ours) for
/// a VNI configured here (`known`), or why it is of no use. Withdrawals
/// decode the same way.
pub fn decode(
    path: &api::Path,
    local_ip: LocalIp,
    asn: u32,
    known: impl Fn(Vni) -> bool,
) -> Result<Received, Rejected> {
    let nlri = path.nlri.as_ref().ok_or(Rejected::Unsupported)?;
    let a = attrs_of(path);
    let vtep = |ip: Option<&str>| -> Result<Option<PeerVtep>, Rejected> {
        let ip: UnicastIp = ip
            .ok_or(Rejected::NextHop)?
            .parse()
            .map_err(|_| Rejected::NextHop)?;
        // Our own route: `None`; a next hop of the other underlay family
        // is of no use to this instance.
        match local_ip.peer(ip) {
            Ok(p) => Ok(Some(p)),
            Err(ValueError::OwnAddress(_)) => Ok(None),
            Err(_) => Err(Rejected::NextHop),
        }
    };
    // The route target says which VNI (what FRR derives: asn:VNI); the
    // label, which must agree, is checked below.
    let vni_of = |label: u32| -> Result<Vni, Rejected> {
        let vni = Vni::try_from(label).map_err(|_| Rejected::Malformed)?;
        if !a.targets.contains(&(asn, vni.get())) || !known(vni) {
            return Err(Rejected::UnknownVni);
        }
        Ok(vni)
    };
    if a.encap.is_some_and(|t| t != TUNNEL_VXLAN) {
        return Err(Rejected::NotVxlan);
    }
    if let Some(r) = unpack::<api::EvpnmacipAdvertisementRoute>(nlri, "EVPNMACIPAdvertisementRoute")
    {
        let from = vtep(a.next_hop.as_deref())?;
        let vni = vni_of(*r.labels.first().ok_or(Rejected::Malformed)?)?;
        let mac: UnicastMac = r
            .mac_address
            .parse::<Mac>()
            .ok()
            .and_then(|m| UnicastMac::try_from(m).ok())
            .ok_or(Rejected::Malformed)?;
        let ip = match r.ip_address.as_str() {
            // GoBGP says "<nil>" for a MAC-only route.
            "" | "<nil>" | "0.0.0.0" => None,
            s => match s.parse::<UnicastIp>() {
                Ok(ip) => Some(ip),
                // An IPv6 binding: the MAC part still counts.
                Err(_) if s.contains(':') => None,
                Err(_) => return Err(Rejected::Malformed),
            },
        };
        let (seq, sticky) = a
            .mobility
            .map_or((0, false), |m| (m.sequence_num, m.is_sticky));
        return Ok(Received {
            from,
            route: Route::Mac(MacRoute {
                vni,
                mac,
                ip,
                seq,
                sticky,
                group: a.group,
            }),
        });
    }
    if let Some(r) = unpack::<api::EvpnInclusiveMulticastEthernetTagRoute>(
        nlri,
        "EVPNInclusiveMulticastEthernetTagRoute",
    ) {
        // RFC 8365 §5.1.3: the originator's address is the tunnel
        // endpoint; the next hop says the same for an iBGP route.
        let from = vtep(Some(r.ip_address.as_str()).filter(|s| !s.is_empty()))?;
        let pmsi = a.pmsi.ok_or(Rejected::NotIngressReplication)?;
        if pmsi.r#type != PMSI_INGRESS_REPLICATION {
            return Err(Rejected::NotIngressReplication);
        }
        let vni = vni_of(pmsi.label)?;
        return Ok(Received {
            from,
            route: Route::Flood(vni),
        });
    }
    Err(Rejected::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(ip: &str) -> Origin {
        let local_ip: LocalIp = ip.parse().unwrap();
        Origin {
            local_ip,
            router_id: ip.parse().unwrap(),
            asn: 65000,
        }
    }

    fn vni(v: u32) -> Vni {
        Vni::try_from(v).unwrap()
    }

    #[test]
    fn our_routes_read_back_as_another_vteps() {
        let a = origin("198.18.1.1");
        let b: LocalIp = "198.18.2.1".parse().unwrap();
        let r = MacRoute {
            vni: vni(100),
            mac: "02:00:00:00:01:01".parse().unwrap(),
            ip: Some("198.19.0.1".parse().unwrap()),
            seq: 3,
            sticky: false,
            group: 10,
        };
        let got = decode(&a.mac_path(&r, 7, false), b, 65000, |_| true).unwrap();
        let from = Some(b.peer("198.18.1.1".parse().unwrap()).unwrap());
        assert_eq!(
            got,
            Received {
                from,
                route: Route::Mac(r)
            }
        );
        let got = decode(&a.flood_path(vni(100), 7, false), b, 65000, |_| true).unwrap();
        assert_eq!(
            got,
            Received {
                from,
                route: Route::Flood(vni(100))
            }
        );
        // Ours, read back by us.
        let own = decode(&a.flood_path(vni(100), 7, false), a.local_ip, 65000, |_| {
            true
        });
        assert_eq!(own.unwrap().from, None);
    }

    #[test]
    fn routes_we_cannot_use_say_why() {
        let a = origin("198.18.1.1");
        let r = MacRoute {
            vni: vni(100),
            mac: "02:00:00:00:01:01".parse().unwrap(),
            ip: None,
            seq: 0,
            sticky: true,
            group: 0,
        };
        let path = a.mac_path(&r, 1, false);
        let b: LocalIp = "198.18.2.1".parse().unwrap();
        assert_eq!(
            decode(&path, b, 65000, |v| v.get() != 100),
            Err(Rejected::UnknownVni)
        );
        assert_eq!(decode(&path, b, 65001, |_| true), Err(Rejected::UnknownVni));
        let mut ipv6 = path.clone();
        ipv6.pattrs[1] = pack(
            "NextHopAttribute",
            &api::NextHopAttribute {
                next_hop: "2001:2::1".into(),
            },
        );
        assert_eq!(decode(&ipv6, b, 65000, |_| true), Err(Rejected::NextHop));
        let mut type5 = path;
        type5.nlri = Some(pack(
            "EVPNIPPrefixRoute",
            &api::EvpnipPrefixRoute::default(),
        ));
        assert_eq!(
            decode(&type5, b, 65000, |_| true),
            Err(Rejected::Unsupported)
        );
    }
}
