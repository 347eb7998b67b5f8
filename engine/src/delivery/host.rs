//! The Delivery side of a validator as one sans-I/O state machine (quinn-proto style): a driver
//! hands it inputs with the time (`handle_*(now_ms, ..)`) and carries out the [`Effects`] it
//! returns, in the order [`Effects::carry_out`] fixes: the step's persist batch is durable
//! before any message leaves. Message intake (bounds, duplicates, batched signature checks),
//! the future-height buffer, proposals, the double-sign guard, the write-ahead log and its
//! replay, commit assembly, catch-up and side checks all live here, each checked once; the
//! driver only moves bytes and time, and a seeded simulation drives this same code.

use super::{
    app::{AppState, Changes},
    block::{
        Block, CommitVote, DeliveryTx, SideEntry, SignedProposal, TX_PAYLOAD_MAX,
        TXS_PER_BLOCK_MAX, TxKind, verify_commit,
    },
    milestone::{CHAIN_VOTE_HASHES_MAX, ChainVote},
    side_tx::{SideTx, SideTxResult, sign_side_tx},
    signing::{SignedVote, key_address, sign_vote, verify_votes},
    tendermint::{
        Decision, DeliveryHeight, Input, Message, Output, PROPOSALS_PER_ROUND_MAX, Round, Step,
        Tendermint, Timeout, TimeoutConfig, VALUES_PER_VOTER_MAX, Vote, VoteKind,
    },
    wal::{WalEntry, last_height_inputs},
    wire::{BLOCKS_PER_RESPONSE_MAX, FRAME_MAX, Wire},
};
use crate::env::{DeliveryStore, SideChecks, Transport};
use crate::planted::{Bug, planted};
use alloy_primitives::{Address, B256, Bytes, keccak256};
use secp256k1::SecretKey;
use std::collections::{BTreeMap, HashSet, VecDeque};

/// Bytes of messages for later heights held until this validator gets there.
pub const FUTURE_BYTES_MAX: usize = 64 << 20;
/// Messages for later heights held (whatever their size).
pub const FUTURE_LEN_MAX: usize = 4_096;
/// Distinct messages remembered per height for dropping duplicates.
pub const SEEN_LEN_MAX: usize = 65_536;
/// Rounds ahead of its own for which a validator keeps proposed blocks.
pub const PROPOSAL_ROUNDS_AHEAD_MAX: Round = 8;
/// Own transactions waiting for a proposal.
pub const POOL_LEN_MAX: usize = 10_000;
/// Heights of the signed-vote record kept behind the current one.
pub const SIGNED_RECORD_HEIGHTS_KEPT: u64 = 1_000;

/// How a validator runs.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub chain_id: u64,
    pub key: SecretKey,
    pub timeouts: TimeoutConfig,
    /// Pause after a commit before the next height (Tendermint's `timeout_commit`).
    pub block_interval_ms: u64,
    /// Period of the status sent to peers, of re-sending own messages and of catch-up retries.
    pub tick_ms: u64,
    /// Inputs logged for one height. Beyond it inputs are handled but not logged: a restart
    /// replays what was logged, and the signed-vote record brings it up to what it signed.
    pub wal_entries_per_height_max: usize,
}

impl HostConfig {
    pub fn new(chain_id: u64, key: SecretKey, timeouts: TimeoutConfig) -> Self {
        Self {
            chain_id,
            key,
            timeouts,
            block_interval_ms: 1_000,
            tick_ms: 200,
            wal_entries_per_height_max: 100_000,
        }
    }
}

/// Which of its own messages a validator signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SignedKind {
    Proposal = 0,
    Prevote = 1,
    Precommit = 2,
}

/// A message this validator signed: one entry of its signed-vote record, which is checked
/// before anything is signed so that nothing conflicting ever is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedMessage {
    Proposal(SignedProposal),
    Prevote(SignedVote),
    /// A precommit with the side results it carried.
    Precommit(CommitVote),
}

impl SignedMessage {
    pub fn height(&self) -> DeliveryHeight {
        self.message().height()
    }

    pub fn round(&self) -> Round {
        self.message().round()
    }

    pub fn kind(&self) -> SignedKind {
        match self {
            Self::Proposal(_) => SignedKind::Proposal,
            Self::Prevote(_) => SignedKind::Prevote,
            Self::Precommit(_) => SignedKind::Precommit,
        }
    }

    /// The consensus message it signs.
    pub fn message(&self) -> Message {
        match self {
            Self::Proposal(p) => Message::Proposal(p.proposal),
            Self::Prevote(v) => Message::Vote(v.vote),
            Self::Precommit(c) => Message::Vote(c.vote.vote),
        }
    }
}

impl Message {
    pub fn height(&self) -> DeliveryHeight {
        match self {
            Message::Proposal(p) => p.height,
            Message::Vote(v) => v.height,
        }
    }

    pub fn round(&self) -> Round {
        match self {
            Message::Proposal(p) => p.round,
            Message::Vote(v) => v.round,
        }
    }

    /// The value it names (`None`: a vote for nil).
    pub fn value(&self) -> Option<B256> {
        match self {
            Message::Proposal(p) => Some(p.value),
            Message::Vote(v) => v.value,
        }
    }

    fn signed_kind(&self) -> SignedKind {
        match self {
            Message::Proposal(_) => SignedKind::Proposal,
            Message::Vote(v) if v.kind == VoteKind::Prevote => SignedKind::Prevote,
            Message::Vote(_) => SignedKind::Precommit,
        }
    }
}

/// A committed block as the store keeps it, with the application state after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    pub block: Block,
    pub commit: Vec<CommitVote>,
    /// The state after the block, without the key-value entries and nonces (in `changes`).
    pub state: AppState,
    pub changes: Changes,
}

