//! The BTTC chain node: the ingest thread (sender recovery in parallel batches), the producer
//! thread and the JSON-RPC servers around the engine's pool and producer, over MDBX. The
//! threads only move transactions and time; the rules are `bttc_engine::chain::producer`'s.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, utils::format_ether};
use bttc_engine::delivery::milestone::Milestone;
use bttc_engine::{
    chain::{
        genesis::{DEV_ACCOUNT_COUNT, Genesis, dev_signers},
        mempool::{PoolContent, PoolError, PoolLimits},
        producer::{AdmitError, ChainPool, ProduceError, ProducerConfig, produce_block, tip_block},
        spec::ChainSpec,
    },
    env::Clock,
    exec::{ExecMode, StateChanges, StateError},
    merkle::state_root::{StateRootUpdate, update_state_root},
    pipeline::SenderRecoveryStage,
    primitives::{RecoveredTx, TX_ENCODED_LEN_MAX},
};
use bttc_net::rpc::{
    HttpAccess, RpcBackend, RpcLimits, StartError, SubmitError, events::ChainEvents,
};
use bttc_storage::{BlockWrite, ChainDb, ReadView, StorageError, SyncMode};
use parking_lot::{Condvar, Mutex};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::sync::oneshot;

/// Transactions waiting for sender recovery; beyond this RPC answers "busy".
const INGEST_QUEUE_LEN_MAX: usize = 65_536;
/// Transactions recovered in one parallel batch.
const INGEST_BATCH_LEN_MAX: usize = 4_096;

/// Who waits for a transaction's admission: an RPC caller, or nobody (a peer's gossip).
type Reply = Option<oneshot::Sender<Result<B256, SubmitError>>>;

/// What a node does with transactions it admitted from its own RPC callers (a network node
/// passes them on to its peers).
pub type OnAdmitted = Box<dyn Fn(Vec<TxEnvelope>) + Send + Sync>;

