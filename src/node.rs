//! The single-node BTTC chain: ingest (sender recovery) and producer threads around the engine,
//! MDBX storage, and the RPC backend.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY};
use bttc_engine::{
    chain::{
        builder::{BLOCK_TXS_MAX, BlockTemplate, BuiltBlock, TxSnapshot, block_env, build_block},
        genesis::Genesis,
        mempool::{Mempool, PoolError, PoolLimits},
        spec::ChainSpec,
    },
    exec::{ExecMode, StateReader},
    merkle::state_root::update_state_root,
    pipeline::SenderRecoveryStage,
    primitives::{Account, RecoveredTx, TX_ENCODED_LEN_MAX},
};
use bttc_net::rpc::{RpcBackend, SubmitError, events::ChainEvents};
use bttc_storage::{BlockWrite, ChainDb, ReadView, StorageError};
use eyre::{Context, eyre};
use parking_lot::{Condvar, Mutex};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::oneshot;

/// Transactions waiting for sender recovery; beyond this RPC answers "busy".
const INGEST_QUEUE_LEN_MAX: usize = 65_536;
/// Transactions recovered in one parallel batch.
const INGEST_BATCH_LEN_MAX: usize = 4_096;

type Reply = oneshot::Sender<Result<B256, SubmitError>>;

/// A flag with a condition variable, to wake a sleeping thread.
#[derive(Default)]
struct Signal {
    raised: Mutex<bool>,
    cond: Condvar,
}

impl Signal {
    fn raise(&self) {
        *self.raised.lock() = true;
        self.cond.notify_all();
    }

    /// Waits until raised or `timeout` passes; clears the flag.
    fn wait(&self, timeout: Duration) {
        let mut raised = self.raised.lock();
        if !*raised {
            self.cond.wait_for(&mut raised, timeout);
        }
        *raised = false;
    }
}

pub struct Node {
    spec: ChainSpec,
    db: ChainDb,
    pool: Mutex<Mempool>,
    ingest: SenderRecoveryStage<Reply>,
    ingest_signal: Signal,
    pool_signal: Signal,
    shutdown: AtomicBool,
    block_time: Duration,
    beneficiary: Address,
    events: ChainEvents,
    exec: ExecMode,
}

impl Node {
    /// Opens the database and writes the genesis block if the database is new. Without a
    /// `genesis` the database must already hold a chain (one made by `bttc import`).
    pub fn open(
        spec: ChainSpec,
        db: ChainDb,
        genesis: Option<&Genesis>,
        block_time: Duration,
        beneficiary: Address,
        exec: ExecMode,
    ) -> eyre::Result<Self> {
        let node = Self {
            pool: Mutex::new(Mempool::new(spec.clone(), PoolLimits::default())),
            spec,
            db,
            ingest: SenderRecoveryStage::new(INGEST_QUEUE_LEN_MAX, INGEST_BATCH_LEN_MAX),
            ingest_signal: Signal::default(),
            pool_signal: Signal::default(),
            shutdown: AtomicBool::new(false),
            block_time,
            beneficiary,
            events: ChainEvents::new(0),
            exec,
        };
        match genesis {
            Some(genesis) => node.init_genesis(genesis)?,
            None => {
                if node.db.read()?.tip_at()?.is_none() {
                    eyre::bail!("the database holds no chain: run `bttc import` first");
                }
            }
        }
        node.events.block_committed(node.tip()?.0);
        Ok(node)
    }

    fn init_genesis(&self, genesis: &Genesis) -> eyre::Result<()> {
        let view = self.db.read()?;
        if view.tip_at()?.is_some() {
            return Ok(());
        }
        let changes = genesis.changes();
        let root_update = update_state_root(&view, &changes)?;
        drop(view);
        let header = genesis.header(&self.spec, root_update.root);
        let hash = write_genesis(&self.db, header, &changes, &root_update)?;
        tracing::info!(%hash, "wrote genesis block");
        Ok(())
    }

