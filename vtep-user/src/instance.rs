//! Where an instance lives: its pin directory, its daemon's pid file, and
//! the lock that serialises every change to its tables.
//!
//! Everything an instance has lives under `PIN_ROOT/INSTANCE/`: the maps
//! (pinned by name), the encap program (so later commands can attach it to
//! new ports) and one pinned link per attachment.

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use aya::maps::{Map, MapData};
use vtep_common::consts::MAP_INSTANCE;

/// Pin name of the encap program.
pub const PIN_PROG_ENCAP: &str = "prog_encap";
/// Pin name of the XDP link on the underlay.
pub const PIN_LINK_XDP: &str = "link_xdp";
/// Pin name of the TC link on the underlay.
pub const PIN_LINK_DECAP_TC: &str = "link_decap_tc";
/// Pin name of the TC link on the merge device (underlays without XDP).
pub const PIN_LINK_DECAP_MERGED: &str = "link_decap_merged";
/// Where pid and lock files live (not on the bpffs, which holds only BPF
/// objects).
const RUN_DIR: &str = "/run/vtep";
/// How long a command waits for another to finish with the instance.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// Pin name of the TC link on port `ifindex`.
pub fn pin_link_port(ifindex: u32) -> String {
    format!("link_port_{ifindex}")
}

/// Where an instance lives.
pub struct Instance {
    /// The instance name.
    pub name: String,
    /// `PIN_ROOT/INSTANCE`.
    pub dir: PathBuf,
}

/// The exclusive right to change an instance's tables, held until dropped
/// (an `flock` on the instance's lock file: the kernel lets it go if the
/// process dies).
pub struct InstanceLock {
    file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Lets the lock go and removes its file (the instance is gone). A
    /// process waiting on the old file finds, once it has it, that it is
    /// no longer the one at the path, and tries again.
    pub fn release_and_remove(self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            log::warn!("cannot remove the lock file {}: {e}", self.path.display());
        }
        drop(self.file);
    }
}

impl Instance {
    /// The instance `name` under `pin_root`.
    pub fn new(pin_root: &Path, name: &str) -> anyhow::Result<Self> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            bail!("invalid instance name '{name}': use 1 to 64 letters, digits, '-' or '_'");
        }
        Ok(Self {
            name: name.to_owned(),
            dir: pin_root.join(name),
        })
    }

    /// The path of pin `name`.
    pub fn pin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `RUN_DIR/<the pin directory, as a file name><suffix>`.
    fn run_file(&self, suffix: &str) -> PathBuf {
        let tag: String = self
            .dir
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Path::new(RUN_DIR).join(format!("{tag}{suffix}"))
    }

    /// Where `vtep daemon` keeps its pid for this instance.
    pub fn pidfile(&self) -> PathBuf {
        self.run_file(".pid")
    }

    /// Records this process as the instance's daemon; returns the file.
    pub fn write_pidfile(&self) -> anyhow::Result<PathBuf> {
        let path = self.pidfile();
        std::fs::create_dir_all(RUN_DIR).with_context(|| format!("cannot create {RUN_DIR}"))?;
        std::fs::write(&path, std::process::id().to_string())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    }

    /// The pid of this instance's running daemon, if one runs.
    pub fn daemon_pid(&self) -> Option<i32> {
        let pid: i32 = std::fs::read_to_string(self.pidfile())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    /// Whether `vtep up` has run for this instance (its record is pinned).
    pub fn is_up(&self) -> bool {
        self.pin(MAP_INSTANCE).exists()
    }

    /// Fails with a hint unless the instance is up.
    pub fn require_up(&self) -> anyhow::Result<()> {
        if !self.is_up() {
            bail!(
                "instance '{}' is not up (nothing pinned at {}): run `vtep up` first",
                self.name,
                self.dir.display()
            );
        }
        Ok(())
    }

    fn lock_file(&self) -> anyhow::Result<(File, PathBuf)> {
        let path = self.run_file(".lock");
        std::fs::create_dir_all(RUN_DIR).with_context(|| format!("cannot create {RUN_DIR}"))?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        Ok((file, path))
    }

    /// One try at the lock: `None` if someone holds it, or if the file
    /// locked is no longer the one at the path (`down` removed it while
    /// this process waited: the next try opens the new one).
    fn lock_once(&self) -> anyhow::Result<Option<InstanceLock>> {
        use std::os::unix::fs::MetadataExt as _;
        let (file, path) = self.lock_file()?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let held = file.metadata()?;
        let current = std::fs::metadata(&path).ok();
        let same = current.is_some_and(|m| m.dev() == held.dev() && m.ino() == held.ino());
        Ok(same.then_some(InstanceLock { file, path }))
    }

    /// Takes the instance's lock, waiting for the command or daemon that
    /// holds it (up to two minutes).
    pub fn lock(&self) -> anyhow::Result<InstanceLock> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(lock) = self.lock_once()? {
                return Ok(lock);
            }
            if start.elapsed() >= LOCK_WAIT {
                let path = self.run_file(".lock");
                bail!(
                    "instance '{}' is busy: another vtep command has held {} for {} s; \
                     find it with `fuser {}`",
                    self.name,
                    path.display(),
                    LOCK_WAIT.as_secs(),
                    path.display()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// The instance's lock if nobody holds it now.
    pub fn try_lock(&self) -> anyhow::Result<Option<InstanceLock>> {
        self.lock_once()
    }

    /// Opens pinned map `name` as `T`.
    pub fn map<T>(&self, name: &str) -> anyhow::Result<T>
    where
        T: TryFrom<Map, Error = aya::maps::MapError>,
    {
        let path = self.pin(name);
        let data = MapData::from_pin(&path)
            .with_context(|| format!("cannot open pinned map {}", path.display()))?;
        let map = Map::from_map_data(data)
            .with_context(|| format!("pinned map {} has an unknown type", path.display()))?;
        T::try_from(map)
            .with_context(|| format!("pinned map {} has the wrong type", path.display()))
    }
}
