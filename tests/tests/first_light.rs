//! First light: the XDP program loaded onto a veth in a namespace sees a
//! frame and counts it in its per-CPU map.

use aya::maps::{Map, MapData, PerCpuArray};
use vtep_common::{consts::MAP_COUNTERS, counters::Counter};
use vtep_tests::{BpfFs, UP_NATIVE, Vtep, underlay_pair};

#[test]
fn xdp_counts_a_frame_through_the_map() {
    let bpffs = BpfFs::new();
    let (host, peer) = underlay_pair("fl");
    let vtep = Vtep::new(&host, &bpffs);
    let up = vtep.run(UP_NATIVE);
    assert!(up.status.success(), "vtep up failed: {up:?}");
    // No warning when all is well: every operator would see it (the
    // kernel once refused the object's BTF, a warning at every up).
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(!stderr.contains("WARN"), "vtep up warned: {stderr}");

    let pass = |v: &Vtep| v.counter("counters", Counter::PassToKernel.name());
    let before = pass(&vtep);
    // ARP and ICMP are not VXLAN: the host keeps working, XDP passes them.
    assert!(
        peer.ping("198.18.0.1", 2),
        "the underlay address must stay reachable"
    );
    let after = pass(&vtep);
    // At least the peer's ARP request and its two echo requests came in.
    assert!(
        after >= before + 3,
        "pass_to_kernel went from {before} to {after}"
    );

    // The same counter read straight from the pinned per-CPU map.
    let pin = bpffs.dir.join(&vtep.instance).join(MAP_COUNTERS);
    let map = MapData::from_pin(&pin).expect("pinned COUNTERS map");
    let counters: PerCpuArray<MapData, u64> =
        PerCpuArray::try_from(Map::PerCpuArray(map)).expect("a per-CPU array");
    let per_cpu = counters
        .get(&(Counter::PassToKernel as u32), 0)
        .expect("counter slot");
    assert_eq!(per_cpu.iter().sum::<u64>(), after);
}
