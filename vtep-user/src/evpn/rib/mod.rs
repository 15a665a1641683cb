//! What the EVPN agent knows and decides, without I/O: the routes other
//! VTEPs advertise, the MACs that are local here, and from both, which
//! routes we advertise and which FDB entries, ARP bindings and flood-list
//! members we install. Every input returns the [`Effect`]s to carry out.
//!
//! MAC mobility (RFC 7432 §15): a MAC learned here that another VTEP
//! advertises is advertised with that route's sequence number + 1; a route
//! from elsewhere with a higher sequence (or the same one from a lower
//! VTEP address, §15.1) for a MAC that is local here wins, and our route is
//! withdrawn. A sticky (static) MAC never moves (§15.2). A MAC taken over
//! more than `move_limit` times within `move_window` is frozen: no longer
//! advertised until the window has passed (duplicate detection, §15.1).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, VecDeque},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::routes::MacRoute;
use crate::values::{PeerVtep, UnicastIp, UnicastMac, Vni};

/// Withdrawn sequence numbers kept, at most (then forgotten at once: the
/// worst is a move advertised with too low a number, which the old VTEP
/// then wins and re-learning corrects).
const MAX_WITHDRAWN: usize = 1 << 20;

/// A MAC within a VNI.
pub type MacKey = (Vni, UnicastMac);

/// Something the agent must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Advertise our route (replacing one with the same key).
    Advertise(MacRoute),
    /// Withdraw our route.
    Withdraw(MacRoute),
    /// Point the MAC's FDB entry at `vtep`; `from`: the other VTEP whose
    /// route it was before (a move, reported), if any.
    Install {
        key: MacKey,
        vtep: PeerVtep,
        seq: u32,
        sticky: bool,
        from: Option<PeerVtep>,
        /// The policy group the route carries (0: none).
        group: u16,
    },
    /// Remove the MAC's EVPN FDB entry (and, unless the MAC is local now,
    /// the group its route gave it).
    Uninstall(MacKey),
    /// Bind `ip` to the MAC (ARP suppression).
    Bind(MacKey, UnicastIp),
    /// Remove that binding.
    Unbind(MacKey, UnicastIp),
    /// The VNI's EVPN flood-list members changed: write [`Rib::flood`].
    Flood(Vni),
    /// The MAC moved too often: frozen, reported.
    Frozen(MacKey),
}

/// A MAC that lives here.
#[derive(Clone, Debug, Default)]
struct Local {
    seq: u32,
    sticky: bool,
    ips: BTreeSet<UnicastIp>,
    /// Its policy group, which its routes carry.
    group: u16,
}

/// What an FDB entry of ours says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Installed {
    pub vtep: PeerVtep,
    pub seq: u32,
    pub sticky: bool,
    pub group: u16,
}

/// The agent's state.
pub struct Rib {
    local_ip: IpAddr,
    move_limit: u32,
    move_window: Duration,
    /// Other VTEPs' type-2 routes, per MAC, by (VTEP, IP).
    remote: HashMap<MacKey, BTreeMap<(PeerVtep, Option<UnicastIp>), MacRoute>>,
    /// Other VTEPs' type-3 routes.
    floods: BTreeMap<Vni, BTreeSet<PeerVtep>>,
    local: HashMap<MacKey, Local>,
    installed: HashMap<MacKey, Installed>,
    /// The sequence numbers and VTEPs of MACs whose remote routes were
    /// all withdrawn: a MAC learned here just after its old VTEP withdrew
    /// it (it saw the VM's first frame too) still outbids that route, and
    /// a MAC that reappears elsewhere is a move.
    withdrawn: HashMap<MacKey, (u32, PeerVtep)>,
    /// Takeovers within the window, per MAC.
    moves: HashMap<MacKey, VecDeque<Instant>>,
    frozen: HashMap<MacKey, Instant>,
}

impl Rib {
    pub fn new(local_ip: IpAddr, move_limit: u32, move_window: Duration) -> Self {
        Self {
            local_ip,
            move_limit,
            move_window,
            remote: HashMap::new(),
            floods: BTreeMap::new(),
            local: HashMap::new(),
            installed: HashMap::new(),
            withdrawn: HashMap::new(),
            moves: HashMap::new(),
            frozen: HashMap::new(),
        }
    }

    /// The FDB entry of `key` is gone (the data plane saw the MAC
    /// elsewhere and removed it).
    pub fn forget_installed(&mut self, key: MacKey) {
        self.installed.remove(&key);
    }

    /// The local MACs.
    pub fn local_keys(&self) -> Vec<MacKey> {
        self.local.keys().copied().collect()
    }

