//! Thin wrappers over the OS: the datapath's clock, interface names and
//! indexes, bpffs, forwarding switches, capabilities.

use std::{
    ffi::CString,
    io,
    net::IpAddr,
    os::{
        fd::{AsRawFd as _, FromRawFd as _},
        unix::ffi::OsStrExt as _,
    },
    path::Path,
};

use anyhow::{Context as _, bail};

/// `BPF_FS_MAGIC` from linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The index of interface `name` in this network namespace.
pub fn ifindex(name: &str) -> anyhow::Result<u32> {
    let c = CString::new(name).with_context(|| format!("invalid interface name '{name}'"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the whole call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("interface '{name}' does not exist in this network namespace (see `ip link show`)");
    }
    Ok(idx)
}

/// CLOCK_MONOTONIC_COARSE in ns: the clock of the datapath's
/// `bpf_ktime_get_coarse_ns`.
pub fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a timespec the call may write.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The kernel's tick (one jiffy, 1/HZ s), ns: the resolution of its
/// coarse clocks (clock_getres(2) on `CLOCK_MONOTONIC_COARSE`).
pub fn tick_ns() -> u32 {
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `res` is a timespec the call may write.
    let rc = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) };
    let reported = (rc == 0 && res.tv_sec == 0)
        .then(|| u64::try_from(res.tv_nsec).ok())
        .flatten();
    vtep_common::caches::tick_ns(reported)
}

/// The name of interface `index`, or `if<index>` if it is gone.
pub fn ifname(index: u32) -> String {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes if_indextoname may write.
    let p = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if p.is_null() {
        return format!("if{index}");
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Whether `path` lies on a bpf filesystem.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is writable for the call.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Makes sure `root` is on a bpffs, mounting one if none is there: on
/// `/sys/fs/bpf` for paths below it (the standard place), else on `root`.
pub fn ensure_bpffs(root: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create pin directory {}", root.display()))?;
    if is_bpffs(root) {
        return Ok(());
    }
    let standard = Path::new("/sys/fs/bpf");
    let target = if root.starts_with(standard) && !is_bpffs(standard) {
        standard
    } else {
        root
    };
    mount_bpffs(target).with_context(|| {
        format!(
            "{} is not on a bpf filesystem and mounting one there failed; \
             mount it with `mount -t bpf bpf {}` or pass --pin-root DIR on a bpffs",
            root.display(),
            target.display()
        )
    })?;
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create pin directory {}", root.display()))
}

fn mount_bpffs(target: &Path) -> io::Result<()> {
    let src = c"bpf";
    let fstype = c"bpf";
    let tgt = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: all pointers are valid NUL-terminated strings (or null data)
    // for the duration of the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            tgt.as_ptr(),
            fstype.as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Turns IPv6 off on `iface` (`disable_ipv6`): no link-local address, no
/// router or listener messages of its own. A host without IPv6 has nothing
/// to turn off.
pub fn disable_ipv6(iface: &str) -> anyhow::Result<()> {
    let path = format!("/proc/sys/net/ipv6/conf/{iface}/disable_ipv6");
    if Path::new(&path).exists() {
        std::fs::write(&path, "1").with_context(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

/// Sets forwarding of the family of `ip` (IPv4 or IPv6) on `iface` (this
/// network namespace); returns the previous setting.
pub fn set_forwarding(iface: &str, ip: IpAddr, on: bool) -> anyhow::Result<bool> {
    let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
    let path = format!("/proc/sys/net/{family}/conf/{iface}/forwarding");
    let old = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {path}"))?
        .trim()
        == "1";
    if old != on {
        std::fs::write(&path, if on { "1" } else { "0" })
            .with_context(|| format!("cannot write {path}"))?;
    }
    Ok(old)
}

/// Turns generic receive offload of `iface` on or off (SIOCETHTOOL,
/// ETHTOOL_SGRO); whether it was on.
pub fn set_gro(iface: &str, on: bool) -> anyhow::Result<bool> {
    set_ethtool_value(iface, Offload::Gro, on)
}

/// An offload set by an `ethtool_value` command pair.
#[derive(Clone, Copy)]
enum Offload {
    Gro,
}

impl Offload {
    /// Its (get, set) commands and its name.
    fn commands(self) -> (u32, u32, &'static str) {
        match self {
            Offload::Gro => (0x2b, 0x2c, "GRO"),
        }
    }
}

/// Turns `offload` of `iface` on or off (SIOCETHTOOL); whether it was on.
fn set_ethtool_value(iface: &str, offload: Offload, on: bool) -> anyhow::Result<bool> {
    /// `struct ethtool_value`.
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    let (get, set, name) = offload.commands();
    if iface.len() >= libc::IFNAMSIZ {
        bail!("interface name '{iface}' is too long");
    }
    // SAFETY: plain socket call; the result is checked and closed by
    // OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("cannot open a socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor owned by nobody else.
    let sock = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let call = |cmd: u32, data: u32| -> std::io::Result<u32> {
        let mut value = EthtoolValue { cmd, data };
        // SAFETY: an all-zero ifreq is valid; the name fits (checked above,
        // NUL-terminated by the zeroes after it).
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, s) in ifr.ifr_name.iter_mut().zip(iface.bytes()) {
            *d = s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&raw mut value).cast();
        // SAFETY: SIOCETHTOOL with an ifreq whose data points at an
        // ethtool_value that outlives the call.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &mut ifr) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(value.data)
    };
    let was = call(get, 0).with_context(|| format!("cannot read {name} of '{iface}'"))? != 0;
    if was != on {
        call(set, u32::from(on)).with_context(|| {
            format!(
                "cannot turn {name} of '{iface}' {}",
                if on { "on" } else { "off" }
            )
        })?;
    }
    Ok(was)
}

/// Fails with one line naming what is missing unless this process may load
/// BPF programs and configure interfaces (CAP_BPF or CAP_SYS_ADMIN, and
/// CAP_NET_ADMIN: as root).
pub fn check_privileges() -> anyhow::Result<()> {
    use caps::{CapSet, Capability};
    let effective = caps::read(None, CapSet::Effective)
        .map_err(|e| anyhow::anyhow!("cannot read this process's capabilities: {e}"))?;
    let has = |c| effective.contains(&c);
    let mut missing = Vec::new();
    if !has(Capability::CAP_BPF) && !has(Capability::CAP_SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(Capability::CAP_NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !missing.is_empty() {
        bail!(
            "vtep needs {} (it loads BPF programs and configures interfaces): run it as root",
            missing.join(" and ")
        );
    }
    Ok(())
}
