//! The EVPN agent of `vtep daemon`: BGP EVPN (RFC 7432, RFC 8365) through
//! gobgpd's gRPC API. We never speak BGP ourselves.
//!
//! It configures gobgpd (AS, router id, peers with the L2VPN EVPN family),
//! advertises a type-3 route per local VNI and type-2 routes for the MACs
//! on local ports, and installs what the other VTEPs advertise: type-3 as
//! flood-list members, type-2 as FDB entries and ARP bindings, all of
//! origin `evpn`. The data plane never waits for it: when gobgpd is gone,
//! the tables keep their last state; the agent reconnects with backoff,
//! reads gobgpd's whole table again, removes the `evpn` entries no longer
//! in it (a stale sweep, as after a graceful restart) and advertises ours
//! again.

mod agent;
pub mod gobgp;
pub mod rib;
pub mod routes;
mod show;
mod stuck;
mod sweep;

pub use self::{
    agent::{Shared, Status, run},
    show::{EvpnView, show},
};
