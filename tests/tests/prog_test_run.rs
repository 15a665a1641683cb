//! BPF_PROG_TEST_RUN tables for the kernel programs, in the spirit of
//! Katran's fixtures: each case is a description, an input frame, the
//! expected action, the expected output frame and the counter it must
//! bump (and no other drop counter).
//!
//! Decap (XDP) needs nothing around it. Encap (TC) asks the kernel FIB, so
//! each encap test first moves its own thread into a private network
//! namespace (`unshare(CLONE_NEWNET)` is per thread) with an underlay, a
//! neighbour and ports of its own.

use std::{net::Ipv4Addr, process::Command};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, PerCpuValues},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
    util::nr_cpus,
};
use vtep_common::{
    consts::{
        GLOBAL_CONFIG, MAP_COUNTERS, MAP_DROPS, MAP_FDB, MAP_GENERATION, MAP_LEARNED,
        MAP_PEER_STATS, MAP_PORTS, MAP_REMOTES, MAP_VNI_STATS, MAP_VNIS, MAX_FLOOD, MAX_VNI_PORTS,
        PROG_DECAP_XDP, PROG_ENCAP_TC, VXLAN_PORT,
    },
    counters::{Counter, DropReason},
    maps::{
        CONFIG_F_DF, Config, DECAP_META_MAGIC, FDB_F_STATIC, FDB_F_XDP, FdbEntry, FdbKey,
        LearnedEntry, META_ACTION_DELIVER, META_ACTION_FLOOD, PORT_F_XDP, PeerStats, PortInfo,
        REMOTE_F_LEARN, RemoteInfo, RemoteKey, VniInfo, VniStats,
    },
    model,
    vxlan::{FlowKey, Outer, flow_hash, outer_headers, src_port},
};
use vtep_tests::{
    BpfFs,
    frames::{self, Tunnel, VXLAN_I, eth, ipv4, udp},
};
use vtep_user::{datapath::EBPF_OBJECT, generation::Generation, instance::coarse_now_ns};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const STRANGER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 7);
const REMOTE_UNRESOLVED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
const REMOTE_UNROUTED: Ipv4Addr = Ipv4Addr::new(198, 18, 9, 9);

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_SKB_PORT: [u8; 6] = [2, 0, 0, 0, 1, 1];
const MAC_XDP_PORT: [u8; 6] = [2, 0, 0, 0, 1, 2];
const MAC_BEHIND_REMOTE: [u8; 6] = [2, 0, 0, 0, 2, 1];
const MAC_OTHER_VNI_PORT: [u8; 6] = [2, 0, 0, 0, 3, 1];
const MAC_UNKNOWN: [u8; 6] = [2, 0, 0, 0, 9, 9];
const BROADCAST: [u8; 6] = [0xff; 6];

/// The `PEER_STATS` slot the tables give remote VTEP `a`: its last octet
/// (distinct for every remote here).
fn peer_slot(a: Ipv4Addr) -> u32 {
    u32::from(a.octets()[3])
}

/// The load-time settings of every test here: local address LOCAL,
/// underlay `underlay_ifindex`, DF set, defaults otherwise.
fn config(underlay_ifindex: u32) -> Config {
    Config {
        local_ip: ip(LOCAL),
        underlay_ifindex,
        udp_port: VXLAN_PORT,
        ttl: 64,
        flags: CONFIG_F_DF,
        ageing_s: 300,
        move_limit: 5,
        move_window_s: 180,
    }
}

fn ip(a: Ipv4Addr) -> u32 {
    u32::from_ne_bytes(a.octets())
}

/// The programs, loaded with `config`, their maps pinned in a private
/// bpffs.
struct Loaded {
    ebpf: Ebpf,
    /// Bumped after every table change, as `vtep` does.
    generation: Generation,
    _bpffs: BpfFs,
}

impl Loaded {
    fn new(config: Config) -> Self {
        let bpffs = BpfFs::new();
        let mut ebpf = EbpfLoader::new()
            .default_map_pin_directory(&bpffs.dir)
            .override_global(GLOBAL_CONFIG, &config, true)
            .load(EBPF_OBJECT)
            .expect("load the object");
        let xdp: &mut Xdp = ebpf
            .program_mut(PROG_DECAP_XDP)
            .unwrap()
            .try_into()
            .unwrap();
        xdp.load().expect("verifier accepts the XDP decap program");
        let tc: &mut SchedClassifier = ebpf.program_mut(PROG_ENCAP_TC).unwrap().try_into().unwrap();
        tc.load().expect("verifier accepts the encap program");
        let generation = Generation::open(&bpffs.dir.join(MAP_GENERATION)).unwrap();
        Loaded {
            ebpf,
            generation,
            _bpffs: bpffs,
        }
    }

    /// Configures `vni`; its stats slot is the VNI number itself.
    fn vni(&mut self, vni: u32, remotes: &[Ipv4Addr], ports: &[u32]) {
        assert!(remotes.len() <= MAX_FLOOD && ports.len() <= MAX_VNI_PORTS);
        let mut info = VniInfo {
            slot: vni,
            n_remotes: remotes.len() as u32,
            n_ports: ports.len() as u32,
            ..VniInfo::default()
        };
        for (i, r) in remotes.iter().enumerate() {
            info.remotes[i] = ip(*r);
            info.peers[i] = peer_slot(*r);
        }
        info.ports[..ports.len()].copy_from_slice(ports);
        let mut m: HashMap<_, u32, VniInfo> =
            HashMap::try_from(self.ebpf.map_mut(MAP_VNIS).unwrap()).unwrap();
        m.insert(vni, info, 0).unwrap();
        let mut s: PerCpuArray<_, VniStats> =
            PerCpuArray::try_from(self.ebpf.map_mut(MAP_VNI_STATS).unwrap()).unwrap();
        let zero = PerCpuValues::try_from(vec![VniStats::default(); nr_cpus().unwrap()]).unwrap();
        s.set(vni, zero, 0).unwrap();
        let mut r: HashMap<_, RemoteKey, RemoteInfo> =
            HashMap::try_from(self.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
        for remote in remotes {
            let key = RemoteKey {
                vni,
                ip: ip(*remote),
            };
            r.insert(
                key,
                RemoteInfo {
                    refs: 1,
                    slot: vni,
                    flags: 0,
                    peer: peer_slot(*remote),
                },
                0,
            )
            .unwrap();
        }
        self.generation.bump();
    }

    fn port(&mut self, ifindex: u32, vni: u32, flags: u32) {
        let mut m: HashMap<_, u32, PortInfo> =
            HashMap::try_from(self.ebpf.map_mut(MAP_PORTS).unwrap()).unwrap();
        let p = PortInfo {
            vni,
            flags,
            slot: vni,
            _pad: 0,
        };
        m.insert(ifindex, p, 0).unwrap();
    }

    fn fdb(&mut self, vni: u32, mac: [u8; 6], remote: Option<Ipv4Addr>, ifindex: u32) {
        self.fdb_flags(vni, mac, remote, ifindex, FDB_F_STATIC);
    }

    fn fdb_flags(
        &mut self,
        vni: u32,
        mac: [u8; 6],
        remote: Option<Ipv4Addr>,
        ifindex: u32,
        flags: u32,
    ) {
        let mut m: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(self.ebpf.map_mut(MAP_FDB).unwrap()).unwrap();
        let e = FdbEntry {
            remote: remote.map_or(0, ip),
            ifindex,
            flags,
            peer: remote.map_or(0, peer_slot),
        };
        m.insert(FdbKey::new(vni, mac), e, 0).unwrap();
        self.generation.bump();
    }

    fn counters(&self, name: &str, n: u32) -> Vec<u64> {
        let m: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map(name).unwrap()).unwrap();
        (0..n).map(|i| m.get(&i, 0).unwrap().iter().sum()).collect()
    }