    pub fn tip(&self) -> Result<(u64, B256), StorageError> {
        let view = self.db.read()?;
        let tip = view.tip_at()?.unwrap_or_default();
        Ok((tip, view.canonical_hash_at(tip)?.unwrap_or_default()))
    }

    pub fn stop(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.ingest_signal.raise();
        self.pool_signal.raise();
    }

    pub fn is_stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// The ingest stage's driver: recovers senders in parallel batches and pools the results
    /// in arrival order, answering each submitter.
    pub fn run_ingest(&self) {
        while !self.is_stopping() {
            let batch = self.ingest.run_batch();
            if batch.is_empty() {
                self.ingest_signal.wait(Duration::from_millis(100));
                continue;
            }
            // Lock first, then read: the producer commits under the same lock.
            let mut pool = self.pool.lock();
            let view = match self.db.read() {
                Ok(v) => v,
                Err(e) => {
                    for (_, reply) in batch {
                        let _ = reply.send(Err(SubmitError::Internal(e.to_string())));
                    }
                    continue;
                }
            };
            let mut pooled = Vec::with_capacity(batch.len());
            for (recovered, reply) in batch {
                let result = match recovered {
                    Err(e) => Err(SubmitError::Pool(PoolError::InvalidSignature(e))),
                    Ok(tx) => match view.account(&tx.sender) {
                        Err(e) => Err(SubmitError::Internal(e.to_string())),
                        Ok(account) => {
                            let account = account.unwrap_or(Account {
                                code_hash: KECCAK256_EMPTY,
                                ..Default::default()
                            });
                            pool.insert(tx, account)
                                .map(|i| i.hash)
                                .inspect(|hash| pooled.push(*hash))
                                .map_err(SubmitError::Pool)
                        }
                    },
                };
                let _ = reply.send(result);
            }
            drop(pool);
            self.pool_signal.raise();
            for hash in pooled {
                self.events.tx_pooled(hash);
            }
        }
    }

    /// The producer: a block every `block_time`, or as soon as transactions arrive when the
    /// block time is zero.
    pub fn run_producer(&self) -> eyre::Result<()> {
        let mut next = Instant::now() + self.block_time;
        let mut last_had_txs = false;
        while !self.is_stopping() {
            if self.block_time.is_zero() {
                // Build only when something new may be includable: a signal, or a full last block.
                if !last_had_txs {
                    self.pool_signal.wait(Duration::from_millis(500));
                }
                if self.is_stopping() || self.pool.lock().counts().0 == 0 {
                    last_had_txs = false;
                    continue;
                }
            } else {
                let now = Instant::now();
                if now < next {
                    self.pool_signal.wait(next - now);
                    continue;
                }
                next += self.block_time;
                if next < now {
                    next = now + self.block_time;
                }
            }
            last_had_txs = self.produce_block().wrap_err("producing a block")? > 0;
        }
        Ok(())
    }

    /// Builds, commits and announces one block; returns its transaction count.
    pub fn produce_block(&self) -> eyre::Result<usize> {
        let started = Instant::now();
        let view = self.db.read()?;
        let (_, parent, parent_hash) = tip_block(&view)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let template = BlockTemplate {
            timestamp: now.max(parent.timestamp + 1),
            parent,
            parent_hash,
            beneficiary: self.beneficiary,
            extra_data: Bytes::from_static(b"bttc"),
        };
        let (_, base_fee) = block_env(&self.spec, &template);
        let mut candidates = TxSnapshot::take(&self.pool.lock(), base_fee, BLOCK_TXS_MAX);
        let built = build_block(&self.spec, &view, &mut candidates, &template, self.exec)?;
        drop(view);
        let executed = started.elapsed();
        // Commit first, then update the pool: nothing (RPC reads included) waits for the
        // commit. A reader between the two sees the new state and mined transactions still
        // pooled, which pending nonces ignore (they count from the state nonce). The ingest
        // stage opens its view under the pool lock, so it never pools against a state older
        // than the pool update it follows.
        self.db.write_block(&block_write(&built))?;
        let mut pool = self.pool.lock();
        for (hash, reason) in &built.rejected {
            tracing::warn!(%hash, reason, "dropping invalid transaction");
            pool.remove_by_hash(hash);
        }
        let senders = built
            .txs
            .iter()
            .map(|t| t.sender)
            .collect::<std::collections::BTreeSet<_>>();
        pool.on_new_nonces(senders.into_iter().filter_map(|s| {
            built
                .changes
                .accounts
                .get(&s)
                .and_then(|c| c.account)
                .map(|a| (s, a.nonce))
        }));
        let (pending, queued) = pool.counts();
        drop(pool);
        self.events.block_committed(built.header.number);
        tracing::info!(
            number = built.header.number,
            hash = %built.hash,
            txs = built.txs.len(),
            gas_used = built.header.gas_used,
            state_root = %built.header.state_root,
            build_ms = executed.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            pending,
            queued,
            "committed block"
        );
        Ok(built.txs.len())
    }
}