/// Why the chain node could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Produce(#[from] ProduceError),
    #[error(transparent)]
    Trie(#[from] bttc_engine::merkle::trie::TrieError),
    #[error(transparent)]
    Rpc(#[from] StartError),
    #[error("unknown chain {0:?}: use dev or bttc-mainnet")]
    UnknownChain(String),
    #[error("--block-time must be between 0 and 3600 seconds, got {0}")]
    BlockTime(f64),
    #[error("{path} holds no chain: run `bttc import --datadir {datadir} --genesis FILE CHAIN.rlp`, or start a dev chain with `bttc node --dev`", path = .0.display(), datadir = .0.display())]
    NoChain(PathBuf),
    #[error("block {number}: {failure}")]
    Verify { number: u64, failure: VerifyFailure },
    #[error(transparent)]
    Import(Box<crate::import::ImportError>),
    #[error(transparent)]
    Genesis(#[from] bttc_engine::chain::import::ImportError),
    #[error("the dev accounts: {0}")]
    DevAccounts(#[from] bttc_engine::chain::genesis::DevAccountError),
    #[error("the {0} thread panicked")]
    ThreadPanicked(&'static str),
    #[error("starting a thread or runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<crate::import::ImportError> for ChainError {
    fn from(e: crate::import::ImportError) -> Self {
        Self::Import(Box::new(e))
    }
}

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

/// A chain node: the store, the pool, the ingest stage and the producer's settings.
pub struct ChainNode {
    db: Arc<ChainDb>,
    pool: ChainPool,
    ingest: SenderRecoveryStage<Reply>,
    ingest_signal: Signal,
    pool_signal: Signal,
    shutdown: AtomicBool,
    block_time: Duration,
    producer: ProducerConfig,
    events: ChainEvents,
    on_admitted: Option<OnAdmitted>,
    /// The last milestone, on a chain that has them.
    milestone: Option<Arc<parking_lot::RwLock<Milestone>>>,
}

impl ChainNode {
    /// Opens the node on `db`, writing `genesis` if the database is new. Without a genesis
    /// the database must already hold a chain (one made by `bttc import`).
    pub fn open(
        producer: ProducerConfig,
        db: impl Into<Arc<ChainDb>>,
        genesis: Option<&Genesis>,
        block_time: Duration,
        path: &Path,
    ) -> Result<Self, ChainError> {
        let node = Self {
            pool: ChainPool::new(producer.spec.clone(), PoolLimits::default()),
            db: db.into(),
            ingest: SenderRecoveryStage::new(INGEST_QUEUE_LEN_MAX, INGEST_BATCH_LEN_MAX),
            ingest_signal: Signal::default(),
            pool_signal: Signal::default(),
            shutdown: AtomicBool::new(false),
            block_time,
            producer,
            events: ChainEvents::new(0),
            on_admitted: None,
            milestone: None,
        };
        match genesis {
            Some(genesis) => node.init_genesis(genesis)?,
            None => {
                if node.db.read()?.tip_at()?.is_none() {
                    return Err(ChainError::NoChain(path.to_owned()));
                }
            }
        }
        node.events.block_committed(node.tip()?.0);
        Ok(node)
    }

    fn init_genesis(&self, genesis: &Genesis) -> Result<(), ChainError> {
        let view = self.db.read()?;
        if view.tip_at()?.is_some() {
            return Ok(());
        }
        let changes = genesis.changes();
        let root_update = update_state_root(&view, &changes)?;
        drop(view);
        let header = genesis.header(&self.producer.spec, root_update.root);
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
            let (recovered, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let envelopes: Vec<Option<TxEnvelope>> = match &self.on_admitted {
                Some(_) => recovered
                    .iter()
                    .zip(&replies)
                    .map(|(tx, reply)| {
                        let tx = tx.as_ref().ok().filter(|_| reply.is_some());
                        tx.map(|t| t.envelope.clone())
                    })
                    .collect(),
                None => Vec::new(),
            };
            let results = self.pool.admit(&*self.db, recovered);
            self.pool_signal.raise();
            let mut admitted = Vec::new();
            for (i, (result, reply)) in results.into_iter().zip(replies).enumerate() {
                if let Ok(hash) = &result {
                    self.events.tx_pooled(*hash);
                    if let Some(Some(envelope)) = envelopes.get(i) {
                        admitted.push(envelope.clone());
                    }
                }
                let Some(reply) = reply else { continue };
                let _ = reply.send(result.map_err(|e| match e {
                    AdmitError::Pool(e) => SubmitError::Pool(e),
                    AdmitError::State(e) => SubmitError::State(e),
                }));
            }
            if let (Some(on_admitted), false) = (&self.on_admitted, admitted.is_empty()) {
                on_admitted(admitted);
            }
        }
    }

    /// Takes transactions a peer passed on: admitted like a caller's, answered to nobody and
    /// not passed on again. Beyond the ingest queue's bound they are dropped.
    pub fn take_gossip(&self, txs: Vec<TxEnvelope>) -> usize {
        let mut dropped = 0;
        for tx in txs {
            if self.ingest.push(tx, None).is_err() {
                dropped += 1;
            }
        }
        self.ingest_signal.raise();
        dropped
    }

    /// A node of a network: its admitted transactions go to `on_admitted`, and RPC answers
    /// `finalized`, `safe` and `bor_getLatestMilestone` from `milestone`.
    pub fn for_network(
        mut self,
        on_admitted: OnAdmitted,
        milestone: Arc<parking_lot::RwLock<Milestone>>,
    ) -> Self {
        self.on_admitted = Some(on_admitted);
        self.milestone = Some(milestone);
        self
    }

    pub fn pool(&self) -> &ChainPool {
        &self.pool
    }

    pub fn db(&self) -> &Arc<ChainDb> {
        &self.db
    }

    pub fn events(&self) -> &ChainEvents {
        &self.events
    }

    /// The producer: a block every `block_time`, or as soon as transactions arrive when the
    /// block time is zero.
    pub fn run_producer(&self) -> Result<(), ChainError> {
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
            last_had_txs = self.produce_block()? > 0;
        }
        Ok(())
    }

    /// Builds, commits and announces one block; returns its transaction count.
    pub fn produce_block(&self) -> Result<usize, ChainError> {
        let started = Instant::now();
        let now_secs = crate::SystemClock.now_ms() / 1_000;
        let built = produce_block(&self.producer, &*self.db, &self.pool, now_secs)?;
        let (pending, queued) = self.pool.lock().counts();
        self.events.block_committed(built.header.number);
        tracing::info!(
            number = built.header.number,
            hash = %built.hash,
            txs = built.txs.len(),
            gas_used = built.header.gas_used,
            state_root = %built.header.state_root,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            pending,
            queued,
            "committed block"
        );
        Ok(built.txs.len())
    }
}

/// Writes a genesis block (no transactions); returns its hash.
pub fn write_genesis(
    db: &ChainDb,
    header: alloy_consensus::Header,
    changes: &StateChanges,
    root_update: &StateRootUpdate,
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

impl RpcBackend for ChainNode {
    type View<'a> = ReadView<'a>;

    fn view(&self) -> Result<ReadView<'_>, StateError> {
        self.db.read().map_err(StateError::store)
    }

    fn spec(&self) -> &ChainSpec {
        &self.producer.spec
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
        let envelope = TxEnvelope::decode_2718_exact(&raw)?;
        if self.is_stopping() {
            return Err(SubmitError::Closed);
        }
        let (reply, answer) = oneshot::channel();
        self.ingest
            .push(envelope, Some(reply))
            .map_err(|_| SubmitError::Busy)?;
        self.ingest_signal.raise();
        answer.await.map_err(|_| SubmitError::Closed)?
    }

    fn pool_tx(&self, hash: &B256) -> Option<Arc<RecoveredTx>> {
        self.pool.lock().get(hash).cloned()
    }

    fn pending_nonce(&self, address: &Address) -> Result<u64, StateError> {
        self.pool.pending_nonce(&*self.db, address)
    }

    fn pool_counts(&self) -> (usize, usize) {
        self.pool.lock().counts()
    }

    fn milestone(&self) -> Option<Milestone> {
        self.milestone.as_ref().map(|m| *m.read())
    }

    fn pool_content(&self) -> (PoolContent, PoolContent) {
        self.pool.lock().content()
    }
}

/// Where and how the node serves JSON-RPC.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub http: SocketAddr,
    pub ws: SocketAddr,
    pub limits: RpcLimits,
    pub access: HttpAccess,
}

/// A chain node to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// A development chain (single producer, prefunded accounts); without it, the chain
    /// `bttc import` wrote into `datadir` is served and no blocks are produced.
    pub dev: bool,
    /// With `dev`: the rules by name (`dev` or `bttc-mainnet`).
    pub chain: String,
    /// With `dev`: the chain's genesis from a geth-style genesis file instead.
    pub genesis: Option<PathBuf>,
    pub datadir: PathBuf,
    /// Seconds between blocks; 0 makes a block as soon as transactions arrive.
    pub block_time_secs: f64,
    pub sync: SyncMode,
    /// Receiver of block fees (the first dev account if not given).
    pub coinbase: Option<Address>,
    pub exec: ExecMode,
    pub endpoints: Endpoints,
}

fn block_time(seconds: f64) -> Result<Duration, ChainError> {
    if !(0.0..=3600.0).contains(&seconds) {
        return Err(ChainError::BlockTime(seconds));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Runs a chain node until interrupted: a dev chain, a dev chain from a genesis file, or
/// the imported chain of the data directory.
pub fn run(config: NodeConfig) -> Result<(), ChainError> {
    if !config.dev {
        return run_follower(&config);
    }
    if let Some(path) = &config.genesis {
        return run_dev_from_genesis(&config, path);
    }
    let spec = ChainSpec::by_name(&config.chain)
        .ok_or_else(|| ChainError::UnknownChain(config.chain.clone()))?;
    let block_time = block_time(config.block_time_secs)?;
    let signers = dev_signers(DEV_ACCOUNT_COUNT)?;
    let addresses: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let genesis = Genesis::dev(&addresses);
    let db_path = config.datadir.join("chain");
    let db = ChainDb::open(&db_path, spec.name, config.sync)?;
    let producer = ProducerConfig {
        spec: spec.clone(),
        beneficiary: config.coinbase.unwrap_or(addresses[0]),
        exec: config.exec,
    };
    let node = Arc::new(ChainNode::open(
        producer,
        db,
        Some(&genesis),
        block_time,
        &db_path,
    )?);
    let (tip, tip_hash) = node.tip()?;
    println!(
        "\nbttc dev node — chain {} (id {}), {} rules",
        spec.name,
        spec.chain_id,
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    println!("\nAvailable accounts\n==================");
    for (i, (address, balance)) in genesis.alloc.iter().enumerate() {
        println!(
            "({i}) {address} ({} ETH)",
            format_ether(*balance)
                .trim_end_matches('0')
                .trim_end_matches('.')
        );
    }
    println!("\nPrivate keys\n==================");
    for (i, signer) in signers.iter().enumerate() {
        println!("({i}) {}", signer.to_bytes());
    }
    println!("\nData directory: {}", config.datadir.display());
    println!("Chain tip: block {tip} ({tip_hash})");
    serve(node, &config.endpoints, true)
}

/// A producing node whose genesis comes from a geth-style file (benchmarks shape state so).
fn run_dev_from_genesis(config: &NodeConfig, path: &Path) -> Result<(), ChainError> {
    let genesis = crate::import::load_genesis(path)?;
    let (node, spec) =
        open_from_genesis(config, &genesis, block_time(config.block_time_secs)?, true)?;
    let (tip, tip_hash) = node.tip()?;
    println!(
        "bttc dev node — chain id {} from {} ({} accounts), {} rules, tip {tip} ({tip_hash})",
        spec.chain_id,
        path.display(),
        genesis.alloc.len(),
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    serve(node, &config.endpoints, true)
}

/// `bttc node --datadir DIR` without `--dev`: serves the chain `bttc import` wrote into DIR,
/// producing no blocks.
fn run_follower(config: &NodeConfig) -> Result<(), ChainError> {
    let genesis_path = config.datadir.join(crate::import::GENESIS_FILE);
    if !genesis_path.exists() {
        return Err(ChainError::NoChain(config.datadir.clone()));
    }
    let genesis = crate::import::load_genesis(&genesis_path)?;
    let (node, spec) = open_from_genesis(config, &genesis, Duration::ZERO, false)?;
    let (tip, tip_hash) = node.tip()?;
    println!(
        "bttc node — imported chain (id {}), {} rules, tip {tip} ({tip_hash}); no blocks are produced",
        spec.chain_id,
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    serve(node, &config.endpoints, false)
}

/// A node on the database of a chain made from a geth-style `genesis`; with `write_genesis`
/// the genesis is written into a new database (or checked), else the database must already
/// hold the chain.
fn open_from_genesis(
    config: &NodeConfig,
    genesis: &alloy_genesis::Genesis,
    block_time: Duration,
    write_genesis: bool,
) -> Result<(Arc<ChainNode>, ChainSpec), ChainError> {
    let spec = bttc_engine::chain::import::spec_from_genesis(genesis)?;
    let db_path = config.datadir.join("chain");
    let db = ChainDb::open(
        &db_path,
        &crate::import::chain_name(spec.chain_id),
        config.sync,
    )?;
    if write_genesis {
        crate::import::init_genesis(&db, &spec, genesis, &db_path)?;
    }
    let producer = ProducerConfig {
        spec: spec.clone(),
        beneficiary: config.coinbase.unwrap_or_default(),
        exec: config.exec,
    };
    let node = ChainNode::open(producer, db, None, block_time, &db_path)?;
    Ok((Arc::new(node), spec))
}

/// Serves JSON-RPC with the ingest thread (and, when `produce`, the block producer) until
/// interrupted, terminated or stopped; then stops everything in order.
fn serve(node: Arc<ChainNode>, endpoints: &Endpoints, produce: bool) -> Result<(), ChainError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Calls and log queries run on blocking threads. A few, kept warm, serve them all; an
    // unbounded pool grows a thread (and a fresh allocator heap) per concurrent request.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(2 * cores)
        .enable_all()
        .build()
        .map_err(ChainError::Runtime)?;
    let server = runtime.block_on(bttc_net::rpc::start(
        node.clone(),
        endpoints.http,
        Some(endpoints.ws),
        endpoints.limits,
        &endpoints.access,
    ))?;
    println!("\nListening on http://{}", server.http);
    if let Some(ws) = server.ws {
        println!("Listening on ws://{ws}");
    }
    println!();

    let ingest = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || node.run_ingest())
            .map_err(ChainError::Runtime)?
    };
    let producer = if produce {
        let node = node.clone();
        Some(
            std::thread::Builder::new()
                .name("producer".into())
                .spawn(move || {
                    let result = node.run_producer();
                    if let Err(e) = &result {
                        tracing::error!("producer stopped: {e}");
                        node.stop();
                    }
                    result
                })
                .map_err(ChainError::Runtime)?,
        )
    } else {
        None
    };

    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(ChainError::Runtime)?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            _ = term.recv() => tracing::info!("terminated, shutting down"),
            _ = server.stopped() => {},
            _ = wait_stopped(&node) => {},
        }
        Ok::<_, ChainError>(())
    })?;
    node.stop();
    server.stop();
    ingest
        .join()
        .map_err(|_| ChainError::ThreadPanicked("ingest"))?;
    if let Some(producer) = producer {
        producer
            .join()
            .map_err(|_| ChainError::ThreadPanicked("producer"))??;
    }
    let (tip, tip_hash) = node.tip()?;
    println!("stopped at block {tip} ({tip_hash})");
    Ok(())
}