    fn peer_stats(&self, remote: Ipv4Addr) -> PeerStats {
        let m: PerCpuArray<&MapData, PeerStats> =
            PerCpuArray::try_from(self.ebpf.map(MAP_PEER_STATS).unwrap()).unwrap();
        m.get(&peer_slot(remote), 0)
            .unwrap()
            .iter()
            .fold(PeerStats::default(), |a, c| PeerStats {
                rx_packets: a.rx_packets + c.rx_packets,
                rx_bytes: a.rx_bytes + c.rx_bytes,
                tx_packets: a.tx_packets + c.tx_packets,
                tx_bytes: a.tx_bytes + c.tx_bytes,
            })
    }

    fn vni_stats(&self, vni: u32) -> VniStats {
        let m: PerCpuArray<&MapData, VniStats> =
            PerCpuArray::try_from(self.ebpf.map(MAP_VNI_STATS).unwrap()).unwrap();
        m.get(&vni, 0)
            .unwrap()
            .iter()
            .fold(VniStats::default(), |mut a, s| {
                a.rx_packets += s.rx_packets;
                a.rx_bytes += s.rx_bytes;
                a.tx_packets += s.tx_packets;
                a.tx_bytes += s.tx_bytes;
                a.drop_packets += s.drop_packets;
                a
            })
    }
}

/// What a case expects to be counted.
#[derive(Clone, Copy, Debug)]
enum Bump {
    Drop(DropReason),
    Event(Counter),
}

struct Case {
    what: &'static str,
    input: Vec<u8>,
    action: u32,
    /// Expected output frame; `None`: the input, unchanged.
    output: Option<Vec<u8>>,
    bump: Bump,
}

/// Runs `run` on each case; checks action, output and counters.
fn check(l: &Loaded, cases: Vec<Case>, run: impl Fn(&[u8], &mut [u8]) -> (u32, usize)) {
    for c in cases {
        let drops = l.counters(MAP_DROPS, DropReason::COUNT);
        let events = l.counters(MAP_COUNTERS, Counter::COUNT);
        let mut out = vec![0u8; c.input.len() + 256];
        let (action, len) = run(&c.input, &mut out);
        assert_eq!(action, c.action, "{}: action", c.what);
        let want = c.output.as_ref().unwrap_or(&c.input);
        assert_eq!(&out[..len], &want[..], "{}: output frame", c.what);
        let drops_after = l.counters(MAP_DROPS, DropReason::COUNT);
        let events_after = l.counters(MAP_COUNTERS, Counter::COUNT);
        for r in DropReason::ALL {
            let want = u64::from(matches!(c.bump, Bump::Drop(x) if x == r));
            let got = drops_after[r as usize] - drops[r as usize];
            assert_eq!(got, want, "{}: drop counter {}", c.what, r.name());
        }
        if let Bump::Event(e) = c.bump {
            let got = events_after[e as usize] - events[e as usize];
            assert_eq!(got, 1, "{}: counter {}", c.what, e.name());
        }
    }
}

/// An inner frame: IPv4/UDP from 198.19.0.1:1000 to 198.19.0.2:2000.
fn inner_frame(dst: [u8; 6]) -> Vec<u8> {
    let a = Ipv4Addr::new(198, 19, 0, 1);
    let b = Ipv4Addr::new(198, 19, 0, 2);
    eth(
        dst,
        MAC_A,
        0x0800,
        &ipv4(a, b, 17, 0, &[], &udp(1000, 2000, 0, b"hello, tenant")),
    )
}

/// An 802.1Q-tagged frame (VLAN 100) carrying IPv4.
fn vlan_frame(dst: [u8; 6]) -> Vec<u8> {
    let mut tagged = vec![0, 100, 0x08, 0x00];
    tagged.extend_from_slice(&inner_frame(dst)[14..]);
    eth(dst, MAC_A, 0x8100, &tagged)
}

/// An IPv4 frame whose source MAC is a multicast address.
fn from_group(dst: [u8; 6]) -> Vec<u8> {
    let mut f = inner_frame(dst);
    f[6] = 0x01;
    f
}

/// An ARP request (a non-IP inner frame).
fn arp_frame(dst: [u8; 6]) -> Vec<u8> {
    let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1];
    arp.extend_from_slice(&MAC_A);
    arp.extend_from_slice(&[198, 19, 0, 1]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[198, 19, 0, 2]);
    eth(dst, MAC_A, 0x0806, &arp)
}

/// A VXLAN packet as a remote VTEP sends it.
fn vxlan(src: Ipv4Addr, dport: u16, flags: [u8; 4], vni: u32, inner: &[u8]) -> Vec<u8> {
    let t = Tunnel {
        src_mac: [2, 0xee, 0, 0, 0, 2],
        dst_mac: [2, 0xee, 0, 0, 0, 1],
        src,
        dst: LOCAL,
        sport: 50000,
        dport,
        flags,
        vni,
    };
    frames::vxlan(&t, inner)
}

const I: [u8; 4] = VXLAN_I;

fn meta(action: u32, vni: u32, ifindex: u32) -> Vec<u8> {
    [DECAP_META_MAGIC, action, vni, ifindex]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .collect()
}

const P_SKB: u32 = 1001;
const P_XDP: u32 = 1002;
const P_200: u32 = 1003;

fn decap_loaded() -> Loaded {
    let mut l = Loaded::new(config(1));
    l.vni(100, &[REMOTE], &[P_SKB, P_XDP]);
    l.vni(200, &[REMOTE], &[P_200]);
    l.vni(300, &[REMOTE], &[]);
    l.port(P_SKB, 100, 0);
    l.port(P_XDP, 100, PORT_F_XDP);
    l.port(P_200, 200, 0);
    l.fdb(100, MAC_SKB_PORT, None, P_SKB);
    l.fdb_flags(100, MAC_XDP_PORT, None, P_XDP, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE_UNRESOLVED), 0);
    l
}

fn run_xdp(l: &Loaded) -> impl Fn(&[u8], &mut [u8]) -> (u32, usize) + '_ {
    move |input, out| {
        let prog: &Xdp = l.ebpf.program(PROG_DECAP_XDP).unwrap().try_into().unwrap();
        let r = prog
            .test_run(TestRunOptions {
                data_in: Some(input),
                data_out: Some(out),
                ..TestRunOptions::new()
            })
            .expect("BPF_PROG_TEST_RUN");
        (r.return_value, r.data_size_out as usize)
    }
}

