//! A Delivery chain validator: drives the pure Tendermint core with the QUIC network, the MDBX
//! store and the clock. Every input is in the write-ahead log before it is handled, and every
//! vote is stored (refusing a conflicting one) before it is sent.

use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::delivery::{
    app::AppState,
    block::{
        Block, CommitVote, DeliveryTx, SideEntry, SignedProposal, TXS_PER_BLOCK_MAX, TxKind,
        verify_commit,
    },
    side_pipeline::{SideTx, SideTxChecker},
    side_tx::{SideTxResult, sign_side_tx},
    signing::{SignedVote, key_address, sign_vote, verify_votes},
    tendermint::{
        Decision, DeliveryHeight, Input, Message, Output, PROPOSALS_PER_ROUND_MAX, ROUND_MAX,
        Round, Step, Tendermint, Timeout, TimeoutConfig, Vote, VoteKind,
    },
    wal::{WalEntry, last_height_inputs},
};
use bttc_net::{
    p2p::{
        Counters,
        frame::{BLOCKS_PER_RESPONSE_MAX, FRAME_MAX, Wire},
        transport::{Inbound, P2p, P2pConfig},
    },
    rpc::delivery::DeliveryBackend,
};
use bttc_storage::delivery::{DeliveryDb, DeliveryStoreError};
use eyre::{Context, bail};
use parking_lot::{Mutex, RwLock};
use secp256k1::SecretKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, BTreeSet, HashSet, VecDeque},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::{mpsc, watch};

/// Inbound frames queued for the driver before the network drops new ones.
const INBOX_LEN: usize = 8_192;
/// Frames handled (and their signatures verified) as one batch.
const BATCH_MAX: usize = 512;
/// Messages for later heights kept until this validator gets there.
const FUTURE_MAX: usize = 4_096;
/// Distinct messages remembered per height for dropping duplicates.
const SEEN_MAX: usize = 65_536;
/// Rounds ahead of its own for which a validator keeps proposed blocks.
const PROPOSAL_ROUNDS_AHEAD_MAX: Round = 8;
/// Own transactions waiting for a proposal.
const POOL_MAX: usize = 10_000;
/// Status to peers, re-sending of own messages, catch-up retries.
const TICK: Duration = Duration::from_millis(200);
/// Largest side-facts file read by the outside check.
const FACTS_FILE_MAX: u64 = 1 << 20;

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
    /// Pause after a commit before the next height starts (Tendermint's `timeout_commit`).
    pub block_interval_ms: u64,
}

impl DeliveryGenesis {
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("reading genesis {}", path.display()))?;
        let genesis: Self = serde_json::from_str(&text)
            .wrap_err_with(|| format!("parsing genesis {}", path.display()))?;
        let unique: BTreeSet<Address> = genesis.validators.iter().map(|v| v.address).collect();
        if unique.len() != genesis.validators.len() || unique.is_empty() {
            bail!("genesis needs at least one validator and no duplicates");
        }
        Ok(genesis)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The outside check of side transactions: this validator's own view of facts, one hex
/// payload per line in `side-facts` in its data directory. Listed means Yes, otherwise No.
pub struct FactsChecker {
    path: PathBuf,
}

impl FactsChecker {
    fn facts(&self) -> BTreeSet<Vec<u8>> {
        let Ok(file) = std::fs::File::open(&self.path) else {
            return BTreeSet::new();
        };
        let mut text = String::new();
        use std::io::Read;
        if file.take(FACTS_FILE_MAX).read_to_string(&mut text).is_err() {
            return BTreeSet::new();
        }
        text.lines()
            .filter_map(|l| hex::decode(l.trim().trim_start_matches("0x")).ok())
            .collect()
    }
}

impl SideTxChecker for FactsChecker {
    fn check(&self, tx: &SideTx) -> (SideTxResult, Vec<u8>) {
        let result = if self.facts().contains(tx.payload.as_ref()) {
            SideTxResult::Yes
        } else {
            SideTxResult::No
        };
        (result, tx.payload.to_vec())
    }
}

/// What RPC reads while the driver runs.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    /// Last committed height.
    height: u64,
    /// Round of the height being decided.
    round: Round,
    step: String,
    validators: usize,
    last_hash: B256,
    app_hash: B256,
    last_commit_time_ms: u64,
    last_block_time_ms: u64,
    /// Time from entering the last committed height to its decision.
    last_height_ms: u64,
    evidence: u64,
    double_sign_refusals: u64,
}