/// One write of a persist batch; a store applies them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistOp {
    /// A decided block, its commit and the application state after it.
    Commit(Box<CommitRecord>),
    /// A new height begins: the log restarts as this height's `Height` record alone, and the
    /// proposed blocks and received precommits of earlier heights are dropped, as are
    /// signed-vote records more than [`SIGNED_RECORD_HEIGHTS_KEPT`] heights old.
    BeginHeight(DeliveryHeight),
    Wal(WalEntry),
    Signed(SignedMessage),
    /// A received precommit with its side results (the first copy of each stays).
    Precommit(CommitVote),
    /// A block proposed at the current height, kept so a restart can re-propose or commit it.
    Pending(Block),
}

/// Everything one handling step writes, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistBatch {
    pub ops: Vec<PersistOp>,
}

impl PersistBatch {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// What a store returns to a restarting validator.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The state after the last committed block (`None` before the first).
    pub app: Option<AppState>,
    /// The last committed block and the commit that decided it.
    pub tip: Option<(Block, Vec<CommitVote>)>,
    /// The log from its last `Height` record on.
    pub wal: Vec<WalEntry>,
    /// Own signed messages at the height after the tip.
    pub signed: Vec<SignedMessage>,
    /// Received precommits at the height after the tip.
    pub precommits: Vec<CommitVote>,
    /// Blocks proposed at the height after the tip.
    pub pending: Vec<Block>,
}

/// A side check the driver runs off the consensus path; its result comes back through
/// [`Host::handle_side_results`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideCheck {
    /// The committed block whose side transaction this is.
    pub height: DeliveryHeight,
    pub tx_hash: B256,
    pub payload: Bytes,
}

/// A side check's verdict and the data it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SideCheckResult {
    pub height: DeliveryHeight,
    pub tx_hash: B256,
    pub result: SideTxResult,
    pub data: Vec<u8>,
}

/// A message from a peer, decoded, with the length it had on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub from: Address,
    pub wire: Wire,
    pub len: usize,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Broadcast(Wire),
    To(Address, Wire),
}

/// What a committed block did, for logs and for the node around the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub height: DeliveryHeight,
    pub hash: B256,
    pub round: Round,
    pub time_ms: u64,
    pub txs: usize,
    pub side_outcomes: Vec<(B256, SideTxResult)>,
    pub validators_changed: bool,
    /// Taken from a peer's committed blocks rather than decided here.
    pub caught_up: bool,
}

/// What one handling step asks of the driver.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// Written before anything else is done.
    pub persist: PersistBatch,
    pub sends: Vec<Outgoing>,
    /// Committed blocks to read from the store and send: (to, first height, count).
    pub serve: Vec<(Address, DeliveryHeight, u32)>,
    pub side_checks: Vec<SideCheck>,
    pub committed: Vec<Committed>,
    /// Equivocations seen: two different votes of one validator at one height, round, kind.
    pub evidence: Vec<(Vote, Vote)>,
}

impl Effects {
    /// Carries out a step in the one order that keeps a validator safe across crashes: the
    /// persist batch is durable before any message leaves (a crash before the write loses the
    /// step and sends nothing; replaying the log then takes the validator to the state before
    /// the step). Then the sends, the blocks to serve, and the side checks. Returns the
    /// committed blocks. A store error is fatal for the validator: it must stop.
    pub fn carry_out<S: DeliveryStore, T: Transport, C: SideChecks>(
        self,
        store: &mut S,
        transport: &mut T,
        checks: &mut C,
    ) -> Result<Vec<Committed>, S::Error> {
        if !self.persist.is_empty() {
            store.write(&self.persist)?;
        }
        for outgoing in &self.sends {
            match outgoing {
                Outgoing::Broadcast(wire) => transport.broadcast(wire),
                Outgoing::To(peer, wire) => transport.send_to(*peer, wire),
            }
        }
        for (to, from, count) in self.serve {
            if let Some(blocks) = serve_blocks(store, from, count)? {
                transport.send_to(to, &Wire::Blocks(blocks));
            }
        }
        for check in self.side_checks {
            checks.submit(check);
        }
        Ok(self.committed)
    }
}

/// How many votes of `vote`'s validator, round and kind a map keeps (an honest validator has
/// one; an equivocator's second counts, as consensus keeps it; no more are kept).
fn kept_of<V>(votes: &BTreeMap<(Round, Address, Option<B256>), V>, vote: &Vote) -> usize {
    votes
        .range(
            (vote.round, vote.validator, None)
                ..=(vote.round, vote.validator, Some(B256::repeat_byte(0xff))),
        )
        .count()
}

/// A committed block with the commit that decided it.
pub type CommittedBlock = (Block, Vec<CommitVote>);

/// Committed blocks from `from` on, as many as one answer may carry (by count and by half a
/// frame of bytes); `None` when the store has none of them.
fn serve_blocks<S: DeliveryStore>(
    store: &S,
    from: DeliveryHeight,
    count: u32,
) -> Result<Option<Vec<CommittedBlock>>, S::Error> {
    let mut blocks = Vec::new();
    let mut bytes = 0;
    for h in from.0
        ..from
            .0
            .saturating_add(u64::from(count.min(BLOCKS_PER_RESPONSE_MAX)))
    {
        let Some((block, commit)) = store.block(DeliveryHeight(h))? else {
            break;
        };
        let mut commit_bytes = Vec::new();
        super::block::encode_commit(&commit, &mut commit_bytes);
        bytes += block.encode().len() + commit_bytes.len() + 8;
        if bytes > FRAME_MAX / 2 && !blocks.is_empty() {
            break;
        }
        blocks.push((block, commit));
    }
    Ok((!blocks.is_empty()).then_some(blocks))
}

/// Why an own transaction was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitTxError {
    #[error("payload of {len} bytes is over the {TX_PAYLOAD_MAX}-byte limit")]
    TooLarge { len: usize },
    #[error("the transaction pool is full ({POOL_LEN_MAX} waiting)")]
    PoolFull,
    #[error("due messages are the proposer's to include; they cannot be submitted")]
    Due,
}