#[test]
fn decap_table() {
    let l = decap_loaded();
    let to_skb = inner_frame(MAC_SKB_PORT);
    let to_xdp = inner_frame(MAC_XDP_PORT);
    let bcast = arp_frame(BROADCAST);
    let unknown = inner_frame(MAC_UNKNOWN);
    let with_meta = |m: Vec<u8>, inner: &[u8]| Some([m, inner.to_vec()].concat());
    let pass = Bump::Event(Counter::PassToKernel);
    let drop = Bump::Drop;
    // A good packet for the skb port with bytes overwritten (offsets into
    // the frame: outer IPv4 at 14, UDP at 34, VXLAN at 42).
    let damaged = |at: &[(usize, u8)]| {
        let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
        for (i, b) in at {
            p[*i] = *b;
        }
        p
    };
    let mut fragment = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
    fragment[20] = 0x20; // MF set, DF clear
    let options = {
        let outer_ip = ipv4(
            REMOTE,
            LOCAL,
            17,
            0,
            &[1, 1, 1, 0], // NOP, NOP, NOP, EOL
            &udp(
                50000,
                VXLAN_PORT,
                0,
                &[I.to_vec(), vec![0, 0, 100, 0], to_skb.clone()].concat(),
            ),
        );
        eth(
            [2, 0xee, 0, 0, 0, 1],
            [2, 0xee, 0, 0, 0, 2],
            0x0800,
            &outer_ip,
        )
    };
    let cases = vec![
        Case {
            what: "ARP on the underlay passes untouched",
            input: arp_frame(BROADCAST),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "VXLAN for another address passes",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[33] = 9;
                p
            },
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "UDP to us on another port passes",
            input: vxlan(REMOTE, 4790, I, 100, &to_skb),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "known unicast, skb port: stripped, DELIVER in the metadata",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "known unicast, XDP port: stripped and redirected",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &to_xdp),
            action: XDP_REDIRECT,
            output: Some(to_xdp.clone()),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "broadcast: stripped, FLOOD in the metadata",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &bcast),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_FLOOD, 100, 0), &bcast),
            bump: Bump::Event(Counter::DecapFlood),
        },
        Case {
            what: "unknown unicast: flooded to local ports",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &unknown),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_FLOOD, 100, 0), &unknown),
            bump: Bump::Event(Counter::DecapFlood),
        },
        Case {
            what: "reserved bits set: ignored on receipt (RFC 7348 §5)",
            input: vxlan(REMOTE, VXLAN_PORT, [0xf8, 0xff, 0xff, 0xff], 100, &to_skb),
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "outer IPv4 options are skipped",
            input: options,
            action: XDP_PASS,
            output: with_meta(meta(META_ACTION_DELIVER, 100, P_SKB), &to_skb),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "inner VLAN tag (RFC 7348 §6.1)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &vlan_frame(MAC_SKB_PORT)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::InnerVlan),
        },
        Case {
            what: "inner frame from a group source MAC",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &from_group(MAC_SKB_PORT)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::GroupSourceMac),
        },
        Case {
            what: "outer TTL 0",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[22] = 0;
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "I flag clear",
            input: vxlan(REMOTE, VXLAN_PORT, [0, 0, 0, 0], 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::NoIFlag),
        },
        Case {
            what: "unknown VNI",
            input: vxlan(REMOTE, VXLAN_PORT, I, 4242, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
        Case {
            what: "known VNI from a VTEP not in its list",
            input: vxlan(STRANGER, VXLAN_PORT, I, 100, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownRemote),
        },
        Case {
            what: "UDP length longer than the packet",
            input: {
                let mut p = vxlan(REMOTE, VXLAN_PORT, I, 100, &to_skb);
                p[38] = 0x7f;
                p
            },
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "first fragment of a VXLAN packet",
            input: fragment,
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "destination behind another remote VTEP (split horizon)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_BEHIND_REMOTE)),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::RemoteToRemote),
        },
        Case {
            what: "BUM in a VNI without local ports",
            input: vxlan(REMOTE, VXLAN_PORT, I, 300, &bcast),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::NoFloodTarget),
        },
        Case {
            what: "IHL below 5: not a valid IPv4 header, left to the kernel",
            input: damaged(&[(14, 0x44)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "later fragment: no UDP header, left to the kernel",
            input: damaged(&[(20, 0x00), (21, 0x10)]),
            action: XDP_PASS,
            output: None,
            bump: pass,
        },
        Case {
            what: "IPv4 total length shorter than the UDP datagram",
            input: damaged(&[(16, 0), (17, 20 + 8)]),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "UDP length too short for an inner Ethernet header",
            input: damaged(&[(38, 0), (39, 8 + 8 + 13)]),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::Malformed),
        },
        Case {
            what: "VNI 0 (never configured)",
            input: vxlan(REMOTE, VXLAN_PORT, I, 0, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
        Case {
            what: "VNI 0xffffff, not configured",
            input: vxlan(REMOTE, VXLAN_PORT, I, 0xff_ffff, &to_skb),
            action: XDP_DROP,
            output: None,
            bump: drop(DropReason::UnknownVni),
        },
    ];
    check(&l, cases, run_xdp(&l));
    let s = l.vni_stats(100);
    assert_eq!(
        s.rx_packets, 6,
        "rx counts delivered and flooded frames of VNI 100"
    );
    let from_remote = l.peer_stats(REMOTE);
    assert_eq!(
        from_remote.rx_packets,
        s.rx_packets + l.vni_stats(200).rx_packets,
        "every frame delivered came from REMOTE: its per-remote rx counts them all"
    );
    assert_eq!(from_remote.rx_bytes, s.rx_bytes + l.vni_stats(200).rx_bytes);
    assert_eq!(
        s.drop_packets, 4,
        "drops charged to VNI 100 once it is known: inner_vlan, group_source_mac, unknown_remote, remote_to_remote"
    );
}

#[test]
fn decap_truncated_at_every_length() {
    let l = decap_loaded();
    let full = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_SKB_PORT));
    // Up to the end of the UDP header nothing says the packet is VXLAN for
    // us: it goes to the kernel. From there on it is ours and malformed.
    let cases = (14..full.len())
        .map(|cut| {
            let ours = cut >= 14 + 20 + 8;
            Case {
                what: if ours {
                    "truncated VXLAN"
                } else {
                    "truncated before the UDP port"
                },
                input: full[..cut].to_vec(),
                action: if ours { XDP_DROP } else { XDP_PASS },
                output: None,
                bump: if ours {
                    Bump::Drop(DropReason::Malformed)
                } else {
                    Bump::Event(Counter::PassToKernel)
                },
            }
        })
        .collect();
    check(&l, cases, run_xdp(&l));
}

/// Runs `sh -c cmd` (in this thread's network namespace); must succeed.
fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Index and MAC of `dev`, from `ip -j` (this thread's /sys still shows
/// the namespace it was mounted in).
fn link(dev: &str) -> (u32, [u8; 6]) {
    let v: serde_json::Value =
        serde_json::from_str(&sh(&format!("ip -j link show {dev}"))).unwrap();
    let mac: Vec<u8> = v[0]["address"]
        .as_str()
        .unwrap()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect();
    (
        v[0]["ifindex"].as_u64().unwrap() as u32,
        mac.try_into().unwrap(),
    )
}

fn ifindex(dev: &str) -> u32 {
    link(dev).0
}

/// Moves this thread into a new network namespace with an underlay `ul0`
/// (198.18.0.1/24, REMOTE resolved, REMOTE_UNRESOLVED not), and ports
/// p1 to p6 (forwarding on, as `vtep port add` sets it; MTU 1500 but
/// p2's, [`P2_MTU`]).
/// Returns the underlay's ifindex and MAC.
fn private_netns() -> (u32, [u8; 6]) {
    // SAFETY: plain syscall; affects only this thread.
    assert_eq!(
        unsafe { libc::unshare(libc::CLONE_NEWNET) },
        0,
        "unshare(CLONE_NEWNET)"
    );
    sh("ip link set lo up");
    sh("ip link add ul0 type veth peer name ul1 && ip link set ul0 up && ip link set ul1 up");
    sh("ip addr add 198.18.0.1/24 dev ul0");
    sh("ip neigh replace 198.18.0.2 dev ul0 lladdr 02:ee:00:00:00:02 nud permanent");
    for p in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        sh(&format!(
            "ip link add {p} type veth peer name {p}v && ip link set {p} up && ip link set {p}v up"
        ));
        sh(&format!("sysctl -qw net.ipv4.conf.{p}.forwarding=1"));
    }
    sh(&format!(
        "ip link set p2 mtu {P2_MTU} && ip link set p2v mtu {P2_MTU}"
    ));
    link("ul0")
}

