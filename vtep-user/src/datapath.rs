//! Loading the kernel programs, attaching them, pinning what must outlive
//! this process, and taking it all down again.

use std::{fs, path::Path};

use anyhow::{Context as _, bail};
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, MapData},
    programs::{
        LinkOrder, Program, ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        links::{FdLink, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
        xdp::XdpLink,
    },
};
use log::warn;
use vtep_common::{
    consts::{
        GLOBAL_CONFIG, MAP_FDB, MAP_INSTANCE, MAP_LEARNED, PROG_DECAP_MERGED, PROG_DECAP_TC,
        PROG_DECAP_XDP, PROG_ENCAP_TC,
    },
    maps::{
        CONFIG_F_DECAP_TC, Config, INSTANCE_F_GRO_SET, InstanceInfo, LAYOUT_VERSION,
        XDP_MODE_GENERIC, XDP_MODE_NATIVE, XDP_MODE_OFF,
    },
};

use crate::{
    headroom,
    instance::{
        Instance, PIN_LINK_DECAP_MERGED, PIN_LINK_DECAP_TC, PIN_LINK_XDP, PIN_PROG_ENCAP,
        pin_link_port,
    },
    merge_dev,
    values::XdpModeArg,
};

/// The kernel programs, built by build.rs and embedded in the binary.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vtep"));

/// Sizes of the tables an operator chooses at `vtep up`.
#[derive(Clone, Copy, Debug)]
pub struct Capacities {
    /// The static FDB.
    pub fdb: u32,
    /// The learned-MAC table (LRU).
    pub learned: u32,
}

/// Loads the programs with `config`, attaches them to `underlay`, pins the
/// maps, the encap program and the links under the instance directory.
/// On failure everything created so far is removed again.
///
/// `--xdp-mode auto` decapsulates in TC on a veth, and attaches native
/// XDP anywhere else, in TC again where the driver has none (generic XDP
/// is the skb path with XDP emulated on top). A veth hands over skbs,
/// which it copies into a page each before running XDP: without XDP they
/// cost a half to a third as much, and a VM's TCP, merged by GRO for the
/// merge device, is no slower (measured; see README, "Decapsulating in
/// TC").
pub fn up(
    inst: &Instance,
    underlay: &str,
    config: Config,
    mode: XdpModeArg,
    capacities: Capacities,
) -> anyhow::Result<u32> {
    crate::sys::ensure_bpffs(inst.dir.parent().unwrap_or(Path::new("/")))?;
    let on_veth = mode == XdpModeArg::Auto && is_veth(config.underlay_ifindex)?;
    let mode = if on_veth { XdpModeArg::Off } else { mode };
    match up_as(inst, underlay, config, mode, capacities) {
        Err(e) if e.downcast_ref::<NoNativeXdp>().is_some() => {
            warn!("{e:#}: decapsulating in TC instead (--xdp-mode skb forces generic XDP)");
            up_as(inst, underlay, config, XdpModeArg::Off, capacities)
        }
        Err(e) if on_veth && e.downcast_ref::<merge_dev::NoMergeDev>().is_some() => {
            warn!("{e:#}: decapsulating in XDP instead");
            up_as(inst, underlay, config, XdpModeArg::Native, capacities)
        }
        r => r,
    }
}

/// Whether interface `ifindex` is a veth.
fn is_veth(ifindex: u32) -> anyhow::Result<bool> {
    let kind = crate::netlink::Rtnl::open()?.port_kind(ifindex)?;
    Ok(matches!(kind, crate::netlink::PortKind::Veth { .. }))
}

/// Native XDP could not be attached (`--xdp-mode auto` then decapsulates
/// in TC).
#[derive(Debug, thiserror::Error)]
#[error("native XDP on '{underlay}' failed ({reason})")]
struct NoNativeXdp {
    underlay: String,
    reason: String,
}

