//! BENCHMARKS.md keeps one section per CPU model the bench has been run
//! on (ratios move by up to 15% between models). A run with `--write
//! FILE` writes its own section to `benchmarks/<model>.md` next to FILE,
//! then rebuilds FILE from every section there, each as it was written
//! (nothing is read back but whole files).

use std::path::Path;

use anyhow::Context as _;

/// What BENCHMARKS.md says before the sections.
const PREAMBLE: &str = "# Benchmarks\n\nOne section per CPU model `cargo xtask bench` has run on \
    (machines of this kind come with AMD EPYC or Intel Xeon CPUs; ratios differ between them): \
    each is the last full run on that model. Regenerate with `cargo xtask bench --baseline REV \
    --write BENCHMARKS.md` (as root), which replaces the section of the CPU it runs on and keeps \
    the others (`benchmarks/`).\n\n";

/// A file name for CPU model `cpu`: lower case, runs of anything but
/// letters and digits as one `-`.
fn file_name(cpu: &str) -> String {
    let mut name = String::new();
    for c in cpu.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_lowercase());
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    format!("{}.md", name.trim_matches('-'))
}

/// Writes `section` as CPU model `cpu`'s and rebuilds `path` from every
/// model's section.
pub fn write(path: &Path, cpu: &str, section: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("benchmarks");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let own = dir.join(file_name(cpu));
    std::fs::write(&own, section).with_context(|| format!("cannot write {}", own.display()))?;
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut text = PREAMBLE.to_owned();
    for f in &files {
        text.push_str(
            &std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?,
        );
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn cpu_models_become_file_names() {
        assert_eq!(file_name("AMD EPYC"), "amd-epyc.md");
        assert_eq!(
            file_name("Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz"),
            "intel-r-xeon-r-platinum-8375c-cpu-2-90ghz.md"
        );
    }
}
