//! The calls vtep makes to gobgpd's gRPC API (GoBGP 3.x, `apipb`): set
//! its AS, router id and peers, add and withdraw our paths, read and
//! watch its EVPN table, list its peers.

use std::{net::SocketAddr, time::Duration};

use gobgp_api::{self as api, gobgp_api_client::GobgpApiClient};
use tonic::transport::Channel;

use super::routes::family;
use crate::{cause::Cause, domain::plan::EvpnPlan};

/// What went wrong talking to gobgpd.
#[derive(Debug, thiserror::Error)]
pub enum GobgpError {
    #[error(
        "cannot reach gobgpd at {addr}: {} (is it running, with `--api-hosts {addr}`?)",
        Cause(err)
    )]
    Connect {
        addr: SocketAddr,
        err: tonic::transport::Error,
    },
    #[error("gobgpd {call}: {}", .status.message())]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
    #[error(
        "gobgpd runs BGP as AS {running} with router id {router_id}, the configuration says AS \
         {wanted}: restart gobgpd (vtep configures it from scratch)"
    )]
    OtherAs {
        running: u32,
        router_id: String,
        wanted: u32,
    },
}

fn call(name: &'static str) -> impl Fn(tonic::Status) -> GobgpError {
    move |status| GobgpError::Call { call: name, status }
}

/// A connection to gobgpd.
#[derive(Clone)]
pub struct Gobgp {
    client: GobgpApiClient<Channel>,
}

/// gobgpd's best-path changes, as they come; the reading task stops
/// when this is dropped.
pub struct Watch {
    rx: tokio::sync::mpsc::Receiver<Result<Vec<api::Path>, GobgpError>>,
    task: tokio::task::JoinHandle<()>,
    /// An error that came after paths still to be handed out.
    failed: Option<GobgpError>,
}

/// Paths handed out at once, at most (a batch is installed under one
/// lock of the instance).
const BATCH: usize = 4096;