/// [`up`] in XDP mode `mode`; everything made so far removed again on
/// failure.
fn up_as(
    inst: &Instance,
    underlay: &str,
    mut config: Config,
    mode: XdpModeArg,
    capacities: Capacities,
) -> anyhow::Result<u32> {
    fs::create_dir_all(&inst.dir)
        .with_context(|| format!("cannot create {}", inst.dir.display()))?;
    set_private(&inst.dir);
    let mut merge = 0;
    if mode == XdpModeArg::Off {
        config.flags |= CONFIG_F_DECAP_TC;
        merge = merge_dev::create(config.underlay_ifindex, config.udp_port)?;
    }
    let result = load_and_attach(inst, underlay, (config, merge), mode, capacities);
    if result.is_err() {
        down(inst)?;
        merge_dev::remove(config.underlay_ifindex, merge);
    }
    result
}

/// Loads the programs with `config` and attaches them to `underlay` (and
/// to the merge device `merge`, if not 0); records the instance.
fn load_and_attach(
    inst: &Instance,
    underlay: &str,
    (config, merge): (Config, u32),
    mode: XdpModeArg,
    capacities: Capacities,
) -> anyhow::Result<u32> {
    let mut ebpf = load(inst, config, Some(capacities))?;
    let xdp_mode = attach_xdp(&mut ebpf, inst, underlay, mode)?;
    let tc = program::<SchedClassifier>(&mut ebpf, PROG_DECAP_TC)?;
    attach_tc_pinned(tc, underlay, &inst.pin(PIN_LINK_DECAP_TC))?;
    if merge != 0 {
        let merged = program::<SchedClassifier>(&mut ebpf, PROG_DECAP_MERGED)?;
        let name = merge_dev::name(config.underlay_ifindex);
        attach_tc_pinned(merged, &name, &inst.pin(PIN_LINK_DECAP_MERGED))?;
    }
    program::<SchedClassifier>(&mut ebpf, PROG_ENCAP_TC)?
        .pin(inst.pin(PIN_PROG_ENCAP))
        .context("cannot pin the encap program")?;
    // GRO on the underlay (NICs have it on; veths do not): a VM's TCP
    // segments are put back together per flow before they reach a port,
    // which it feels (with XDP, 1.3x the kernel's vxlan over veths against
    // 0.8 without, measured). With XDP, GRO merges the inner frames XDP
    // passes up; without, the VXLAN packets themselves, for the merge
    // device's socket.
    let flags = if crate::sys::set_gro(underlay, true)? {
        0
    } else {
        INSTANCE_F_GRO_SET
    };
    write_record(
        &mut ebpf,
        InstanceInfo {
            layout_version: LAYOUT_VERSION,
            xdp_mode,
            config,
            flags,
            merge_dev: merge,
        },
    )?;
    Ok(xdp_mode)
}

/// Opens the object with `config` as its load-time settings and the
/// instance's pinned maps (created where missing, with the FDB and learned
/// table sized as `capacities` says; an upgrade reuses them as they are),
/// and loads its four programs.
fn load(inst: &Instance, config: Config, capacities: Option<Capacities>) -> anyhow::Result<Ebpf> {
    let mut loader = EbpfLoader::new();
    loader
        .default_map_pin_directory(&inst.dir)
        .override_global(GLOBAL_CONFIG, &config, true);
    if let Some(c) = capacities {
        loader
            .map_max_entries(MAP_FDB, c.fdb)
            .map_max_entries(MAP_LEARNED, c.learned);
    }
    let mut ebpf = loader.load(EBPF_OBJECT).context(
        "cannot load the kernel programs (is this kernel built with BPF, BTF and XDP? are you root?)",
    )?;
    let xdp = program::<Xdp>(&mut ebpf, PROG_DECAP_XDP)?;
    load_retrying(|| xdp.load()).map_err(|e| rejected(e, PROG_DECAP_XDP))?;
    for name in [PROG_DECAP_TC, PROG_DECAP_MERGED, PROG_ENCAP_TC] {
        let tc = program::<SchedClassifier>(&mut ebpf, name)?;
        load_retrying(|| tc.load()).map_err(|e| rejected(e, name))?;
    }
    Ok(ebpf)
}

/// Times a program's load is tried while the verifier is interrupted.
const LOAD_ATTEMPTS: usize = 5;

