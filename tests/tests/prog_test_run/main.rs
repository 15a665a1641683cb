//! BPF_PROG_TEST_RUN tables for the kernel programs, in the spirit of
//! Katran's fixtures: each case is a description, an input frame, the
//! expected action, the expected output frame and the counter it must
//! bump (and no other drop counter).
//!
//! Decap (XDP) needs nothing around it. Encap (TC) asks the kernel FIB, so
//! each encap test first moves its own thread into a private network
//! namespace (`unshare(CLONE_NEWNET)` is per thread) with an underlay, a
//! neighbour and ports of its own.
//!
//! This file holds the fixtures (programs loaded with their maps, the
//! private namespace; frames in `builders`); the tests are in `decap`,
//! `encap`, `cache`, `vlan` (trunk bindings), `ecn_tos` (ECN and DSCP
//! across the tunnel), `reference` and `reference_encap` (both programs
//! against the reference models).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::Command,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, PerCpuValues},
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
    util::nr_cpus,
};
use vtep_common::{
    addr::Addr,
    caches::TICK_MAX_NS,
    consts::{
        GLOBAL_CONFIG, MAP_BINDING_STATS, MAP_COUNTERS, MAP_DROPS, MAP_FDB, MAP_GENERATION,
        MAP_LEARNED, MAP_NEIGHS, MAP_PEER_STATS, MAP_PORTS, MAP_REMOTES, MAP_VNI_STATS, MAP_VNIS,
        MAX_FLOOD, MAX_VNI_PORTS, PROG_DECAP_TC, PROG_DECAP_XDP, PROG_ENCAP_TC, VLAN_HLEN,
        VXLAN_PORT,
    },
    counters::{Counter, DropReason},
    ecn::{self, outer_dsfield},
    maps::{
        CONFIG_F_DECAP_TC, CONFIG_F_DF, Config, DECAP_META_MAGIC, FDB_F_PEER, FDB_F_STATIC,
        FDB_F_XDP, FdbEntry, FdbKey, LearnedEntry, META_ACTION_DELIVER, META_ACTION_DELIVER_PEER,
        META_ACTION_FLOOD, NEIGH_F_STATIC, NeighEntry, NeighKey, PORT_F_PEER, PORT_F_XDP,
        PeerStats, PortInfo, PortKey, REMOTE_F_LEARN, RemoteInfo, RemoteKey, VniInfo, VniStats,
    },
    model,
    vxlan::{FlowKey, Outer, OuterHeaders, flow_hash, mac_words, outer_macs},
};
use vtep_tests::{
    BpfFs,
    frames::{self, Tunnel, VXLAN_I, eth, ipv4, ipv6, udp},
    rng::Rng,
};
use vtep_user::{
    datapath::{EBPF_OBJECT, load_retrying},
    generation::Generation,
    sys::coarse_now_ns,
};

use self::builders::*;

mod builders;
mod cache;
mod decap;
mod decap6;
mod ecn_tos;
mod encap;
mod learn;
mod nd;
mod policy;
mod reference;
mod reference_encap;
mod reference_policy;
mod vlan;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;
const TC_ACT_OK: u32 = 0;
const TC_ACT_SHOT: u32 = 2;
const TC_ACT_REDIRECT: u32 = 7;

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// 2001:2:0:`net`::`host`, inside the benchmarking range 2001:2::/48.
const fn v6(net: u16, host: u16) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 2, 0, net, 0, 0, 0, host))
}

const LOCAL: IpAddr = v4(198, 18, 0, 1);
const REMOTE: IpAddr = v4(198, 18, 0, 2);
const STRANGER: IpAddr = v4(198, 18, 0, 7);
const REMOTE_UNRESOLVED: IpAddr = v4(198, 18, 0, 3);
const REMOTE_UNROUTED: IpAddr = v4(198, 18, 9, 9);

/// The same roles over an IPv6 underlay (2001:2::/64; unrouted: another
/// /64).
const LOCAL6: IpAddr = v6(0, 1);
const REMOTE6: IpAddr = v6(0, 2);
const STRANGER6: IpAddr = v6(0, 7);
const REMOTE6_UNRESOLVED: IpAddr = v6(0, 3);
const REMOTE6_UNROUTED: IpAddr = v6(9, 9);