/// The tip's number, header and hash.
pub fn tip_block(view: &ReadView<'_>) -> eyre::Result<(u64, alloy_consensus::Header, B256)> {
    let tip = view
        .tip_at()?
        .ok_or_else(|| eyre!("database has no genesis"))?;
    let header = view
        .header_at(tip)?
        .ok_or_else(|| eyre!("header {tip} missing"))?;
    let hash = view
        .canonical_hash_at(tip)?
        .ok_or_else(|| eyre!("hash {tip} missing"))?;
    Ok((tip, header, hash))
}

/// The database write of a built or imported block.
pub fn block_write(block: &BuiltBlock) -> BlockWrite<'_> {
    BlockWrite {
        header: &block.header,
        hash: block.hash,
        txs: &block.txs,
        receipts: &block.receipts,
        changes: &block.changes,
        root_update: &block.root_update,
    }
}

/// Writes a genesis block (no transactions); returns its hash.
pub fn write_genesis(
    db: &ChainDb,
    header: alloy_consensus::Header,
    changes: &bttc_engine::exec::StateChanges,
    root_update: &bttc_engine::merkle::state_root::StateRootUpdate,
) -> Result<B256, StorageError> {
    let hash = header.hash_slow();
    db.write_block(&BlockWrite {
        header: &header,
        hash,
        txs: &[],
        receipts: &[],
        changes,
        root_update,
    })?;
    Ok(hash)
}

impl RpcBackend for Node {
    type View<'a> = ReadView<'a>;

    fn view(&self) -> Result<ReadView<'_>, String> {
        self.db.read().map_err(|e| e.to_string())
    }

    fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    fn events(&self) -> &ChainEvents {
        &self.events
    }

    async fn submit(&self, raw: Bytes) -> Result<B256, SubmitError> {
        if raw.len() > TX_ENCODED_LEN_MAX {
            return Err(PoolError::Oversized {
                size: raw.len(),
                limit: TX_ENCODED_LEN_MAX,
            }
            .into());
        }
        let envelope =
            TxEnvelope::decode_2718_exact(&raw).map_err(|e| SubmitError::Decode(e.to_string()))?;
        if self.is_stopping() {
            return Err(SubmitError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.ingest
            .push(envelope, reply)
            .map_err(|_| SubmitError::Busy)?;
        self.ingest_signal.raise();
        answer.await.map_err(|_| SubmitError::Closed)?
    }

    fn pool_tx(&self, hash: &B256) -> Option<Arc<RecoveredTx>> {
        self.pool.lock().get(hash).cloned()
    }

    fn pending_nonce(&self, address: &Address) -> Result<u64, String> {
        let pool = self.pool.lock();
        let view = self.db.read().map_err(|e| e.to_string())?;
        let state_nonce = view
            .account(address)
            .map_err(|e| e.to_string())?
            .map_or(0, |a| a.nonce);
        Ok(pool.pending_nonce(address, state_nonce))
    }

    fn pool_counts(&self) -> (usize, usize) {
        self.pool.lock().counts()
    }

    fn pool_content(
        &self,
    ) -> (
        bttc_engine::chain::mempool::PoolContent,
        bttc_engine::chain::mempool::PoolContent,
    ) {
        self.pool.lock().content()
    }
}