/// What RPC shows of a validator.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostStatus {
    /// Last committed height.
    pub height: DeliveryHeight,
    /// Round of the height being decided.
    pub round: Round,
    pub step: &'static str,
    pub validators: usize,
    pub validator: Address,
    pub last_hash: B256,
    pub app_hash: B256,
    pub last_commit_time_ms: u64,
    pub last_block_time_ms: u64,
    /// Time from entering the last committed height to its decision.
    pub last_height_ms: u64,
    pub evidence: u64,
    pub double_sign_refusals: u64,
    /// Votes and proposals whose signature did not verify.
    pub bad_signatures: u64,
}

/// A validator's Delivery chain: consensus, application, log and record, as a state machine.
pub struct Host {
    config: HostConfig,
    me: Address,
    app: AppState,
    /// The commit of `app.height`, carried by the next block.
    last_commit: Vec<CommitVote>,
    tm: Tendermint,
    height_started_ms: u64,
    /// Set between a decision and the start of the next height.
    next_height_at_ms: Option<u64>,
    next_tick_ms: u64,
    timers: BTreeMap<(u64, u64), Timeout>,
    timer_seq: u64,
    /// Valid blocks proposed at the current height, by hash, with the round that brought them.
    blocks: BTreeMap<B256, (Block, Round)>,
    /// Signed precommits of the current height, own included, by (round, validator, value):
    /// an equivocator's two precommits are both kept.
    precommits: BTreeMap<(Round, Address, Option<B256>), CommitVote>,
    /// Signed prevotes of the current height, own included, by (round, validator, value):
    /// the quorum behind this validator's valid value is relayed to peers that may lack it.
    prevotes: BTreeMap<(Round, Address, Option<B256>), SignedVote>,
    /// What this validator signed at the current height (its signed-vote record).
    signed: BTreeMap<(Round, SignedKind), SignedMessage>,
    /// Proposals the core asked for, answered at the end of the step.
    requests: Vec<(DeliveryHeight, Round)>,
    /// This validator's results for the side transactions of the last committed block.
    side_results: Vec<SideEntry>,
    /// This validator's BTTC blocks after the last milestone, as its precommits report them.
    chain_vote: ChainVote,
    /// Identities of messages already taken at this height.
    seen: HashSet<B256>,
    /// Own messages of this height, re-sent on every tick for peers that missed them.
    own: BTreeMap<(Round, SignedKind), Wire>,
    future: VecDeque<Inbound>,
    future_bytes: usize,
    pool: VecDeque<DeliveryTx>,
    replaying: bool,
    wal_entries: usize,
    decided_without_block: Option<Decision>,
    last_catch_up_ms: Option<u64>,
    last_commit_time_ms: u64,
    last_height_ms: u64,
    evidence: u64,
    double_sign_refusals: u64,
    bad_signatures: u64,
    effects: Effects,
}

impl Host {
    /// A validator from its store: the genesis state if nothing was committed, else the stored
    /// state; the log of the current height is replayed through the consensus machine, and the
    /// signed-vote record brings it up to what it had signed. Returns the effects of the
    /// restart (re-sent own messages, side checks of the tip's side transactions).
    pub fn open(
        config: HostConfig,
        genesis: AppState,
        mut stored: Stored,
        now_ms: u64,
    ) -> (Self, Effects) {
        let me = key_address(&config.key);
        let app = stored.app.take().unwrap_or(genesis);
        let height = app.height.next();
        let last_commit = stored
            .tip
            .as_ref()
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let tm = Tendermint::new(me, app.validators.clone(), height, config.timeouts);
        let mut host = Self {
            me,
            last_commit,
            tm,
            height_started_ms: now_ms,
            next_height_at_ms: None,
            next_tick_ms: now_ms,
            timers: BTreeMap::new(),
            timer_seq: 0,
            blocks: BTreeMap::new(),
            precommits: BTreeMap::new(),
            prevotes: BTreeMap::new(),
            signed: BTreeMap::new(),
            requests: Vec::new(),
            side_results: Vec::new(),
            chain_vote: ChainVote::default(),
            seen: HashSet::new(),
            own: BTreeMap::new(),
            future: VecDeque::new(),
            future_bytes: 0,
            pool: VecDeque::new(),
            replaying: false,
            wal_entries: 0,
            decided_without_block: None,
            last_catch_up_ms: None,
            last_commit_time_ms: 0,
            last_height_ms: 0,
            evidence: 0,
            double_sign_refusals: 0,
            bad_signatures: 0,
            effects: Effects::default(),
            app,
            config,
        };
        if let Some((tip, _)) = &stored.tip {
            host.request_side_checks(tip);
        }
        if planted(Bug::ForgetSignedRecord) {
            stored.signed.clear();
        }
        host.resume(stored, now_ms);
        let effects = host.finish_step(now_ms);
        (host, effects)
    }

    pub fn address(&self) -> Address {
        self.me
    }

    /// The application state after the last committed block.
    pub fn app(&self) -> &AppState {
        &self.app
    }

