//! The agent's loop: one session per connection to gobgpd, reconnecting
//! with backoff, a new session when the configuration changes.

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    rc::Rc,
    time::{Duration, Instant},
};

use gobgp_api as api;
use log::{info, warn};
use tokio::sync::watch;
use vtep_common::{
    consts::MAP_CONTROL_EVENTS,
    maps::{MacEvent, MacEventKind},
};

use super::{
    gobgp::{Gobgp, PeerRow},
    rib::{Effect, Installed, MacKey, Rib},
    routes::{Origin, Received, Rejected, Route, decode},
    stuck::{OPEN_STUCK, Step, Stuck},
    sweep::Sweep,
};
use crate::{
    domain::{
        self, Edit,
        events::{EvpnEvents, Ring},
        evpn::{Here, here},
        plan::EvpnPlan,
    },
    instance::Instance,
    tables::{
        Location, Tables,
        fdb::{self, EvpnRoute},
    },
    values::{LocalIp, Mac, UnicastIp, UnicastMac, Vni},
};

/// What the agent reports (metrics, logs).
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// EVPN is configured.
    pub enabled: bool,
    /// A session with gobgpd is up.
    pub connected: bool,
    pub peers: Vec<PeerRow>,
    /// Routes of other VTEPs held.
    pub received: usize,
    /// FDB entries installed from them.
    pub installed: usize,
    /// MACs local here.
    pub local: usize,
    /// MACs frozen by duplicate detection.
    pub frozen: usize,
    /// Route updates (adds and withdrawals) received and sent.
    pub updates_in: u64,
    pub updates_out: u64,
    /// Routes not used, by reason.
    pub rejected: BTreeMap<Rejected, u64>,
}

/// The status, shared with the daemon's loop (one thread).
pub type Shared = Rc<RefCell<Status>>;

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);
/// How often what is local is read again from the tables (aged and
/// configured MACs, bound addresses, VNIs) and peers are polled.
const REFRESH: Duration = Duration::from_secs(2);
/// How often gobgpd's whole table is read again (anti-entropy: a
/// change lost between the watch and a read is caught by the next one).
const RELIST: Duration = Duration::from_secs(30);
/// The longest a reconnect waits for its peers before sweeping stale
/// routes.
const SWEEP_AFTER: Duration = Duration::from_secs(60);
/// How long the routes of a neighbor whose session was lost are kept
/// (as a graceful-restart helper keeps them: RFC 4724 §4.2, the restart
/// time GoBGP and FRR default to).
const STALE_KEEP: Duration = Duration::from_secs(120);
/// Paths per AddPathStream request.
const PATHS_PER_REQUEST: usize = 1000;

/// Runs the agent for the plans `plans` gives (`None`: no EVPN) until
/// the sender is gone.
pub async fn run(inst: &Instance, mut plans: watch::Receiver<Option<EvpnPlan>>, status: Shared) {
    let mut backoff = MIN_BACKOFF;
    let mut agent: Option<Agent> = None;
    loop {
        let plan = plans.borrow_and_update().clone();
        status.borrow_mut().enabled = plan.is_some();
        let Some(plan) = plan else {
            status.borrow_mut().connected = false;
            if plans.changed().await.is_err() {
                return;
            }
            continue;
        };
        let same = agent
            .as_ref()
            .is_some_and(|a| a.plan.asn == plan.asn && a.plan.router_id == plan.router_id);
        if !same {
            agent = match Agent::new(inst, plan.clone(), status.clone()) {
                Ok(a) => Some(a),
                Err(e) => {
                    warn!("EVPN: {e:#}; trying again in {backoff:?}");
                    wait(&mut plans, &mut backoff).await;
                    continue;
                }
            };
        }
        let Some(a) = agent.as_mut() else { continue };
        a.plan = plan;
        match a.session(&mut plans).await {
            Ok(()) => backoff = MIN_BACKOFF,
            Err(e) => {
                status.borrow_mut().connected = false;
                warn!("EVPN: {e:#}; trying again in {backoff:?} (the data plane keeps its state)");
                wait(&mut plans, &mut backoff).await;
            }
        }
    }
}

/// Waits `backoff` (or until the plan changes) and doubles it.
async fn wait(plans: &mut watch::Receiver<Option<EvpnPlan>>, backoff: &mut Duration) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = plans.changed() => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