/// The MTU of port p2 in [`private_netns`].
const P2_MTU: u32 = 1400;

fn run_tc(l: &Loaded, ifindex: u32) -> impl Fn(&[u8], &mut [u8]) -> (u32, usize) + '_ {
    move |input, out| try_run_tc(l, ifindex, input, out).expect("BPF_PROG_TEST_RUN")
}

/// The encap program on `input` arriving on `ifindex`: (action, output
/// length), or the kernel's refusal to run it.
fn try_run_tc(
    l: &Loaded,
    ifindex: u32,
    input: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize), aya::programs::ProgramError> {
    let prog: &SchedClassifier = l.ebpf.program(PROG_ENCAP_TC).unwrap().try_into().unwrap();
    // struct __sk_buff: `ifindex` (the device the frame arrives on) at
    // byte 40; test_run wants every other input field zero.
    let mut ctx = [0u8; 192];
    ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
    let r = prog.test_run(TestRunOptions {
        data_in: Some(input),
        data_out: Some(out),
        ctx_in: Some(&ctx),
        ..TestRunOptions::new()
    })?;
    Ok((r.return_value, r.data_size_out as usize))
}

/// The frame `inner` encapsulated as we expect it towards `remote`.
fn encapsulated(
    inner: &[u8],
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    remote: Ipv4Addr,
    vni: u32,
) -> Vec<u8> {
    let mut k = FlowKey::default();
    k.macs.copy_from_slice(&inner[..12]);
    if inner[12..14] == [8, 0] {
        k.saddr = u32::from_ne_bytes(inner[26..30].try_into().unwrap());
        k.daddr = u32::from_ne_bytes(inner[30..34].try_into().unwrap());
        k.proto = u32::from(inner[23]);
        k.ports = u32::from_ne_bytes(inner[34..38].try_into().unwrap());
    }
    let o = Outer {
        src_mac,
        dst_mac,
        src_ip: ip(LOCAL),
        dst_ip: ip(remote),
        src_port: src_port(flow_hash(&k)),
        dst_port: VXLAN_PORT,
        vni,
        ttl: 64,
        df: true,
        ip_id: 0,
    };
    let words = outer_headers(&o, inner.len() as u32);
    let mut f: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    f.extend_from_slice(inner);
    f
}

#[test]
fn encap_table() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2, p3, p4) = (ifindex("p1"), ifindex("p2"), ifindex("p3"), ifindex("p4"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[], &[p1, p2]);
    l.vni(200, &[], &[p3]);
    l.port(p1, 100, 0);
    l.port(p2, 100, 0);
    l.port(p3, 200, 0);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    l.fdb(100, MAC_XDP_PORT, None, p1);
    l.fdb(100, MAC_OTHER_VNI_PORT, None, p3);
    l.fdb(100, MAC_UNKNOWN, Some(REMOTE_UNRESOLVED), 0);
    l.fdb(100, MAC_A, Some(REMOTE_UNROUTED), 0);

    let peer_mac = [2, 0xee, 0, 0, 0, 2];
    let ip_to_remote = inner_frame(MAC_BEHIND_REMOTE);
    let arp_to_remote = arp_frame(MAC_BEHIND_REMOTE);
    let unresolved_ip = inner_frame(MAC_UNKNOWN);
    let drop = Bump::Drop;
    let cases = vec![
        Case {
            what: "IPv4 unicast to a remote VTEP: encapsulated",
            input: ip_to_remote.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(&ip_to_remote, ul0_mac, peer_mac, REMOTE, 100)),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "ARP unicast to a remote VTEP: encapsulated",
            input: arp_to_remote.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(&arp_to_remote, ul0_mac, peer_mac, REMOTE, 100)),
            bump: Bump::Event(Counter::EncapUnicast),
        },
        Case {
            what: "same VNI, other local port: switched as it is",
            input: inner_frame(MAC_SKB_PORT),
            action: TC_ACT_REDIRECT,
            output: None,
            bump: Bump::Event(Counter::LocalSwitch),
        },
        Case {
            what: "VLAN-tagged frame from a port (RFC 7348 §6.1)",
            input: vlan_frame(MAC_BEHIND_REMOTE),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::InnerVlan),
        },
        Case {
            what: "frame from a group source MAC",
            input: from_group(MAC_BEHIND_REMOTE),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::GroupSourceMac),
        },
        Case {
            what: "destination is the ingress port",
            input: inner_frame(MAC_XDP_PORT),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::Hairpin),
        },
        Case {
            what: "FDB names a port of another VNI",
            input: inner_frame(MAC_OTHER_VNI_PORT),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::VniMismatch),
        },
        Case {
            what: "IP to a remote whose next hop is unresolved: waits in redirect_neigh",
            input: unresolved_ip.clone(),
            action: TC_ACT_REDIRECT,
            output: Some(encapsulated(
                &unresolved_ip,
                [0; 6],
                [0; 6],
                REMOTE_UNRESOLVED,
                100,
            )),
            bump: Bump::Event(Counter::NeighResolve),
        },
        Case {
            what: "ARP to a remote whose next hop is unresolved",
            input: arp_frame(MAC_UNKNOWN),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::NoNeighbour),
        },
        Case {
            what: "remote VTEP without a route",
            input: inner_frame(MAC_A),
            action: TC_ACT_SHOT,
            output: None,
            bump: drop(DropReason::NoRoute),
        },
    ];
    check(&l, cases, run_tc(&l, p1));
    assert_eq!(l.vni_stats(100).tx_packets, 3);
    let (resolved, unresolved) = (l.peer_stats(REMOTE), l.peer_stats(REMOTE_UNRESOLVED));
    assert_eq!(
        resolved.tx_packets + unresolved.tx_packets,
        3,
        "each frame sent is counted against the remote it went to"
    );
    assert_eq!(
        resolved.tx_bytes + unresolved.tx_bytes,
        l.vni_stats(100).tx_bytes
    );

    let cases = vec![Case {
        what: "BUM in a VNI with no other port and no remote",
        input: arp_frame(BROADCAST),
        action: TC_ACT_SHOT,
        output: None,
        bump: drop(DropReason::NoFloodTarget),
    }];
    check(&l, cases, run_tc(&l, p3));
    let cases = vec![Case {
        what: "frame from an unbound port",
        input: inner_frame(MAC_BEHIND_REMOTE),
        action: TC_ACT_SHOT,
        output: None,
        bump: drop(DropReason::UnboundPort),
    }];
    check(&l, cases, run_tc(&l, p4));
}

/// The decap fixture's tables, for the reference model, with its ports
/// made real in [`private_netns`]: MAC_SKB_PORT behind `skb` (p2, MTU
/// [`P2_MTU`], or p3, MTU 1500), MAC_XDP_PORT behind `xdp` (p1, 1500).
struct FixtureTables {
    skb: u32,
    xdp: u32,
    p2: u32,
}

