//! An in-memory Delivery store for the simulation: a batch is applied whole or, when a crash is
//! planted before it, not at all. The log is kept encoded, as on disk.

use crate::delivery::{
    app::AppState,
    block::{Block, CommitVote},
    host::{
        PersistBatch, PersistOp, SIGNED_RECORD_HEIGHTS_KEPT, SignedKind, SignedMessage, Stored,
    },
    tendermint::Round,
    wal::{WalEntry, decode_wal_entry, encode_wal_entry},
};
use crate::env::DeliveryStore;
use crate::primitives::DeliveryHeight;
use alloy_primitives::{Address, B256, Bytes};
use std::collections::BTreeMap;

/// The simulated machine crashed before the batch reached the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("crashed before the write")]
pub struct Crashed;

#[derive(Debug, Clone, Default)]
pub struct SimStore {
    blocks: BTreeMap<DeliveryHeight, (Block, Vec<CommitVote>)>,
    state: Option<AppState>,
    kv: BTreeMap<Bytes, Bytes>,
    nonces: BTreeMap<Address, u64>,
    wal: Vec<Vec<u8>>,
    signed: BTreeMap<(DeliveryHeight, Round, SignedKind), SignedMessage>,
    precommits: BTreeMap<(DeliveryHeight, Round, Address, Option<B256>), CommitVote>,
    pending: BTreeMap<B256, Block>,
    /// The next write fails as if the machine crashed before it: nothing of it is written.
    pub crash_before_next_write: bool,
}

impl SimStore {
    /// Committed blocks, by height.
    pub fn blocks(&self) -> &BTreeMap<DeliveryHeight, (Block, Vec<CommitVote>)> {
        &self.blocks
    }

    /// Every signed message the record holds.
    pub fn signed(&self) -> impl Iterator<Item = &SignedMessage> {
        self.signed.values()
    }

    pub fn wal_len(&self) -> usize {
        self.wal.len()
    }

    fn apply(&mut self, op: &PersistOp) {
        match op {
            PersistOp::Commit(record) => {
                let height = record.block.header.height;
                self.blocks
                    .insert(height, (record.block.clone(), record.commit.clone()));
                self.state = Some(record.state.clone());
                for (k, v) in &record.changes.kv {
                    self.kv.insert(k.clone(), v.clone());
                }
                for (a, n) in &record.changes.nonces {
                    self.nonces.insert(*a, *n);
                }
            }
            PersistOp::BeginHeight(h) => {
                self.wal = vec![encode_wal_entry(&WalEntry::Height(*h))];
                self.pending.retain(|_, b| b.header.height >= *h);
                self.precommits.retain(|k, _| k.0 >= *h);
                let keep_from = h.0.saturating_sub(SIGNED_RECORD_HEIGHTS_KEPT);
                self.signed.retain(|k, _| k.0.0 >= keep_from);
            }
            PersistOp::Wal(entry) => self.wal.push(encode_wal_entry(entry)),
            PersistOp::Signed(s) => {
                self.signed
                    .entry((s.height(), s.round(), s.kind()))
                    .or_insert_with(|| s.clone());
            }
            PersistOp::Precommit(c) => {
                let v = c.vote.vote;
                self.precommits
                    .entry((v.height, v.round, v.validator, v.value))
                    .or_insert_with(|| c.clone());
            }
            PersistOp::Pending(block) => {
                self.pending.insert(block.hash(), block.clone());
            }
        }
    }
}

impl DeliveryStore for SimStore {
    type Error = Crashed;

    fn write(&mut self, batch: &PersistBatch) -> Result<(), Crashed> {
        if std::mem::take(&mut self.crash_before_next_write) {
            return Err(Crashed);
        }
        for op in &batch.ops {
            self.apply(op);
        }
        Ok(())
    }

    fn load(&self) -> Result<Stored, Crashed> {
        let app = self.state.clone().map(|mut s| {
            s.kv = self.kv.clone();
            s.nonces = self.nonces.clone();
            s
        });
        let next = app.as_ref().map_or(DeliveryHeight(1), |a| a.height.next());
        Ok(Stored {
            app,
            tip: self.blocks.last_key_value().map(|(_, b)| b.clone()),
            wal: self
                .wal
                .iter()
                .map(|bytes| decode_wal_entry(bytes).expect("the simulated log decodes"))
                .collect(),
            signed: self
                .signed
                .range((next, 0, SignedKind::Proposal)..)
                .take_while(|(k, _)| k.0 == next)
                .map(|(_, s)| s.clone())
                .collect(),
            precommits: self
                .precommits
                .iter()
                .filter(|(k, _)| k.0 == next)
                .map(|(_, c)| c.clone())
                .collect(),
            pending: self
                .pending
                .values()
                .filter(|b| b.header.height == next)
                .cloned()
                .collect(),
        })
    }

    fn block(&self, height: DeliveryHeight) -> Result<Option<(Block, Vec<CommitVote>)>, Crashed> {
        Ok(self.blocks.get(&height).cloned())
    }
}