struct Agent<'a> {
    inst: &'a Instance,
    /// The instance's tables, kept open between changes.
    tables: Option<Tables>,
    /// Where MACs re-pointed by routes are reported (`vtep events`).
    events: Option<EvpnEvents>,
    sweep: Sweep,
    /// Neighbors whose lost session's routes are kept until the sweep.
    lost: BTreeSet<String>,
    /// Sessions half open, reset when they stay so.
    stuck: Stuck,
    plan: EvpnPlan,
    origin: Origin,
    rib: Rib,
    /// Configured VNIs and their stats slots (our RD numbers).
    vnis: BTreeMap<Vni, u16>,
    status: Shared,
}

impl<'a> Agent<'a> {
    fn new(inst: &'a Instance, plan: EvpnPlan, status: Shared) -> anyhow::Result<Self> {
        let t = domain::read(inst)?;
        let local_ip = t.local_ip();
        let cfg = t.instance_view();
        let mut rib = Rib::new(
            local_ip.ip(),
            cfg.move_limit,
            Duration::from_secs(u64::from(cfg.move_window_s)),
        );
        let h = here(&t)?;
        for e in &h.evpn {
            rib.seed_installed(
                (e.vni, e.mac),
                Installed {
                    vtep: e.vtep,
                    seq: e.route.seq,
                    sticky: e.route.sticky,
                    // What the route gave it before the restart: a route
                    // that still says so is not installed again.
                    group: e.group,
                },
            );
        }
        let origin = Origin {
            local_ip,
            router_id: plan.router_id,
            asn: plan.asn,
        };
        Ok(Self {
            inst,
            tables: Some(t),
            events: EvpnEvents::open(inst)
                .map_err(|e| warn!("EVPN: moves will not be reported to `vtep events`: {e:#}"))
                .ok(),
            sweep: Sweep::by(Instant::now() + SWEEP_AFTER),
            lost: BTreeSet::new(),
            stuck: Stuck::default(),
            plan,
            origin,
            rib,
            vnis: slots(&h),
            status,
        })
    }

    fn local_ip(&self) -> LocalIp {
        self.origin.local_ip
    }

    /// One connection to gobgpd: configure it, read its table whole,
    /// advertise ours, then follow both sides until something fails or
    /// the plan changes.
    async fn session(
        &mut self,
        plans: &mut watch::Receiver<Option<EvpnPlan>>,
    ) -> anyhow::Result<()> {
        let mut g = Gobgp::connect(self.plan.gobgp, Duration::from_secs(3)).await?;
        g.start(&self.plan, &self.local_ip().ip().to_string())
            .await?;
        let mut ring = Ring::open(self.inst, MAP_CONTROL_EVENTS)?;
        // Watch first, then read the table: what changes meanwhile comes
        // through both. (gobgpd does not confirm a watch: what slips
        // between is caught by the table read again every RELIST.)
        let mut watch = g.watch();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let h = self.here()?;
        self.vnis = slots(&h);
        // No sweep yet: gobgpd may have just started, its peers not yet
        // sent their routes. The sweep comes once every peer is up (or
        // after SWEEP_AFTER).
        let (paths, own) = self.relist(&mut g, false).await?;
        self.sweep = Sweep::by(Instant::now() + SWEEP_AFTER);
        let now = Instant::now();
        let fx = self.refresh_local(&h, now);
        self.apply(&mut g, fx).await?;
        self.readvertise(&mut g, own).await?;
        // Peers last: our routes are in gobgpd before its first update to
        // them.
        g.set_peers(&self.plan).await?;
        info!(
            "EVPN: gobgpd at {} configured (AS {}, {} peers), table read ({paths} paths)",
            self.plan.gobgp,
            self.plan.asn,
            self.plan.peers.len(),
        );
        self.status.borrow_mut().connected = true;
        let mut tick = tokio::time::interval(REFRESH);
        let mut relist = tokio::time::interval(RELIST);
        relist.reset();
        loop {
            tokio::select! {
                paths = watch.next() => {
                    let paths = paths?;
                    self.received(&mut g, &paths).await?;
                }
                r = ring.wait(Duration::from_secs(1)) => {
                    r?;
                    let events = ring.drain();
                    self.events(&mut g, &events).await?;
                }
                _ = tick.tick() => {
                    let Some(all_up) = self.refresh(&mut g).await? else {
                        info!("EVPN: the VNIs changed: reading gobgpd's table again");
                        return Ok(());
                    };
                    if self.sweep.due(all_up, Instant::now()) {
                        self.lost.clear();
                        let (n, _) = self.relist(&mut g, true).await?;
                        info!("EVPN: stale routes swept ({n} paths in gobgpd's table)");
                    }
                }
                _ = relist.tick() => {
                    let sweep = !self.sweep.pending();
                    self.relist(&mut g, sweep).await?;
                }
                _ = plans.changed() => {
                    info!("EVPN: configuration changed");
                    return Ok(());
                }
            }
        }
    }

