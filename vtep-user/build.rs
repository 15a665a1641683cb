//! Builds the kernel programs (`vtep-ebpf`, nightly, `bpfel-unknown-none`)
//! and leaves the object in OUT_DIR, where `src/main.rs` embeds it.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| anyhow!("vtep-user has no parent directory"))?
        .join("vtep-ebpf");
    let root = root
        .to_str()
        .context("the vtep-ebpf path is not UTF-8")?
        .to_owned();
    let ebpf = Package {
        name: "vtep-ebpf",
        root_dir: &root,
        ..Default::default()
    };
    aya_build::build_ebpf([ebpf], Toolchain::default())
}
