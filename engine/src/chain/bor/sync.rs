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
            PeerMessage::Block(block) => return self.handle_block(store, now_ms, *block),
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
                if head > ours && !self.knows(&head_hash) {
                    effects.reply.push(ChainMessage::GetRange {
                        from: ours + 1,
                        count: (head - ours).min(RANGE_BLOCKS_MAX),
                    });
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
