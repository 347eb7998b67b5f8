//! The Delivery validator's driver: it moves bytes and time between the outside world (QUIC
//! peers, the MDBX store, the clock, the side-check workers, JSON-RPC) and the engine's
//! validator host, and carries out the host's effects with the engine's `carry_out`. No
//! protocol rule lives here.

use crate::{
    NodeError, SystemClock,
    chain::ChainNode,
    network::{ChainDriver, ChainInput, ChainShared},
    side_checks::{FactsChecker, NodeChecker, SideCheckPool},
};
use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::chain::{
    bor::host::{BorStore, ChainHost},
    producer::ProducerConfig,
};
use bttc_engine::env::Clock;
use bttc_engine::{
    chain::{bor::genesis::BorGenesis, spec::ChainSpec},
    delivery::app::span::SpanConfig,
    exec::ExecMode,
};
use bttc_engine::{
    delivery::{
        app::AppState,
        block::{Block, CommitVote, TxKind},
        host::{Host, HostConfig, HostStatus, Inbound, SideCheckResult, SubmitTxError},
        signing::key_address,
        tendermint::TimeoutConfig,
    },
    primitives::DeliveryHeight,
};
use bttc_net::{
    p2p::{
        Counters,
        transport::{self, P2p, P2pConfig},
    },
    rpc::{
        BackendError, RpcLimits,
        delivery::{DeliveryBackend, DeliverySubmitError},
    },
};
use bttc_storage::bor::BorDb;
use bttc_storage::{SyncMode, delivery::DeliveryDb};
use parking_lot::RwLock;
use secp256k1::SecretKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{mpsc, oneshot, watch};

/// Inbound frames queued for the driver before the network drops new ones.
const INBOX_LEN: usize = 8_192;
/// Frames handled (and their signatures verified) as one step.
const BATCH_MAX: usize = 512;
/// Side-check results and RPC submissions queued for the driver.
const CONTROL_QUEUE_LEN: usize = 1_024;
/// Side checks queued for the workers; beyond it a check is dropped (its result is Skip).
const SIDE_CHECK_QUEUE_LEN: usize = 1_024;
/// Threads running side checks.
const SIDE_CHECK_WORKERS: usize = 2;

/// One validator in the genesis file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenesisValidator {
    pub address: Address,
    pub p2p: SocketAddr,
    pub rpc: SocketAddr,
    /// The node's BTTC JSON-RPC over HTTP and WebSocket (a network with a BTTC chain).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bttc_rpc: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bttc_ws: Option<SocketAddr>,
}

/// Timeouts in the genesis file (ms).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TimeoutsMs {
    pub propose: u64,
    pub prevote: u64,
    pub precommit: u64,
    pub delta: u64,
}

impl From<TimeoutsMs> for TimeoutConfig {
    fn from(t: TimeoutsMs) -> Self {
        Self {
            propose_ms: t.propose,
            prevote_ms: t.prevote,
            precommit_ms: t.precommit,
            delta_ms: t.delta,
        }
    }
}

/// The Delivery chain's genesis: who validates, where they listen, how fast they go.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryGenesis {
    pub chain_id: u64,
    pub genesis_time_ms: u64,
    pub validators: Vec<GenesisValidator>,
    pub timeouts: TimeoutsMs,
    /// Pause after a commit before the next height (Tendermint's `timeout_commit`).
    pub block_interval_ms: u64,
    /// The BTTC chain of the network, whose spans this Delivery chain decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bttc: Option<crate::network::BttcGenesisSection>,
}