/// Runs `load` (a program's `load`) again when the kernel answers EAGAIN:
/// the verifier gives up with it when a signal is pending for the loading
/// thread (a daemon's SIGHUP, a child's exit), and the encap program's
/// verification takes long enough for that to happen (seen in the tests).
/// As libbpf does, up to [`LOAD_ATTEMPTS`] times.
pub fn load_retrying(
    mut load: impl FnMut() -> Result<(), ProgramError>,
) -> Result<(), ProgramError> {
    let mut attempt = 1;
    loop {
        match load() {
            Err(ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && attempt < LOAD_ATTEMPTS =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Program `name` of the object, as its type.
fn program<'a, P>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut P>
where
    &'a mut P: TryFrom<&'a mut Program, Error = ProgramError>,
{
    Ok(ebpf
        .program_mut(name)
        .with_context(|| format!("the object has no program {name}"))?
        .try_into()?)
}

/// Writes the instance record.
fn write_record(ebpf: &mut Ebpf, info: InstanceInfo) -> anyhow::Result<()> {
    let mut record: Array<MapData, InstanceInfo> = Array::try_from(
        ebpf.take_map(MAP_INSTANCE)
            .context("the object has no instance record map")?,
    )?;
    record.set(0, info, 0)?;
    Ok(())
}

/// The kernel refused to load `name`: the verifier's verdict is the end of
/// its log, the rest is noise to an operator.
fn rejected(e: ProgramError, name: &str) -> anyhow::Error {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            let tail: Vec<&str> = log.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            anyhow::anyhow!(
                "the kernel rejected program {name}: {io_error}; verifier: {}",
                tail.join(" | ")
            )
        }
        e => anyhow::Error::new(e).context(format!("cannot load program {name}")),
    }
}

/// Attaches the XDP program to `underlay` as `mode` says and pins its
/// link; the `XDP_MODE_*` it runs in (`XDP_MODE_OFF`: none attached).
fn attach_xdp(
    ebpf: &mut Ebpf,
    inst: &Instance,
    underlay: &str,
    mode: XdpModeArg,
) -> anyhow::Result<u32> {
    if mode == XdpModeArg::Off {
        return Ok(XDP_MODE_OFF);
    }
    let xdp = program::<Xdp>(ebpf, PROG_DECAP_XDP)?;
    let (link_id, xdp_mode) = attach_xdp_in(xdp, underlay, mode)?;
    FdLink::try_from(xdp.take_link(link_id)?)
        .context("the XDP attachment is not a BPF link (kernel older than 5.9?)")?
        .pin(inst.pin(PIN_LINK_XDP))
        .context("cannot pin the XDP link")?;
    Ok(xdp_mode)
}

/// Attaches `xdp` to `underlay` in `mode` (not `Off`).
fn attach_xdp_in(
    xdp: &mut Xdp,
    underlay: &str,
    mode: XdpModeArg,
) -> anyhow::Result<(aya::programs::xdp::XdpLinkId, u32)> {
    let generic = |xdp: &mut Xdp| {
        xdp.attach(underlay, XdpMode::Skb)
            .with_context(|| format!("cannot attach XDP to '{underlay}' in generic mode"))
            .map(|id| (id, XDP_MODE_GENERIC))
    };
    match mode {
        XdpModeArg::Skb => generic(xdp),
        XdpModeArg::Native => xdp
            .attach(underlay, XdpMode::Driver)
            .with_context(|| {
                format!(
                    "cannot attach XDP to '{underlay}' in native mode; try --xdp-mode off (or skb)"
                )
            })
            .map(|id| (id, XDP_MODE_NATIVE)),
        XdpModeArg::Auto | XdpModeArg::Off => xdp
            .attach(underlay, XdpMode::Driver)
            .map(|id| (id, XDP_MODE_NATIVE))
            .map_err(|e| {
                NoNativeXdp {
                    underlay: underlay.to_owned(),
                    reason: e.to_string(),
                }
                .into()
            }),
    }
}

/// Attaches `prog` at TCX ingress of `iface` and pins the link at `pin`.
fn attach_tc_pinned(prog: &mut SchedClassifier, iface: &str, pin: &Path) -> anyhow::Result<()> {
    let id = prog
        .attach_with_options(
            iface,
            TcAttachType::Ingress,
            TcAttachOptions::TcxOrder(LinkOrder::default()),
        )
        .with_context(|| format!("cannot attach TC ingress to '{iface}' (TCX needs Linux 6.6+)"))?;
    FdLink::try_from(prog.take_link(id)?)?
        .pin(pin)
        .with_context(|| format!("cannot pin {}", pin.display()))?;
    Ok(())
}

/// Attaches the pinned encap program to port `iface` (index `ifindex`).
pub fn attach_port(inst: &Instance, iface: &str, ifindex: u32) -> anyhow::Result<()> {
    let pin = inst.pin(PIN_PROG_ENCAP);
    let mut prog = SchedClassifier::from_pin(&pin)
        .with_context(|| format!("cannot open the pinned encap program {}", pin.display()))?;
    attach_tc_pinned(&mut prog, iface, &inst.pin(&pin_link_port(ifindex)))
}

/// Detaches port `ifindex` (no-op if it is not attached).
pub fn detach_port(inst: &Instance, ifindex: u32) -> anyhow::Result<()> {
    unpin_link(&inst.pin(&pin_link_port(ifindex)))
}

fn unpin_link(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let link = PinnedLink::from_pin(path)
        .with_context(|| format!("cannot open pinned link {}", path.display()))?;
    // Dropping the last reference to the link detaches the program.
    drop(
        link.unpin()
            .with_context(|| format!("cannot unpin {}", path.display()))?,
    );
    Ok(())
}

/// Detaches every program of the instance and removes its pins and its
/// directory. Touches nothing else; safe to run when already down.
pub fn down(inst: &Instance) -> anyhow::Result<bool> {
    // A daemon killed without a chance to clean up leaves its pid file.
    if inst.daemon_pid().is_none() {
        let _ = fs::remove_file(inst.pidfile());
    }
    if !inst.dir.exists() {
        return Ok(false);
    }
    let record = recorded(inst);
    if let Some(info) = &record {
        restore_gro(info);
    }
    let entries: Vec<_> = fs::read_dir(&inst.dir)
        .with_context(|| format!("cannot list {}", inst.dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    // Links first (detach), then programs and maps.
    for path in entries.iter().filter(|p| is_link_pin(p)) {
        unpin_link(path)?;
    }
    for path in entries.iter().filter(|p| !is_link_pin(p)) {
        fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    }
    fs::remove_dir(&inst.dir).with_context(|| format!("cannot remove {}", inst.dir.display()))?;
    if let Some(info) = record {
        merge_dev::remove(info.config.underlay_ifindex, info.merge_dev);
        headroom::remove(info.config.underlay_ifindex);
    }
    Ok(true)
}

/// What `up` recorded, if it can be read.
fn recorded(inst: &Instance) -> Option<InstanceInfo> {
    let record = inst
        .map::<Array<MapData, InstanceInfo>>(MAP_INSTANCE)
        .ok()?;
    record.get(&0, 0).ok()
}

/// Turns GRO on the underlay off again if `up` turned it on (an underlay
/// gone leaves nothing to do).
fn restore_gro(info: &InstanceInfo) {
    if info.flags & INSTANCE_F_GRO_SET == 0 {
        return;
    }
    let underlay = crate::sys::ifname(info.config.underlay_ifindex);
    if let Err(e) = crate::sys::set_gro(&underlay, false) {
        warn!("GRO stays on on '{underlay}': {e:#}");
    }
}

fn is_link_pin(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("link_"))
}

/// Makes a pin directory root-only.
fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o700)) {
        warn!("cannot make {} root-only: {e}", dir.display());
    }
}