pub struct Shared {
    chain_id: u64,
    key: SecretKey,
    me: Address,
    db: Arc<DeliveryDb>,
    status: RwLock<Status>,
    counters: RwLock<Option<Arc<Counters>>>,
    peers: AtomicU64,
    pool: Mutex<VecDeque<DeliveryTx>>,
    committed_nonce: AtomicU64,
}

impl DeliveryBackend for Shared {
    fn status(&self) -> Value {
        let status = self.status.read().clone();
        let refused = self
            .counters
            .read()
            .as_ref()
            .map(|c| c.snapshot())
            .unwrap_or_default();
        let mut value = serde_json::to_value(status).unwrap_or_default();
        value["peers"] = json!(self.peers.load(Ordering::Relaxed));
        value["validator"] = json!(self.me);
        value["network"] = json!(refused);
        value
    }

    fn block(&self, height: u64) -> Result<Option<(Block, Vec<CommitVote>)>, String> {
        self.db.block(height).map_err(|e| e.to_string())
    }

    fn value(&self, key: &[u8]) -> Result<Option<Bytes>, String> {
        Ok(self
            .db
            .value(key)
            .map_err(|e| e.to_string())?
            .map(Bytes::from))
    }

    fn submit(&self, kind: TxKind, payload: Bytes) -> Result<B256, String> {
        if payload.len() > bttc_engine::delivery::block::TX_PAYLOAD_MAX {
            return Err(format!("payload of {} bytes is too large", payload.len()));
        }
        let mut pool = self.pool.lock();
        if pool.len() >= POOL_MAX {
            return Err("transaction pool is full".to_owned());
        }
        let nonce = pool
            .back()
            .map(|t| t.nonce + 1)
            .unwrap_or(0)
            .max(self.committed_nonce.load(Ordering::Relaxed));
        let tx = DeliveryTx::signed(self.chain_id, &self.key, kind, nonce, payload);
        let hash = tx.hash();
        pool.push_back(tx);
        Ok(hash)
    }
}

pub struct DriverConfig {
    pub datadir: PathBuf,
    pub genesis: DeliveryGenesis,
    pub key: SecretKey,
    pub sync: bttc_storage::SyncMode,
}

struct Driver {
    chain_id: u64,
    key: SecretKey,
    me: Address,
    db: Arc<DeliveryDb>,
    shared: Arc<Shared>,
    p2p: P2p,
    counters: Arc<Counters>,
    validators_shared: Arc<RwLock<BTreeSet<Address>>>,
    checker: FactsChecker,
    timeouts: TimeoutConfig,
    block_interval: Duration,
    app: AppState,
    /// The commit of `app.height`, carried by the next block.
    last_commit: Vec<CommitVote>,
    tm: Tendermint,
    /// Set between a decision and the start of the next height.
    next_height_at: Option<Instant>,
    height_started: Instant,
    timers: BTreeMap<(Instant, u64), Timeout>,
    timer_seq: u64,
    /// Valid blocks proposed at the current height, by hash, with the round that brought them.
    blocks: BTreeMap<B256, (Block, Round)>,
    /// Signed precommits of the current height, by (round, validator, value): an
    /// equivocator's two precommits are both kept.
    precommits: BTreeMap<(Round, Address, Option<B256>), CommitVote>,
    /// Proposals the core asked for, answered once the inputs at hand are handled.
    requests: Vec<(DeliveryHeight, Round)>,
    /// This validator's results for the side transactions of the last committed block.
    side_results: Vec<SideEntry>,
    /// Messages already taken at this height (duplicates are dropped before the log).
    seen: HashSet<Vec<u8>>,
    /// Own messages of this height, re-sent on every tick for peers that missed them.
    own: BTreeMap<(Round, u8), Wire>,
    future: Vec<Inbound>,
    replaying: bool,
    unanswered_request: Option<(DeliveryHeight, Round)>,
    decided_without_block: Option<Decision>,
    last_catch_up: Option<Instant>,
    evidence: u64,
    double_sign_refusals: u64,
}