    /// Reads gobgpd's table whole and makes the RIB (and so the tables)
    /// hold exactly its routes; returns how many paths it has, and ours.
    async fn relist(
        &mut self,
        g: &mut Gobgp,
        sweep: bool,
    ) -> anyhow::Result<(usize, Vec<(Route, api::Path)>)> {
        let paths = g.paths().await?;
        let mut macs = Vec::new();
        let mut floods = Vec::new();
        let mut own = Vec::new();
        for p in &paths {
            match self.decode(p) {
                Some(Received {
                    from: Some(vtep),
                    route: Route::Mac(r),
                }) => macs.push((vtep, r)),
                Some(Received {
                    from: Some(vtep),
                    route: Route::Flood(vni),
                }) => floods.push((vtep, vni)),
                Some(Received { from: None, route }) => own.push((route, p.clone())),
                None => {}
            }
        }
        let fx = self.rib.replace_remote(macs, floods, sweep, Instant::now());
        self.apply(g, fx).await?;
        Ok((paths.len(), own))
    }

    /// The tables, reopened if the instance was brought up anew.
    fn open_tables(&mut self) -> anyhow::Result<Tables> {
        match self.tables.take() {
            Some(t) if t.is_current(self.inst) => Ok(t),
            _ => domain::read(self.inst),
        }
    }

    /// The policy group of `key` by its membership (0: none).
    fn member_group(&mut self, (vni, mac): MacKey) -> anyhow::Result<u16> {
        let t = self.open_tables()?;
        let group = t.member_group(vni, mac);
        self.tables = Some(t);
        Ok(group?)
    }

    /// What is here now.
    fn here(&mut self) -> anyhow::Result<Here> {
        let t = self.open_tables()?;
        let h = here(&t);
        self.tables = Some(t);
        Ok(h?)
    }

    /// Decodes a path, counting what is not used.
    fn decode(&self, p: &api::Path) -> Option<Received> {
        let vnis = &self.vnis;
        match decode(p, self.local_ip(), self.plan.asn, |v| vnis.contains_key(&v)) {
            Ok(r) => Some(r),
            Err(why) => {
                *self.status.borrow_mut().rejected.entry(why).or_default() += 1;
                None
            }
        }
    }

    /// Best-path changes from gobgpd.
    async fn received(&mut self, g: &mut Gobgp, paths: &[api::Path]) -> anyhow::Result<()> {
        let now = Instant::now();
        // Withdrawals from a neighbor whose session just went are kept
        // (stale) for a while: gobgpd drops a lost peer's routes at once,
        // and the peer is most likely a gobgpd or FRR restarting while
        // its data plane forwards on (a graceful-restart helper of our
        // own, RFC 4724 §4.2: GoBGP 3.10 crashes as one when it has local
        // MAC routes, so its own is off). They go at the next sweep, once
        // the neighbor is back and has sent its routes again.
        let mut lost: BTreeMap<&str, bool> = BTreeMap::new();
        for p in paths
            .iter()
            .filter(|p| p.is_withdraw && !p.neighbor_ip.is_empty())
        {
            if !lost.contains_key(p.neighbor_ip.as_str()) {
                let up = g.peer_up(&p.neighbor_ip).await?;
                lost.insert(p.neighbor_ip.as_str(), !up);
            }
        }
        for (n, _) in lost.iter().filter(|(_, l)| **l) {
            if self.lost.insert((*n).to_owned()) {
                info!("EVPN: session with {n} lost: its routes are kept for up to {STALE_KEEP:?}");
                self.sweep.keep(now + STALE_KEEP);
            }
        }
        let mut fx = Vec::new();
        for p in paths {
            if p.is_withdraw && lost.get(p.neighbor_ip.as_str()) == Some(&true) {
                continue;
            }
            let Some(r) = self.decode(p) else { continue };
            let Some(vtep) = r.from else {
                *self
                    .status
                    .borrow_mut()
                    .rejected
                    .entry(Rejected::Own)
                    .or_default() += 1;
                continue;
            };
            self.status.borrow_mut().updates_in += 1;
            log::debug!(
                "EVPN: from {vtep}: {:?} withdrawn={}",
                r.route,
                p.is_withdraw
            );
            fx.extend(match r.route {
                Route::Mac(m) => self.rib.remote_mac(vtep, m, p.is_withdraw, now),
                Route::Flood(vni) => self.rib.remote_flood(vtep, vni, p.is_withdraw),
            });
        }
        self.apply(g, fx).await
    }