impl Watch {
    /// The paths of the next changes: waits for one, takes those queued
    /// behind it too.
    pub async fn next(&mut self) -> Result<Vec<api::Path>, GobgpError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let ended = || call("WatchEvent")(tonic::Status::unavailable("the watch task ended"));
        let mut paths = self.rx.recv().await.unwrap_or_else(|| Err(ended()))?;
        while paths.len() < BATCH {
            match self.rx.try_recv() {
                Ok(Ok(more)) => paths.extend(more),
                Ok(Err(e)) => {
                    self.failed = Some(e);
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(paths)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A peer as gobgpd reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerRow {
    pub address: String,
    pub asn: u32,
    pub state: &'static str,
    /// Disabled (administratively down).
    pub admin_down: bool,
    /// EVPN routes received and accepted from it.
    pub received: u64,
    pub accepted: u64,
    /// EVPN routes advertised to it.
    pub advertised: u64,
}

impl PeerRow {
    pub fn is_up(&self) -> bool {
        self.state == "established"
    }
}

impl Gobgp {
    /// Connects (within `timeout`).
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, GobgpError> {
        let endpoint = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| GobgpError::Call {
                call: "address",
                status: tonic::Status::invalid_argument(e.to_string()),
            })?
            .connect_timeout(timeout)
            .tcp_nodelay(true);
        let channel = endpoint
            .connect()
            .await
            .map_err(|err| GobgpError::Connect { addr, err })?;
        Ok(Self {
            client: GobgpApiClient::new(channel).max_decoding_message_size(64 << 20),
        })
    }

    /// Starts BGP with our AS and router id listening on `listen`, unless
    /// it runs already with the same AS.
    pub async fn start(&mut self, plan: &EvpnPlan, listen: &str) -> Result<(), GobgpError> {
        let (asn, router_id) = self.global().await?;
        if asn == 0 {
            self.client
                .start_bgp(api::StartBgpRequest {
                    global: Some(api::Global {
                        asn: plan.asn,
                        router_id: plan.router_id.to_string(),
                        listen_port: 179,
                        listen_addresses: vec![listen.to_owned()],
                        ..api::Global::default()
                    }),
                })
                .await
                .map_err(call("StartBgp"))?;
            return Ok(());
        }
        if asn != plan.asn {
            return Err(GobgpError::OtherAs {
                running: asn,
                router_id,
                wanted: plan.asn,
            });
        }
        Ok(())
    }

    /// Makes gobgpd's peers the plan's: missing ones added with the L2VPN
    /// EVPN family, others removed. Not with graceful restart: GoBGP 3.10
    /// dereferences a nil pointer (`handleMacMobility`) when it marks a
    /// lost peer's MAC routes stale while it holds local MAC routes, which
    /// every VTEP does; the agent keeps a lost neighbor's routes itself.
    pub async fn set_peers(&mut self, plan: &EvpnPlan) -> Result<(), GobgpError> {
        let have: Vec<String> = self.peers().await?.into_iter().map(|p| p.address).collect();
        for p in &plan.peers {
            let address = p.address.to_string();
            if have.contains(&address) {
                continue;
            }
            let peer = api::Peer {
                conf: Some(api::PeerConf {
                    neighbor_address: address,
                    peer_asn: p.asn,
                    ..api::PeerConf::default()
                }),
                afi_safis: vec![api::AfiSafi {
                    config: Some(api::AfiSafiConfig {
                        family: Some(family()),
                        enabled: true,
                    }),
                    ..api::AfiSafi::default()
                }],
                ..api::Peer::default()
            };
            self.client
                .add_peer(api::AddPeerRequest { peer: Some(peer) })
                .await
                .map_err(call("AddPeer"))?;
        }
        for address in have {
            if !plan.peers.iter().any(|p| p.address.to_string() == address) {
                self.client
                    .delete_peer(api::DeletePeerRequest {
                        address,
                        interface: String::new(),
                    })
                    .await
                    .map_err(call("DeletePeer"))?;
            }
        }
        Ok(())
    }

    /// The AS and router id BGP runs with (AS 0: not started).
    pub async fn global(&mut self) -> Result<(u32, String), GobgpError> {
        let g = self
            .client
            .get_bgp(api::GetBgpRequest {})
            .await
            .map_err(call("GetBgp"))?
            .into_inner()
            .global
            .unwrap_or_default();
        Ok((g.asn, g.router_id))
    }

    /// Disables neighbor `address` (its session closed) or enables it
    /// again (a new session tried).
    pub async fn set_enabled(&mut self, address: &str, enabled: bool) -> Result<(), GobgpError> {
        let address = address.to_owned();
        if enabled {
            self.client
                .enable_peer(api::EnablePeerRequest { address })
                .await
                .map_err(call("EnablePeer"))?;
        } else {
            self.client
                .disable_peer(api::DisablePeerRequest {
                    address,
                    communication: "half open too long: reset by vtep".to_owned(),
                })
                .await
                .map_err(call("DisablePeer"))?;
        }
        Ok(())
    }

    /// Whether the session with neighbor `address` is established.
    pub async fn peer_up(&mut self, address: &str) -> Result<bool, GobgpError> {
        let mut stream = self
            .client
            .list_peer(api::ListPeerRequest {
                address: address.to_owned(),
                enable_advertised: false,
            })
            .await
            .map_err(call("ListPeer"))?
            .into_inner();
        let mut up = false;
        while let Some(r) = stream.message().await.map_err(call("ListPeer"))? {
            let state = r.peer.and_then(|p| p.state).map_or(0, |s| s.session_state);
            up |= session_state(state) == "established";
        }
        Ok(up)
    }

    /// The peers and their sessions.
    pub async fn peers(&mut self) -> Result<Vec<PeerRow>, GobgpError> {
        let mut stream = self
            .client
            .list_peer(api::ListPeerRequest {
                address: String::new(),
                enable_advertised: true,
            })
            .await
            .map_err(call("ListPeer"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = stream.message().await.map_err(call("ListPeer"))? {
            let Some(p) = r.peer else { continue };
            let state = p.state.unwrap_or_default();
            let evpn = p
                .afi_safis
                .iter()
                .filter_map(|a| a.state.as_ref())
                .find(|s| s.family.as_ref() == Some(&family()));
            out.push(PeerRow {
                address: p
                    .conf
                    .as_ref()
                    .map(|c| c.neighbor_address.clone())
                    .unwrap_or_default(),
                asn: p.conf.as_ref().map_or(0, |c| c.peer_asn),
                state: session_state(state.session_state),
                admin_down: state.admin_state != api::peer_state::AdminState::Up as i32,
                received: evpn.map_or(0, |s| s.received),
                accepted: evpn.map_or(0, |s| s.accepted),
                advertised: evpn.map_or(0, |s| s.advertised),
            });
        }
        out.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(out)
    }

    /// Every path of the EVPN table (best or not: every VTEP's routes
    /// have their own route distinguisher, so all of them are best).
    pub async fn paths(&mut self) -> Result<Vec<api::Path>, GobgpError> {
        let mut stream = self
            .client
            .list_path(api::ListPathRequest {
                table_type: api::TableType::Global as i32,
                family: Some(family()),
                ..api::ListPathRequest::default()
            })
            .await
            .map_err(call("ListPath"))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = stream.message().await.map_err(call("ListPath"))? {
            if let Some(d) = r.destination {
                out.extend(d.paths);
            }
        }
        Ok(out)
    }

    /// Best-path changes from now on, read by a task of their own:
    /// gobgpd answers a watch only with its first event.
    pub fn watch(&self) -> Watch {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let mut client = self.client.clone();
        let task = tokio::spawn(async move {
            let req = api::WatchEventRequest {
                peer: None,
                table: Some(api::watch_event_request::Table {
                    filters: vec![api::watch_event_request::table::Filter {
                        r#type: api::watch_event_request::table::filter::Type::Best as i32,
                        init: false,
                    }],
                }),
            };
            let mut stream = match client.watch_event(req).await {
                Ok(s) => s.into_inner(),
                Err(e) => {
                    let _ = tx.send(Err(call("WatchEvent")(e))).await;
                    return;
                }
            };
            loop {
                let item = match stream.message().await {
                    Ok(Some(m)) => match m.event {
                        Some(api::watch_event_response::Event::Table(t)) => Ok(t.paths),
                        _ => continue,
                    },
                    Ok(None) => Err(call("WatchEvent")(tonic::Status::unavailable(
                        "gobgpd closed the watch stream",
                    ))),
                    Err(e) => Err(call("WatchEvent")(e)),
                };
                let end = item.is_err();
                if tx.send(item).await.is_err() || end {
                    return;
                }
            }
        });
        Watch {
            rx,
            task,
            failed: None,
        }
    }

    /// Adds (or withdraws, as each path says) `paths` in one stream.
    pub async fn add_paths(&mut self, paths: Vec<api::Path>) -> Result<(), GobgpError> {
        if paths.is_empty() {
            return Ok(());
        }
        let req = api::AddPathStreamRequest {
            table_type: api::TableType::Global as i32,
            vrf_id: String::new(),
            paths,
        };
        self.client
            .add_path_stream(tokio_stream::iter([req]))
            .await
            .map_err(call("AddPathStream"))?;
        Ok(())
    }
}

fn session_state(s: i32) -> &'static str {
    use api::peer_state::SessionState as S;
    match S::try_from(s).unwrap_or(S::Unknown) {
        S::Unknown => "unknown",
        S::Idle => "idle",
        S::Connect => "connect",
        S::Active => "active",
        S::Opensent => "opensent",
        S::Openconfirm => "openconfirm",
        S::Established => "established",
    }
}