impl model::DecapTables for FixtureTables {
    fn remote_allowed(&self, vni: u32, ip: [u8; 4]) -> bool {
        matches!(vni, 100 | 200 | 300) && ip == REMOTE.octets()
    }
    fn vni_ports(&self, vni: u32) -> Option<u32> {
        match vni {
            100 => Some(2),
            200 => Some(1),
            300 => Some(0),
            _ => None,
        }
    }
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        let e = |ifindex, remote: Option<Ipv4Addr>, flags| FdbEntry {
            remote: remote.map_or(0, ip),
            ifindex,
            flags,
            peer: remote.map_or(0, peer_slot),
        };
        match (vni, mac) {
            (100, MAC_SKB_PORT) => Some(e(self.skb, None, FDB_F_STATIC)),
            (100, MAC_XDP_PORT) => Some(e(self.xdp, None, FDB_F_STATIC | FDB_F_XDP)),
            (100, MAC_BEHIND_REMOTE) => Some(e(0, Some(REMOTE_UNRESOLVED), FDB_F_STATIC)),
            _ => None,
        }
    }
    fn port_mtu(&self, ifindex: u32) -> Option<u32> {
        Some(if ifindex == self.p2 { P2_MTU } else { 1500 })
    }
}

/// xorshift64*: seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len() as u64) as usize]
    }
}

/// A VXLAN frame built from random choices, then randomly damaged.
fn random_frame(r: &mut Rng) -> Vec<u8> {
    let dst = match r.below(6) {
        0 => MAC_SKB_PORT,
        1 => MAC_XDP_PORT,
        2 => MAC_BEHIND_REMOTE,
        3 => BROADCAST,
        4 => MAC_UNKNOWN,
        _ => [r.next() as u8, 0, 0, 0, 0, r.next() as u8],
    };
    let mut inner = match r.below(4) {
        0 => inner_frame(dst),
        1 => arp_frame(dst),
        2 => vlan_frame(dst),
        // Around the ports' largest frames (1418 and 1518 bytes).
        _ => sized_frame(dst, 1400 + r.below(140) as usize, true),
    };
    if r.below(8) == 0 {
        inner[6] = r.next() as u8;
    }
    inner.truncate(14 + r.below(inner.len() as u64 - 13) as usize);
    let any_vni = (r.next() & 0xff_ffff) as u32;
    let vni = r.pick(&[100, 100, 100, 200, 300, 4242, any_vni]);
    let sender = if r.below(6) == 0 { STRANGER } else { REMOTE };
    let flags = if r.below(8) == 0 {
        [r.next() as u8, 0, 0, 0]
    } else {
        I
    };
    let mut f = vxlan(sender, VXLAN_PORT, flags, vni, &inner);
    let header = f.len().min(96);
    match r.below(10) {
        0..=3 => {}
        4 | 5 => {
            for _ in 0..1 + r.below(4) {
                let at = r.below(header as u64) as usize;
                f[at] = r.next() as u8;
            }
        }
        6 => f.truncate(14 + r.below(f.len() as u64 - 13) as usize),
        7 => f[14] = 0x40 | (r.next() as u8 & 0x0f),
        8 => {
            // UDP length, IPv4 total length or fragment bits.
            let at = r.pick(&[38usize, 39, 16, 17, 20, 21, 22]);
            f[at] = r.next() as u8;
        }
        _ => f[12..14].copy_from_slice(&(r.next() as u16).to_be_bytes()),
    }
    f
}