/// Resolves when the node stops by itself (e.g. the producer failed).
async fn wait_stopped(node: &ChainNode) {
    while !node.is_stopping() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What `bttc db verify` found wrong with a block.
#[derive(Debug, thiserror::Error)]
pub enum VerifyFailure {
    #[error("its header is missing")]
    HeaderMissing,
    #[error("its hash is missing")]
    HashMissing,
    #[error("stored hash {stored} is not the header's hash {computed}")]
    Hash { stored: B256, computed: B256 },
    #[error("parent hash {0} does not link to the block before")]
    Parent(B256),
    #[error("state root {header} in the header, {recomputed} recomputed from the state")]
    StateRoot { header: B256, recomputed: B256 },
}

/// Checks every stored header's hash and parent link, and recomputes the tip's state root
/// from the account and storage tables (independently of the stored trie nodes).
pub fn verify_db(datadir: &Path, chain: &str) -> Result<(), ChainError> {
    let path = datadir.join("chain");
    if !path.exists() {
        return Err(ChainError::NoChain(path));
    }
    let db = ChainDb::open(&path, chain, SyncMode::Durable)?;
    let view = db.read()?;
    let (tip, tip_header, tip_hash) = tip_block(&view)?;
    let mut parent_hash = None;
    for number in 0..=tip {
        let fail = |failure| ChainError::Verify { number, failure };
        let header = view
            .header_at(number)?
            .ok_or(fail(VerifyFailure::HeaderMissing))?;
        let hash = view
            .canonical_hash_at(number)?
            .ok_or(fail(VerifyFailure::HashMissing))?;
        let computed = header.hash_slow();
        if computed != hash {
            return Err(fail(VerifyFailure::Hash {
                stored: hash,
                computed,
            }));
        }
        if let Some(parent) = parent_hash
            && header.parent_hash != parent
        {
            return Err(fail(VerifyFailure::Parent(header.parent_hash)));
        }
        parent_hash = Some(hash);
    }
    let recomputed = view.full_state_root()?;
    println!("tip {tip} {tip_hash}");
    println!("header state root     {}", tip_header.state_root);
    println!("recomputed state root {recomputed}");
    if recomputed != tip_header.state_root {
        return Err(ChainError::Verify {
            number: tip,
            failure: VerifyFailure::StateRoot {
                header: tip_header.state_root,
                recomputed,
            },
        });
    }
    println!("ok: {} headers linked, state root matches", tip + 1);
    Ok(())
}