/// Starts a validator: its network, its RPC and its driver thread. Returns when `shutdown`
/// flips to true and the driver has stopped.
pub async fn run_validator(
    config: DriverConfig,
    http: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> eyre::Result<()> {
    let genesis = &config.genesis;
    let me = key_address(&config.key);
    let Some(mine) = genesis.validators.iter().find(|v| v.address == me) else {
        bail!("key {me} is not a validator of this genesis");
    };
    let db = Arc::new(
        DeliveryDb::open(&config.datadir.join("delivery"), config.sync)
            .wrap_err("opening the delivery database")?,
    );
    let app = match db.app_state(genesis.chain_id)? {
        Some(app) => app,
        None => AppState::genesis(
            genesis.chain_id,
            &genesis
                .validators
                .iter()
                .map(|v| v.address)
                .collect::<Vec<_>>(),
            genesis.genesis_time_ms,
        ),
    };
    let shared = Arc::new(Shared {
        chain_id: genesis.chain_id,
        key: config.key,
        me,
        db: db.clone(),
        status: RwLock::new(Status::default()),
        counters: RwLock::new(None),
        peers: AtomicU64::new(0),
        pool: Mutex::new(VecDeque::new()),
        committed_nonce: AtomicU64::new(app.nonce(&me)),
    });
    let (_, rpc_handle) = bttc_net::rpc::delivery::start_delivery_http(
        shared.clone(),
        http,
        bttc_net::rpc::RpcLimits::default(),
    )
    .await
    .wrap_err_with(|| format!("starting RPC on {http}"))?;
    let validators_shared = Arc::new(RwLock::new(
        app.validators
            .validators()
            .iter()
            .chain(app.last_validators.validators())
            .map(|v| v.address)
            .collect::<BTreeSet<_>>(),
    ));
    let (inbox_tx, inbox) = mpsc::channel(INBOX_LEN);
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
            validators: validators_shared.clone(),
        },
        inbox_tx,
    )?;
    let counters = p2p.counters().clone();
    *shared.counters.write() = Some(counters.clone());
    let last_commit = if app.height == 0 {
        Vec::new()
    } else {
        db.block(app.height)?
            .map(|(_, c)| c)
            .ok_or_else(|| eyre::eyre!("the tip block {} is missing", app.height))?
    };
    let timeouts: TimeoutConfig = genesis.timeouts.into();
    let tm = Tendermint::new(
        me,
        app.validators.clone(),
        DeliveryHeight(app.height + 1),
        timeouts,
    );
    let mut driver = Driver {
        chain_id: genesis.chain_id,
        key: config.key,
        me,
        db,
        shared: shared.clone(),
        p2p,
        counters,
        validators_shared,
        checker: FactsChecker {
            path: config.datadir.join("side-facts"),
        },
        timeouts,
        block_interval: Duration::from_millis(genesis.block_interval_ms),
        app,
        last_commit,
        tm,
        next_height_at: None,
        height_started: Instant::now(),
        timers: BTreeMap::new(),
        timer_seq: 0,
        blocks: BTreeMap::new(),
        precommits: BTreeMap::new(),
        requests: Vec::new(),
        side_results: Vec::new(),
        seen: HashSet::new(),
        own: BTreeMap::new(),
        future: Vec::new(),
        replaying: false,
        unanswered_request: None,
        decided_without_block: None,
        last_catch_up: None,
        evidence: 0,
        double_sign_refusals: 0,
    };
    tracing::info!(validator = %me, height = driver.app.height, p2p = %mine.p2p, rpc = %http, "delivery validator starting");
    let (stop_tx, stop_rx) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("delivery-driver".to_owned())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("driver runtime");
            rt.block_on(driver.run(inbox, stop_rx))
        })?;
    let _ = shutdown.wait_for(|s| *s).await;
    let _ = stop_tx.send(true);
    let result = tokio::task::spawn_blocking(move || thread.join())
        .await?
        .map_err(|_| eyre::eyre!("driver thread panicked"))?;
    rpc_handle.stop().ok();
    result
}