impl DeliveryGenesis {
    pub fn load(path: &Path) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeError::File {
            what: "reading the genesis",
            path: path.to_owned(),
            source,
        })?;
        let genesis: Self = serde_json::from_str(&text).map_err(|source| NodeError::Json {
            what: "parsing the genesis",
            path: path.to_owned(),
            source,
        })?;
        let unique: BTreeSet<Address> = genesis.validators.iter().map(|v| v.address).collect();
        if unique.len() != genesis.validators.len() || unique.is_empty() {
            return Err(NodeError::Genesis {
                path: path.to_owned(),
                why: "it needs at least one validator and no duplicates",
            });
        }
        Ok(genesis)
    }

    /// The application state before the first block.
    pub fn state(&self) -> AppState {
        let members: Vec<Address> = self.validators.iter().map(|v| v.address).collect();
        let state = AppState::genesis(self.chain_id, &members, self.genesis_time_ms);
        match &self.bttc {
            Some(bttc) => state.with_spans(SpanConfig {
                params: bttc.params(),
                bttc_chain_id: bttc.chain_id,
            }),
            None => state,
        }
    }

    /// The BTTC genesis of this network, if it has a BTTC chain: span 0 is this Delivery
    /// genesis's first span.
    pub fn bttc_genesis(&self) -> Option<(BorGenesis, ChainSpec)> {
        let bttc = self.bttc.as_ref()?;
        let state = self.state();
        let (_, first) = state.spans.first()?;
        Some((bttc.genesis(&first.validators), bttc.spec()))
    }

    /// How the validator with `key` runs on this chain.
    pub fn host_config(&self, key: SecretKey) -> HostConfig {
        HostConfig {
            block_interval_ms: self.block_interval_ms,
            ..HostConfig::new(self.chain_id, key, self.timeouts.into())
        }
    }
}

/// Milliseconds since the Unix epoch: the host's clock.
pub fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// What the RPC server reads and asks while the driver runs.
struct Shared {
    db: Arc<DeliveryDb>,
    /// The BTTC chain's side, when this node runs one.
    chain: Option<Arc<crate::network::ChainShared>>,
    status: RwLock<HostStatus>,
    counters: Arc<Counters>,
    peers: RwLock<usize>,
    submits: mpsc::Sender<Control>,
}

/// Requests that reach the driver from other threads.
enum Control {
    Submit {
        kind: TxKind,
        payload: Bytes,
        reply: oneshot::Sender<Result<B256, SubmitTxError>>,
    },
    SideResult(SideCheckResult),
}

impl DeliveryBackend for Shared {
    fn status(&self) -> Value {
        let status = self.status.read().clone();
        let mut value = serde_json::to_value(status).unwrap_or_default();
        value["peers"] = json!(*self.peers.read());
        value["network"] = json!(self.counters.snapshot());
        value["network"]["marked_peers"] = json!(self.counters.marked_peers());
        if let Some(chain) = &self.chain {
            value["bttc"] = chain.status.read().clone();
        }
        value
    }

