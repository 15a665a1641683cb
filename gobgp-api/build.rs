//! Generates the GoBGP gRPC client from the protos of the installed GoBGP
//! (`golang-github-osrg-gobgp-dev`, which `cargo xtask setup` installs):
//! the API must be the daemon's own, 3.x (`apipb`); v4 renamed and
//! renumbered it. `GOBGP_PROTO_DIR` points elsewhere. The protos are
//! compiled by `protox` (pure Rust): no `protoc` needed.

use anyhow::Context as _;

/// Where Debian's package puts them.
const DEBIAN_DIR: &str = "/usr/share/gocode/src/github.com/osrg/gobgp/api";

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=GOBGP_PROTO_DIR");
    let dir = std::env::var("GOBGP_PROTO_DIR").unwrap_or_else(|_| DEBIAN_DIR.to_owned());
    let files = ["gobgp.proto", "attribute.proto", "capability.proto"];
    for f in files {
        let path = format!("{dir}/{f}");
        anyhow::ensure!(
            std::path::Path::new(&path).exists(),
            "{path} is missing: run `cargo xtask setup` (it installs \
             golang-github-osrg-gobgp-dev) or set GOBGP_PROTO_DIR to GoBGP 3.x's api/ directory"
        );
        println!("cargo:rerun-if-changed={path}");
    }
    let fds = protox::compile(files, [&dir]).context("cannot compile the GoBGP protos")?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)
        .context("cannot generate the GoBGP client")?;
    Ok(())
}