impl Driver {
    async fn run(
        &mut self,
        mut inbox: mpsc::Receiver<Inbound>,
        mut stop: watch::Receiver<bool>,
    ) -> eyre::Result<()> {
        if let Some((tip, _)) = self.db.block(self.app.height)? {
            self.recompute_side_results(&tip);
        }
        self.resume()?;
        let mut next_tick = Instant::now();
        loop {
            let deadline = [
                Some(next_tick),
                self.next_height_at,
                self.timers.keys().next().map(|(at, _)| *at),
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("tick");
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                first = inbox.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while batch.len() < BATCH_MAX {
                        match inbox.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                    self.on_batch(batch)?;
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    if now >= next_tick {
                        self.on_tick();
                        next_tick = now + TICK;
                    }
                    self.on_time(now)?;
                }
            }
        }
        self.p2p.close();
        tracing::info!(height = self.app.height, "delivery validator stopped");
        Ok(())
    }

    /// Replays the log of the current height, or starts it.
    fn resume(&mut self) -> eyre::Result<()> {
        let height = DeliveryHeight(self.app.height + 1);
        let tail = self.db.wal_tail()?;
        match last_height_inputs(&tail) {
            Some((h, inputs)) if h == height => {
                for c in self.db.precommits(height.0)? {
                    let v = c.vote.vote;
                    self.precommits.insert((v.round, v.validator, v.value), c);
                }
                self.replaying = true;
                let out = self.tm.start();
                self.process(out)?;
                let count = inputs.len();
                for input in inputs {
                    if let Input::Message(Message::Proposal(p)) = &input
                        && let Some(block) = self.db.pending_block(p.value)?
                    {
                        self.blocks.insert(p.value, (block, p.round));
                    }
                    if let Input::ProposeValue { value, round, .. } = &input {
                        self.unanswered_request = None;
                        if let Some(block) = self.db.pending_block(*value)? {
                            self.blocks.insert(*value, (block, *round));
                        }
                    }
                    if let Ok(out) = self.tm.handle(input) {
                        self.process(out)?;
                    }
                }
                self.replaying = false;
                tracing::info!(
                    height = h.0,
                    inputs = count,
                    round = self.tm.round(),
                    "replayed the write-ahead log"
                );
                if let Some(request) = self.unanswered_request.take() {
                    self.requests.push(request);
                }
            }
            _ => self.start_height()?,
        }
        self.answer_requests()
    }

    fn start_height(&mut self) -> eyre::Result<()> {
        let height = DeliveryHeight(self.app.height + 1);
        self.tm = Tendermint::new(self.me, self.app.validators.clone(), height, self.timeouts);
        self.blocks.clear();
        self.precommits.clear();
        self.seen.clear();
        self.own.clear();
        self.timers.clear();
        self.decided_without_block = None;
        self.next_height_at = None;
        self.height_started = Instant::now();
        self.db.append_wal(&[WalEntry::Height(height)])?;
        let out = self.tm.start();
        self.process(out)?;
        // Messages that arrived early for this height.
        let future = std::mem::take(&mut self.future);
        let (now, later): (Vec<_>, Vec<_>) = future
            .into_iter()
            .filter(|m| message_height(&m.wire).is_some_and(|h| h >= height.0))
            .partition(|m| message_height(&m.wire) == Some(height.0));
        self.future = later;
        if !now.is_empty() {
            self.take_batch(now)?;
        }
        Ok(())
    }

    fn on_tick(&mut self) {
        self.p2p.broadcast(&Wire::Status {
            height: self.app.height,
        });
        let round = self.tm.round();
        for ((r, _), wire) in &self.own {
            if *r + 1 >= round {
                self.p2p.broadcast(wire);
            }
        }
        if self.decided_without_block.is_some() {
            self.request_blocks(None);
        }
        self.shared
            .peers
            .store(self.p2p.connected_peers() as u64, Ordering::Relaxed);
        self.publish_status();
    }

