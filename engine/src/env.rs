//! The side effects the engine's state machines need, as traits. Drivers implement them over
//! real I/O (MDBX, QUIC, threads); the test kit implements them over a seeded simulated world,
//! so that the code a simulation drives is the code a node runs.

use crate::delivery::{
    block::{Block, CommitVote},
    host::{PersistBatch, SideCheck, Stored},
    side_tx::SideTxResult,
    wire::Wire,
};
use crate::primitives::DeliveryHeight;
use alloy_primitives::Address;

/// Wall-clock time. State machines never read it: drivers read it and hand it in with every
/// input (`handle_*(now_ms, ..)`), so a simulation drives them with a clock of its own.
pub trait Clock {
    /// Milliseconds since the Unix epoch (or since a simulation began).
    fn now_ms(&self) -> u64;
}

/// Carries messages to other validators. Never blocks: a message that cannot be queued is
/// dropped (peers re-send their own messages until they move on).
pub trait Transport {
    fn broadcast(&mut self, wire: &Wire);
    fn send_to(&mut self, peer: Address, wire: &Wire);
}

/// A validator's durable Delivery state.
pub trait DeliveryStore {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Writes a batch: every operation of it, in order, or none of them (a crash mid-write
    /// leaves the state before the batch). Durable when it returns.
    fn write(&mut self, batch: &PersistBatch) -> Result<(), Self::Error>;

    /// What a restarting validator needs: the application state and tip, and the log, the
    /// signed-vote record, the received precommits and the proposed blocks of the height
    /// after the tip.
    fn load(&self) -> Result<Stored, Self::Error>;

    /// A committed block with the commit that decided it.
    fn block(
        &self,
        height: DeliveryHeight,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, Self::Error>;
}

/// Queues side checks to run off the consensus path; their results come back to the host as
/// inputs. Never blocks: a check that cannot be queued is dropped, and its transaction gets a
/// Skip from this validator.
pub trait SideChecks {
    fn submit(&mut self, check: SideCheck);
}

/// A validator's own view of the world outside the chain (a root chain, the BTTC chain, a
/// file): the verdict on a side transaction and the data it signs with the verdict (empty
/// when there is nothing to sign). It may be slow; it runs on a worker pool.
pub trait SideChecker: Send + Sync {
    fn check(&self, payload: &[u8]) -> (SideTxResult, Vec<u8>);
}

/// The BTTC chain's durable state: read snapshots that never wait for a writer, and one block
/// write at a time, all of a block or nothing.
pub trait ChainStore: Sync {
    type View<'a>: crate::exec::StateReader
        + crate::chain::BlockReader
        + crate::merkle::trie::TrieReader
    where
        Self: 'a;

    /// A consistent snapshot of the last committed block and its state.
    fn read(&self) -> Result<Self::View<'_>, crate::exec::StateError>;

    /// Commits a block: header, body, receipts, state and trie changes, and the new tip.
    fn write_block(
        &self,
        block: &crate::chain::builder::BuiltBlock,
    ) -> Result<(), crate::exec::StateError>;
}