    /// The commit of the last committed block.
    pub fn last_commit(&self) -> &[CommitVote] {
        &self.last_commit
    }

    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// The earliest time at which [`Host::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> u64 {
        [
            Some(self.next_tick_ms),
            self.next_height_at_ms,
            self.timers.keys().next().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_tick_ms)
    }

    pub fn status(&self) -> HostStatus {
        HostStatus {
            height: self.app.height,
            round: self.tm.round(),
            step: match (self.next_height_at_ms.is_some(), self.tm.step()) {
                (true, _) => "commit",
                (false, Step::Propose) => "propose",
                (false, Step::Prevote) => "prevote",
                (false, Step::Precommit) => "precommit",
            },
            validators: self.app.validators.len(),
            validator: self.me,
            last_hash: self.app.block_hash,
            app_hash: self.app.app_hash,
            last_commit_time_ms: self.last_commit_time_ms,
            last_block_time_ms: self.app.time_ms,
            last_height_ms: self.last_height_ms,
            evidence: self.evidence,
            double_sign_refusals: self.double_sign_refusals,
            bad_signatures: self.bad_signatures,
        }
    }

    /// The BTTC chain this validator holds: the hashes of its canonical blocks from `start`
    /// (the block after [`AppState::milestone`]) to its head. Its next precommits report it;
    /// at most [`CHAIN_VOTE_HASHES_MAX`] hashes are kept, the oldest first.
    pub fn set_chain_vote(&mut self, mut vote: ChainVote) {
        vote.hashes.truncate(CHAIN_VOTE_HASHES_MAX);
        self.chain_vote = vote;
    }

    /// The head of this validator's BTTC chain, as its chain vote reports it.
    pub fn chain_head(&self) -> Option<u64> {
        let v = &self.chain_vote;
        match v.hashes.len() {
            0 => v.start.checked_sub(1),
            n => Some(v.start + n as u64 - 1),
        }
    }

    /// Queues a transaction of this validator, signed with its key, for its next proposals.
    pub fn submit(&mut self, kind: TxKind, payload: Bytes) -> Result<B256, SubmitTxError> {
        if kind == TxKind::Due {
            return Err(SubmitTxError::Due);
        }
        if payload.len() > TX_PAYLOAD_MAX {
            return Err(SubmitTxError::TooLarge { len: payload.len() });
        }
        if self.pool.len() >= POOL_LEN_MAX {
            return Err(SubmitTxError::PoolFull);
        }
        let nonce = self
            .pool
            .back()
            .map_or(0, |t| t.nonce + 1)
            .max(self.app.nonce(&self.me));
        let tx = DeliveryTx::signed(self.config.chain_id, &self.config.key, kind, nonce, payload);
        let hash = tx.hash();
        self.pool.push_back(tx);
        Ok(hash)
    }

    /// Messages from peers, handled as one step: their signatures are checked as a batch.
    pub fn handle_peers(&mut self, now_ms: u64, batch: Vec<Inbound>) -> Effects {
        self.take(now_ms, batch);
        self.finish_step(now_ms)
    }

    /// Whatever is due at `now_ms`: the next height, consensus timeouts, the periodic tick.
    pub fn handle_timeout(&mut self, now_ms: u64) -> Effects {
        if self.next_height_at_ms.is_some_and(|at| at <= now_ms) {
            self.start_height(now_ms);
        }
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now_ms {
                break;
            }
            let timeout = entry.remove();
            if timeout.height != self.tm.height() || self.next_height_at_ms.is_some() {
                continue;
            }
            self.handle_core(now_ms, Input::Timeout(timeout));
        }
        if self.next_tick_ms <= now_ms {
            self.next_tick_ms = now_ms + self.config.tick_ms;
            self.tick(now_ms);
        }
        self.finish_step(now_ms)
    }

    /// Side-check results: signed, they ride on this validator's precommits.
    pub fn handle_side_results(&mut self, now_ms: u64, results: Vec<SideCheckResult>) -> Effects {
        for r in results {
            if r.height != self.app.height {
                continue;
            }
            if let Some(entry) = self
                .side_results
                .iter_mut()
                .find(|e| e.tx_hash == r.tx_hash)
            {
                entry.result = r.result;
                entry.signature = sign_side_tx(&self.config.key, r.result, &r.data);
            }
        }
        self.finish_step(now_ms)
    }

    /// Answers the proposals the core asked for, then hands over the step's effects.
    fn finish_step(&mut self, now_ms: u64) -> Effects {
        while let Some((height, round)) = self.requests.pop() {
            if height == self.tm.height()
                && round == self.tm.round()
                && self.next_height_at_ms.is_none()
            {
                self.propose(now_ms, height, round);
            }
        }
        std::mem::take(&mut self.effects)
    }

    /// Replays the log of the current height and restores what the record says was signed,
    /// or starts the height.
    fn resume(&mut self, stored: Stored, now_ms: u64) {
        let height = self.app.height.next();
        let inputs = match last_height_inputs(&stored.wal) {
            Some((h, inputs)) if h == height => Some(inputs),
            _ => None,
        };
        self.load_record(stored, height);
        let Some(inputs) = inputs else {
            // No log of this height (none was written, or none kept): what the record says
            // was signed still binds.
            self.begin_height(now_ms);
            return;
        };
        self.wal_entries = inputs.len();
        self.replaying = true;
        let out = self.tm.start();
        self.process(now_ms, out);
        let count = inputs.len();
        for input in inputs {
            match &input {
                // A proposal is logged with its block kept; without the block it is unusable.
                Input::Message(Message::Proposal(p)) if !self.blocks.contains_key(&p.value) => {
                    continue;
                }
                Input::ProposeValue { height, round, .. } => {
                    self.requests.retain(|r| *r != (*height, *round));
                }
                _ => {}
            }
            if let Ok(out) = self.tm.handle(input) {
                self.process(now_ms, out);
            }
        }
        self.replaying = false;
        self.restore_record(now_ms);
        tracing::info!(
            height = height.0,
            inputs = count,
            round = self.tm.round(),
            "replayed the write-ahead log"
        );
    }

    /// Brings consensus up to what the signed-vote record says this validator signed.
    fn restore_record(&mut self, now_ms: u64) {
        if self.signed.is_empty() {
            return;
        }
        let own: Vec<Message> = self.signed.values().map(SignedMessage::message).collect();
        let out = self.tm.restore_own(&own);
        self.process(now_ms, out);
    }

    /// The record, received precommits and proposed blocks of `height` from the store.
    fn load_record(&mut self, stored: Stored, height: DeliveryHeight) {
        for block in stored.pending {
            if block.header.height == height {
                self.blocks.insert(block.hash(), (block, 0));
            }
        }
        for c in stored.precommits {
            let v = c.vote.vote;
            if v.height == height {
                self.precommits.insert((v.round, v.validator, v.value), c);
            }
        }
        for s in stored.signed {
            if s.height() != height {
                continue;
            }
            if let SignedMessage::Proposal(p) = &s
                && let Some(entry) = self.blocks.get_mut(&p.proposal.value)
            {
                entry.1 = p.proposal.round;
            }
            match &s {
                SignedMessage::Precommit(c) => {
                    let v = c.vote.vote;
                    self.precommits
                        .insert((v.round, v.validator, v.value), c.clone());
                }
                SignedMessage::Prevote(v) => {
                    let key = (v.vote.round, v.vote.validator, v.vote.value);
                    self.prevotes.insert(key, *v);
                }
                SignedMessage::Proposal(_) => {}
            }
            self.signed.insert((s.round(), s.kind()), s.clone());
            // Sent again now and on every tick: the crash may have come before peers got it,
            // and peers that lack it may be waiting for it.
            self.send_own(s);
        }
    }

    /// Logs a handled input (within the per-height bound; replayed inputs are already there).
    fn log(&mut self, entry: WalEntry) {
        if self.replaying || self.wal_entries >= self.config.wal_entries_per_height_max {
            return;
        }
        self.wal_entries += 1;
        self.effects.persist.ops.push(PersistOp::Wal(entry));
    }

    /// Leaves the committed height for the next one.
    fn start_height(&mut self, now_ms: u64) {
        self.blocks.clear();
        self.precommits.clear();
        self.prevotes.clear();
        self.signed.clear();
        self.seen.clear();
        self.own.clear();
        self.begin_height(now_ms);
    }

    /// Starts consensus at the height after the tip (with whatever record is loaded), then
    /// takes the messages that arrived early for it.
    fn begin_height(&mut self, now_ms: u64) {
        let height = self.app.height.next();
        self.tm = Tendermint::new(
            self.me,
            self.app.validators.clone(),
            height,
            self.config.timeouts,
        );
        self.timers.clear();
        self.decided_without_block = None;
        self.next_height_at_ms = None;
        self.height_started_ms = now_ms;
        self.wal_entries = 0;
        self.effects
            .persist
            .ops
            .push(PersistOp::BeginHeight(height));
        let out = self.tm.start();
        self.process(now_ms, out);
        self.restore_record(now_ms);
        let mut now = Vec::new();
        let mut later = VecDeque::new();
        for m in std::mem::take(&mut self.future) {
            match m.wire.consensus_height() {
                Some(h) if h == height => {
                    self.future_bytes -= m.len;
                    now.push(m);
                }
                Some(h) if h > height => later.push_back(m),
                _ => self.future_bytes -= m.len,
            }
        }
        self.future = later;
        if !now.is_empty() {
            self.take(now_ms, now);
        }
    }

    fn tick(&mut self, now_ms: u64) {
        self.effects.sends.push(Outgoing::Broadcast(Wire::Status {
            height: self.app.height,
        }));
        let round = self.tm.round();
        for ((r, _), wire) in &self.own {
            if *r + 1 >= round {
                self.effects.sends.push(Outgoing::Broadcast(wire.clone()));
            }
        }
        // Byzantine validators may have sent their prevotes to some validators only: the
        // quorum behind this validator's valid value is relayed, so that a later proposal of
        // it (L28) is accepted by validators that did not see that quorum themselves.
        if let Some((value, valid_round)) = self.tm.valid() {
            let polka = self
                .prevotes
                .range((valid_round, Address::ZERO, None)..)
                .take_while(|((r, _, _), _)| *r == valid_round)
                .filter(|((_, _, v), _)| *v == Some(value))
                .map(|(_, vote)| Outgoing::Broadcast(Wire::Prevote(*vote)));
            self.effects.sends.extend(polka);
        }
        if self.decided_without_block.is_some() {
            self.request_blocks(now_ms, None);
        }
    }

    fn request_blocks(&mut self, now_ms: u64, peer: Option<Address>) {
        if self
            .last_catch_up_ms
            .is_some_and(|at| now_ms < at + self.config.tick_ms)
        {
            return;
        }
        self.last_catch_up_ms = Some(now_ms);
        let wire = Wire::GetBlocks {
            from: self.app.height.next(),
            count: BLOCKS_PER_RESPONSE_MAX,
        };
        self.effects.sends.push(match peer {
            Some(p) => Outgoing::To(p, wire),
            None => Outgoing::Broadcast(wire),
        });
    }

    fn bad_signature(&mut self, from: Address, what: &str) {
        self.bad_signatures += 1;
        tracing::warn!(%from, "refused {what} with a bad signature");
    }

    /// A message's identity for dropping duplicates: its signatures.
    fn identity(wire: &Wire) -> B256 {
        match wire {
            Wire::Proposal { proposal, .. } => keccak256(proposal.signature),
            Wire::Prevote(v) => keccak256(v.signature),
            Wire::Precommit(c) => keccak256([&c.vote.signature[..], &c.side_signature].concat()),
            other => keccak256(other.encode()),
        }
    }

    fn remember(&mut self, id: B256) {
        if self.seen.len() >= SEEN_LEN_MAX {
            // Only an optimization (a duplicate is not handled twice): a flood must not grow it.
            self.seen.clear();
        }
        self.seen.insert(id);
    }

    fn hold_for_later(&mut self, inbound: Inbound) {
        if self.future.len() < FUTURE_LEN_MAX && self.future_bytes + inbound.len <= FUTURE_BYTES_MAX
        {
            self.future_bytes += inbound.len;
            self.future.push_back(inbound);
        }
    }

    /// Takes a batch of peer messages: catch-up traffic is answered, messages for later
    /// heights held, duplicates and out-of-bounds messages dropped, signatures of the rest
    /// checked as one batch, and what remains handed to consensus in order.
    fn take(&mut self, now_ms: u64, batch: Vec<Inbound>) {
        let height = self.tm.height();
        let waiting = self.next_height_at_ms.is_some() || self.decided_without_block.is_some();
        let mut votes: Vec<(Address, SignedVote, Option<CommitVote>, B256)> = Vec::new();
        let mut proposals = Vec::new();
        for inbound in batch {
            let from = inbound.from;
            let Some(h) = inbound.wire.consensus_height() else {
                match inbound.wire {
                    Wire::Status { height: theirs } if theirs > self.app.height => {
                        self.request_blocks(now_ms, Some(from));
                    }
                    Wire::GetBlocks { from: start, count } => {
                        self.effects.serve.push((from, start, count));
                    }
                    Wire::Blocks(blocks) => self.take_blocks(now_ms, from, blocks),
                    _ => {}
                }
                continue;
            };
            if h < height {
                continue;
            }
            if h > height || waiting {
                // A peer two heights ahead has committed blocks this validator lacks.
                if h > height.next() {
                    self.request_blocks(now_ms, Some(from));
                } else {
                    self.hold_for_later(inbound);
                }
                continue;
            }
            let id = Self::identity(&inbound.wire);
            if self.seen.contains(&id) {
                continue;
            }
            match inbound.wire {
                Wire::Proposal { proposal, block } => {
                    if self.tm.check(&Message::Proposal(proposal.proposal)).is_ok() {
                        proposals.push((from, proposal, block, id));
                    }
                }
                Wire::Prevote(v) if v.vote.kind == VoteKind::Prevote => {
                    if self.tm.check(&Message::Vote(v.vote)).is_ok() {
                        votes.push((from, v, None, id));
                    }
                }
                Wire::Precommit(c) if c.vote.vote.kind == VoteKind::Precommit => {
                    if self.tm.check(&Message::Vote(c.vote.vote)).is_ok() {
                        votes.push((from, c.vote, Some(*c), id));
                    }
                }
                _ => self.bad_signature(from, "a vote of the wrong kind"),
            }
        }

        // Votes that arrived together are verified as one batch.
        let signed: Vec<SignedVote> = votes.iter().map(|(_, v, _, _)| *v).collect();
        let verdicts = verify_votes(self.config.chain_id, &signed);
        for ((from, vote, commit, id), verdict) in votes.into_iter().zip(verdicts) {
            if verdict.is_err()
                || commit
                    .as_ref()
                    .is_some_and(|c| !c.side_signature_ok(self.config.chain_id))
            {
                self.bad_signature(from, "a vote");
                continue;
            }
            self.remember(id);
            if self.tm.height() != height || self.next_height_at_ms.is_some() {
                continue;
            }
            let v = vote.vote;
            let key = (v.round, v.validator, v.value);
            match commit {
                None => {
                    if kept_of(&self.prevotes, &v) < VALUES_PER_VOTER_MAX {
                        self.prevotes.insert(key, vote);
                    }
                }
                // A precommit is kept before consensus sees it: the decision it may complete
                // assembles its commit from the kept ones.
                Some(c) => {
                    if !self.precommits.contains_key(&key)
                        && kept_of(&self.precommits, &v) < VALUES_PER_VOTER_MAX
                    {
                        self.effects
                            .persist
                            .ops
                            .push(PersistOp::Precommit(c.clone()));
                        self.precommits.insert(key, c);
                    }
                }
            }
            self.handle_core(now_ms, Input::Message(Message::Vote(vote.vote)));
        }
        for (from, proposal, block, id) in proposals {
            if !proposal.verify(self.config.chain_id) {
                self.bad_signature(from, "a proposal");
                continue;
            }
            self.remember(id);
            if self.tm.height() != height || self.next_height_at_ms.is_some() {
                continue;
            }
            let p = proposal.proposal;
            let fresh = !self.blocks.contains_key(&p.value);
            if fresh {
                // A new block: only for rounds near this one, and at most as many per round
                // as the core keeps proposals.
                let in_round = self.blocks.values().filter(|b| b.1 == p.round).count();
                if p.round > self.tm.round() + PROPOSAL_ROUNDS_AHEAD_MAX
                    || in_round >= PROPOSALS_PER_ROUND_MAX
                {
                    tracing::warn!(%from, round = p.round, "refused a proposal beyond the bounds");
                    continue;
                }
                // A fresh block is its proposer's own; a value re-proposed from an earlier
                // round (`valid_round`) keeps the header of whoever first proposed it, who may
                // be down now: refusing it would stall validators that missed the first copy.
                let fresh_proposer = p.valid_round.is_some() || block.header.proposer == p.proposer;
                if block.hash() != p.value || !fresh_proposer {
                    tracing::warn!(%from, "refused a proposal whose block does not match it");
                    continue;
                }
                if let Err(e) = self.app.check_block(&block, Some(now_ms)) {
                    tracing::warn!(%from, error = %e, "refused an invalid proposed block");
                    continue;
                }
                self.blocks.insert(p.value, (*block.clone(), p.round));
            }
            if self.handle_core(now_ms, Input::Message(Message::Proposal(p))) {
                if fresh {
                    self.effects.persist.ops.push(PersistOp::Pending(*block));
                }
            } else if fresh {
                self.blocks.remove(&p.value);
            }
        }
    }

    /// Hands one input to consensus, logging it first if taken; returns whether it was.
    fn handle_core(&mut self, now_ms: u64, input: Input) -> bool {
        let logged = WalEntry::Input(input.clone());
        match self.tm.handle(input) {
            Ok(out) => {
                self.log(logged);
                self.process(now_ms, out);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "consensus refused a message");
                false
            }
        }
    }

    fn process(&mut self, now_ms: u64, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Broadcast(message) => self.sign_and_send(message),
                Output::ScheduleTimeout {
                    timeout,
                    duration_ms,
                } => {
                    self.timer_seq += 1;
                    self.timers
                        .insert((now_ms + duration_ms, self.timer_seq), timeout);
                }
                // Answered at the end of the step (in a replay, unless the log answers it).
                Output::RequestValue { height, round } => self.requests.push((height, round)),
                Output::Decide(decision) => self.decide(now_ms, decision),
                Output::Evidence { first, second } => {
                    self.evidence += 1;
                    tracing::warn!(?first, ?second, "equivocation evidence");
                    self.effects.evidence.push((first, second));
                }
            }
        }
    }

    /// The double-sign guard: a message is signed only if the record holds nothing at its
    /// height, round and kind; the same message again is re-sent as first signed (a precommit
    /// with the side results it first carried); a different one is refused.
    fn sign_and_send(&mut self, message: Message) {
        if !self.app.validators.contains(&self.me) {
            // A full node follows consensus and signs nothing.
            return;
        }
        let key = (message.round(), message.signed_kind());
        if let Some(stored) = self.signed.get(&key) {
            if stored.message() != message {
                self.double_sign_refusals += 1;
                tracing::error!(?stored, conflicting = ?message, "refused to sign a conflicting message");
                return;
            }
            let stored = stored.clone();
            self.send_own(stored);
            return;
        }
        let chain_id = self.config.chain_id;
        let signed = match message {
            Message::Proposal(p) => {
                if !self.blocks.contains_key(&p.value) {
                    tracing::warn!(value = %p.value, "no block for own proposal");
                    return;
                }
                SignedMessage::Proposal(SignedProposal::new(chain_id, &self.config.key, p))
            }
            Message::Vote(v) => {
                let vote = sign_vote(chain_id, &self.config.key, v);
                match v.kind {
                    VoteKind::Prevote => {
                        self.prevotes.insert((v.round, v.validator, v.value), vote);
                        SignedMessage::Prevote(vote)
                    }
                    VoteKind::Precommit => {
                        let c = CommitVote::new(
                            chain_id,
                            &self.config.key,
                            vote,
                            self.side_results.clone(),
                            self.chain_vote.clone(),
                        );
                        self.precommits
                            .insert((v.round, v.validator, v.value), c.clone());
                        SignedMessage::Precommit(c)
                    }
                }
            }
        };
        tracing::debug!(me = %self.me, ?key, replaying = self.replaying, "signed");
        self.effects
            .persist
            .ops
            .push(PersistOp::Signed(signed.clone()));
        self.signed.insert(key, signed.clone());
        self.send_own(signed);
    }

    fn send_own(&mut self, signed: SignedMessage) {
        let kind = signed.kind();
        let round = signed.round();
        let wire = match signed {
            SignedMessage::Proposal(proposal) => {
                let Some((block, _)) = self.blocks.get(&proposal.proposal.value) else {
                    return;
                };
                Wire::Proposal {
                    proposal,
                    block: Box::new(block.clone()),
                }
            }
            SignedMessage::Prevote(v) => Wire::Prevote(v),
            SignedMessage::Precommit(c) => Wire::Precommit(Box::new(c)),
        };
        self.effects.sends.push(Outgoing::Broadcast(wire.clone()));
        self.own.insert((round, kind), wire);
    }

    fn propose(&mut self, now_ms: u64, height: DeliveryHeight, round: Round) {
        // A restart that lost its log re-proposes what its record says it proposed.
        let value = match self.signed.get(&(round, SignedKind::Proposal)) {
            Some(SignedMessage::Proposal(p)) => {
                if !self.blocks.contains_key(&p.proposal.value) {
                    return;
                }
                p.proposal.value
            }
            _ => {
                let candidates: Vec<DeliveryTx> = self.pool.iter().cloned().collect();
                let mut txs: Vec<DeliveryTx> = self
                    .app
                    .due_messages(self.chain_head())
                    .into_iter()
                    .map(|payload| {
                        DeliveryTx::signed(
                            self.config.chain_id,
                            &self.config.key,
                            TxKind::Due,
                            0,
                            payload,
                        )
                    })
                    .collect();
                let room = TXS_PER_BLOCK_MAX - txs.len();
                txs.extend(self.app.select_txs(&candidates, room));
                let block = Block::new(
                    self.app.draft(self.me, now_ms),
                    txs,
                    self.last_commit.clone(),
                );
                let value = block.hash();
                self.effects
                    .persist
                    .ops
                    .push(PersistOp::Pending(block.clone()));
                self.blocks.insert(value, (block, round));
                value
            }
        };
        self.handle_core(
            now_ms,
            Input::ProposeValue {
                height,
                round,
                value,
            },
        );
    }

    fn decide(&mut self, now_ms: u64, decision: Decision) {
        let Some((block, _)) = self.blocks.get(&decision.value).cloned() else {
            tracing::warn!(
                height = decision.height.0,
                "decided a block this validator has not seen; fetching it"
            );
            self.decided_without_block = Some(decision);
            self.request_blocks(now_ms, None);
            return;
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
            self.config.chain_id,
            &self.app.validators,
            decision.height,
            decision.value,
            &commit,
        ) {
            // Not expected (every counted precommit was verified and kept); fetch the block
            // with a commit from a peer rather than stop.
            tracing::error!(height = decision.height.0, error = %e, "assembled commit does not verify; fetching the block from peers");
            self.decided_without_block = Some(decision);
            self.request_blocks(now_ms, None);
            return;
        }
        self.commit(now_ms, block, commit, false);
        self.next_height_at_ms = Some(now_ms + self.config.block_interval_ms);
    }

    /// Applies and keeps a decided block, then asks for this validator's side checks of it.
    fn commit(&mut self, now_ms: u64, block: Block, commit: Vec<CommitVote>, caught_up: bool) {
        let changes = self.app.apply(&block);
        let round = commit.first().map_or(0, |c| c.vote.vote.round);
        if changes.validators_changed {
            tracing::info!(
                validators = self.app.validators.len(),
                "validator set changed"
            );
        }
        for (tx_hash, result) in &changes.side_outcomes {
            tracing::info!(%tx_hash, ?result, "side transaction decided");
        }
        self.effects.committed.push(Committed {
            height: block.header.height,
            hash: block.hash(),
            round,
            time_ms: block.header.time_ms,
            txs: block.txs.len(),
            side_outcomes: changes.side_outcomes.clone(),
            validators_changed: changes.validators_changed,
            caught_up,
        });
        self.request_side_checks(&block);
        self.effects
            .persist
            .ops
            .push(PersistOp::Commit(Box::new(CommitRecord {
                block,
                commit: commit.clone(),
                state: self.app.without_entries(),
                changes,
            })));
        self.last_commit = commit;
        let nonce = self.app.nonce(&self.me);
        self.pool.retain(|t| t.nonce >= nonce);
        self.last_commit_time_ms = now_ms;
        self.last_height_ms = now_ms.saturating_sub(self.height_started_ms);
        self.decided_without_block = None;
        tracing::debug!(
            height = self.app.height.0,
            hash = %self.app.block_hash,
            ms = self.last_height_ms,
            "committed"
        );
    }

    /// Asks the side checks of `block`'s side transactions; until a result comes back, this
    /// validator's precommits carry Skip for it.
    fn request_side_checks(&mut self, block: &Block) {
        self.side_results.clear();
        for tx in block.side_txs() {
            let side = SideTx {
                payload: tx.payload.clone(),
            };
            let tx_hash = side.hash();
            self.side_results.push(SideEntry {
                tx_hash,
                result: SideTxResult::Skip,
                signature: None,
            });
            self.effects.side_checks.push(SideCheck {
                height: block.header.height,
                tx_hash,
                payload: side.payload,
            });
        }
    }

    /// Catch-up: commits blocks proven by their commits, in order.
    fn take_blocks(&mut self, now_ms: u64, from: Address, blocks: Vec<(Block, Vec<CommitVote>)>) {
        let mut advanced = false;
        for (block, commit) in blocks {
            if block.header.height != self.app.height.next() {
                continue;
            }
            if let Err(e) = self.app.check_block(&block, None) {
                tracing::warn!(%from, error = %e, "refused a catch-up block");
                break;
            }
            if let Err(e) = verify_commit(
                self.config.chain_id,
                &self.app.validators,
                block.header.height,
                block.hash(),
                &commit,
            ) {
                tracing::warn!(%from, error = %e, "refused a catch-up commit");
                self.bad_signatures += 1;
                break;
            }
            self.commit(now_ms, block, commit, true);
            advanced = true;
        }
        if advanced {
            tracing::info!(height = self.app.height.0, %from, "caught up from a peer");
            self.start_height(now_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{env::DeliveryStore, testkit::SimStore};

    #[derive(Default)]
    struct Sent(Vec<Wire>);

    impl Transport for Sent {
        fn broadcast(&mut self, wire: &Wire) {
            self.0.push(wire.clone());
        }
        fn send_to(&mut self, _: Address, wire: &Wire) {
            self.0.push(wire.clone());
        }
    }

    struct NoChecks;

    impl SideChecks for NoChecks {
        fn submit(&mut self, _: SideCheck) {}
    }

    fn proposals(sent: &[Wire]) -> Vec<B256> {
        sent.iter()
            .filter_map(|w| match w {
                Wire::Proposal { proposal, .. } => Some(proposal.proposal.value),
                _ => None,
            })
            .collect()
    }

    /// The proposer of height 1 among four validators, with the genesis and its config.
    fn proposer() -> (HostConfig, AppState) {
        let keys: Vec<SecretKey> = (1..=4)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect();
        let genesis = AppState::genesis(7, &keys.iter().map(key_address).collect::<Vec<_>>(), 0);
        let first = genesis.validators.proposer();
        let key = *keys.iter().find(|k| key_address(k) == first).unwrap();
        (HostConfig::new(7, key, TimeoutConfig::default()), genesis)
    }

    /// A step's messages leave only after its batch is written: a crash before the write
    /// sends nothing. A restart from what was written re-sends the same signed proposal (its
    /// block would be built at another time, but the log or, without one, the record binds),
    /// never a new one.
    #[test]
    fn nothing_leaves_before_the_batch_is_written_and_a_restart_resends_what_was_signed() {
        let (config, genesis) = proposer();
        for wal_max in [100_000, 0] {
            let config = HostConfig {
                wal_entries_per_height_max: wal_max,
                ..config.clone()
            };
            let (_, effects) =
                Host::open(config.clone(), genesis.clone(), Stored::default(), 1_000);
            assert!(!effects.persist.is_empty());

            let mut store = SimStore::default();
            store.crash_before_next_write = true;
            let mut sent = Sent::default();
            assert!(
                effects
                    .clone()
                    .carry_out(&mut store, &mut sent, &mut NoChecks)
                    .is_err()
            );
            assert!(
                sent.0.is_empty(),
                "a step whose batch failed sent {:?}",
                sent.0
            );

            effects
                .carry_out(&mut store, &mut sent, &mut NoChecks)
                .unwrap();
            let first = proposals(&sent.0);
            assert_eq!(first.len(), 1);
            assert_eq!(store.wal_len(), 1 + usize::from(wal_max > 0));

            let (host, again) = Host::open(config, genesis.clone(), store.load().unwrap(), 9_000);
            let mut resent = Sent::default();
            again
                .carry_out(&mut store, &mut resent, &mut NoChecks)
                .unwrap();
            let values = proposals(&resent.0);
            assert!(
                !values.is_empty(),
                "the proposal is sent again (log max {wal_max})"
            );
            assert!(
                values.iter().all(|v| *v == first[0]),
                "log max {wal_max}: {values:?} vs {first:?}"
            );
            assert_eq!(host.status().double_sign_refusals, 0);
        }
    }
}