/// Replaces the programs of a running instance with this build's,
/// atomically in each existing link (`bpf_link_update`), keeping every map
/// and entry: no frame is dropped and no state is lost. `config` becomes
/// the programs' load-time settings; `recorded` is what `up` recorded.
pub fn upgrade(inst: &Instance, recorded: &InstanceInfo, config: Config) -> anyhow::Result<()> {
    if recorded.layout_version != LAYOUT_VERSION {
        bail!(
            "instance '{}' keeps its maps in layout {}, this build uses layout {LAYOUT_VERSION}: \
             an in-place upgrade would misread them; run `vtep down` and `vtep up` (state is lost)",
            inst.name,
            recorded.layout_version
        );
    }
    let mut ebpf = load(inst, config, None)?;
    if recorded.xdp_mode != XDP_MODE_OFF {
        let link = XdpLink::try_from(pinned(&inst.pin(PIN_LINK_XDP))?)?;
        let xdp = program::<Xdp>(&mut ebpf, PROG_DECAP_XDP)?;
        let id = xdp
            .attach_to_link(link)
            .context("cannot replace the XDP program")?;
        // The pin keeps the link; our handle goes without detaching it.
        drop(xdp.take_link(id)?);
    }
    let tc = program::<SchedClassifier>(&mut ebpf, PROG_DECAP_TC)?;
    replace_tc(tc, &inst.pin(PIN_LINK_DECAP_TC))?;
    if recorded.merge_dev != 0 {
        let merged = program::<SchedClassifier>(&mut ebpf, PROG_DECAP_MERGED)?;
        replace_tc(merged, &inst.pin(PIN_LINK_DECAP_MERGED))?;
    }
    let encap = program::<SchedClassifier>(&mut ebpf, PROG_ENCAP_TC)?;
    for entry in fs::read_dir(&inst.dir)?.filter_map(Result::ok) {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with("link_port_")) {
            replace_tc(encap, &entry.path())?;
        }
    }
    // Ports added from now on get the new program.
    let prog_pin = inst.pin(PIN_PROG_ENCAP);
    fs::remove_file(&prog_pin).with_context(|| format!("cannot unpin {}", prog_pin.display()))?;
    encap
        .pin(&prog_pin)
        .context("cannot pin the new encap program")?;
    write_record(
        &mut ebpf,
        InstanceInfo {
            config,
            ..*recorded
        },
    )
}