/// One underlay family's addresses, for the tests that run over both.
#[derive(Clone, Copy, Debug)]
struct Family {
    local: IpAddr,
    remote: IpAddr,
    stranger: IpAddr,
    unresolved: IpAddr,
    unrouted: IpAddr,
}

const V4: Family = Family {
    local: LOCAL,
    remote: REMOTE,
    stranger: STRANGER,
    unresolved: REMOTE_UNRESOLVED,
    unrouted: REMOTE_UNROUTED,
};

const V6: Family = Family {
    local: LOCAL6,
    remote: REMOTE6,
    stranger: STRANGER6,
    unresolved: REMOTE6_UNRESOLVED,
    unrouted: REMOTE6_UNROUTED,
};

/// The IPv4 address of an IPv4 constant.
fn v4_addr(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(v) => v,
        IpAddr::V6(v) => panic!("{v} is not IPv4"),
    }
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
const MAC_SKB_PORT: [u8; 6] = [2, 0, 0, 0, 1, 1];
const MAC_XDP_PORT: [u8; 6] = [2, 0, 0, 0, 1, 2];
const MAC_PEER_PORT: [u8; 6] = [2, 0, 0, 0, 1, 3];
const MAC_BEHIND_REMOTE: [u8; 6] = [2, 0, 0, 0, 2, 1];
const MAC_OTHER_VNI_PORT: [u8; 6] = [2, 0, 0, 0, 3, 1];
const MAC_UNKNOWN: [u8; 6] = [2, 0, 0, 0, 9, 9];
/// Behind a trunk's VLAN.
const MAC_TRUNK: [u8; 6] = [2, 0, 0, 0, 4, 1];
const BROADCAST: [u8; 6] = [0xff; 6];

/// The `PEER_STATS` slot the tables give remote VTEP `a`: its last octet
/// (distinct for every remote of one family here).
fn peer_slot(a: IpAddr) -> u32 {
    u32::from(ip(a).octets()[15])
}

/// The load-time settings of the IPv4-underlay tests: local address
/// LOCAL, underlay `underlay_ifindex`, DF set, defaults otherwise.
fn config(underlay_ifindex: u32) -> Config {
    config_at(LOCAL, underlay_ifindex)
}

/// As [`config`], with local address `local` (its family is the
/// underlay's).
fn config_at(local: IpAddr, underlay_ifindex: u32) -> Config {
    Config {
        local_ip: ip(local),
        underlay_ifindex,
        udp_port: VXLAN_PORT,
        ttl: 64,
        flags: CONFIG_F_DF,
        ageing_s: 300,
        move_limit: 5,
        move_window_s: 180,
        tick_ns: TICK_MAX_NS,
    }
}

