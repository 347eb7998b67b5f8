//! Block execution with revm: the state interface, the executor interface, the sequential
//! executor, and the parallel one (Block-STM) that matches it on every receipt and state change.

pub mod bttc_logs;
mod mem;
mod overlay;
mod parallel;
pub mod replay;
mod sequential;
pub mod testing;
#[cfg(test)]
mod tests;

pub use mem::MemState;
pub use overlay::{AccountChange, StateChanges, reverse_changes};
pub use parallel::{
    ExecStats, PARALLEL_GAS_MIN, PARALLEL_TXS_MIN, ParallelExecutor, ProducedBlock,
};
pub use revm::bytecode::Bytecode;
pub use sequential::{
    CallOutcome, CallRequest, SequentialBlock, SequentialExecutor, SystemCallOutcome, TxOutcome,
    call, create_access_list, estimate_gas, tx_env,
};

use crate::{
    chain::spec::ChainSpec,
    primitives::{Account, BlockNumber, RecoveredTx, StoredReceipt},
};
use alloy_primitives::{Address, B256, Bytes, U256};

/// Errors of the state behind execution (a database, an in-memory map).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StateError {
    /// The store failed; its error is the source.
    #[error("state read failed: {0}")]
    Store(#[source] std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>),
    #[error("code {0} is missing")]
    MissingCode(B256),
    #[error("code {hash} does not decode: {source:?}")]
    Code {
        hash: B256,
        source: revm::bytecode::BytecodeDecodeError,
    },
    #[error("hash of block {0} is missing")]
    MissingBlockHash(BlockNumber),
    /// Parallel execution read a value a transaction had not finished writing (a bug).
    #[error("read of an unfinished transaction")]
    Unfinished,
}

impl StateError {
    /// A store's error, kept as the source.
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Store(std::sync::Arc::new(e))
    }
}

/// Errors compare by what they say (a store's error has no equality of its own).
impl PartialEq for StateError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for StateError {}

impl revm::database_interface::DBErrorMarker for StateError {}

/// Read access to the state as of the parent of the block being executed.
pub trait StateReader: Sync {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError>;
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError>;
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError>;
    /// Hash of an ancestor block, for `BLOCKHASH`.
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError>;
    /// Another reader of exactly the same state for another thread, when sharing this one
    /// would serialize the threads (a database read transaction behind a lock); `None` to
    /// share this one.
    fn fork(&self) -> Option<Box<dyn StateReader + '_>> {
        None
    }
    /// Code ready to run (jump destinations analysed). Stores may keep analysed code across
    /// reads: code never changes under its hash.
    fn bytecode(&self, code_hash: &B256) -> Result<Option<Bytecode>, StateError> {
        self.code(code_hash)?
            .map(|raw| {
                Bytecode::new_raw_checked(raw).map_err(|source| StateError::Code {
                    hash: *code_hash,
                    source,
                })
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
    Rejected {
        hash: B256,
        reason: revm::context::result::InvalidTransaction,
    },
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
    #[error("block header: {0}")]
    Header(revm::context::result::InvalidHeader),
    #[error("{0} transactions in one block")]
    TooManyTxs(usize),
    /// A fatal failure inside the EVM (a precompile's, say), as revm words it.
    #[error("evm: {0}")]
    Evm(String),
}

/// Everything a block's execution produces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockOutcome {
    pub receipts: Vec<StoredReceipt>,
    pub gas_used: u64,
    pub changes: StateChanges,
}

/// Executes whole blocks: sequentially or in parallel (Block-STM), with identical outcomes.
pub trait BlockExecutor {
    fn execute_block<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecError>;
}

/// Which executor runs blocks (`--exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExecMode {
    #[default]
    Parallel,
    Sequential,
}

impl std::str::FromStr for ExecMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "parallel" => Ok(Self::Parallel),
            "sequential" => Ok(Self::Sequential),
            other => Err(format!(
                "unknown executor {other:?} (expected parallel or sequential)"
            )),
        }
    }
}

impl std::fmt::Display for ExecMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Parallel => "parallel",
            Self::Sequential => "sequential",
        })
    }
}

/// The executor a node is configured with.
#[derive(Debug, Clone)]
pub struct ConfiguredExecutor {
    pub spec: ChainSpec,
    pub mode: ExecMode,
}

impl BlockExecutor for ConfiguredExecutor {
    fn execute_block<S: StateReader>(
        &self,
        state: &S,
        env: &BlockEnv,
        txs: &[RecoveredTx],
    ) -> Result<BlockOutcome, ExecError> {
        match self.mode {
            ExecMode::Sequential => SequentialExecutor {
                spec: self.spec.clone(),
            }
            .execute_block(state, env, txs),
            ExecMode::Parallel => ParallelExecutor {
                spec: self.spec.clone(),
                workers: 0,
            }
            .execute_block(state, env, txs),
        }
    }
}
