//! What subscriptions and filters follow: the committed tip and newly pooled transactions.

use alloy_primitives::B256;
use tokio::sync::{broadcast, watch};

/// Pooled-transaction hashes kept for slow followers; one that falls further behind misses
/// the oldest (as geth's pending-transaction feed drops them), never the node's memory.
pub const PENDING_FEED_LEN: usize = 16_384;

/// The node's announcements. Block followers read the blocks themselves from storage up to
/// the announced tip, so a slow follower catches up instead of skipping heads.
#[derive(Debug)]
pub struct ChainEvents {
    tip: watch::Sender<u64>,
    pending: broadcast::Sender<B256>,
}

impl ChainEvents {
    /// Announcements starting at the committed block `tip`.
    pub fn new(tip: u64) -> Self {
        Self {
            tip: watch::Sender::new(tip),
            pending: broadcast::Sender::new(PENDING_FEED_LEN),
        }
    }

    /// Block `number` is committed and readable.
    pub fn block_committed(&self, number: u64) {
        self.tip.send_replace(number);
    }

    /// A transaction entered the pool and can be read from it.
    pub fn tx_pooled(&self, hash: B256) {
        // No receiver is not an error: nobody is following the pool.
        let _ = self.pending.send(hash);
    }

    pub fn tip(&self) -> u64 {
        *self.tip.borrow()
    }

    pub fn follow_tip(&self) -> watch::Receiver<u64> {
        self.tip.subscribe()
    }

    pub fn follow_pending(&self) -> broadcast::Receiver<B256> {
        self.pending.subscribe()
    }
}
