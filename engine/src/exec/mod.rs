//! Block execution with revm: the state interface, the executor interface, and the sequential
//! executor that the parallel one (a later stage) must match on every receipt and state change.

pub mod bttc_logs;
mod mem;
mod overlay;
mod sequential;
#[cfg(test)]
mod tests;

pub use mem::MemState;
pub use overlay::{AccountChange, StateChanges};
pub use revm::bytecode::Bytecode;
pub use sequential::{
    CallOutcome, CallRequest, SequentialBlock, SequentialExecutor, SystemCallOutcome, TxOutcome,
    call, create_access_list, estimate_gas, tx_env,
};

use crate::primitives::{Account, BlockNumber, RecoveredTx, StoredReceipt};
use alloy_primitives::{Address, B256, Bytes, U256};

/// Errors of the state behind execution (a database, an in-memory map).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state read failed: {0}")]
pub struct StateError(pub String);

impl revm::database_interface::DBErrorMarker for StateError {}

/// Read access to the state as of the parent of the block being executed.
pub trait StateReader: Sync {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError>;
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError>;
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError>;
    /// Hash of an ancestor block, for `BLOCKHASH`.
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError>;
    /// Code ready to run (jump destinations analysed). Stores may keep analysed code across
    /// reads: code never changes under its hash.
    fn bytecode(&self, code_hash: &B256) -> Result<Option<Bytecode>, StateError> {
        self.code(code_hash)?
            .map(|raw| {
                Bytecode::new_raw_checked(raw)
                    .map_err(|e| StateError(format!("code {code_hash} does not decode: {e:?}")))
            })
            .transpose()
    }
}

/// The facts of a block header that execution reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockEnv {
    pub number: BlockNumber,
    pub timestamp: u64,
    /// Who receives fees: the header's beneficiary (Ethereum) or the block signer (BTTC).
    pub fee_recipient: Address,
    pub gas_limit: u64,
    pub base_fee: u64,
    pub difficulty: U256,
    /// `mixHash` from the Merge on.
    pub prevrandao: B256,
    pub excess_blob_gas: u64,
}

/// Why a transaction cannot be part of a block (as opposed to a transaction that reverts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxInvalid {
    #[error("transaction {hash}: {reason}")]
    Rejected { hash: B256, reason: String },
    #[error("transaction {hash} needs {gas_limit} gas, block has {gas_left} left")]
    BlockFull {
        hash: B256,
        gas_limit: u64,
        gas_left: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Invalid(#[from] TxInvalid),
    #[error("evm header error: {0}")]
    Header(String),
}

/// Everything a block's execution produces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockOutcome {
    pub receipts: Vec<StoredReceipt>,
    pub gas_used: u64,
    pub changes: StateChanges,
}

/// Executes whole blocks; sequential now, parallel (Block-STM) later, with identical outcomes.
pub trait BlockExecutor {
    fn execute_block<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecError>;
}