    fn block(
        &self,
        height: DeliveryHeight,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, BackendError> {
        self.db.block(height).map_err(BackendError::storage)
    }

    fn value(&self, key: &Bytes) -> Result<Option<Bytes>, BackendError> {
        self.db.value(key).map_err(BackendError::storage)
    }

    async fn submit(&self, kind: TxKind, payload: Bytes) -> Result<B256, DeliverySubmitError> {
        let (reply, answer) = oneshot::channel();
        self.submits
            .try_send(Control::Submit {
                kind,
                payload,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => DeliverySubmitError::Busy,
                mpsc::error::TrySendError::Closed(_) => DeliverySubmitError::Closed,
            })?;
        Ok(answer.await.map_err(|_| DeliverySubmitError::Closed)??)
    }
}

/// A validator to start.
pub struct ValidatorConfig {
    /// Its database and its `side-facts` file.
    pub datadir: PathBuf,
    pub genesis: DeliveryGenesis,
    pub key: SecretKey,
    pub sync: SyncMode,
    /// JSON-RPC listen address.
    pub http: SocketAddr,
    /// Where the BTTC chain's JSON-RPC listens (a network with a BTTC chain).
    pub bttc_endpoints: Option<crate::chain::Endpoints>,
    pub exec: ExecMode,
    /// A full node: its QUIC address; `key` is then its own identity, not a validator's. It
    /// follows both chains and signs and seals nothing.
    pub full_node_p2p: Option<SocketAddr>,
}

/// Full nodes a network validator serves at once.
const FULL_NODES_MAX: usize = 16;

/// Runs a validator (its network, its RPC, its side-check workers and its driver thread,
/// and on a network with a BTTC chain the chain's driver, ingest and RPC) until `shutdown`
/// flips to true or a driver fails.
pub async fn run_validator(
    config: ValidatorConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let genesis = &config.genesis;
    let me = key_address(&config.key);
    let (listen, full_nodes_max) = match config.full_node_p2p {
        Some(p2p) => (p2p, 0),
        None => {
            let Some(mine) = genesis.validators.iter().find(|v| v.address == me) else {
                return Err(NodeError::NotAValidator(me));
            };
            let serves = if config.bttc_endpoints.is_some() {
                FULL_NODES_MAX
            } else {
                0
            };
            (mine.p2p, serves)
        }
    };
    let db = Arc::new(DeliveryDb::open(
        &config.datadir.join("delivery"),
        config.sync,
    )?);
    let stored = db.load()?;
    let (host, effects) = Host::open(
        genesis.host_config(config.key),
        genesis.state(),
        stored,
        now_ms(),
    );
    let (control_tx, control) = mpsc::channel(CONTROL_QUEUE_LEN);
    let (inbox_tx, inbox) = mpsc::channel(INBOX_LEN);
    let validators = Arc::new(RwLock::new(allowed_peers(&host)));
    let p2p = Arc::new(P2p::start(
        P2pConfig {
            chain_id: genesis.chain_id,
            key: config.key,
            listen,
            peers: genesis
                .validators
                .iter()
                .filter(|v| v.address != me)
                .map(|v| (v.address, v.p2p))
                .collect(),
            validators: validators.clone(),
            full_nodes_max,
        },
        inbox_tx,
    )?);
    let chain = match (genesis.bttc_genesis(), &config.bttc_endpoints) {
        (Some((bttc_genesis, spec)), Some(endpoints)) => Some(
            start_chain(
                &config,
                &bttc_genesis,
                &spec,
                endpoints,
                p2p.clone(),
                host.app(),
            )
            .await?,
        ),
        _ => None,
    };
    let shared = Arc::new(Shared {
        db: db.clone(),
        chain: chain.as_ref().map(|c| c.shared.clone()),
        status: RwLock::new(host.status()),
        counters: p2p.counters().clone(),
        peers: RwLock::new(0),
        submits: control_tx.clone(),
    });
    let (_, rpc) = bttc_net::rpc::delivery::start_delivery_http(
        shared.clone(),
        config.http,
        RpcLimits::default(),
    )
    .await
    .map_err(|source| NodeError::Listen {
        addr: config.http,
        source,
    })?;
    let side_results = control_tx.clone();
    let facts = FactsChecker::new(config.datadir.join("side-facts"));
    let checker: Arc<dyn bttc_engine::env::SideChecker> = match &chain {
        Some(c) => Arc::new(NodeChecker {
            facts,
            bttc_head: c.shared.clone(),
        }),
        None => Arc::new(facts),
    };
    let checks = SideCheckPool::start(
        SIDE_CHECK_WORKERS,
        SIDE_CHECK_QUEUE_LEN,
        checker,
        move |result| {
            let _ = side_results.try_send(Control::SideResult(result));
        },
    );
    let role = if config.full_node_p2p.is_some() {
        "full node"
    } else {
        "validator"
    };
    tracing::info!(node = %me, role, height = host.app().height.0, p2p = %listen, rpc = %config.http, "delivery chain starting");
    let mut driver = Driver {
        host,
        db,
        p2p,
        checks,
        shared,
        validators,
        chain: chain.as_ref().map(|c| (c.inbox.clone(), c.shared.clone())),
    };
    driver.send_delivery_view();
    driver.carry_out(effects)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("delivery-driver".to_owned())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|source| NodeError::Runtime { source })?;
            rt.block_on(driver.run(inbox, control, stop_rx))
        })
        .map_err(|source| NodeError::Runtime { source })?;
    let chain_stopped = {
        let shared = chain.as_ref().map(|c| c.shared.clone());
        async move {
            match shared {
                Some(s) => {
                    while !s.stop.load(std::sync::atomic::Ordering::Acquire) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                None => std::future::pending().await,
            }
        }
    };
    let stopped = tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.wait_for(|s| *s) => {}
            _ = chain_stopped => tracing::error!("the BTTC chain stopped: stopping the node"),
        }
        let _ = stop_tx.send(true);
    });
    let result = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|_| NodeError::ThreadPanicked("delivery driver"))?
        .map_err(|_| NodeError::ThreadPanicked("delivery driver"))?;
    stopped.abort();
    rpc.stop().ok();
    let chain_result = match chain {
        Some(c) => c.stop().await,
        None => Ok(()),
    };
    result.and(chain_result)
}

