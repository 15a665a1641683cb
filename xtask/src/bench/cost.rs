//! Program cost: the kernel's own accounting of BPF run time
//! (`kernel.bpf_stats_enabled`), per program.

use std::collections::BTreeMap;

use anyhow::Context as _;

use super::report::ProgCost;

const STATS_SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";
/// The bytes of a program's name the kernel keeps (BPF_OBJ_NAME_LEN, less
/// its NUL).
const KERNEL_NAME_MAX: usize = 15;

/// `kernel.bpf_stats_enabled` on while this lives (restored on drop).
pub struct BpfStats {
    old: String,
}

impl BpfStats {
    pub fn enable() -> anyhow::Result<Self> {
        let old = std::fs::read_to_string(STATS_SYSCTL).context("bpf_stats_enabled")?;
        std::fs::write(STATS_SYSCTL, "1").context("cannot enable bpf_stats")?;
        Ok(BpfStats { old })
    }

    /// Average run time of each named program, over every loaded program
    /// of that name (programs that did not run are left out). The kernel
    /// keeps the first 15 bytes of a program's name: a longer one is
    /// matched by them.
    pub fn read(&self, names: &[&str]) -> anyhow::Result<BTreeMap<String, ProgCost>> {
        let mut out = BTreeMap::new();
        for name in names {
            let kept = &name[..name.len().min(KERNEL_NAME_MAX)];
            let (mut ns, mut runs) = (0u128, 0u64);
            for p in aya::programs::loaded_programs() {
                let p = p?;
                if p.name_as_str() == Some(kept) {
                    ns += p.run_time().as_nanos();
                    runs += p.run_count();
                }
            }
            if runs > 0 {
                let ns_per_run = ns as f64 / runs as f64;
                out.insert((*name).to_owned(), ProgCost { ns_per_run, runs });
            }
        }
        Ok(out)
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        let _ = std::fs::write(STATS_SYSCTL, self.old.trim());
    }
}
