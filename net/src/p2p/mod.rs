//! Validator-to-validator networking over QUIC: TLS bound to validator keys, bounded frames,
//! consensus traffic ahead of catch-up traffic.

pub mod frame;
pub mod tls;
pub mod transport;

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the network refused or dropped, by cause; shown by `delivery_status`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handshakes refused: no endorsement, or the endorsing key is not a validator's.
    pub unknown_key: AtomicU64,
    /// Frames that do not decode.
    pub malformed: AtomicU64,
    /// Frames longer than the bound.
    pub oversized: AtomicU64,
    /// Votes, proposals or commits whose signature does not verify (counted by the driver).
    pub bad_signature: AtomicU64,
    /// Messages dropped because a bounded queue was full.
    pub queue_full: AtomicU64,
    /// Frames received and handed to consensus.
    pub received: AtomicU64,
    /// Malformed and oversized frames by the peer that sent them.
    marked: parking_lot::Mutex<std::collections::BTreeMap<alloy_primitives::Address, u64>>,
}

/// Peers whose bad frames are remembered (beyond it, only the totals count).
const MARKED_PEERS_MAX: usize = 1_024;

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CountersSnapshot {
    pub unknown_key: u64,
    pub malformed: u64,
    pub oversized: u64,
    pub bad_signature: u64,
    pub queue_full: u64,
    pub received: u64,
}

impl Counters {
    /// Counts a bad frame against `peer`.
    pub fn mark(&self, peer: alloy_primitives::Address) {
        let mut marked = self.marked.lock();
        if marked.len() < MARKED_PEERS_MAX || marked.contains_key(&peer) {
            *marked.entry(peer).or_default() += 1;
        }
    }

    /// Bad frames by peer.
    pub fn marked_peers(&self) -> std::collections::BTreeMap<alloy_primitives::Address, u64> {
        self.marked.lock().clone()
    }

    pub fn snapshot(&self) -> CountersSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersSnapshot {
            unknown_key: get(&self.unknown_key),
            malformed: get(&self.malformed),
            oversized: get(&self.oversized),
            bad_signature: get(&self.bad_signature),
            queue_full: get(&self.queue_full),
            received: get(&self.received),
        }
    }
}