/// The BTTC side of a running node: its driver thread, ingest thread and RPC servers.
struct ChainSide {
    shared: Arc<ChainShared>,
    inbox: crossbeam::channel::Sender<ChainInput>,
    node: Arc<ChainNode>,
    driver: std::thread::JoinHandle<Result<(), NodeError>>,
    ingest: std::thread::JoinHandle<()>,
    rpc: bttc_net::rpc::RpcServers,
}

impl ChainSide {
    async fn stop(self) -> Result<(), NodeError> {
        self.shared
            .stop
            .store(true, std::sync::atomic::Ordering::Release);
        self.node.stop();
        self.rpc.stop();
        let (driver, ingest) = (self.driver, self.ingest);
        let joined = tokio::task::spawn_blocking(move || (driver.join(), ingest.join()))
            .await
            .map_err(|_| NodeError::ThreadPanicked("chain driver"))?;
        joined.1.map_err(|_| NodeError::ThreadPanicked("ingest"))?;
        joined
            .0
            .map_err(|_| NodeError::ThreadPanicked("chain driver"))?
    }
}

/// Starts the BTTC chain of a node: the MDBX store (genesis written if new), the pool's
/// ingest thread, the chain driver thread and the chain's JSON-RPC.
async fn start_chain(
    config: &ValidatorConfig,
    genesis: &BorGenesis,
    spec: &ChainSpec,
    endpoints: &crate::chain::Endpoints,
    p2p: Arc<P2p>,
    delivery: &AppState,
) -> Result<ChainSide, NodeError> {
    let path = config.datadir.join("chain");
    let db = Arc::new(bttc_storage::ChainDb::open(&path, spec.name, config.sync)?);
    let store =
        BorDb::open(db.clone(), genesis, spec).map_err(|e| NodeError::BttcStore(Box::new(e)))?;
    let (inbox, chain_rx) = crossbeam::channel::bounded(crate::network::CHAIN_INBOX_LEN);
    let shared = Arc::new(ChainShared::default());
    let gossip = inbox.clone();
    let producer = ProducerConfig {
        spec: spec.clone(),
        beneficiary: Address::ZERO,
        exec: config.exec,
    };
    let node = ChainNode::open(producer, db, None, Duration::ZERO, &path)?;
    let node = Arc::new(node.for_network(
        Box::new(move |txs| {
            let _ = gossip.try_send(ChainInput::Gossip(txs));
        }),
        shared.milestone.clone(),
    ));
    let key = config.full_node_p2p.is_none().then_some(config.key);
    let mut host = ChainHost::open(spec.clone(), key, config.exec, &store);
    // The Delivery chain as stored: a restarted node answers `finalized` from its last
    // milestone at once, never from genesis.
    host.delivery
        .update(delivery.height, &delivery.spans, delivery.milestone);
    let milestone = delivery.milestone;
    if store
        .canonical(milestone.number)
        .is_some_and(|(_, hash)| hash == milestone.hash)
    {
        *shared.milestone.write() = milestone;
    }
    let rpc = bttc_net::rpc::start(
        node.clone(),
        endpoints.http,
        Some(endpoints.ws),
        endpoints.limits,
        &endpoints.access,
    )
    .await
    .map_err(|e| NodeError::from(crate::chain::ChainError::from(e)))?;
    tracing::info!(head = host.head().0, http = %rpc.http, ws = ?rpc.ws, chain_id = spec.chain_id, "BTTC chain starting");
    let ingest = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || node.run_ingest())
            .map_err(|source| NodeError::Runtime { source })?
    };
    let driver = ChainDriver {
        host,
        store,
        node: node.clone(),
        p2p,
        inbox: chain_rx,
        shared: shared.clone(),
        spec: spec.clone(),
        marked: Default::default(),
        sealed: 0,
        imported: 0,
        reorgs: 0,
    };
    let stop_flag = shared.clone();
    let driver = std::thread::Builder::new()
        .name("chain-driver".into())
        .spawn(move || {
            let result = driver.run();
            if let Err(e) = &result {
                tracing::error!("the BTTC chain driver stopped: {e}");
            }
            stop_flag
                .stop
                .store(true, std::sync::atomic::Ordering::Release);
            result
        })
        .map_err(|source| NodeError::Runtime { source })?;
    Ok(ChainSide {
        shared,
        inbox,
        node,
        driver,
        ingest,
        rpc,
    })
}