#[test]
fn decap_matches_the_reference_model_on_random_frames() {
    private_netns();
    let (p1, p2, p3) = (ifindex("p1"), ifindex("p2"), ifindex("p3"));
    let mut l = decap_loaded();
    l.port(p1, 100, PORT_F_XDP);
    l.port(p2, 100, 0);
    l.port(p3, 100, 0);
    l.fdb_flags(100, MAC_XDP_PORT, None, p1, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let mut tables = FixtureTables {
        skb: p2,
        xdp: p1,
        p2,
    };
    let cfg = config(1);
    let seed = std::env::var("VTEP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5654_4550_2026_u64);
    let mut rng = Rng(seed);
    let run = |l: &Loaded, frame: &[u8], out: &mut [u8]| run_xdp(l)(frame, out);
    let drops_total = |l: &Loaded| l.counters(MAP_DROPS, DropReason::COUNT).iter().sum::<u64>();
    let (mut expected_drops, start_drops) = (0u64, drops_total(&l));
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    for i in 0..100_000u32 {
        // Now and then MAC_SKB_PORT moves between p2 and p3 (as `vtep fdb
        // add` does it): no decision cached before may be used after.
        if i % 1000 == 999 {
            tables.skb = if tables.skb == p2 { p3 } else { p2 };
            l.fdb(100, MAC_SKB_PORT, None, tables.skb);
        }
        let frame = random_frame(&mut rng);
        let want = model::decap(&frame, &cfg, &tables);
        let mut out = vec![0u8; frame.len() + 64];
        let (action, len) = run(&l, &frame, &mut out);
        let got = &out[..len];
        let fail = |what: &str| -> ! {
            let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
            panic!(
                "frame {i} (seed {seed}): {what}\nmodel: {want:?}\nprogram: action {action}, output {len} bytes\nframe: {hex}"
            )
        };
        let key = match want {
            model::Verdict::Pass => {
                if action != XDP_PASS || got != &frame[..] {
                    fail("expected pass, unchanged");
                }
                "pass".to_owned()
            }
            model::Verdict::Drop(reason) => {
                if action != XDP_DROP {
                    fail("expected a drop");
                }
                expected_drops += 1;
                format!("drop {}", reason.name())
            }
            model::Verdict::Redirect { strip, .. } => {
                if action != XDP_REDIRECT || got != &frame[strip..] {
                    fail("expected a redirect of the inner frame");
                }
                "redirect".to_owned()
            }
            model::Verdict::Up {
                strip,
                vni,
                ifindex,
            } => {
                let act = if ifindex == 0 {
                    META_ACTION_FLOOD
                } else {
                    META_ACTION_DELIVER
                };
                let want_out = [meta(act, vni, ifindex), frame[strip..].to_vec()].concat();
                if action != XDP_PASS || got != &want_out[..] {
                    fail("expected the inner frame passed up with metadata");
                }
                if ifindex == 0 { "flood" } else { "deliver" }.to_owned()
            }
        };
        *seen.entry(key).or_default() += 1;
        // The drop counter named by the model, checked now and then (each
        // read is a syscall per CPU); the total is checked at the end.
        if i % 997 == 0
            && let model::Verdict::Drop(reason) = want
        {
            let before = l.counters(MAP_DROPS, DropReason::COUNT)[reason as usize];
            run(&l, &frame, &mut out);
            let after = l.counters(MAP_DROPS, DropReason::COUNT)[reason as usize];
            assert_eq!(
                after,
                before + 1,
                "frame {i} (seed {seed}): counter {}",
                reason.name()
            );
            expected_drops += 1;
        }
    }
    assert_eq!(
        drops_total(&l) - start_drops,
        expected_drops,
        "drop counters (seed {seed})"
    );
    let c = l.counters(MAP_COUNTERS, Counter::COUNT);
    let fills = c[Counter::DecapCacheFill as usize];
    let delivered = c[Counter::DecapXdp as usize] + c[Counter::DecapSkb as usize];
    println!(
        "decap vs reference model, seed {seed}: 100000 frames, no mismatch: {seen:?}; \
         {delivered} deliveries, {fills} decided from the tables, the rest from the cache"
    );
    assert!(
        fills > 0 && delivered > 2 * fills,
        "the decap cache was not exercised: {fills} fills for {delivered} deliveries"
    );
    // The generator reaches every kind of verdict.
    for kind in [
        "pass",
        "redirect",
        "deliver",
        "flood",
        "drop malformed",
        "drop unknown_vni",
        "drop unknown_remote",
        "drop no_i_flag",
        "drop inner_vlan",
        "drop remote_to_remote",
        "drop no_flood_target",
        "drop group_source_mac",
        "drop too_big",
    ] {
        assert!(seen.contains_key(kind), "no frame got '{kind}': {seen:?}");
    }
}

#[test]
fn encap_never_crosses_tenants_on_random_frames() {
    let (ul0, _) = private_netns();
    let (p1, p2, p3) = (ifindex("p1"), ifindex("p2"), ifindex("p3"));
    let mut l = Loaded::new(config(ul0));
    l.vni(100, &[REMOTE], &[p1, p2]);
    l.vni(200, &[REMOTE], &[p3]);
    l.port(p1, 100, 0);
    l.port(p2, 100, 0);
    l.port(p3, 200, 0);
    // The same MAC in both tenants, behind the same remote VTEP.
    l.fdb(100, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(200, MAC_BEHIND_REMOTE, Some(REMOTE), 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    // An entry of VNI 100 that names VNI 200's port: must never be used.
    l.fdb(100, MAC_OTHER_VNI_PORT, None, p3);

    let mut rng = Rng(0x7e4a_4e71_5014_u64);
    let mut encapsulated = [0u32; 2];
    for i in 0..20_000u32 {
        let (from, vni) = if i % 2 == 0 { (p1, 100) } else { (p3, 200) };
        let dst = match rng.below(5) {
            0 => MAC_BEHIND_REMOTE,
            1 => MAC_SKB_PORT,
            2 => MAC_OTHER_VNI_PORT,
            3 => BROADCAST,
            _ => [2, rng.next() as u8, 0, 0, 0, rng.next() as u8],
        };
        let mut frame = match rng.below(3) {
            0 => inner_frame(dst),
            1 => arp_frame(dst),
            _ => vlan_frame(dst),
        };
        if rng.below(4) == 0 {
            let at = 12 + rng.below(frame.len() as u64 - 12) as usize;
            frame[at] = rng.next() as u8;
        }
        let mut out = vec![0u8; frame.len() + 256];
        let (action, len) = run_tc(&l, from)(&frame, &mut out);
        let got = &out[..len];
        // Whatever left encapsulated carries the ingress port's VNI.
        if len == frame.len() + 50 && got[36..38] == VXLAN_PORT.to_be_bytes() {
            let carried = u32::from_be_bytes([0, got[46], got[47], got[48]]);
            assert_eq!(
                carried, vni,
                "frame {i} from VNI {vni} left in VNI {carried}"
            );
            encapsulated[(i % 2) as usize] += 1;
        }
        if vni == 100 && dst == MAC_OTHER_VNI_PORT && frame[12..14] != [0x81, 0x00] {
            assert_eq!(
                action, TC_ACT_SHOT,
                "frame {i}: an entry pointing at VNI 200's port was used"
            );
        }
    }
    assert!(encapsulated.iter().all(|n| *n > 1000), "{encapsulated:?}");
}

/// The tables of the encap differential test, as the model sees them (the
/// same contents are written into the BPF maps).
struct EncapFixture {
    ports: std::collections::BTreeMap<u32, PortInfo>,
    vnis: std::collections::BTreeMap<u32, VniInfo>,
    fdb: std::collections::BTreeMap<(u32, [u8; 6]), FdbEntry>,
    ul0: u32,
    ul0_mac: [u8; 6],
    mtus: std::collections::BTreeMap<u32, u32>,
}

impl model::EncapTables for EncapFixture {
    fn port(&self, ifindex: u32) -> Option<PortInfo> {
        self.ports.get(&ifindex).copied()
    }
    fn vni(&self, vni: u32) -> Option<VniInfo> {
        self.vnis.get(&vni).copied()
    }
    fn fdb(&self, vni: u32, mac: [u8; 6]) -> Option<FdbEntry> {
        self.fdb.get(&(vni, mac)).copied()
    }
    fn next_hop(&self, remote: u32) -> Option<model::NextHop> {
        // As private_netns sets the underlay up.
        let hop = |resolved, dst_mac| model::NextHop {
            ifindex: self.ul0,
            resolved,
            src_mac: if resolved { self.ul0_mac } else { [0; 6] },
            dst_mac,
        };
        match Ipv4Addr::from(remote.to_ne_bytes()) {
            REMOTE => Some(hop(true, [2, 0xee, 0, 0, 0, 2])),
            REMOTE_UNRESOLVED => Some(hop(false, [0; 6])),
            _ => None,
        }
    }
    fn mtu(&self, ifindex: u32) -> u32 {
        self.mtus.get(&ifindex).copied().unwrap_or(0)
    }
}

/// An IPv4/UDP frame of `len` bytes (padded), DF set or not.
fn sized_frame(dst: [u8; 6], len: usize, df: bool) -> Vec<u8> {
    let a = Ipv4Addr::new(198, 19, 0, 1);
    let b = Ipv4Addr::new(198, 19, 0, 2);
    let payload = vec![0x5a; len.saturating_sub(14 + 20 + 8)];
    let frags = if df { 0x4000 } else { 0 };
    eth(
        dst,
        MAC_A,
        0x0800,
        &ipv4(a, b, 17, frags, &[], &udp(1000, 2000, 0, &payload)),
    )
}

/// A frame from a port, built from random choices, then randomly damaged.
fn random_port_frame(r: &mut Rng) -> Vec<u8> {
    let dst = match r.below(9) {
        0 => MAC_BEHIND_REMOTE,
        1 => MAC_SKB_PORT,
        2 => MAC_XDP_PORT,
        3 => MAC_OTHER_VNI_PORT,
        4 => MAC_UNKNOWN,
        5 => MAC_A,
        6 => BROADCAST,
        7 => [0x33, 0x33, 0, 0, 0, r.next() as u8],
        _ => [r.next() as u8 & 0xfe, 0, 0, 0, 0, r.next() as u8],
    };
    let mut f = match r.below(12) {
        0..=4 => inner_frame(dst),
        5..=7 => arp_frame(dst),
        8 => vlan_frame(dst),
        9 => sized_frame(dst, 1400 + r.below(200) as usize, r.below(4) != 0),
        10 => {
            let mut ip6 = inner_frame(dst);
            ip6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
            ip6
        }
        _ => sized_frame(dst, 60 + r.below(60) as usize, true),
    };
    if r.below(8) == 0 {
        f[6] = r.next() as u8;
    }
    let header = f.len().min(64);
    match r.below(10) {
        0..=4 => {}
        5 | 6 => {
            for _ in 0..1 + r.below(4) {
                let at = 12 + r.below(header as u64 - 12) as usize;
                f[at] = r.next() as u8;
            }
        }
        7 => f.truncate(14 + r.below(f.len() as u64 - 13) as usize),
        8 => f[14] = r.next() as u8,
        _ => f[12..14].copy_from_slice(&(r.next() as u16).to_be_bytes()),
    }
    f
}

#[test]
fn encap_matches_the_reference_model_on_random_frames() {
    let (ul0, ul0_mac) = private_netns();
    let (p1, p2, p3, p4) = (ifindex("p1"), ifindex("p2"), ifindex("p3"), ifindex("p4"));
    let (p5, p6) = (ifindex("p5"), ifindex("p6"));
    let unbound = ul0;
    let cfg = config(ul0);
    let mut l = Loaded::new(cfg);
    // VNI 100: two ports, a resolved, an unresolved and an unrouted remote;
    // VNI 200: one port, one remote; VNI 300: one port, nothing else;
    // VNI 400: two ports, no remote.
    let bindings = [
        (p1, 100),
        (p2, 100),
        (p3, 200),
        (p4, 300),
        (p5, 400),
        (p6, 400),
    ];
    let flood_100 = [REMOTE, REMOTE_UNRESOLVED, REMOTE_UNROUTED];
    l.vni(100, &flood_100, &[p1, p2]);
    l.vni(200, &[REMOTE], &[p3]);
    l.vni(300, &[], &[p4]);
    l.vni(400, &[], &[p5, p6]);
    for (p, vni) in bindings {
        l.port(p, vni, 0);
    }
    let fdb = [
        (100, MAC_BEHIND_REMOTE, Some(REMOTE), 0),
        (200, MAC_BEHIND_REMOTE, Some(REMOTE), 0),
        (100, MAC_UNKNOWN, Some(REMOTE_UNRESOLVED), 0),
        (100, MAC_A, Some(REMOTE_UNROUTED), 0),
        (100, MAC_SKB_PORT, None, p2),
        (100, MAC_XDP_PORT, None, p1),
        (100, MAC_OTHER_VNI_PORT, None, p3),
        (300, MAC_SKB_PORT, None, unbound),
    ];
    for (vni, mac, remote, port) in fdb {
        l.fdb(vni, mac, remote, port);
    }
    let vni_info = |remotes: &[Ipv4Addr], ports: &[u32]| {
        let mut i = VniInfo {
            slot: 0,
            n_remotes: remotes.len() as u32,
            n_ports: ports.len() as u32,
            ..VniInfo::default()
        };
        for (k, r) in remotes.iter().enumerate() {
            i.remotes[k] = ip(*r);
        }
        i.ports[..ports.len()].copy_from_slice(ports);
        i
    };
    let port_info = |vni| PortInfo {
        vni,
        flags: 0,
        slot: vni,
        _pad: 0,
    };
    let tables = EncapFixture {
        ports: bindings
            .into_iter()
            .map(|(p, v)| (p, port_info(v)))
            .collect(),
        vnis: [
            (100, vni_info(&flood_100, &[p1, p2])),
            (200, vni_info(&[REMOTE], &[p3])),
            (300, vni_info(&[], &[p4])),
            (400, vni_info(&[], &[p5, p6])),
        ]
        .into_iter()
        .collect(),
        fdb: fdb
            .iter()
            .map(|(vni, mac, remote, port)| {
                let e = FdbEntry {
                    remote: remote.map_or(0, ip),
                    ifindex: *port,
                    flags: FDB_F_STATIC,
                    peer: 0,
                };
                ((*vni, *mac), e)
            })
            .collect(),
        ul0,
        ul0_mac,
        mtus: bindings
            .iter()
            .map(|(p, _)| (*p, if *p == p2 { P2_MTU } else { 1500 }))
            .chain([(ul0, 1500)])
            .collect(),
    };

    let seed = std::env::var("VTEP_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x454e_4341_5026_u64);
    let mut rng = Rng(seed);
    let start = l.counters(MAP_DROPS, DropReason::COUNT);
    let counted = |l: &Loaded| -> Vec<u64> {
        let now = l.counters(MAP_DROPS, DropReason::COUNT);
        now.iter().zip(&start).map(|(a, b)| a - b).collect()
    };
    let mut expected = vec![0u64; DropReason::COUNT as usize];
    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    let ports = [p1, p2, p3, p4, p5, p1, p3, unbound];
    for i in 0..100_000u32 {
        let frame = random_port_frame(&mut rng);
        let from = rng.pick(&ports);
        let (want, copies) = model::encap(&frame, from, &cfg, &tables);
        expected[DropReason::TooBig as usize] += u64::from(copies.too_big);
        let mut out = vec![0u8; frame.len() + 256];
        let Ok((action, len)) = try_run_tc(&l, from, &frame, &mut out) else {
            // BPF_PROG_TEST_RUN refuses an skb whose IP header is cut short
            // (a real port would hand it over): only those are skipped.
            let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
            assert!(
                (ethertype == 0x0800 && frame.len() < 34)
                    || (ethertype == 0x86dd && frame.len() < 54),
                "frame {i}: BPF_PROG_TEST_RUN refused a frame of {} bytes",
                frame.len()
            );
            *seen.entry("refused by test_run".to_owned()).or_default() += 1;
            continue;
        };
        let got = &out[..len];
        let fail = |what: &str| -> ! {
            let hex: String = frame.iter().map(|b| format!("{b:02x}")).collect();
            panic!(
                "frame {i} from ifindex {from} (seed {seed}): {what}\nmodel: {want:?}\nprogram: action {action}, output {len} bytes\nframe: {hex}"
            )
        };
        let with_outer = |outer: &[u16]| -> Vec<u8> {
            let mut f: Vec<u8> = outer.iter().flat_map(|w| w.to_ne_bytes()).collect();
            f.extend_from_slice(&frame);
            f
        };
        let key = match want {
            model::EncapVerdict::Drop(reason) => {
                if action != TC_ACT_SHOT || got != &frame[..] {
                    fail("expected a drop, frame unchanged");
                }
                expected[reason as usize] += 1;
                format!("drop {}", reason.name())
            }
            model::EncapVerdict::Switch { .. } => {
                if action != TC_ACT_REDIRECT || got != &frame[..] {
                    fail("expected the frame switched unchanged");
                }
                "switch".to_owned()
            }
            model::EncapVerdict::Unicast {
                resolved, outer, ..
            } => {
                if action != TC_ACT_REDIRECT || got != &with_outer(&outer)[..] {
                    fail("expected the frame encapsulated");
                }
                if resolved {
                    "unicast"
                } else {
                    "unicast via neighbour"
                }
                .to_owned()
            }
            model::EncapVerdict::FragNeeded { reply } => {
                if action != TC_ACT_REDIRECT || got != &reply[..] {
                    fail("expected an ICMP fragmentation-needed reply");
                }
                expected[DropReason::TooBig as usize] += 1;
                "icmp frag needed".to_owned()
            }
            model::EncapVerdict::Flood(f) => {
                if action != TC_ACT_SHOT {
                    fail("expected the original consumed by a flood");
                }
                let want_out = match (f.grown, f.last) {
                    (false, _) => Some(frame.clone()),
                    (true, Some(outer)) => Some(with_outer(&outer)),
                    (true, None) => None,
                };
                if want_out.is_some_and(|w| got != &w[..]) {
                    fail("expected the flood to leave the last copy's encapsulation");
                }
                expected[DropReason::NoNeighbour as usize] += u64::from(f.no_neighbour);
                expected[DropReason::NoRoute as usize] += u64::from(f.no_route);
                format!("flood to {} remotes", f.sent)
            }
        };
        *seen.entry(key).or_default() += 1;
        if i % 997 == 0 {
            let got = counted(&l);
            assert_eq!(
                got,
                expected,
                "drop counters after frame {i} (seed {seed}) {want:?} {}",
                frame.iter().map(|b| format!("{b:02x}")).collect::<String>()
            );
        }
    }
    let got = counted(&l);
    assert_eq!(got, expected, "drop counters (seed {seed})");
    println!("encap vs reference model, seed {seed}: 100000 frames, no mismatch: {seen:?}");
    for kind in [
        "switch",
        "unicast",
        "unicast via neighbour",
        "icmp frag needed",
        "flood to 0 remotes",
        "flood to 1 remotes",
        "drop unbound_port",
        "drop inner_vlan",
        "drop group_source_mac",
        "drop hairpin",
        "drop vni_mismatch",
        "drop no_route",
        "drop no_neighbour",
        "drop too_big",
        "drop no_flood_target",
    ] {
        assert!(seen.contains_key(kind), "no frame got '{kind}': {seen:?}");
    }
}

#[test]
fn decap_drops_inner_frames_too_big_for_their_port() {
    private_netns();
    let (p1, p2) = (ifindex("p1"), ifindex("p2"));
    let mut l = decap_loaded();
    l.port(p1, 100, PORT_F_XDP);
    l.port(p2, 100, 0);
    l.fdb_flags(100, MAC_XDP_PORT, None, p1, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let frame = |dst, len| vxlan(REMOTE, VXLAN_PORT, I, 100, &sized_frame(dst, len, true));
    let delivered = |dst, len: usize| {
        let f = frame(dst, len);
        let inner = f[50..].to_vec();
        (f, inner)
    };
    // The largest frame a port takes: MTU + Ethernet header + the 4 bytes
    // of a VLAN tag the kernel's forwarding check allows.
    let (fits_xdp, fits_xdp_out) = delivered(MAC_XDP_PORT, 1518);
    let (fits_skb, fits_skb_inner) = delivered(MAC_SKB_PORT, P2_MTU as usize + 18);
    let cases = vec![
        Case {
            what: "inner frame of exactly the port's MTU (1500) + 18, XDP delivery",
            input: fits_xdp,
            action: XDP_REDIRECT,
            output: Some(fits_xdp_out),
            bump: Bump::Event(Counter::DecapXdp),
        },
        Case {
            what: "one byte more: dropped and counted, not lost silently",
            input: frame(MAC_XDP_PORT, 1519),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::TooBig),
        },
        Case {
            what: "inner frame of exactly the port's MTU (1400) + 18, skb delivery",
            input: fits_skb,
            action: XDP_PASS,
            output: Some([meta(META_ACTION_DELIVER, 100, p2), fits_skb_inner].concat()),
            bump: Bump::Event(Counter::DecapSkb),
        },
        Case {
            what: "inner jumbo (9000-byte MTU sender) to a 1400-byte port",
            input: frame(MAC_SKB_PORT, 1600),
            action: XDP_DROP,
            output: None,
            bump: Bump::Drop(DropReason::TooBig),
        },
    ];
    check(&l, cases, run_xdp(&l));
}

/// Runs decap frame `f`, which must be passed up to TC; returns the port
/// its metadata names (0: flood).
fn passed_up_to(l: &Loaded, f: &[u8]) -> u32 {
    let mut out = vec![0u8; f.len() + 64];
    let (action, len) = run_xdp(l)(f, &mut out);
    assert_eq!(action, XDP_PASS, "frame not passed up");
    assert!(len >= 16, "no metadata");
    u32::from_ne_bytes(out[12..16].try_into().unwrap())
}

/// The decap decision cache (vtep-ebpf `cache`): the frames of a
/// conversation after the first are decided from the cache, never after a
/// table change (the generation moves) and never after the learned entry
/// of their destination went stale; learning bumps the generation.
#[test]
fn decap_cache_follows_the_tables() {
    private_netns();
    let (p2, p3) = (ifindex("p2"), ifindex("p3"));
    let mut l = Loaded::new(Config {
        ageing_s: 1,
        ..config(1)
    });
    l.vni(100, &[REMOTE], &[p2, p3]);
    l.port(p2, 100, 0);
    l.port(p3, 100, 0);
    l.fdb(100, MAC_SKB_PORT, None, p2);
    let fills =
        |l: &Loaded| l.counters(MAP_COUNTERS, Counter::COUNT)[Counter::DecapCacheFill as usize];
    let to_skb_port = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_SKB_PORT));

    assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    assert_eq!(fills(&l), 1, "the first frame is decided from the tables");
    for _ in 0..3 {
        assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    }
    assert_eq!(fills(&l), 1, "the frames after it, from the cache");

    // The FDB entry changes behind the cache's back (no bump): the cache
    // still answers, which is what makes the generation load-bearing...
    {
        let mut m: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(l.ebpf.map_mut(MAP_FDB).unwrap()).unwrap();
        let e = FdbEntry {
            remote: 0,
            ifindex: p3,
            flags: FDB_F_STATIC,
            peer: 0,
        };
        m.insert(FdbKey::new(100, MAC_SKB_PORT), e, 0).unwrap();
    }
    assert_eq!(passed_up_to(&l, &to_skb_port), p2);
    // ...and once it moves, as after every change `vtep` makes, the next
    // frame follows the table.
    l.generation.bump();
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    assert_eq!(fills(&l), 2);

    // A learned destination 0.7 s into its 1 s of life: delivered and
    // cached, then flooded once it went stale, with no table change.
    {
        let mut m: HashMap<_, FdbKey, LearnedEntry> =
            HashMap::try_from(l.ebpf.map_mut(MAP_LEARNED).unwrap()).unwrap();
        let seen_ns = coarse_now_ns() - 700_000_000;
        let e = LearnedEntry {
            ifindex: p3,
            seen_ns,
            window_ns: seen_ns,
            ..LearnedEntry::default()
        };
        m.insert(FdbKey::new(100, MAC_UNKNOWN), e, 0).unwrap();
    }
    l.generation.bump();
    let to_learned = vxlan(REMOTE, VXLAN_PORT, I, 100, &inner_frame(MAC_UNKNOWN));
    assert_eq!(passed_up_to(&l, &to_learned), p3);
    assert_eq!(passed_up_to(&l, &to_learned), p3);
    assert_eq!(fills(&l), 3);
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(passed_up_to(&l, &to_learned), 0, "stale: flooded");

    // Learning from REMOTE: a MAC learned bumps the generation; seeing it
    // again (a refresh at most) does not.
    {
        let mut r: HashMap<_, RemoteKey, RemoteInfo> =
            HashMap::try_from(l.ebpf.map_mut(MAP_REMOTES).unwrap()).unwrap();
        let key = RemoteKey {
            vni: 100,
            ip: ip(REMOTE),
        };
        let mut info = r.get(&key, 0).unwrap();
        info.flags |= REMOTE_F_LEARN;
        r.insert(key, info, 0).unwrap();
    }
    l.generation.bump();
    let before = l.generation.get();
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    let learned = l.generation.get();
    assert!(
        learned > before,
        "learning MAC_A did not bump the generation"
    );
    assert_eq!(passed_up_to(&l, &to_skb_port), p3);
    assert_eq!(
        l.generation.get(),
        learned,
        "a second frame changed nothing"
    );
}