    /// Knows `key` as installed (an FDB entry of origin `evpn` found in
    /// the tables at start, to be kept or swept).
    pub fn seed_installed(&mut self, key: MacKey, i: Installed) {
        self.installed.insert(key, i);
    }

    /// The EVPN members of `vni`'s flood list.
    pub fn flood(&self, vni: Vni) -> Vec<PeerVtep> {
        self.floods
            .get(&vni)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The VNIs with EVPN flood-list members.
    pub fn flood_vnis(&self) -> impl Iterator<Item = Vni> + '_ {
        self.floods.keys().copied()
    }

    /// Routes received, MACs installed, MACs local, frozen.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let received = self.remote.values().map(BTreeMap::len).sum::<usize>()
            + self.floods.values().map(BTreeSet::len).sum::<usize>();
        (
            received,
            self.installed.len(),
            self.local.len(),
            self.frozen.len(),
        )
    }

    /// Our routes, as they should be advertised now.
    pub fn advertised(&self) -> Vec<MacRoute> {
        let mut out = Vec::new();
        for (key, l) in &self.local {
            if !self.frozen.contains_key(key) {
                out.extend(routes_of(*key, l));
            }
        }
        out
    }

    /// Per MAC of `vni` (all VNIs if `None`): where it is (`None`: here),
    /// its sequence number, whether frozen.
    pub fn macs(&self, vni: Option<Vni>) -> Vec<(MacKey, Option<PeerVtep>, u32, bool)> {
        let mut out: Vec<_> = self
            .local
            .iter()
            .map(|(k, l)| (*k, None, l.seq, self.frozen.contains_key(k)))
            .chain(
                self.installed
                    .iter()
                    .map(|(k, i)| (*k, Some(i.vtep), i.seq, false)),
            )
            .filter(|(k, ..)| vni.is_none_or(|v| v == k.0))
            .collect();
        out.sort_by_key(|(k, ..)| *k);
        out
    }

    /// A type-2 route of another VTEP, added or withdrawn.
    pub fn remote_mac(
        &mut self,
        vtep: PeerVtep,
        r: MacRoute,
        withdrawn: bool,
        now: Instant,
    ) -> Vec<Effect> {
        let key = (r.vni, r.mac);
        let mut out = Vec::new();
        let routes = self.remote.entry(key).or_default();
        if withdrawn {
            routes.remove(&(vtep, r.ip));
            if routes.is_empty() {
                self.remote.remove(&key);
                if self.withdrawn.len() >= MAX_WITHDRAWN {
                    self.withdrawn.clear();
                }
                let w = self.withdrawn.entry(key).or_insert((r.seq, vtep));
                if r.seq >= w.0 {
                    *w = (r.seq, vtep);
                }
            }
        } else {
            routes.insert((vtep, r.ip), r);
        }
        self.resolve(key, now, &mut out);
        if let Some(ip) = r.ip
            && !self.local.contains_key(&key)
        {
            out.push(if withdrawn {
                Effect::Unbind(key, ip)
            } else {
                Effect::Bind(key, ip)
            });
        }
        out
    }

    /// A type-3 route of another VTEP, added or withdrawn.
    pub fn remote_flood(&mut self, vtep: PeerVtep, vni: Vni, withdrawn: bool) -> Vec<Effect> {
        let set = self.floods.entry(vni).or_default();
        let changed = if withdrawn {
            set.remove(&vtep)
        } else {
            set.insert(vtep)
        };
        if set.is_empty() {
            self.floods.remove(&vni);
        }
        if changed {
            vec![Effect::Flood(vni)]
        } else {
            Vec::new()
        }
    }

    /// Takes GoBGP's table read whole: `macs` and `floods` are added and,
    /// if `sweep`, every other remote route is removed (and so are the
    /// entries installed from it). A table read right after a reconnect
    /// is not swept: the peers have not sent their routes yet.
    pub fn replace_remote(
        &mut self,
        macs: Vec<(PeerVtep, MacRoute)>,
        floods: Vec<(PeerVtep, Vni)>,
        sweep: bool,
        now: Instant,
    ) -> Vec<Effect> {
        let mut out = Vec::new();
        let old_floods = std::mem::take(&mut self.floods);
        if !sweep {
            self.floods.clone_from(&old_floods);
        }
        for (vtep, vni) in floods {
            self.floods.entry(vni).or_default().insert(vtep);
        }
        let vnis: BTreeSet<Vni> = old_floods
            .keys()
            .chain(self.floods.keys())
            .copied()
            .collect();
        for vni in vnis {
            if old_floods.get(&vni) != self.floods.get(&vni) {
                out.push(Effect::Flood(vni));
            }
        }
        let old = std::mem::take(&mut self.remote);
        if !sweep {
            self.remote.clone_from(&old);
        }
        for (vtep, r) in macs {
            self.remote
                .entry((r.vni, r.mac))
                .or_default()
                .insert((vtep, r.ip), r);
        }
        let mut keys: BTreeSet<MacKey> = old.keys().copied().collect();
        keys.extend(self.remote.keys().copied());
        if sweep {
            // Entries installed before a restart that no route backs.
            keys.extend(self.installed.keys().copied());
        }
        for key in keys {
            self.resolve(key, now, &mut out);
            let ips = |m: Option<&BTreeMap<(PeerVtep, Option<UnicastIp>), MacRoute>>| -> BTreeSet<UnicastIp> {
                m.map(|m| m.keys().filter_map(|(_, ip)| *ip).collect())
                    .unwrap_or_default()
            };
            if self.local.contains_key(&key) {
                continue;
            }
            let (before, after) = (ips(old.get(&key)), ips(self.remote.get(&key)));
            out.extend(before.difference(&after).map(|ip| Effect::Unbind(key, *ip)));
            out.extend(after.difference(&before).map(|ip| Effect::Bind(key, *ip)));
        }
        out
    }

    /// A MAC seen on a local port (learned, or moved here). `sticky`: a
    /// configured port entry.
    pub fn local_mac(&mut self, key: MacKey, sticky: bool, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.local.get(&key).is_some_and(|l| l.sticky == sticky) {
            return out;
        }
        let best = self.best_remote(key);
        if best.is_some_and(|(_, r)| r.sticky) && !sticky {
            // Sticky elsewhere: it does not move here (RFC 7432 §15.2).
            log::warn!(
                "VNI {} {}: seen here, but it is a static MAC of {}: not advertised",
                key.0,
                key.1,
                best.map_or(String::new(), |(v, _)| v.to_string())
            );
            return out;
        }
        let seen = best
            .map(|(_, r)| r.seq)
            .into_iter()
            .chain(self.withdrawn.remove(&key).map(|(seq, _)| seq))
            .max();
        let seq = match seen {
            Some(s) if !sticky => s.saturating_add(1),
            _ => self.local.get(&key).map_or(0, |l| l.seq),
        };
        if seen.is_some() && !sticky && self.moved(key, now) {
            out.push(Effect::Frozen(key));
        }
        // Our routes keep their keys (RD, MAC, IP): advertising them again
        // replaces them.
        let (ips, group) = self
            .local
            .remove(&key)
            .map(|l| (l.ips, l.group))
            .unwrap_or_default();
        let l = Local {
            seq,
            sticky,
            ips,
            group,
        };
        if !self.frozen.contains_key(&key) {
            out.extend(routes_of(key, &l).into_iter().map(Effect::Advertise));
        }
        self.local.insert(key, l);
        if self.installed.remove(&key).is_some() {
            out.push(Effect::Uninstall(key));
        }
        out
    }

    /// The policy group of a local MAC now (its membership): its routes
    /// advertised again when it changed.
    pub fn local_group(&mut self, key: MacKey, group: u16) -> Vec<Effect> {
        let frozen = self.frozen.contains_key(&key);
        let Some(l) = self.local.get_mut(&key) else {
            return Vec::new();
        };
        if l.group == group {
            return Vec::new();
        }
        l.group = group;
        if frozen {
            return Vec::new();
        }
        routes_of(key, l)
            .into_iter()
            .map(Effect::Advertise)
            .collect()
    }

    /// Whether `key` lives here.
    pub fn is_local(&self, key: MacKey) -> bool {
        self.local.contains_key(&key)
    }

    /// A local MAC that is no longer here (aged, deleted, or seen behind
    /// another VTEP by the data plane).
    pub fn local_gone(&mut self, key: MacKey, now: Instant) -> Vec<Effect> {
        let mut out = Vec::new();
        if let Some(l) = self.local.remove(&key) {
            if !self.frozen.contains_key(&key) {
                out.extend(routes_of(key, &l).into_iter().map(Effect::Withdraw));
            }
            self.resolve(key, now, &mut out);
            if let Some(routes) = self.remote.get(&key) {
                for (_, ip) in routes.keys() {
                    if let Some(ip) = ip {
                        out.push(Effect::Bind(key, *ip));
                    }
                }
            }
        }
        out
    }

    /// The addresses bound to a local MAC now (ARP snooping or
    /// configuration): a MAC/IP route advertised for each new one,
    /// withdrawn for each gone.
    pub fn local_ips(&mut self, key: MacKey, ips: &BTreeSet<UnicastIp>) -> Vec<Effect> {
        let frozen = self.frozen.contains_key(&key);
        let Some(l) = self.local.get_mut(&key) else {
            return Vec::new();
        };
        if l.ips == *ips {
            return Vec::new();
        }
        let route = |ip: &UnicastIp| MacRoute {
            vni: key.0,
            mac: key.1,
            ip: Some(*ip),
            seq: l.seq,
            sticky: l.sticky,
            group: l.group,
        };
        let out = if frozen {
            Vec::new()
        } else {
            ips.difference(&l.ips)
                .map(|ip| Effect::Advertise(route(ip)))
                .chain(l.ips.difference(ips).map(|ip| Effect::Withdraw(route(ip))))
                .collect()
        };
        l.ips.clone_from(ips);
        out
    }

    /// Lets frozen MACs whose window has passed go (they are advertised
    /// again).
    pub fn thaw(&mut self, now: Instant) -> Vec<Effect> {
        let window = self.move_window;
        let thawed: Vec<MacKey> = self
            .frozen
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= window)
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for key in thawed {
            self.frozen.remove(&key);
            self.moves.remove(&key);
            if let Some(l) = self.local.get(&key) {
                out.extend(routes_of(key, l).into_iter().map(Effect::Advertise));
            }
        }
        out
    }

    /// Counts a takeover of `key`; whether it froze it now.
    fn moved(&mut self, key: MacKey, now: Instant) -> bool {
        let window = self.move_window;
        let moves = self.moves.entry(key).or_default();
        while moves
            .front()
            .is_some_and(|t| now.duration_since(*t) > window)
        {
            moves.pop_front();
        }
        moves.push_back(now);
        if moves.len() > self.move_limit as usize && !self.frozen.contains_key(&key) {
            self.frozen.insert(key, now);
            return true;
        }
        false
    }

    /// The winning remote route of `key`: highest sequence, then lowest
    /// VTEP address (RFC 7432 §15.1).
    fn best_remote(&self, key: MacKey) -> Option<(PeerVtep, MacRoute)> {
        self.remote.get(&key).and_then(|routes| {
            routes
                .iter()
                .map(|((vtep, _), r)| (*vtep, *r))
                .max_by(|(va, ra), (vb, rb)| ra.seq.cmp(&rb.seq).then(vb.cmp(va)))
        })
    }

    /// Makes the FDB entry and our routes of `key` follow its routes.
    fn resolve(&mut self, key: MacKey, now: Instant, out: &mut Vec<Effect>) {
        let best = self.best_remote(key);
        if let Some(l) = self.local.get(&key) {
            let Some((vtep, r)) = best else { return };
            let wins =
                !l.sticky && (r.seq > l.seq || (r.seq == l.seq && vtep.ip() < self.local_ip));
            if !wins {
                return;
            }
            // Moved away: ours goes, theirs is installed.
            let l = self.local.remove(&key).unwrap_or_default();
            if !self.frozen.contains_key(&key) {
                out.extend(routes_of(key, &l).into_iter().map(Effect::Withdraw));
            }
            self.moved(key, now);
        }
        match best {
            Some((vtep, r)) => {
                let want = Installed {
                    vtep,
                    seq: r.seq,
                    sticky: r.sticky,
                    group: r.group,
                };
                if self.installed.get(&key) != Some(&want) {
                    let before = match self.installed.insert(key, want) {
                        Some(i) => Some(i.vtep),
                        None => self.withdrawn.remove(&key).map(|(_, v)| v),
                    };
                    out.push(Effect::Install {
                        key,
                        vtep,
                        seq: r.seq,
                        sticky: r.sticky,
                        from: before.filter(|b| *b != vtep),
                        group: r.group,
                    });
                }
            }
            None => {
                if self.installed.remove(&key).is_some() {
                    out.push(Effect::Uninstall(key));
                }
            }
        }
    }
}

/// Our routes for a local MAC: the MAC alone, and one per bound IP.
fn routes_of(key: MacKey, l: &Local) -> Vec<MacRoute> {
    let route = |ip| MacRoute {
        vni: key.0,
        mac: key.1,
        ip,
        seq: l.seq,
        sticky: l.sticky,
        group: l.group,
    };
    std::iter::once(route(None))
        .chain(l.ips.iter().map(|ip| route(Some(*ip))))
        .collect()
}

#[cfg(test)]
mod tests;
