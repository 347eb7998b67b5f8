//! The chain's pool and block production as the node's threads share them: which state a
//! transaction is pooled against, and the order of a block's commit and the pool's update.
//! Drivers call these with a store and the time; the rules live here.

use super::{
    BlockReader,
    builder::{
        BLOCK_TXS_MAX, BlockTemplate, BuildError, BuiltBlock, TxSnapshot, block_env, build_block,
    },
    mempool::{Mempool, PoolError, PoolLimits},
    spec::ChainSpec,
};
use crate::{
    crypto::RecoverError,
    env::ChainStore,
    exec::{ExecMode, StateError, StateReader},
    primitives::{Account, BlockNumber, RecoveredTx},
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY};
use parking_lot::{Mutex, MutexGuard};

/// Why a transaction was not pooled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// Why no block was produced.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("the store has no {0}")]
    Missing(&'static str),
}

/// The mempool shared by ingest, the producer and RPC.
///
/// The rule that keeps it consistent with the store: whoever reads the state to change the
/// pool reads it under the pool's lock, and the producer commits a block before it takes the
/// lock to update the pool. So the state a transaction is pooled against is never older than
/// the last pool update, and nothing (RPC reads included) waits for a commit. A reader between
/// a commit and the pool update sees the new state with mined transactions still pooled, which
/// pending nonces ignore (they count from the state nonce).
pub struct ChainPool {
    pool: Mutex<Mempool>,
}

impl ChainPool {
    pub fn new(spec: ChainSpec, limits: PoolLimits) -> Self {
        Self {
            pool: Mutex::new(Mempool::new(spec, limits)),
        }
    }

    /// The pool, for reads (lookups, counts, content).
    pub fn lock(&self) -> MutexGuard<'_, Mempool> {
        self.pool.lock()
    }

    /// Pools a batch of recovered transactions in order against the latest committed state;
    /// result `i` belongs to `batch[i]`.
    pub fn admit<S: ChainStore>(
        &self,
        store: &S,
        batch: Vec<Result<RecoveredTx, RecoverError>>,
    ) -> Vec<Result<B256, AdmitError>> {
        let mut pool = self.pool.lock();
        let view = match store.read() {
            Ok(view) => view,
            Err(e) => return batch.iter().map(|_| Err(e.clone().into())).collect(),
        };
        batch
            .into_iter()
            .map(|recovered| {
                let tx = recovered.map_err(PoolError::InvalidSignature)?;
                let account = view.account(&tx.sender)?.unwrap_or(Account {
                    code_hash: KECCAK256_EMPTY,
                    ..Default::default()
                });
                Ok(pool.insert(tx, account)?.hash)
            })
            .collect()
    }

    /// The next nonce of `address` counting its pooled transactions, read consistently with
    /// the latest committed state.
    pub fn pending_nonce<S: ChainStore>(
        &self,
        store: &S,
        address: &Address,
    ) -> Result<u64, StateError> {
        let pool = self.pool.lock();
        let state_nonce = store.read()?.account(address)?.map_or(0, |a| a.nonce);
        Ok(pool.pending_nonce(address, state_nonce))
    }
}

/// The last committed block: number, header and hash.
pub fn tip_block<V: BlockReader>(view: &V) -> Result<(BlockNumber, Header, B256), ProduceError> {
    let tip = view.tip()?.ok_or(ProduceError::Missing("genesis block"))?;
    let header = view
        .header(tip)?
        .ok_or(ProduceError::Missing("tip header"))?;
    let hash = view
        .canonical_hash(tip)?
        .ok_or(ProduceError::Missing("tip hash"))?;
    Ok((tip, header, hash))
}

/// What the producer was told to put in a block besides the pool's transactions.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub spec: ChainSpec,
    pub beneficiary: Address,
    pub exec: ExecMode,
}

/// Builds the next block on the store's tip from the pool at `now_secs`, commits it, then
/// updates the pool.
pub fn produce_block<S: ChainStore>(
    config: &ProducerConfig,
    store: &S,
    pool: &ChainPool,
    now_secs: u64,
) -> Result<BuiltBlock, ProduceError> {
    let view = store.read()?;
    let (_, parent, parent_hash) = tip_block(&view)?;
    let template = BlockTemplate::plain(
        parent.clone(),
        parent_hash,
        now_secs.max(parent.timestamp + 1),
        config.beneficiary,
        Bytes::from_static(b"bttc"),
    );
    let (_, base_fee) = block_env(&config.spec, &template);
    let mut candidates = TxSnapshot::take(&pool.lock(), base_fee, BLOCK_TXS_MAX);
    let built = build_block(&config.spec, &view, &mut candidates, &template, config.exec)?;
    drop(view);
    store.write_block(&built)?;
    pool.lock().on_block(&built);
    Ok(built)
}
