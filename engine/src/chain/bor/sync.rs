//! What a BTTC node does with a peer's chain message: a block goes to the host, an unknown
//! announced head is asked for, a peer further ahead is asked for the range after this node's
//! head, and requests for blocks are answered from the store. Every answer is bounded.

use super::{
    host::{BorStore, ChainEffects, ChainHost, StoreFailed, WireBlock},
    wire::{ChainMessage, RANGE_BLOCKS_MAX, RawBlock},
};
use crate::{crypto::recover_senders, primitives::RecoveredTx};
use alloy_primitives::B256;

/// Bytes of blocks one range answer carries at most (a range is answered in part beyond it).
pub const RANGE_ANSWER_BYTES_MAX: usize = 8 << 20;
/// How long a range request may go unanswered before it is asked again (of whichever peer
/// speaks next).
const RANGE_RETRY_MS: u64 = 2_000;
/// A block further ahead of the head than this is caught up to by ranges, not by fetching
/// its parents one by one.
const PARENT_FETCH_GAP_MAX: u64 = 4;

/// A node catching up: the best head a peer reported, and the blocks asked for. Two ranges
/// are in flight at once: the next is asked for when the first is half imported.
#[derive(Debug, Default, Clone, Copy)]
pub struct RangeSync {
    /// The highest head a peer has reported.
    pub target: u64,
    /// The last block asked for.
    pub requested_until: u64,
    requested_at_ms: u64,
}

impl RangeSync {
    /// The next range to ask for, if this node is behind and has asked for little beyond its
    /// head (or its last request went unanswered).
    fn next(&mut self, head: u64, now_ms: u64) -> Option<ChainMessage> {
        if self.target <= head {
            return None;
        }
        let stale = now_ms >= self.requested_at_ms + RANGE_RETRY_MS;
        let from = if self.requested_until <= head || stale {
            head + 1
        } else if self.requested_until < head + RANGE_BLOCKS_MAX / 2 + 1
            && self.requested_until < self.target
        {
            self.requested_until + 1
        } else {
            return None;
        };
        let count = (self.target + 1 - from).min(RANGE_BLOCKS_MAX);
        self.requested_until = from + count - 1;
        self.requested_at_ms = now_ms;
        Some(ChainMessage::GetRange { from, count })
    }
}

impl RawBlock {
    /// The block with its transactions' senders recovered (in parallel); the index of the
    /// first transaction whose signature does not recover, if one does not.
    pub fn recover(self) -> Result<WireBlock, usize> {
        let senders = recover_senders(&self.txs);
        let mut txs = Vec::with_capacity(self.txs.len());
        for (index, (envelope, sender)) in self.txs.into_iter().zip(senders).enumerate() {
            let sender = sender.map_err(|_| index)?;
            txs.push(RecoveredTx::new_unchecked(envelope, sender));
        }
        Ok(WireBlock {
            header: self.header,
            txs,
        })
    }
}

impl ChainHost {
    /// Whether this node holds block `hash` (canonical and recent, or on a side branch).
    pub fn knows(&self, hash: &B256) -> bool {
        self.recent_hash_index(hash) || self.holds_side(hash)
    }

    /// A peer's message (a block already recovered into `block`); what to answer the peer
    /// is in `effects.reply`.
    pub fn handle_message<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        message: PeerMessage,
    ) -> Result<ChainEffects, StoreFailed> {
        let mut effects = ChainEffects::default();
        match message {
            PeerMessage::Block(block) => {
                let number = block.header.number;
                let mut effects = self.handle_block(store, now_ms, *block)?;
                let head = self.head().0;
                if number > head + PARENT_FETCH_GAP_MAX {
                    // Far ahead: the blocks between come by ranges.
                    self.sync.target = self.sync.target.max(number);
                    effects.fetch.clear();
                } else if number > head && number <= self.sync.requested_until + 1 {
                    // Its parent is on its way in a range already asked for.
                    effects.fetch.clear();
                }
                effects.reply.extend(self.sync.next(head, now_ms));
                return Ok(effects);
            }
            PeerMessage::Other(ChainMessage::Announce { number, hash }) => {
                let head = self.head().0;
                if !self.knows(&hash) && number + RANGE_BLOCKS_MAX > head {
                    effects.reply.push(ChainMessage::GetBlock { hash });
                }
            }
            PeerMessage::Other(ChainMessage::Status {
                head, head_hash, ..
            }) => {
                let (ours, _) = self.head();
                // A head held only as a side block still needs the blocks below it.
                if head > ours && !self.recent_hash_index(&head_hash) {
                    self.sync.target = self.sync.target.max(head);
                    effects.reply.extend(self.sync.next(ours, now_ms));
                }
            }
            PeerMessage::Other(ChainMessage::GetBlock { hash }) => {
                if let Some(block) = self.block_by_hash(store, &hash) {
                    effects
                        .reply
                        .push(ChainMessage::Block(Box::new(RawBlock::from(&block))));
                }
            }
            PeerMessage::Other(ChainMessage::GetRange { from, count }) => {
                let mut bytes = 0;
                for number in from..from.saturating_add(count.min(RANGE_BLOCKS_MAX)) {
                    let (Some((header, _)), Some(txs)) =
                        (store.canonical(number), store.body(number))
                    else {
                        break;
                    };
                    let block = RawBlock::from(&WireBlock { header, txs });
                    bytes += block
                        .txs
                        .iter()
                        .map(|t| t.eip2718_encoded_length())
                        .sum::<usize>()
                        + 1_024;
                    effects.reply.push(ChainMessage::Block(Box::new(block)));
                    if bytes >= RANGE_ANSWER_BYTES_MAX {
                        break;
                    }
                }
            }
            // Blocks arrive recovered; transactions go to the pool, which the driver feeds.
            PeerMessage::Other(ChainMessage::Block(_) | ChainMessage::Txs(_)) => {}
        }
        Ok(effects)
    }

    /// What this node tells its peers now and then: its head and last milestone.
    pub fn status(&self) -> ChainMessage {
        let (head, head_hash) = self.head();
        ChainMessage::Status {
            head,
            head_hash,
            milestone: self.delivery.milestone.number,
        }
    }
}

/// A chain message as the host takes it: blocks with senders recovered.
#[derive(Debug)]
pub enum PeerMessage {
    Block(Box<WireBlock>),
    Other(ChainMessage),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_pipelined_and_asked_again_when_unanswered() {
        let mut sync = RangeSync {
            target: 1_000,
            ..Default::default()
        };
        let range = |m: Option<ChainMessage>| match m {
            Some(ChainMessage::GetRange { from, count }) => Some((from, count)),
            _ => None,
        };
        assert_eq!(range(sync.next(10, 0)), Some((11, 128)));
        // Half of the first range not yet imported: nothing more.
        assert_eq!(range(sync.next(40, 10)), None);
        // Half imported: the next range.
        assert_eq!(range(sync.next(80, 20)), Some((139, 128)));
        assert_eq!(range(sync.next(90, 30)), None);
        // Nothing came for a while: ask again from the head.
        assert_eq!(range(sync.next(90, 2_100)), Some((91, 128)));
        // At the target: nothing.
        assert_eq!(range(sync.next(1_000, 9_000)), None);
        // The last range is cut at the target.
        sync.target = 1_010;
        assert_eq!(range(sync.next(1_000, 12_000)), Some((1_001, 10)));
    }
}
