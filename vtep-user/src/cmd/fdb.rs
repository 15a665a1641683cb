//! `vtep fdb add|del|show`: where each MAC lives.

use anyhow::Context as _;

use crate::{
    domain::{self, Edit, plan::Target},
    instance::Instance,
    tables::views::FdbShowRow,
    values::{Mac, UnicastIp, UnicastMac, Vid, Vni},
};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Add or replace a static FDB entry: a MAC behind a remote VTEP or on
    /// a local port. Static entries never age.
    ///
    /// Examples:
    ///   vtep fdb add 02:00:00:00:02:01 --vni 100 --remote 198.18.2.1
    ///   vtep fdb add 02:00:00:00:01:01 --vni 100 --port vm1
    #[command(verbatim_doc_comment)]
    Add {
        /// MAC address (unicast).
        mac: UnicastMac,
        /// VNI of the MAC.
        #[arg(long)]
        vni: Vni,
        /// Remote VTEP the MAC is behind.
        #[arg(long, conflicts_with = "port", required_unless_present = "port")]
        remote: Option<UnicastIp>,
        /// Local port the MAC is on.
        #[arg(long)]
        port: Option<String>,
        /// With --port: the port's VLAN binding the MAC is behind (a
        /// trunk's; 0, the default: its untagged frames).
        #[arg(long, requires = "port")]
        vlan: Option<Vid>,
    },
    /// Remove an FDB entry.
    ///
    /// Example: vtep fdb del 02:00:00:00:02:01 --vni 100
    #[command(verbatim_doc_comment)]
    Del {
        /// MAC address.
        mac: Mac,
        /// VNI of the MAC.
        #[arg(long)]
        vni: Vni,
    },
    /// Add or replace many static entries from a file, one per line:
    /// `MAC VNI remote IPV4`, `MAC VNI port IFACE` or `MAC VNI port
    /// IFACE vlan VID` (`#` starts a comment). The whole file is checked before anything is written.
    ///
    /// Example: vtep fdb load /etc/vtep/fdb.txt
    #[command(verbatim_doc_comment)]
    Load {
        /// The file.
        file: std::path::PathBuf,
    },
    /// Remove entries: every entry of a VNI (or of all VNIs), or only the
    /// learned ones.
    ///
    /// Examples:
    ///   vtep fdb flush --vni 100 --learned
    ///   vtep fdb flush --learned
    #[command(verbatim_doc_comment)]
    Flush {
        /// Only this VNI.
        #[arg(long)]
        vni: Option<Vni>,
        /// Only learned entries (static ones stay).
        #[arg(long)]
        learned: bool,
    },
    /// Show the FDB, as a table or as JSON.
    ///
    /// Example: vtep fdb show --vni 100 --json
    #[command(verbatim_doc_comment)]
    Show {
        /// Only this VNI.
        #[arg(long)]
        vni: Option<Vni>,
        /// JSON array of {vni, mac, remote, port, origin, seq, age_s, moves, frozen}.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: Command, inst: &Instance) -> anyhow::Result<()> {
    match command {
        Command::Add {
            mac,
            vni,
            remote,
            port,
            vlan,
        } => {
            let at = match (remote, port) {
                (Some(ip), _) => Target::Remote(ip),
                (None, Some(p)) => Target::Port(p, vlan.unwrap_or_default()),
                (None, None) => anyhow::bail!("give --remote IPV4 or --port IFACE"),
            };
            Edit::begin(inst)?.fdb_add(vni, mac, &at)
        }
        Command::Del { mac, vni } => Edit::begin(inst)?.fdb_del(vni, mac),
        Command::Flush { vni, learned } => {
            let (n, m) = Edit::begin(inst)?.fdb_flush(vni, learned)?;
            eprintln!("vtep: {n} learned and {m} static entries removed");
            Ok(())
        }
        Command::Load { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let entries = parse_lines(&text).with_context(|| format!("{}", file.display()))?;
            Edit::begin(inst)?.fdb_load(&entries)?;
            eprintln!("vtep: {} FDB entries loaded", entries.len());
            Ok(())
        }
        Command::Show { vni, json } => {
            let rows: Vec<FdbShowRow> = domain::read(inst)?
                .fdb_rows(vni)?
                .iter()
                .map(FdbShowRow::from)
                .collect();
            if json {
                super::print_json(&rows)?;
            } else {
                print_table(&rows);
            }
            Ok(())
        }
    }
}

/// Parses `MAC VNI remote IPV4` / `MAC VNI port IFACE` lines.
fn parse_lines(text: &str) -> anyhow::Result<Vec<(Vni, UnicastMac, Target)>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let entry = (|| -> anyhow::Result<_> {
            let (mac, vni, at) = match f[..] {
                [mac, vni, "remote", ip] => (mac, vni, Target::Remote(ip.parse()?)),
                [mac, vni, "port", iface] => (mac, vni, Target::Port(iface.to_owned(), Vid::UNTAGGED)),
                [mac, vni, "port", iface, "vlan", vid] => {
                    (mac, vni, Target::Port(iface.to_owned(), vid.parse()?))
                }
                _ => anyhow::bail!(
                    "expected `MAC VNI remote IPV4`, `MAC VNI port IFACE` or `MAC VNI port IFACE vlan VID`"
                ),
            };
            Ok((vni.parse::<Vni>()?, mac.parse::<UnicastMac>()?, at))
        })()
        .with_context(|| format!("line {}", n + 1))?;
        out.push(entry);
    }
    Ok(out)
}

fn print_table(rows: &[FdbShowRow]) {
    println!("{:<9} {:<18} {:<22} ORIGIN", "VNI", "MAC", "LOCATION");
    for r in rows {
        let at = r.at.to_string();
        let detail = match (r.age_s, r.seq) {
            (Some(age), _) => format!(
                " (age {age}s, {} moves{})",
                r.moves,
                if r.frozen { ", FROZEN" } else { "" }
            ),
            (None, Some(seq)) => format!(" (seq {seq})"),
            (None, None) => String::new(),
        };
        println!("{:<9} {:<18} {:<22} {}{detail}", r.vni, r.mac, at, r.origin);
    }
}
