//! The Delivery validator's driver: it moves bytes and time between the outside world (QUIC
//! peers, the MDBX store, the clock, the side-check workers, JSON-RPC) and the engine's
//! validator host, and carries out the host's effects with the engine's `carry_out`. No
//! protocol rule lives here.

use crate::{
    NodeError, SystemClock,
    side_checks::{FactsChecker, SideCheckPool},
};
use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::env::Clock;
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
        AppState::genesis(self.chain_id, &members, self.genesis_time_ms)
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
}

/// Runs a validator (its network, its RPC, its side-check workers and its driver thread)
/// until `shutdown` flips to true or the driver fails.
pub async fn run_validator(
    config: ValidatorConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), NodeError> {
    let genesis = &config.genesis;
    let me = key_address(&config.key);
    let Some(mine) = genesis.validators.iter().find(|v| v.address == me) else {
        return Err(NodeError::NotAValidator(me));
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
    let p2p = P2p::start(
        P2pConfig {
            chain_id: genesis.chain_id,
            key: config.key,
            listen: mine.p2p,
            peers: genesis
                .validators
                .iter()
                .filter(|v| v.address != me)
                .map(|v| (v.address, v.p2p))
                .collect(),
            validators: validators.clone(),
        },
        inbox_tx,
    )?;
    let shared = Arc::new(Shared {
        db: db.clone(),
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
    let checks = SideCheckPool::start(
        SIDE_CHECK_WORKERS,
        SIDE_CHECK_QUEUE_LEN,
        Arc::new(FactsChecker::new(config.datadir.join("side-facts"))),
        move |result| {
            let _ = side_results.try_send(Control::SideResult(result));
        },
    );
    tracing::info!(validator = %me, height = host.app().height.0, p2p = %mine.p2p, rpc = %config.http, "delivery validator starting");
    let mut driver = Driver {
        host,
        db,
        p2p,
        checks,
        shared,
        validators,
    };
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
    let stopped = tokio::spawn(async move {
        let _ = shutdown.wait_for(|s| *s).await;
        let _ = stop_tx.send(true);
    });
    let result = tokio::task::spawn_blocking(move || thread.join())
        .await
        .map_err(|_| NodeError::ThreadPanicked("delivery driver"))?
        .map_err(|_| NodeError::ThreadPanicked("delivery driver"))?;
    stopped.abort();
    rpc.stop().ok();
    result
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
    p2p: P2p,
    checks: SideCheckPool,
    shared: Arc<Shared>,
    validators: Arc<RwLock<BTreeSet<Address>>>,
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
            let mut batch: Vec<Inbound> = first.take().into_iter().collect();
            while batch.len() < BATCH_MAX {
                match inbox.try_recv() {
                    Ok(m) => batch.push(inbound(m)),
                    Err(_) => break,
                }
            }
            let took_messages = !batch.is_empty();
            if took_messages {
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
                    Some(m) => first = Some(inbound(m)),
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
        let mut transport = &self.p2p;
        let committed = effects.carry_out(&mut store, &mut transport, &mut self.checks)?;
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

fn inbound(m: transport::Inbound) -> Inbound {
    Inbound {
        from: m.from,
        len: m.permit.bytes(),
        wire: m.wire,
    }
}
