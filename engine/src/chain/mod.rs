//! The BTTC chain: chain specs, genesis, mempool, and block building.

pub mod bor;
pub mod builder;
pub mod genesis;
pub mod import;
pub mod mempool;
pub mod spec;

use crate::{
    exec::StateError,
    primitives::{BlockNumber, RecoveredTx, StoredReceipt},
};
use alloy_consensus::Header;
use alloy_primitives::B256;

/// Read access to stored blocks; implemented by the database, used by RPC and the producer.
pub trait BlockReader {
    /// Number of the last committed block.
    fn tip(&self) -> Result<Option<BlockNumber>, StateError>;
    fn header(&self, number: BlockNumber) -> Result<Option<Header>, StateError>;
    fn canonical_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError>;
    fn block_number(&self, hash: &B256) -> Result<Option<BlockNumber>, StateError>;
    fn body(&self, number: BlockNumber) -> Result<Option<Vec<RecoveredTx>>, StateError>;
    fn receipts(&self, number: BlockNumber) -> Result<Option<Vec<StoredReceipt>>, StateError>;
    /// Block number and index of a committed transaction.
    fn tx_location(&self, hash: &B256) -> Result<Option<(BlockNumber, u32)>, StateError>;
}