    /// MACs the data plane learned, moved or froze.
    async fn events(&mut self, g: &mut Gobgp, events: &[MacEvent]) -> anyhow::Result<()> {
        let now = Instant::now();
        let mut fx = Vec::new();
        for ev in events {
            let vni = Vni::recorded(ev.vni);
            let Ok(mac) = UnicastMac::try_from(Mac(ev.mac)) else {
                continue;
            };
            if !self.vnis.contains_key(&vni) {
                continue;
            }
            let key = (vni, mac);
            log::debug!(
                "EVPN: event {} VNI {vni} {mac}: {:?}/{} -> {:?}/{}",
                ev.kind,
                ev.old_remote.ip(),
                ev.old_ifindex,
                ev.new_remote.ip(),
                ev.new_ifindex
            );
            match MacEventKind::from_u32(ev.kind) {
                Some(MacEventKind::Learned | MacEventKind::Moved) if ev.new_ifindex != 0 => {
                    fx.extend(self.rib.local_mac(key, false, now));
                    let group = self.member_group(key)?;
                    fx.extend(self.rib.local_group(key, group));
                }
                Some(MacEventKind::Moved) if ev.old_ifindex != 0 => {
                    // Seen behind another VTEP: no longer ours to advertise.
                    fx.extend(self.rib.local_gone(key, now));
                }
                Some(MacEventKind::Moved) => self.rib.forget_installed(key),
                Some(MacEventKind::Frozen) => {
                    warn!("EVPN: VNI {vni} {mac} frozen by the data plane (moving too often)");
                }
                _ => {}
            }
        }
        self.apply(g, fx).await
    }

    /// Reads what is local again and polls the peers; whether every peer
    /// is up, `None` if the VNIs changed (the table must be read again).
    async fn refresh(&mut self, g: &mut Gobgp) -> anyhow::Result<Option<bool>> {
        let now = Instant::now();
        let h = self.here()?;
        if slots(&h) != self.vnis {
            return Ok(None);
        }
        let mut fx = self.refresh_local(&h, now);
        fx.extend(self.rib.thaw(now));
        self.apply(g, fx).await?;
        let peers = g.peers().await?;
        for step in self.stuck.observe(&peers, now) {
            match step {
                Step::Disable(a) => {
                    warn!(
                        "EVPN: the session with {a} has waited for its peer's OPEN or KEEPALIVE for {OPEN_STUCK:?}: resetting it"
                    );
                    g.set_enabled(&a, false).await?;
                }
                Step::Enable(a) => g.set_enabled(&a, true).await?,
            }
        }
        let all_up = peers.iter().all(PeerRow::is_up);
        if !all_up {
            let states: Vec<String> = peers
                .iter()
                .map(|p| format!("{} {}", p.address, p.state))
                .collect();
            log::debug!("EVPN: peers not all up: {}", states.join(", "));
        }
        let (received, installed, local, frozen) = self.rib.counts();
        let mut s = self.status.borrow_mut();
        s.peers = peers;
        s.received = received;
        s.installed = installed;
        s.local = local;
        s.frozen = frozen;
        Ok(Some(all_up))
    }

    /// Brings the local MACs of the RIB in line with the tables.
    fn refresh_local(&mut self, h: &Here, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        let mut here_now = BTreeSet::new();
        for m in &h.macs {
            here_now.insert((m.vni, m.mac));
            fx.extend(self.rib.local_mac((m.vni, m.mac), m.sticky, now));
            fx.extend(self.rib.local_group((m.vni, m.mac), m.group));
        }
        for key in self.rib.local_keys() {
            if !here_now.contains(&key) {
                fx.extend(self.rib.local_gone(key, now));
            }
        }
        let mut ips: BTreeMap<MacKey, BTreeSet<UnicastIp>> = BTreeMap::new();
        for (vni, mac, ip) in &h.ips {
            ips.entry((*vni, *mac)).or_default().insert(*ip);
        }
        for key in self.rib.local_keys() {
            let bound = ips.remove(&key).unwrap_or_default();
            fx.extend(self.rib.local_ips(key, &bound));
        }
        fx
    }

    /// Advertises everything of ours (gobgpd may have restarted), and
    /// withdraws our routes it still has that we no longer want.
    async fn readvertise(
        &mut self,
        g: &mut Gobgp,
        own: Vec<(Route, api::Path)>,
    ) -> anyhow::Result<()> {
        let mut paths = Vec::new();
        let mut wanted: BTreeSet<String> = BTreeSet::new();
        for (vni, rd) in &self.vnis {
            paths.push(self.origin.flood_path(*vni, *rd, false));
            wanted.insert(format!("{vni}"));
        }
        for r in self.rib.advertised() {
            if let Some(rd) = self.vnis.get(&r.vni) {
                paths.push(self.origin.mac_path(&r, *rd, false));
                wanted.insert(format!("{} {} {:?}", r.vni, r.mac, r.ip));
            }
        }
        for (route, mut p) in own {
            let key = match route {
                Route::Flood(vni) => format!("{vni}"),
                Route::Mac(r) => format!("{} {} {:?}", r.vni, r.mac, r.ip),
            };
            if !wanted.contains(&key) {
                p.is_withdraw = true;
                paths.push(p);
            }
        }
        self.send(g, paths).await
    }