/// Runs a validator until Ctrl-C or SIGTERM (`bttc delivery`).
pub fn run(config: ValidatorConfig) -> Result<(), NodeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| NodeError::Runtime { source })?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|source| NodeError::Runtime { source })?;
        let validator = run_validator(config, stop_rx);
        tokio::pin!(validator);
        tokio::select! {
            r = &mut validator => return r,
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            _ = term.recv() => tracing::info!("terminated, shutting down"),
        }
        let _ = stop_tx.send(true);
        validator.await
    })
}

/// Who may connect: the validators of the next height and those that signed the last commit.
/// A removed validator is refused at its next handshake (its messages already are, by the
/// consensus membership check).
fn allowed_peers(host: &Host) -> BTreeSet<Address> {
    let app = host.app();
    app.validators
        .validators()
        .iter()
        .chain(app.last_validators.validators())
        .map(|v| v.address)
        .collect()
}

struct Driver {
    host: Host,
    db: Arc<DeliveryDb>,
    p2p: Arc<P2p>,
    checks: SideCheckPool,
    shared: Arc<Shared>,
    validators: Arc<RwLock<BTreeSet<Address>>>,
    /// The BTTC chain's driver: its inbox, and what it publishes (the vote for precommits).
    chain: Option<(crossbeam::channel::Sender<ChainInput>, Arc<ChainShared>)>,
}