fn pinned(path: &Path) -> anyhow::Result<FdLink> {
    Ok(PinnedLink::from_pin(path)
        .with_context(|| format!("cannot open pinned link {}", path.display()))?
        .into())
}

/// Swaps `prog` into the pinned TC link at `pin`.
fn replace_tc(prog: &mut SchedClassifier, pin: &Path) -> anyhow::Result<()> {
    let link = SchedClassifierLink::try_from(pinned(pin)?)?;
    let id = prog
        .attach_to_link(link)
        .with_context(|| format!("cannot replace the program of {}", pin.display()))?;
    drop(prog.take_link(id)?);
    Ok(())
}

/// One pinned attachment of an instance.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Attachment {
    pub link_id: u32,
    pub program_id: u32,
}

/// The instance's attachments, by pin name (`link_xdp`, `link_port_N`, ...).
pub fn attachments(
    inst: &Instance,
) -> anyhow::Result<std::collections::BTreeMap<String, Attachment>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in fs::read_dir(&inst.dir)
        .with_context(|| format!("cannot list {}", inst.dir.display()))?
        .filter_map(Result::ok)
    {
        if is_link_pin(&entry.path()) {
            let info = pinned(&entry.path())?.info()?;
            out.insert(
                entry.file_name().to_string_lossy().into_owned(),
                Attachment {
                    link_id: info.id(),
                    program_id: info.program_id(),
                },
            );
        }
    }
    Ok(out)
}

/// The id of the decap program running on the instance's underlay: in
/// its XDP link, or in its TC link where it runs no XDP.
pub fn decap_program_id(inst: &Instance) -> anyhow::Result<u32> {
    let xdp = inst.pin(PIN_LINK_XDP);
    let link = if xdp.exists() {
        xdp
    } else {
        inst.pin(PIN_LINK_DECAP_TC)
    };
    Ok(pinned(&link)?.info()?.program_id())
}
