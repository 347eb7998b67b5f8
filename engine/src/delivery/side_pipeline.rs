//! Side transactions and their outside check (spec §6.2). The pipeline across heights: every
//! validator checks the side transactions of block H after committing it, its signed results
//! ride on its precommits at H+1, and block H+2 tallies the results its last commit carries
//! (`app::AppState::apply`).

use super::side_tx::SideTxResult;
use alloy_primitives::{B256, Bytes, keccak256};

/// Side transactions one block may carry (bounds the work and the vote size).
pub const SIDE_TXS_PER_BLOCK_MAX: usize = 256;

/// A side transaction in a Delivery block: what must be checked outside the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideTx {
    pub payload: Bytes,
}

impl SideTx {
    pub fn hash(&self) -> B256 {
        keccak256(&self.payload)
    }
}

/// The application's outside check (a root-chain RPC, the BTTC chain, ...). It returns the
/// verdict and the data validators sign (empty when there is nothing to sign).
pub trait SideTxChecker {
    fn check(&self, tx: &SideTx) -> (SideTxResult, Vec<u8>);
}