impl Driver {
    async fn run(
        &mut self,
        mut inbox: mpsc::Receiver<transport::Inbound>,
        mut control: mpsc::Receiver<Control>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), NodeError> {
        let mut first = None;
        loop {
            // Messages that have already arrived go first (one bounded batch), then whatever
            // timer is due: neither a stream of messages nor a timer starves the other.
            let mut batch: Vec<Inbound> = Vec::new();
            let mut took_messages = false;
            if let Some(m) = first.take() {
                took_messages = true;
                self.route(m, &mut batch);
            }
            while batch.len() < BATCH_MAX {
                match inbox.try_recv() {
                    Ok(m) => {
                        took_messages = true;
                        self.route(m, &mut batch);
                    }
                    Err(_) => break,
                }
            }
            self.take_chain_vote();
            if !batch.is_empty() {
                let effects = self.host.handle_peers(now_ms(), batch);
                self.carry_out(effects)?;
            }
            let now = now_ms();
            if self.host.poll_timeout() <= now {
                let effects = self.host.handle_timeout(now);
                self.carry_out(effects)?;
                continue;
            }
            if took_messages {
                continue;
            }
            let wait = Duration::from_millis(self.host.poll_timeout() - now);
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                message = inbox.recv() => match message {
                    Some(m) => first = Some(m),
                    None => break,
                },
                request = control.recv() => {
                    let Some(request) = request else { break };
                    let mut results = Vec::new();
                    let mut next = Some(request);
                    while let Some(request) = next {
                        match request {
                            Control::Submit { kind, payload, reply } => {
                                let _ = reply.send(self.host.submit(kind, payload));
                            }
                            Control::SideResult(result) => results.push(result),
                        }
                        next = control.try_recv().ok();
                    }
                    if !results.is_empty() {
                        self.take_chain_vote();
                        let effects = self.host.handle_side_results(now_ms(), results);
                        self.carry_out(effects)?;
                    }
                }
                _ = tokio::time::sleep_until((Instant::now() + wait).into()) => {}
            }
        }
        self.p2p.close();
        tracing::info!(
            height = self.host.app().height.0,
            "delivery validator stopped"
        );
        Ok(())
    }

    /// The engine's order: the batch is durable, then the messages leave; then what the
    /// node around the host shows of it.
    fn carry_out(
        &mut self,
        effects: bttc_engine::delivery::host::Effects,
    ) -> Result<(), NodeError> {
        let mut store = &*self.db;
        let mut transport = &*self.p2p;
        let committed = effects.carry_out(&mut store, &mut transport, &mut self.checks)?;
        if !committed.is_empty() {
            self.send_delivery_view();
        }
        for c in &committed {
            tracing::debug!(height = c.height.0, hash = %c.hash, round = c.round, txs = c.txs, "committed");
        }
        if committed.iter().any(|c| c.validators_changed) {
            *self.validators.write() = allowed_peers(&self.host);
        }
        let status = self.host.status();
        // Bad signatures are the host's finding; RPC shows them with the network's refusals.
        self.shared
            .counters
            .bad_signature
            .store(status.bad_signatures, std::sync::atomic::Ordering::Relaxed);
        *self.shared.status.write() = status;
        *self.shared.peers.write() = self.p2p.connected_peers();
        Ok(())
    }
}

impl Driver {
    /// A frame for the Delivery host goes into `batch`; a BTTC chain message goes to the
    /// chain driver (dropped and counted if its queue is full, or if this node runs no chain).
    fn route(&mut self, m: transport::Inbound, batch: &mut Vec<Inbound>) {
        let transport::Inbound { from, wire, permit } = m;
        match wire {
            bttc_engine::delivery::wire::Wire::Chain(message) => {
                let sent = self.chain.as_ref().is_some_and(|(inbox, _)| {
                    inbox.try_send(ChainInput::Peer { from, message }).is_ok()
                });
                if !sent {
                    self.shared
                        .counters
                        .queue_full
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            wire => batch.push(Inbound {
                from,
                len: permit.bytes(),
                wire,
            }),
        }
    }

    /// The chain this validator reports in its next precommit.
    fn take_chain_vote(&mut self) {
        if let Some(vote) = self.chain.as_ref().and_then(|(_, s)| s.vote.lock().take()) {
            self.host.set_chain_vote(vote);
        }
    }

    /// Tells the chain driver the Delivery state after a commit: spans and milestone.
    fn send_delivery_view(&self) {
        let Some((inbox, _)) = &self.chain else {
            return;
        };
        let app = self.host.app();
        let _ = inbox.try_send(ChainInput::Delivery {
            height: app.height,
            spans: app.spans.clone(),
            milestone: app.milestone,
        });
    }
}