    fn on_time(&mut self, now: Instant) -> eyre::Result<()> {
        if self.next_height_at.is_some_and(|at| at <= now) {
            self.start_height()?;
        }
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let timeout = entry.remove();
            if timeout.height != self.tm.height() || self.next_height_at.is_some() {
                continue;
            }
            let input = Input::Timeout(timeout);
            self.db.append_wal(&[WalEntry::Input(input.clone())])?;
            if let Ok(out) = self.tm.handle(input) {
                self.process(out)?;
            }
        }
        self.answer_requests()
    }

    fn request_blocks(&mut self, peer: Option<Address>) {
        let now = Instant::now();
        if self
            .last_catch_up
            .is_some_and(|at| now.duration_since(at) < TICK)
        {
            return;
        }
        self.last_catch_up = Some(now);
        let wire = Wire::GetBlocks {
            from: self.app.height + 1,
            count: BLOCKS_PER_RESPONSE_MAX,
        };
        match peer {
            Some(p) => self.p2p.send_to(p, &wire),
            None => self.p2p.broadcast(&wire),
        }
    }

    fn bad_signature(&self, from: Address, what: &str) {
        self.counters.bad_signature.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%from, "refused {what} with a bad signature");
    }

    fn on_batch(&mut self, batch: Vec<Inbound>) -> eyre::Result<()> {
        self.take_batch(batch)?;
        self.answer_requests()
    }

    /// Whether a vote may be stored and logged at all: the core's own bounds, checked before
    /// anything is written.
    fn vote_in_bounds(&self, vote: &Vote) -> bool {
        vote.round <= ROUND_MAX && self.tm.validators().contains(&vote.validator)
    }

    fn take_batch(&mut self, batch: Vec<Inbound>) -> eyre::Result<()> {
        let height = self.tm.height().0;
        let waiting = self.next_height_at.is_some() || self.decided_without_block.is_some();
        let mut votes: Vec<(Address, SignedVote, Option<CommitVote>, Vec<u8>)> = Vec::new();
        let mut proposals = Vec::new();
        for inbound in batch {
            let from = inbound.from;
            match inbound.wire {
                Wire::Status { height: theirs } => {
                    if theirs > self.app.height {
                        self.request_blocks(Some(from));
                    }
                }
                Wire::GetBlocks { from: start, count } => self.serve_blocks(from, start, count)?,
                Wire::Blocks(blocks) => self.on_blocks(from, blocks)?,
                ref wire => {
                    let h = message_height(wire).expect("consensus message");
                    let current = self.app.height + 1;
                    if h < current {
                        continue;
                    }
                    if h > current || waiting {
                        // A peer two heights ahead has committed blocks this node lacks.
                        if h > current + 1 {
                            self.request_blocks(Some(from));
                        }
                        // Held with its byte permit: the inbound byte bound covers it.
                        if h <= current + 1 && self.future.len() < FUTURE_MAX {
                            self.future.push(inbound);
                        }
                        continue;
                    }
                    let key = wire.encode();
                    if self.seen.contains(&key) {
                        continue;
                    }
                    match inbound.wire {
                        Wire::Proposal { proposal, block } => {
                            proposals.push((from, proposal, block, key))
                        }
                        Wire::Prevote(v) if self.vote_in_bounds(&v.vote) => {
                            votes.push((from, v, None, key))
                        }
                        Wire::Precommit(c) if self.vote_in_bounds(&c.vote.vote) => {
                            votes.push((from, c.vote, Some(*c), key))
                        }
                        _ => tracing::debug!(%from, "refused a vote beyond the bounds"),
                    }
                }
            }
        }

        let mut inputs = Vec::new();
        let mut precommits = Vec::new();
        // Votes that arrived together are verified as one batch.
        let signed: Vec<SignedVote> = votes.iter().map(|(_, v, _, _)| *v).collect();
        for ((from, vote, commit, key), ok) in
            votes.into_iter().zip(verify_votes(self.chain_id, &signed))
        {
            let kind_ok = match &commit {
                Some(c) => {
                    vote.vote.kind == VoteKind::Precommit && c.side_signature_ok(self.chain_id)
                }
                None => vote.vote.kind == VoteKind::Prevote,
            };
            if ok.is_err() || !kind_ok {
                self.bad_signature(from, "a vote");
                continue;
            }
            self.remember(key);
            if let Some(c) = commit {
                precommits.push(c);
            }
            inputs.push(Input::Message(Message::Vote(vote.vote)));
        }
        for (from, proposal, block, key) in proposals {
            if !proposal.verify(self.chain_id) {
                self.bad_signature(from, "a proposal");
                continue;
            }
            let p = proposal.proposal;
            if p.proposer != self.tm.validators().proposer_for_round(p.round) {
                tracing::warn!(%from, round = p.round, "refused a proposal from the wrong proposer");
                continue;
            }
            if !self.blocks.contains_key(&p.value) {
                // A new block: only for rounds near this one, and at most as many per round
                // as the core keeps proposals.
                let in_round = self.blocks.values().filter(|b| b.1 == p.round).count();
                if p.round > self.tm.round() + PROPOSAL_ROUNDS_AHEAD_MAX
                    || in_round >= PROPOSALS_PER_ROUND_MAX
                {
                    tracing::warn!(%from, round = p.round, "refused a proposal beyond the bounds");
                    continue;
                }
                if block.hash() != p.value || block.header.proposer != p.proposer {
                    tracing::warn!(%from, "refused a proposal whose block does not match it");
                    continue;
                }
                if let Err(e) = self.app.check_block(&block, Some(now_ms())) {
                    tracing::warn!(%from, error = %e, "refused an invalid proposed block");
                    continue;
                }
                self.db.put_pending_block(&block)?;
                self.blocks.insert(p.value, (*block, p.round));
            }
            self.remember(key);
            inputs.push(Input::Message(Message::Proposal(p)));
        }
        if inputs.is_empty() {
            return Ok(());
        }
        self.db.record_precommits(&precommits)?;
        for c in precommits {
            let v = c.vote.vote;
            self.precommits
                .entry((v.round, v.validator, v.value))
                .or_insert(c);
        }
        let log: Vec<WalEntry> = inputs.iter().cloned().map(WalEntry::Input).collect();
        self.db.append_wal(&log)?;
        // Proposing waits until the whole batch is handled (`answer_requests`), so that the
        // log's order is the handling order.
        for input in inputs {
            if self.tm.height().0 != height || self.next_height_at.is_some() {
                break;
            }
            match self.tm.handle(input) {
                Ok(out) => self.process(out)?,
                Err(e) => tracing::debug!(error = %e, "consensus refused a message"),
            }
        }
        Ok(())
    }

    fn remember(&mut self, key: Vec<u8>) {
        if self.seen.len() >= SEEN_MAX {
            // Only an optimization (a duplicate is not logged twice): a flood must not grow it.
            self.seen.clear();
        }
        self.seen.insert(key);
    }

    /// Proposes for the requests the core made while handling the last inputs, if this
    /// validator is still at that height and round.
    fn answer_requests(&mut self) -> eyre::Result<()> {
        while let Some((height, round)) = self.requests.pop() {
            if height == self.tm.height()
                && round == self.tm.round()
                && self.next_height_at.is_none()
            {
                self.propose(height, round)?;
            }
        }
        Ok(())
    }

    fn serve_blocks(&mut self, to: Address, start: u64, count: u32) -> eyre::Result<()> {
        let mut blocks = Vec::new();
        let mut bytes = 0;
        for h in start..start.saturating_add(u64::from(count.min(BLOCKS_PER_RESPONSE_MAX))) {
            let Some((block, commit)) = self.db.block(h)? else {
                break;
            };
            let mut commit_bytes = Vec::new();
            bttc_engine::delivery::block::encode_commit(&commit, &mut commit_bytes);
            bytes += block.encode().len() + commit_bytes.len() + 8;
            if bytes > FRAME_MAX / 2 && !blocks.is_empty() {
                break;
            }
            blocks.push((block, commit));
        }
        if !blocks.is_empty() {
            self.p2p.send_to(to, &Wire::Blocks(blocks));
        }
        Ok(())
    }

    /// Catch-up: commits blocks proven by their commits, in order.
    fn on_blocks(
        &mut self,
        from: Address,
        blocks: Vec<(Block, Vec<CommitVote>)>,
    ) -> eyre::Result<()> {
        let mut advanced = false;
        for (block, commit) in blocks {
            if block.header.height != self.app.height + 1 {
                continue;
            }
            if let Err(e) = self.app.check_block(&block, None) {
                tracing::warn!(%from, error = %e, "refused a catch-up block");
                break;
            }
            if let Err(e) = verify_commit(
                self.chain_id,
                &self.app.validators,
                block.header.height,
                block.hash(),
                &commit,
            ) {
                self.bad_signature(from, &format!("a catch-up commit ({e})"));
                break;
            }
            self.commit(block, commit)?;
            advanced = true;
        }
        if advanced {
            tracing::info!(height = self.app.height, %from, "caught up from a peer");
            self.start_height()?;
        }
        Ok(())
    }

    fn process(&mut self, outputs: Vec<Output>) -> eyre::Result<()> {
        for output in outputs {
            match output {
                Output::Broadcast(Message::Proposal(p)) => {
                    let Some((block, _)) = self.blocks.get(&p.value).cloned() else {
                        tracing::warn!(value = %p.value, "no block for own proposal");
                        continue;
                    };
                    let wire = Wire::Proposal {
                        proposal: SignedProposal::new(self.chain_id, &self.key, p),
                        block: Box::new(block),
                    };
                    self.p2p.broadcast(&wire);
                    self.own.insert((p.round, 0), wire);
                }
                Output::Broadcast(Message::Vote(v)) => {
                    // Checked before signing: a conflicting vote is never even signed.
                    let signed = match self.db.signed_vote_at(&v)? {
                        Some(stored) if stored.vote == v => stored,
                        Some(stored) => {
                            self.double_sign_refusals += 1;
                            tracing::error!(?stored, conflicting = ?v, "refused to sign a conflicting vote");
                            continue;
                        }
                        None => {
                            let signed = sign_vote(self.chain_id, &self.key, v);
                            match self.db.record_signed_vote(&signed) {
                                Ok(()) => signed,
                                Err(DeliveryStoreError::DoubleSign { .. }) => {
                                    self.double_sign_refusals += 1;
                                    continue;
                                }
                                Err(e) => return Err(e.into()),
                            }
                        }
                    };
                    let (wire, tag) = match v.kind {
                        VoteKind::Prevote => (Wire::Prevote(signed), 1),
                        VoteKind::Precommit => {
                            // A replayed precommit goes out with the side results it first
                            // carried (the outside view may have changed since).
                            let key = (v.round, self.me, v.value);
                            let c = match self.precommits.get(&key) {
                                Some(c) => c.clone(),
                                None => {
                                    let c = CommitVote::new(
                                        self.chain_id,
                                        &self.key,
                                        signed,
                                        self.side_results.clone(),
                                    );
                                    self.db.record_precommits(std::slice::from_ref(&c))?;
                                    self.precommits.insert(key, c.clone());
                                    c
                                }
                            };
                            (Wire::Precommit(Box::new(c)), 2)
                        }
                    };
                    self.p2p.broadcast(&wire);
                    self.own.insert((v.round, tag), wire);
                }
                Output::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => {
                    self.timer_seq += 1;
                    self.timers.insert(
                        (
                            Instant::now() + Duration::from_millis(duration_ms),
                            self.timer_seq,
                        ),
                        timeout,
                    );
                }
                Output::RequestValue { height, round } => {
                    if self.replaying {
                        self.unanswered_request = Some((height, round));
                    } else {
                        self.requests.push((height, round));
                    }
                }
                Output::Decide(decision) => self.on_decide(decision)?,
                Output::Evidence { first, second } => {
                    self.evidence += 1;
                    tracing::warn!(?first, ?second, "equivocation evidence");
                }
            }
        }
        Ok(())
    }

    fn propose(&mut self, height: DeliveryHeight, round: Round) -> eyre::Result<()> {
        let candidates: Vec<DeliveryTx> = self.shared.pool.lock().iter().cloned().collect();
        let txs = self.app.select_txs(&candidates, TXS_PER_BLOCK_MAX);
        let block = Block::new(
            self.app.draft(self.me, now_ms()),
            txs,
            self.last_commit.clone(),
        );
        let value = block.hash();
        self.db.put_pending_block(&block)?;
        self.blocks.insert(value, (block, round));
        let input = Input::ProposeValue {
            height,
            round,
            value,
        };
        self.db.append_wal(&[WalEntry::Input(input.clone())])?;
        if let Ok(out) = self.tm.handle(input) {
            self.process(out)?;
        }
        Ok(())
    }

    fn on_decide(&mut self, decision: Decision) -> eyre::Result<()> {
        let block = match self.blocks.get(&decision.value) {
            Some((b, _)) => b.clone(),
            None => match self.db.pending_block(decision.value)? {
                Some(b) => b,
                None => {
                    tracing::warn!(
                        height = decision.height.0,
                        "decided a block this node has not seen; fetching it"
                    );
                    self.decided_without_block = Some(decision);
                    self.request_blocks(None);
                    return Ok(());
                }
            },
        };
        let mut commit: Vec<CommitVote> = decision
            .precommits
            .iter()
            .filter(|v| v.round == decision.round && v.value == Some(decision.value))
            .filter_map(|v| {
                self.precommits
                    .get(&(v.round, v.validator, v.value))
                    .cloned()
            })
            .collect();
        // Kept sorted by signer so that a third party checks them in one pass.
        commit.sort_by_key(|c| c.vote.vote.validator);
        commit.dedup_by_key(|c| c.vote.vote.validator);
        if let Err(e) = verify_commit(
            self.chain_id,
            &self.app.validators,
            decision.height.0,
            decision.value,
            &commit,
        ) {
            // Not expected (every counted precommit was verified and stored); fetch the
            // block with a commit from a peer rather than stop.
            tracing::error!(height = decision.height.0, error = %e, "assembled commit does not verify; fetching the block from peers");
            self.decided_without_block = Some(decision);
            self.request_blocks(None);
            return Ok(());
        }
        self.commit(block, commit)?;
        self.next_height_at = Some(Instant::now() + self.block_interval);
        Ok(())
    }

    /// Applies and stores a decided block, then prepares this validator's side results.
    fn commit(&mut self, block: Block, commit: Vec<CommitVote>) -> eyre::Result<()> {
        let latency = self.height_started.elapsed();
        let changes = self.app.apply(&block);
        self.db.commit_block(&block, &commit, &self.app, &changes)?;
        // Who may connect: the validators of the next height and those that signed the last
        // commit; a removed validator is refused at its next handshake (its messages already
        // are, by the consensus membership check).
        *self.validators_shared.write() = self
            .app
            .validators
            .validators()
            .iter()
            .chain(self.app.last_validators.validators())
            .map(|v| v.address)
            .collect();
        if changes.validators_changed {
            tracing::info!(
                validators = self.app.validators.len(),
                "validator set changed"
            );
        }
        for (tx_hash, result) in &changes.side_outcomes {
            tracing::info!(%tx_hash, ?result, "side transaction decided");
        }
        self.last_commit = commit;
        self.recompute_side_results(&block);
        let nonce = self.app.nonce(&self.me);
        self.shared.committed_nonce.store(nonce, Ordering::Relaxed);
        self.shared.pool.lock().retain(|t| t.nonce >= nonce);
        {
            let mut s = self.shared.status.write();
            s.last_commit_time_ms = now_ms();
            s.last_height_ms = latency.as_millis() as u64;
        }
        self.decided_without_block = None;
        tracing::debug!(height = self.app.height, hash = %self.app.block_hash, ms = latency.as_millis() as u64, "committed");
        self.publish_status();
        Ok(())
    }

    /// Runs the outside check on the side transactions of the last committed block; the
    /// results ride on this validator's precommits at the next height.
    fn recompute_side_results(&mut self, block: &Block) {
        self.side_results = block
            .side_txs()
            .map(|tx| {
                let side = SideTx {
                    payload: tx.payload.clone(),
                };
                let (result, data) = self.checker.check(&side);
                SideEntry {
                    tx_hash: side.hash(),
                    result,
                    signature: sign_side_tx(&self.key, result, &data),
                }
            })
            .collect();
    }

    fn publish_status(&self) {
        let mut s = self.shared.status.write();
        s.height = self.app.height;
        s.round = self.tm.round();
        s.step = match (self.next_height_at.is_some(), self.tm.step()) {
            (true, _) => "commit",
            (false, Step::Propose) => "propose",
            (false, Step::Prevote) => "prevote",
            (false, Step::Precommit) => "precommit",
        }
        .to_owned();
        s.validators = self.app.validators.len();
        s.last_hash = self.app.block_hash;
        s.app_hash = self.app.app_hash;
        s.last_block_time_ms = self.app.time_ms;
        s.evidence = self.evidence;
        s.double_sign_refusals = self.double_sign_refusals;
    }
}

/// The height a consensus message is for.
fn message_height(wire: &Wire) -> Option<u64> {
    match wire {
        Wire::Proposal { proposal, .. } => Some(proposal.proposal.height.0),
        Wire::Prevote(v) => Some(v.vote.height.0),
        Wire::Precommit(c) => Some(c.vote.vote.height.0),
        _ => None,
    }
}