    async fn send(&mut self, g: &mut Gobgp, paths: Vec<api::Path>) -> anyhow::Result<()> {
        self.status.borrow_mut().updates_out += paths.len() as u64;
        for chunk in paths.chunks(PATHS_PER_REQUEST) {
            g.add_paths(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// Carries out `fx`: table changes under one lock, then our routes.
    async fn apply(&mut self, g: &mut Gobgp, fx: Vec<Effect>) -> anyhow::Result<()> {
        if fx.is_empty() {
            return Ok(());
        }
        log::debug!("EVPN: {fx:?}");
        let mut paths = Vec::new();
        let mut edits = Vec::new();
        for f in fx {
            match f {
                Effect::Advertise(r) | Effect::Withdraw(r) => {
                    let withdraw = matches!(f, Effect::Withdraw(_));
                    if let Some(rd) = self.vnis.get(&r.vni) {
                        paths.push(self.origin.mac_path(&r, *rd, withdraw));
                    }
                }
                Effect::Frozen((vni, mac)) => warn!(
                    "EVPN: VNI {vni} {mac} moved more than move_limit times within move_window: \
                     frozen (a duplicate address?), not advertised until the window has passed"
                ),
                other => edits.push(other),
            }
        }
        if !edits.is_empty() {
            let mut e = Edit::with(self.inst, self.open_tables()?)?;
            let mut events = self.events.take();
            for f in edits {
                if let Err(err) = self.edit(&mut e, events.as_mut(), &f) {
                    warn!("EVPN: {f:?}: {err}");
                }
            }
            self.events = events;
            self.tables = Some(e.into_tables());
        }
        self.send(g, paths).await
    }

    fn edit(
        &self,
        e: &mut Edit<'_>,
        events: Option<&mut EvpnEvents>,
        f: &Effect,
    ) -> Result<(), crate::tables::TableError> {
        let rejected = |why| *self.status.borrow_mut().rejected.entry(why).or_default() += 1;
        match f {
            Effect::Install {
                key: (vni, mac),
                vtep,
                seq,
                sticky,
                from,
                group,
            } => {
                let route = EvpnRoute {
                    seq: *seq,
                    sticky: *sticky,
                };
                e.evpn_group(*vni, *mac, *group)?;
                match e.evpn_install(*vni, *mac, *vtep, route)? {
                    fdb::Installed::StaticWins => rejected(Rejected::StaticWins),
                    fdb::Installed::Yes { moved_from } => {
                        // Where the routes said it was, else where the
                        // tables had it (learned here or elsewhere).
                        let old = from.map(Location::Remote).or(moved_from);
                        if let (Some(old), Some(q)) = (old, events) {
                            q.push(*vni, mac.mac(), old, *vtep);
                        }
                    }
                }
            }
            Effect::Uninstall((vni, mac)) => {
                e.evpn_uninstall(*vni, *mac)?;
                // A MAC that came here keeps the group its route gave it
                // (and its routes from here carry it on).
                if !self.rib.is_local((*vni, *mac)) {
                    e.evpn_group(*vni, *mac, 0)?;
                }
            }
            Effect::Bind((vni, mac), ip) => e.evpn_bind(*vni, *mac, *ip)?,
            Effect::Unbind((vni, mac), ip) => e.evpn_unbind(*vni, *mac, ip.ip())?,
            Effect::Flood(vni) => {
                if let Err(err) = e.evpn_flood(*vni, &self.rib.flood(*vni)) {
                    if matches!(err, crate::tables::TableError::FloodFull { .. }) {
                        rejected(Rejected::FloodFull);
                    }
                    return Err(err);
                }
            }
            Effect::Advertise(_) | Effect::Withdraw(_) | Effect::Frozen(_) => {}
        }
        Ok(())
    }
}

/// The VNIs of `h` with their RD numbers.
fn slots(h: &Here) -> BTreeMap<Vni, u16> {
    h.vnis
        .iter()
        .map(|(v, slot)| (*v, u16::try_from(*slot).unwrap_or(u16::MAX)))
        .collect()
}