fn ip(a: IpAddr) -> Addr {
    Addr::from(a)
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
        load_retrying(|| xdp.load()).expect("verifier accepts the XDP decap program");
        for name in [PROG_ENCAP_TC, PROG_DECAP_TC] {
            let tc: &mut SchedClassifier = ebpf.program_mut(name).unwrap().try_into().unwrap();
            load_retrying(|| tc.load()).unwrap_or_else(|e| panic!("verifier rejects {name}: {e}"));
        }
        let generation = Generation::open(&bpffs.dir.join(MAP_GENERATION)).unwrap();
        Loaded {
            ebpf,
            generation,
            _bpffs: bpffs,
        }
    }

    /// Configures `vni` with untagged `ports`; its stats slot is the VNI
    /// number itself.
    fn vni(&mut self, vni: u32, remotes: &[IpAddr], ports: &[u32]) {
        let bindings: Vec<PortKey> = ports.iter().map(|p| PortKey::new(*p, 0)).collect();
        self.vni_bindings(vni, remotes, &bindings);
    }

    /// Configures `vni` with port bindings `ports` (untagged or VLANs).
    fn vni_bindings(&mut self, vni: u32, remotes: &[IpAddr], ports: &[PortKey]) {
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
        for (i, k) in ports.iter().enumerate() {
            info.ports[i] = k.ifindex;
            info.vids[i] = k.vid;
            info.port_stats[i] = binding_slot(*k);
        }
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
        self.generation.bump(vni);
    }

    /// A configured binding of `ip` to `mac` in `vni`.
    fn neigh(&mut self, vni: u32, addr: IpAddr, mac: [u8; 6]) {
        let mut m: HashMap<_, NeighKey, NeighEntry> =
            HashMap::try_from(self.ebpf.map_mut(MAP_NEIGHS).unwrap()).unwrap();
        let e = NeighEntry {
            mac,
            flags: NEIGH_F_STATIC,
            ..NeighEntry::default()
        };
        m.insert(NeighKey { vni, ip: ip(addr) }, e, 0).unwrap();
    }

    /// The MAC bound to `ip` in `vni`, if any.
    fn bound(&self, vni: u32, addr: IpAddr) -> Option<[u8; 6]> {
        let m: HashMap<&MapData, NeighKey, NeighEntry> =
            HashMap::try_from(self.ebpf.map(MAP_NEIGHS).unwrap()).unwrap();
        m.get(&NeighKey { vni, ip: ip(addr) }, 0)
            .ok()
            .map(|e| e.mac)
    }

    fn port(&mut self, ifindex: u32, vni: u32, flags: u32) {
        self.binding(PortKey::new(ifindex, 0), vni, flags);
    }

    /// Binds `key` (a port, or one VLAN of it) to `vni`; its stats slot
    /// is [`binding_slot`].
    fn binding(&mut self, key: PortKey, vni: u32, flags: u32) {
        let mut m: HashMap<_, PortKey, PortInfo> =
            HashMap::try_from(self.ebpf.map_mut(MAP_PORTS).unwrap()).unwrap();
        let p = PortInfo {
            vni,
            flags,
            slot: vni,
            stats: binding_slot(key),
            ..PortInfo::default()
        };
        m.insert(key, p, 0).unwrap();
    }

    fn fdb(&mut self, vni: u32, mac: [u8; 6], remote: Option<IpAddr>, ifindex: u32) {
        self.fdb_flags(vni, mac, remote, ifindex, FDB_F_STATIC);
    }

    fn fdb_flags(
        &mut self,
        vni: u32,
        mac: [u8; 6],
        remote: Option<IpAddr>,
        ifindex: u32,
        flags: u32,
    ) {
        self.fdb_at(vni, mac, remote, PortKey::new(ifindex, 0), flags);
    }

    /// An FDB entry for `mac` in `vni` behind `remote` or binding `at`.
    fn fdb_at(&mut self, vni: u32, mac: [u8; 6], remote: Option<IpAddr>, at: PortKey, flags: u32) {
        let mut m: HashMap<_, FdbKey, FdbEntry> =
            HashMap::try_from(self.ebpf.map_mut(MAP_FDB).unwrap()).unwrap();
        let e = FdbEntry {
            remote: remote.map_or(Addr::NONE, ip),
            ifindex: at.ifindex,
            vid: at.vid,
            flags,
            peer: remote.map_or(binding_slot(at), peer_slot),
            ..FdbEntry::default()
        };
        m.insert(FdbKey::new(vni, mac), e, 0).unwrap();
        self.generation.bump(vni);
    }

    fn counters(&self, name: &str, n: u32) -> Vec<u64> {
        let m: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map(name).unwrap()).unwrap();
        (0..n).map(|i| m.get(&i, 0).unwrap().iter().sum()).collect()
    }

    fn peer_stats(&self, remote: IpAddr) -> PeerStats {
        self.traffic(MAP_PEER_STATS, peer_slot(remote))
    }

    /// The traffic counters of port binding `key`.
    fn binding_stats(&self, key: PortKey) -> PeerStats {
        self.traffic(MAP_BINDING_STATS, binding_slot(key))
    }

    /// Slot `slot` of traffic counters `map`, summed over CPUs.
    fn traffic(&self, map: &str, slot: u32) -> PeerStats {
        let m: PerCpuArray<&MapData, PeerStats> =
            PerCpuArray::try_from(self.ebpf.map(map).unwrap()).unwrap();
        m.get(&slot, 0)
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

/// The stats slot of binding `key` in these tests (one per port and VLAN
/// of the fixtures: their ifindexes are small or 1001..1004).
fn binding_slot(key: PortKey) -> u32 {
    (key.ifindex % 63) * 64 + u32::from(key.vid % 63) + 1
}

const P_SKB: u32 = 1001;
const P_XDP: u32 = 1002;
const P_200: u32 = 1003;

fn decap_loaded() -> Loaded {
    decap_loaded_at(V4)
}

/// The decap fixture over the underlay of `f`: VNIs 100 (ports P_SKB and
/// P_XDP), 200 (P_200) and 300 (no port), all from `f.remote`;
/// MAC_BEHIND_REMOTE behind `f.unresolved`.
fn decap_loaded_at(f: Family) -> Loaded {
    decap_loaded_with(f, config_at(f.local, 1))
}

/// The fixture of [`decap_loaded_at`], loaded with `cfg`.
fn decap_loaded_with(f: Family, cfg: Config) -> Loaded {
    let mut l = Loaded::new(cfg);
    l.vni(100, &[f.remote], &[P_SKB, P_XDP]);
    l.vni(200, &[f.remote], &[P_200]);
    l.vni(300, &[f.remote], &[]);
    l.port(P_SKB, 100, 0);
    l.port(P_XDP, 100, PORT_F_XDP);
    l.port(P_200, 200, 0);
    l.fdb(100, MAC_SKB_PORT, None, P_SKB);
    l.fdb_flags(100, MAC_XDP_PORT, None, P_XDP, FDB_F_STATIC | FDB_F_XDP);
    l.fdb(100, MAC_BEHIND_REMOTE, Some(f.unresolved), 0);
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
    (
        v[0]["ifindex"].as_u64().unwrap() as u32,
        frames::mac(v[0]["address"].as_str().unwrap()),
    )
}

fn ifindex(dev: &str) -> u32 {
    link(dev).0
}

/// Moves this thread into a new network namespace with an underlay `ul0`
/// (198.18.0.1/24 and 2001:2::1/64; REMOTE and REMOTE6 resolved, the
/// unresolved ones not), and ports p1 to p6 (forwarding on for both
/// families, as `vtep port add` sets it; MTU 1500 but p2's,
/// [`P2_MTU`]).
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
    sh("ip addr add 2001:2::1/64 dev ul0 nodad");
    sh("ip neigh replace 2001:2::2 dev ul0 lladdr 02:ee:00:00:00:02 nud permanent");
    for p in ["p1", "p2", "p3", "p4", "p5", "p6"] {
        sh(&format!(
            "ip link add {p} type veth peer name {p}v && ip link set {p} up && ip link set {p}v up"
        ));
        sh(&format!(
            "sysctl -qw net.ipv4.conf.{p}.forwarding=1 net.ipv6.conf.{p}.forwarding=1"
        ));
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
    run_classifier(l, PROG_ENCAP_TC, &skb_ctx(ifindex, 0), input, out)
}

/// The decap program in TC (an underlay without XDP) on `input` arriving
/// on `ifindex` as a GSO packet of `gso_size`-byte segments (0: not GSO).
fn run_decap_tc(
    l: &Loaded,
    ifindex: u32,
    gso_size: u32,
    input: &[u8],
    out: &mut [u8],
) -> (u32, usize) {
    run_classifier(l, PROG_DECAP_TC, &skb_ctx(ifindex, gso_size), input, out)
        .expect("BPF_PROG_TEST_RUN")
}

/// A `struct __sk_buff` for test_run: `ifindex` (the device the frame
/// arrives on) at byte 40, `gso_size` at 176; test_run wants every other
/// input field zero.
fn skb_ctx(ifindex: u32, gso_size: u32) -> [u8; 192] {
    let mut ctx = [0u8; 192];
    ctx[40..44].copy_from_slice(&ifindex.to_ne_bytes());
    ctx[176..180].copy_from_slice(&gso_size.to_ne_bytes());
    ctx
}

/// TC program `name` on `input` with context `ctx`: (action, output
/// length), or the kernel's refusal to run it.
fn run_classifier(
    l: &Loaded,
    name: &str,
    ctx: &[u8],
    input: &[u8],
    out: &mut [u8],
) -> Result<(u32, usize), aya::programs::ProgramError> {
    let prog: &SchedClassifier = l.ebpf.program(name).unwrap().try_into().unwrap();
    let r = prog.test_run(TestRunOptions {
        data_in: Some(input),
        data_out: Some(out),
        ctx_in: Some(ctx),
        ..TestRunOptions::new()
    })?;
    Ok((r.return_value, r.data_size_out as usize))
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
