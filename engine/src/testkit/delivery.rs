//! A simulated network of Delivery validators: real [`Host`]s with simulated stores, network,
//! side checks and clock, from one seed. Faults: message loss, duplication, delay and
//! reordering; partitions that heal; up to f < n/3 byzantine validators that equivocate, to
//! everyone or split so that honest validators see different things, and propose out of turn;
//! a network adversary that slows the links of a validator that has just decided (so that one
//! that saw a commit and one that did not move on to the next round) and delays proposals;
//! crashes at any instant (between steps, before a step's batch is written, or after it with
//! only some of its messages sent) followed by a restart from the store; and logs bounded so
//! short that a restart must lean on the signed-vote record. After a run, [`World::check`]
//! looks for disagreement, decisions their round's proposer did not propose, double signs by
//! honest validators, evidence against honest validators, and heights not decided.

use super::{Rng, SimClock, SimStore};
use super::{bttc::BttcLayer, chain::BorMemStore};
use crate::chain::bor::host::{ChainEffects, ChainHost, WireBlock};
use crate::delivery::app::span::{SpanConfig, check_span_payload};
use crate::delivery::milestone::{ChainVote, Milestone};
use crate::delivery::{
    app::AppState,
    block::{Block, CommitVote, SignedProposal, TxKind},
    host::{
        Committed, Effects, Host, HostConfig, Inbound, Outgoing, SideCheck, SideCheckResult,
        SignedKind,
    },
    side_tx::SideTxResult,
    signing::{SignedVote, key_address, sign_vote},
    tendermint::{Round, TimeoutConfig, VoteKind},
    validators::ValidatorSet,
    wire::Wire,
};
use crate::env::{DeliveryStore, SideChecks, Transport};
use crate::primitives::DeliveryHeight;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use secp256k1::SecretKey;
use std::{
    cmp::Reverse,
    collections::{BTreeMap, BTreeSet, BinaryHeap},
};

/// The Delivery chain id of simulated networks.
pub const SIM_CHAIN_ID: u64 = 0x5117;

/// How byzantine validators equivocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every message is followed by a conflicting one, to everyone.
    ToEveryone,
    /// Each honest validator gets either the message or a conflicting one: their views split.
    Split,
}

/// What a crash interrupts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MidStep {
    /// The validator stops between two steps.
    Between,
    /// The validator's next step dies before its batch is written: nothing of it happens.
    BeforeWrite,
    /// The validator's next step writes its batch, sends only its first messages, and dies.
    AfterWrite { sends_kept: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crash {
    pub node: usize,
    pub at_ms: u64,
    pub down_ms: u64,
    pub mid_step: MidStep,
}

/// A seed's world: who is faulty and how the network behaves.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub validators: usize,
    /// Heights every honest validator must commit.
    pub heights: u64,
    /// Simulated time by which they must have.
    pub deadline_ms: u64,
    pub timeouts: TimeoutConfig,
    pub block_interval_ms: u64,
    pub tick_ms: u64,
    pub loss_percent: u64,
    pub duplicate_percent: u64,
    pub delay_ms_max: u64,
    /// Validators on one side, and when the partition heals.
    pub partition: Option<(Vec<usize>, u64)>,
    pub byzantine: Vec<usize>,
    pub strategy: Strategy,
    /// Byzantine validators also propose in rounds that are not theirs.
    pub out_of_turn_proposals: bool,
    /// After an honest validator commits, its links to this share of the others are slowed by
    /// `slow_link_ms` for `slow_window_ms`.
    pub hide_decisions_percent: u64,
    pub slow_link_ms: u64,
    pub slow_window_ms: u64,
    /// Share of proposals delivered `slow_link_ms` late to each validator.
    pub late_proposals_percent: u64,
    pub crashes: Vec<Crash>,
    pub wal_entries_per_height_max: usize,
    /// Side transactions (facts) validator 0 submits at the start; validator i sees fact j
    /// when `(i + j) % 3 != 0`, after a check of up to `side_check_ms_max`.
    pub side_txs: usize,
    pub side_check_ms_max: u64,
    /// A modelled BTTC chain grows one block every this many ms; validator i sees it
    /// `bttc_lag_ms[i]` late and reports it in its precommits (byzantine ones report a fork).
    pub bttc_block_ms: u64,
    pub bttc_lag_ms: Vec<u64>,
    /// Real BTTC chains instead of the modelled one: Bor producers, block propagation,
    /// imports and fork choice on every node (and on full nodes without a key).
    pub bttc: Option<BttcScenario>,
}

/// A run with real BTTC chains.
#[derive(Debug, Clone)]
pub struct BttcScenario {
    pub params: crate::chain::bor::BorParams,
    pub full_nodes: usize,
    pub txs_per_block: usize,
    /// Producers seal until this time (ms)...
    pub produce_until_ms: u64,
    /// ...and the network settles until this one, when the heads are compared.
    pub settle_until_ms: u64,
    /// How often each node re-announces its head and refreshes its Delivery view (ms).
    pub tick_ms: u64,
}

impl Scenario {
    /// A world with network faults only.
    pub fn calm(validators: usize, seed: u64) -> Self {
        Self {
            seed,
            validators,
            heights: 5,
            deadline_ms: 600_000,
            timeouts: TimeoutConfig {
                propose_ms: 300,
                prevote_ms: 100,
                precommit_ms: 100,
                delta_ms: 50,
            },
            block_interval_ms: 20,
            tick_ms: 200,
            loss_percent: 10,
            duplicate_percent: 5,
            delay_ms_max: 80,
            partition: None,
            byzantine: Vec::new(),
            strategy: Strategy::ToEveryone,
            out_of_turn_proposals: false,
            hide_decisions_percent: 0,
            slow_link_ms: 0,
            slow_window_ms: 0,
            late_proposals_percent: 0,
            crashes: Vec::new(),
            wal_entries_per_height_max: 100_000,
            side_txs: 0,
            side_check_ms_max: 0,
            bttc_block_ms: 50,
            bttc_lag_ms: vec![0; validators],
            bttc: None,
        }
    }

    /// The fault mix of one seed: network faults always; byzantine validators (to everyone or
    /// split, with an adversarial network), a partition that heals, or crashes (between steps
    /// or mid-step, with full or very short logs), chosen by the seed.
    pub fn random(validators: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed ^ 0x5eed_5eed);
        let mut s = Self::calm(validators, seed);
        let n = validators;
        let f = (n - 1) / 3;
        s.side_txs = rng.below(3) as usize;
        s.bttc_block_ms = rng.between(20, 200);
        s.bttc_lag_ms = (0..n).map(|_| rng.below(600)).collect();
        s.side_check_ms_max = rng.between(1, 400);
        match rng.below(5) {
            0 => {}
            1 | 2 => {
                let mut nodes: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut nodes);
                s.byzantine = nodes[..f].to_vec();
                s.byzantine.sort_unstable();
                s.strategy = if rng.chance(50) {
                    Strategy::Split
                } else {
                    Strategy::ToEveryone
                };
                s.out_of_turn_proposals = rng.chance(50);
                if rng.chance(70) {
                    s.hide_decisions_percent = rng.between(30, 100);
                    s.slow_link_ms = rng.between(300, 2_000);
                    s.slow_window_ms = rng.between(300, 3_000);
                    s.late_proposals_percent = rng.below(40);
                }
            }
            3 => {
                let mut nodes: Vec<usize> = (0..n).collect();
                rng.shuffle(&mut nodes);
                let side = nodes[..n / 2].to_vec();
                s.partition = Some((side, 500 + rng.below(3_000)));
            }
            _ => {
                let crashes = 1 + rng.below(3);
                for _ in 0..crashes {
                    let at_ms = rng.below(3_000);
                    s.crashes.push(Crash {
                        node: rng.below(n as u64) as usize,
                        at_ms,
                        down_ms: 50 + rng.below(2_000),
                        mid_step: match rng.below(3) {
                            0 => MidStep::Between,
                            1 => MidStep::BeforeWrite,
                            _ => MidStep::AfterWrite {
                                sends_kept: rng.below(3) as usize,
                            },
                        },
                    });
                }
                if rng.chance(50) {
                    s.wal_entries_per_height_max = rng.below(6) as usize;
                }
                if rng.chance(30) {
                    s.hide_decisions_percent = rng.between(30, 100);
                    s.slow_link_ms = rng.between(300, 1_500);
                    s.slow_window_ms = rng.between(300, 2_000);
                    s.late_proposals_percent = rng.below(40);
                }
            }
        }
        s
    }
}

/// A property a run broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    Disagreement {
        height: DeliveryHeight,
        hashes: Vec<B256>,
    },
    /// A decided block that its round's proposer did not propose.
    NotProposed {
        node: usize,
        height: DeliveryHeight,
        round: Round,
        value: B256,
    },
    /// An honest validator signed two different messages at one height, round and kind.
    DoubleSign {
        node: usize,
        height: DeliveryHeight,
        round: Round,
        kind: SignedKind,
    },
    EvidenceAgainstHonest {
        node: usize,
    },
    NotDecided {
        node: usize,
        committed: u64,
        heights: u64,
    },
    /// An honest validator's milestone named a block off the canonical BTTC chain, or moved
    /// back.
    Milestone {
        node: usize,
        number: u64,
        previous: u64,
    },
    /// A node's BTTC chain lost a block it held as final.
    FinalReorganized {
        node: usize,
        number: u64,
    },
    /// Honest nodes judged one BTTC block differently.
    ImportDisagreement {
        hash: B256,
        why: String,
    },
    /// At the end, BTTC heads differ.
    Diverged {
        heads: Vec<(u64, B256)>,
    },
    /// The run took more steps than any healthy run does (a loop at one instant).
    Runaway {
        at_ms: u64,
    },
    /// The BTTC chain made too little progress.
    BttcStalled {
        head: u64,
        spans: u64,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disagreement { height, hashes } => {
                write!(f, "agreement violated at height {height}: {hashes:?}")
            }
            Self::NotProposed {
                node,
                height,
                round,
                value,
            } => write!(
                f,
                "validator {node} decided {value} at height {height} round {round}, which that round's proposer did not propose"
            ),
            Self::DoubleSign {
                node,
                height,
                round,
                kind,
            } => write!(
                f,
                "honest validator {node} signed two different {kind:?} messages at height {height} round {round}"
            ),
            Self::EvidenceAgainstHonest { node } => {
                write!(f, "evidence against honest validator {node}")
            }
            Self::NotDecided {
                node,
                committed,
                heights,
            } => write!(
                f,
                "validator {node} committed only {committed} of {heights} heights"
            ),
            Self::FinalReorganized { node, number } => {
                write!(f, "node {node} reorganized its final BTTC block {number}")
            }
            Self::ImportDisagreement { hash, why } => write!(
                f,
                "honest nodes disagree on BTTC block {hash}: one imported it, one refused it ({why})"
            ),
            Self::Runaway { at_ms } => write!(f, "the run looped without end at {at_ms} ms"),
            Self::Diverged { heads } => write!(f, "BTTC heads differ at the end: {heads:?}"),
            Self::BttcStalled { head, spans } => {
                write!(
                    f,
                    "the BTTC chain reached only block {head} and span {spans}"
                )
            }
            Self::Milestone {
                node,
                number,
                previous,
            } => write!(
                f,
                "validator {node} took milestone {number} (after {previous}) off the canonical BTTC chain or backwards"
            ),
        }
    }
}

#[derive(Debug, Clone)]
enum Event {
    Deliver {
        to: usize,
        inbound: Inbound,
    },
    Flush {
        node: usize,
    },
    Wake {
        node: usize,
        at: u64,
    },
    Crash {
        node: usize,
        mid_step: MidStep,
        down_ms: u64,
    },
    Restart {
        node: usize,
    },
    SideResult {
        node: usize,
        result: SideCheckResult,
    },
    ChainTick {
        node: usize,
    },
    ChainWake {
        node: usize,
        at: u64,
    },
    ChainBlock {
        to: usize,
        block: Box<WireBlock>,
    },
    ChainFetch {
        asker: usize,
        peer: usize,
        hash: B256,
    },
}

/// Gives events a total order in the heap by time and sequence only.
#[derive(Debug)]
struct Queued(Event);
impl PartialEq for Queued {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

/// The messages a simulated validator's step sent, routed by the world afterwards.
#[derive(Default)]
struct Sent(Vec<Outgoing>);

impl Transport for Sent {
    fn broadcast(&mut self, wire: &Wire) {
        self.0.push(Outgoing::Broadcast(wire.clone()));
    }
    fn send_to(&mut self, peer: Address, wire: &Wire) {
        self.0.push(Outgoing::To(peer, wire.clone()));
    }
}

/// The side checks a step asked for, run by the world with a delay.
#[derive(Default)]
struct Checks(Vec<SideCheck>);

impl SideChecks for Checks {
    fn submit(&mut self, check: SideCheck) {
        self.0.push(check);
    }
}

struct Node {
    key: SecretKey,
    host: Option<Host>,
    store: SimStore,
    inbox: Vec<Inbound>,
    wake: Option<u64>,
    /// A crash planted in the node's next step.
    crash_next_step: Option<(MidStep, u64)>,
    /// The height and round a byzantine validator last proposed out of turn in.
    last_round: Option<(DeliveryHeight, Round)>,
}

/// Steps after which a run is stopped as runaway.
const STEPS_MAX: u64 = 20_000_000;

/// A simulated Delivery network.
pub struct World {
    pub scenario: Scenario,
    rng: Rng,
    clock: SimClock,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, Queued)>>,
    nodes: Vec<Node>,
    addresses: Vec<Address>,
    genesis: AppState,
    /// Who gets byzantine messages themselves under [`Strategy::Split`], by height, round, kind.
    splits: BTreeMap<(DeliveryHeight, Round, SignedKind), Vec<usize>>,
    /// Slowed links: (from, to) → (until, extra delay).
    slow_links: BTreeMap<(usize, usize), (u64, u64)>,
    /// Every message an honest validator sent, by signer, height, round and kind.
    honest_signed: BTreeMap<(usize, DeliveryHeight, Round, SignedKind), BTreeSet<Option<B256>>>,
    /// Every signed proposal anyone sent: (height, round, proposer) → values.
    proposals: BTreeMap<(DeliveryHeight, Round, Address), BTreeSet<B256>>,
    /// Validators honest ones reported evidence against.
    pub evidence: BTreeSet<usize>,
    pub restarts: usize,
    pub steps: u64,
    event_hash: B256,
    /// The last milestone each validator's host held, and the first violation seen.
    milestones: Vec<Milestone>,
    milestone_violation: Option<Violation>,
    /// The modelled BTTC chains: the canonical one (`None`) and each byzantine fork.
    bttc_chains: BTreeMap<Option<usize>, Vec<B256>>,
    /// Real BTTC chains, when the scenario asks for them.
    pub bttc: Option<BttcLayer>,
    /// Per BTTC node, the last block it held as final: (number, hash).
    final_held: Vec<(u64, B256)>,
    bttc_violation: Option<Violation>,
}

impl World {
    pub fn new(scenario: Scenario) -> Self {
        let keys: Vec<SecretKey> = (0..scenario.validators)
            .map(|i| {
                let seed =
                    keccak256([b"sim validator".as_slice(), &(i as u64).to_be_bytes()].concat());
                SecretKey::from_byte_array(seed.0).expect("a valid key")
            })
            .collect();
        let addresses: Vec<Address> = keys.iter().map(key_address).collect();
        let genesis = AppState::genesis(SIM_CHAIN_ID, &addresses, 0).with_spans(SpanConfig {
            params: scenario
                .bttc
                .as_ref()
                .map_or(crate::chain::spec::DEVNET_BOR, |b| b.params),
            bttc_chain_id: crate::chain::spec::DEVNET_CHAIN_ID,
        });
        let n_nodes = keys.len();
        let bttc: Option<BttcLayer> = scenario
            .bttc
            .as_ref()
            .map(|b| BttcLayer::new(&keys, b.full_nodes, b.params));
        let final_held = bttc.as_ref().map_or(Vec::new(), |b| {
            b.nodes
                .iter()
                .map(|n| (0, n.store.chain.tip_hash()))
                .collect()
        });
        let nodes = keys
            .into_iter()
            .map(|key| Node {
                key,
                host: None,
                store: SimStore::default(),
                inbox: Vec::new(),
                wake: None,
                crash_next_step: None,
                last_round: None,
            })
            .collect();
        Self {
            rng: Rng::new(scenario.seed),
            scenario,
            clock: SimClock::default(),
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            addresses,
            genesis,
            splits: BTreeMap::new(),
            slow_links: BTreeMap::new(),
            honest_signed: BTreeMap::new(),
            proposals: BTreeMap::new(),
            evidence: BTreeSet::new(),
            restarts: 0,
            steps: 0,
            event_hash: B256::ZERO,
            milestones: vec![Milestone::default(); n_nodes],
            milestone_violation: None,
            bttc_chains: BTreeMap::new(),
            bttc,
            final_held,
            bttc_violation: None,
        }
    }

    /// Block `number` of the modelled BTTC chain (`fork` names a byzantine validator's own).
    fn bttc_hash(number: u64, fork: Option<usize>) -> B256 {
        match (number, fork) {
            (0, _) => B256::ZERO,
            (_, None) => keccak256([b"bttc".as_slice(), &number.to_be_bytes()].concat()),
            (_, Some(node)) => keccak256(
                [
                    b"fork".as_slice(),
                    &(node as u64).to_be_bytes(),
                    &number.to_be_bytes(),
                ]
                .concat(),
            ),
        }
    }

    /// Blocks `from..=to` of a modelled chain, hashed once and kept.
    fn bttc_hashes(&mut self, fork: Option<usize>, from: u64, to: u64) -> Vec<B256> {
        let chain = self.bttc_chains.entry(fork).or_default();
        while (chain.len() as u64) <= to {
            chain.push(Self::bttc_hash(chain.len() as u64, fork));
        }
        chain[from as usize..=to as usize].to_vec()
    }

    /// The last milestone a validator's host held (for tests of liveness).
    pub fn milestone(&self, node: usize) -> Milestone {
        self.milestones[node]
    }

    /// The last span a validator's host decided, if it is up.
    pub fn last_span_id(&self, node: usize) -> Option<u64> {
        self.nodes
            .get(node)?
            .host
            .as_ref()?
            .app()
            .last_span()
            .map(|s| s.id)
    }

    /// The head of the BTTC chain as validator `node` sees it now.
    fn bttc_head(&self, node: usize) -> u64 {
        if let Some(bttc) = &self.bttc {
            return bttc.nodes[node].host.as_ref().map_or(0, |h| h.head().0);
        }
        let lag = self.scenario.bttc_lag_ms.get(node).copied().unwrap_or(0);
        self.clock.now_ms.saturating_sub(lag) / self.scenario.bttc_block_ms.max(1)
    }

    /// Before a step: the chain the validator sees now, from the block after its milestone.
    fn report_chain(&mut self, node: usize) {
        if let Some(bttc) = &self.bttc {
            let n = &bttc.nodes[node];
            if let (Some(chain), Some(host)) = (&n.host, self.nodes[node].host.as_mut()) {
                host.set_chain_vote(chain.chain_vote(&n.store));
            }
            return;
        }
        let head = self.bttc_head(node);
        let fork = self.is_byzantine(node).then_some(node);
        let Some(host) = self.nodes[node].host.as_ref() else {
            return;
        };
        let start = host.app().milestone.number + 1;
        let max = crate::delivery::milestone::CHAIN_VOTE_HASHES_MAX as u64;
        let hashes = if head < start {
            Vec::new()
        } else {
            self.bttc_hashes(fork, start, head.min(start + max - 1))
        };
        if let Some(host) = self.nodes[node].host.as_mut() {
            host.set_chain_vote(ChainVote { start, hashes });
        }
    }

    /// After a step: an honest validator's milestone only moves forward, along the canonical
    /// chain.
    fn check_milestone(&mut self, node: usize) {
        let Some(host) = &self.nodes[node].host else {
            return;
        };
        let milestone = host.app().milestone;
        let previous = self.milestones[node];
        if self.bttc.is_some() {
            // Real chains: the BTTC layer checks finality against each node's own chain.
            self.milestones[node] = milestone;
            return;
        }
        if self.is_byzantine(node) || milestone == previous {
            return;
        }
        let canonical =
            milestone.hash == self.bttc_hashes(None, milestone.number, milestone.number)[0];
        if (!canonical || milestone.number < previous.number) && self.milestone_violation.is_none()
        {
            self.milestone_violation = Some(Violation::Milestone {
                node,
                number: milestone.number,
                previous: previous.number,
            });
        }
        self.milestones[node] = milestone;
    }

    /// A hash over every event handled, with its time: the same seed gives the same hash.
    pub fn event_hash(&self) -> B256 {
        self.event_hash
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms
    }

    pub fn addresses(&self) -> &[Address] {
        &self.addresses
    }

    /// A live validator's status.
    pub fn status(&self, node: usize) -> Option<crate::delivery::host::HostStatus> {
        self.nodes.get(node)?.host.as_ref().map(Host::status)
    }

    pub fn store(&self, node: usize) -> &SimStore {
        &self.nodes[node].store
    }

    fn is_byzantine(&self, node: usize) -> bool {
        self.scenario.byzantine.contains(&node)
    }

    fn honest(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|i| !self.is_byzantine(*i))
    }

    fn config(&self, node: usize) -> HostConfig {
        let s = &self.scenario;
        HostConfig {
            chain_id: SIM_CHAIN_ID,
            key: self.nodes[node].key,
            timeouts: s.timeouts,
            block_interval_ms: s.block_interval_ms,
            tick_ms: s.tick_ms,
            wal_entries_per_height_max: s.wal_entries_per_height_max,
        }
    }

    fn push(&mut self, at_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at_ms, self.seq, Queued(event))));
    }

    fn record(&mut self, tag: &[u8]) {
        self.event_hash = keccak256(
            [
                self.event_hash.as_slice(),
                &self.clock.now_ms.to_be_bytes(),
                tag,
            ]
            .concat(),
        );
    }

    fn committed(&self, node: usize) -> u64 {
        self.nodes[node]
            .store
            .blocks()
            .last_key_value()
            .map_or(0, |(h, _)| h.0)
    }

    /// Runs until every honest validator has committed the scenario's heights or the deadline
    /// passes.
    pub fn run(&mut self) {
        for node in 0..self.nodes.len() {
            self.open(node);
        }
        for i in 0..self.scenario.side_txs {
            if let Some(host) = self.nodes[0].host.as_mut() {
                let payload = Bytes::from(vec![0, i as u8]);
                let _ = host.submit(TxKind::Side, payload);
            }
        }
        for crash in self.scenario.crashes.clone() {
            self.push(
                crash.at_ms,
                Event::Crash {
                    node: crash.node,
                    mid_step: crash.mid_step,
                    down_ms: crash.down_ms,
                },
            );
        }
        let honest: Vec<usize> = self.honest().collect();
        let chain_nodes = self.bttc.as_ref().map_or(0, |b| b.nodes.len());
        for node in 0..chain_nodes {
            self.open_chain(node);
            self.push(node as u64, Event::ChainTick { node });
        }
        let until = self.scenario.bttc.as_ref().map(|b| b.settle_until_ms);
        while let Some(Reverse((at, _, Queued(event)))) = self.queue.pop() {
            let done = match until {
                Some(until) => at > until,
                None => {
                    at > self.scenario.deadline_ms
                        || honest
                            .iter()
                            .all(|&i| self.committed(i) >= self.scenario.heights)
                }
            };
            if done {
                break;
            }
            if self.steps > STEPS_MAX {
                // A run that never ends is a bug of its own: stop and let the checks speak.
                self.bttc_violation
                    .get_or_insert(Violation::Runaway { at_ms: at });
                break;
            }
            self.clock.now_ms = at;
            self.handle(event);
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, inbound } => {
                if self.nodes[to].host.is_none() {
                    return;
                }
                if self.nodes[to].inbox.is_empty() {
                    let at = self.clock.now_ms + self.rng.below(3);
                    self.push(at, Event::Flush { node: to });
                }
                self.nodes[to].inbox.push(inbound);
            }
            Event::Flush { node } => {
                let batch = std::mem::take(&mut self.nodes[node].inbox);
                let now = self.clock.now_ms;
                self.record(&[b'f', node as u8, batch.len() as u8]);
                self.step(node, |host| host.handle_peers(now, batch));
            }
            Event::Wake { node, at } => {
                if self.nodes[node].wake != Some(at) {
                    return;
                }
                self.nodes[node].wake = None;
                self.record(&[b'w', node as u8]);
                let now = self.clock.now_ms;
                self.step(node, |host| host.handle_timeout(now));
            }
            Event::SideResult { node, result } => {
                self.record(&[b's', node as u8]);
                let now = self.clock.now_ms;
                self.step(node, |host| host.handle_side_results(now, vec![result]));
            }
            Event::Crash {
                node,
                mid_step,
                down_ms,
            } => {
                if self.nodes[node].host.is_none() {
                    return;
                }
                match mid_step {
                    MidStep::Between => self.crash(node, down_ms),
                    other => self.nodes[node].crash_next_step = Some((other, down_ms)),
                }
            }
            Event::Restart { node } => {
                self.record(&[b'r', node as u8]);
                self.restarts += 1;
                self.open(node);
                // A restart that crashed again opens its chain on the next restart.
                if self.bttc.is_some() && self.nodes[node].host.is_some() {
                    self.open_chain(node);
                }
            }
            Event::ChainTick { node } => self.chain_tick(node),
            Event::ChainWake { node, at } => {
                let Some(bttc) = self.bttc.as_mut() else {
                    return;
                };
                if bttc.nodes[node].wake != Some(at) {
                    return;
                }
                bttc.nodes[node].wake = None;
                self.record(&[b'p', node as u8]);
                self.chain_produce(node);
            }
            Event::ChainBlock { to, block } => {
                self.record(&[b'b', to as u8]);
                let now = self.clock.now_ms;
                self.chain_step(to, |host, store| host.handle_block(store, now, *block));
            }
            Event::ChainFetch { asker, peer, hash } => {
                let Some(bttc) = &self.bttc else {
                    return;
                };
                let n = &bttc.nodes[peer];
                let found = n
                    .host
                    .as_ref()
                    .and_then(|h| h.block_by_hash(&n.store, &hash));
                if let Some(block) = found {
                    self.send_block(peer, asker, block);
                }
            }
        }
    }

    /// Starts node `node`'s chain host from its store and schedules its producer.
    fn open_chain(&mut self, node: usize) {
        let Some(bttc) = self.bttc.as_mut() else {
            return;
        };
        bttc.open(node);
        self.refresh_delivery(node);
        self.schedule_producer(node);
    }

    /// The node's Delivery state, as its chain host reads it. A full node (no Delivery host
    /// here) copies the state of the most advanced validator that is up, as if it had synced
    /// the Delivery chain from it.
    fn refresh_delivery(&mut self, node: usize) {
        let app = if node < self.nodes.len() {
            self.nodes[node].host.as_ref().map(|h| h.app().clone())
        } else {
            self.nodes
                .iter()
                .filter_map(|n| n.host.as_ref())
                .max_by_key(|h| h.app().height)
                .map(|h| h.app().clone())
        };
        let Some(app) = app else {
            return;
        };
        if let Some(host) = self.bttc.as_mut().and_then(|b| b.nodes[node].host.as_mut()) {
            host.delivery.update(app.height, &app.spans, app.milestone);
        }
        let now = self.clock.now_ms;
        self.chain_step(node, |host, store| host.handle_delivery(store, now));
    }

    fn schedule_producer(&mut self, node: usize) {
        let now = self.clock.now_ms;
        let Some(bttc) = self.bttc.as_mut() else {
            return;
        };
        let producing = self
            .scenario
            .bttc
            .as_ref()
            .is_some_and(|b| now < b.produce_until_ms);
        let n = &mut bttc.nodes[node];
        let Some(at) = n.host.as_ref().and_then(|h| h.poll_timeout(&n.store)) else {
            return;
        };
        let at = at.max(now);
        if producing && n.wake != Some(at) {
            n.wake = Some(at);
            self.push(at, Event::ChainWake { node, at });
        }
    }

    fn chain_produce(&mut self, node: usize) {
        let now = self.clock.now_ms;
        let count = self.scenario.bttc.as_ref().map_or(0, |b| b.txs_per_block);
        let Some(bttc) = self.bttc.as_mut() else {
            return;
        };
        let mut candidates = bttc.candidates(node, count);
        let before = bttc.nodes[node].host.as_ref().map(|h| h.head());
        let in_turn = bttc.nodes[node]
            .host
            .as_ref()
            .map(|h| h.snapshot().proposer());
        self.chain_step(node, |host, store| {
            host.handle_timeout(store, now, &mut candidates)
        });
        let Some(bttc) = self.bttc.as_mut() else {
            return;
        };
        let after = bttc.nodes[node].host.as_ref().map(|h| h.head());
        if after != before {
            bttc.sealed += 1;
            let me = bttc.nodes[node]
                .key
                .as_ref()
                .map(crate::delivery::signing::key_address);
            if in_turn != me {
                bttc.backup_blocks += 1;
            }
        }
    }

    /// Every tick: a full node refreshes its Delivery view, every node re-announces its head
    /// (so a peer that lost the last block fetches it) and re-arms its producer.
    fn chain_tick(&mut self, node: usize) {
        let Some(tick) = self.scenario.bttc.as_ref().map(|b| b.tick_ms) else {
            return;
        };
        self.push(self.clock.now_ms + tick, Event::ChainTick { node });
        if node >= self.nodes.len() {
            self.refresh_delivery(node);
        }
        let head = self.bttc.as_ref().and_then(|b| {
            let n = &b.nodes[node];
            let host = n.host.as_ref()?;
            host.block_by_hash(&n.store, &host.head().1)
        });
        let peers = self.bttc.as_ref().map_or(0, |b| b.nodes.len());
        if let Some(block) = head {
            for peer in (0..peers).filter(|p| *p != node) {
                self.send_block(node, peer, block.clone());
            }
        }
        let missing = self.bttc.as_ref().map_or(Vec::new(), |b| {
            b.nodes[node]
                .host
                .as_ref()
                .map_or(Vec::new(), |h| h.missing_parents(4))
        });
        for hash in missing {
            self.fetch_from_a_peer(node, hash);
        }
        self.schedule_producer(node);
    }

    /// One step of a node's chain host, then its effects: blocks to peers, fetches, and the
    /// checks of what it did.
    fn chain_step(
        &mut self,
        node: usize,
        f: impl FnOnce(
            &mut ChainHost,
            &mut BorMemStore,
        ) -> Result<ChainEffects, crate::chain::bor::host::StoreFailed>,
    ) {
        let honest = node >= self.nodes.len() || !self.is_byzantine(node);
        let Some(bttc) = self.bttc.as_mut() else {
            return;
        };
        let n = &mut bttc.nodes[node];
        let Some(host) = n.host.as_mut() else {
            return;
        };
        self.steps += 1;
        let effects = f(host, &mut n.store).expect("the simulated chain store never fails");
        bttc.observe(&effects, honest);
        // What this node held final must stay.
        let (number, hash) = self.final_held[node];
        let n = &bttc.nodes[node];
        if let Some(current) = n.store.chain.hashes.get(number as usize)
            && *current != hash
            && self.bttc_violation.is_none()
        {
            self.bttc_violation = Some(Violation::FinalReorganized { node, number });
        }
        if let Some(host) = &n.host {
            let m = host.delivery.milestone;
            if n.store.chain.hashes.get(m.number as usize) == Some(&m.hash) {
                self.final_held[node] = (m.number, m.hash);
            }
        }
        let peers = bttc.nodes.len();
        for block in effects.broadcast {
            for peer in (0..peers).filter(|p| *p != node) {
                self.send_block(node, peer, block.clone());
            }
        }
        for hash in effects.fetch {
            self.fetch_from_a_peer(node, hash);
            self.fetch_from_a_peer(node, hash);
        }
        if effects.head.is_some() {
            self.schedule_producer(node);
        }
    }

    /// Whether a copy from `from` to `to` is lost now: cut by the partition, or by loss.
    fn link_drops(&mut self, from: usize, to: usize) -> bool {
        if let Some((side, until)) = &self.scenario.partition
            && self.clock.now_ms < *until
            && side.contains(&from) != side.contains(&to)
        {
            return true;
        }
        self.rng.chance(self.scenario.loss_percent)
    }

    /// Asks a random peer of BTTC node `node` for the block `hash`.
    fn fetch_from_a_peer(&mut self, node: usize, hash: B256) {
        let peers = self.bttc.as_ref().map_or(0, |b| b.nodes.len()) as u64;
        let peer = self.rng.below(peers) as usize;
        if peer != node {
            let at = self.clock.now_ms + 1 + self.rng.below(self.scenario.delay_ms_max);
            self.push(
                at,
                Event::ChainFetch {
                    asker: node,
                    peer,
                    hash,
                },
            );
        }
    }

    /// A block on a link: partitions and loss drop it, the delay reorders it.
    fn send_block(&mut self, from: usize, to: usize, block: WireBlock) {
        if self.link_drops(from, to) {
            return;
        }
        let delay = 1 + self.rng.below(self.scenario.delay_ms_max);
        self.push(
            self.clock.now_ms + delay,
            Event::ChainBlock {
                to,
                block: Box::new(block),
            },
        );
    }

    fn crash(&mut self, node: usize, down_ms: u64) {
        tracing::debug!(node, now = self.clock.now_ms, "SIM CRASH");
        self.record(&[b'c', node as u8]);
        if let Some(bttc) = self.bttc.as_mut() {
            bttc.crash(node);
        }
        let n = &mut self.nodes[node];
        n.host = None;
        n.inbox.clear();
        n.wake = None;
        n.crash_next_step = None;
        self.push(self.clock.now_ms + down_ms, Event::Restart { node });
    }

    fn open(&mut self, node: usize) {
        let stored = self.nodes[node]
            .store
            .load()
            .expect("the simulated store loads");
        tracing::debug!(
            node,
            now = self.clock.now_ms,
            wal = stored.wal.len(),
            signed = stored.signed.len(),
            "SIM OPEN"
        );
        let (host, effects) = Host::open(
            self.config(node),
            self.genesis.clone(),
            stored,
            self.clock.now_ms,
        );
        self.nodes[node].host = Some(host);
        self.carry_out(node, effects);
    }

    /// One handling step of a live validator, then its effects.
    fn step(&mut self, node: usize, input: impl FnOnce(&mut Host) -> Effects) {
        if self.nodes[node].host.is_none() {
            return;
        }
        self.report_chain(node);
        let host = self.nodes[node].host.as_mut().expect("checked above");
        self.steps += 1;
        let effects = input(host);
        self.carry_out(node, effects);
        self.check_milestone(node);
    }

    /// Carries out a step's effects through the engine's own `carry_out`, with a planted
    /// crash if one is due, then routes what was sent.
    fn carry_out(&mut self, node: usize, effects: Effects) {
        let crash = self.nodes[node].crash_next_step.take();
        for (first, second) in &effects.evidence {
            debug_assert_eq!(first.validator, second.validator);
            if let Some(i) = self.addresses.iter().position(|a| *a == first.validator) {
                self.evidence.insert(i);
            }
        }
        if let Some((MidStep::BeforeWrite, _)) = crash {
            self.nodes[node].store.crash_before_next_write = true;
        }
        let (mut sent, mut checks) = (Sent::default(), Checks::default());
        let result = effects.carry_out(&mut self.nodes[node].store, &mut sent, &mut checks);
        let committed = match result {
            Ok(committed) => committed,
            Err(_) => {
                let down_ms = crash.map_or(100, |(_, d)| d);
                self.crash(node, down_ms);
                return;
            }
        };
        self.after_commits(node, &committed);
        if !committed.is_empty() && self.bttc.is_some() {
            self.refresh_delivery(node);
        }
        let mut sends = sent.0;
        if let Some((MidStep::AfterWrite { sends_kept }, _)) = crash {
            sends.truncate(sends_kept);
        }
        for outgoing in sends {
            self.route(node, outgoing);
        }
        for check in checks.0 {
            self.run_side_check(node, check);
        }
        if let Some((_, down_ms)) = crash {
            self.crash(node, down_ms);
            return;
        }
        if self.scenario.out_of_turn_proposals && self.is_byzantine(node) {
            self.propose_out_of_turn(node);
        }
        if let Some(host) = &self.nodes[node].host {
            let at = host.poll_timeout().max(self.clock.now_ms);
            if self.nodes[node].wake != Some(at) {
                self.nodes[node].wake = Some(at);
                self.push(at, Event::Wake { node, at });
            }
        }
    }

    /// The adversary slows a deciding validator's links, so that some validators move to the
    /// next round without having seen the decision.
    fn after_commits(&mut self, node: usize, committed: &[Committed]) {
        if committed.is_empty() || self.scenario.hide_decisions_percent == 0 {
            return;
        }
        let until = self.clock.now_ms + self.scenario.slow_window_ms;
        for to in 0..self.nodes.len() {
            if to != node && self.rng.chance(self.scenario.hide_decisions_percent) {
                self.slow_links
                    .insert((node, to), (until, self.scenario.slow_link_ms));
            }
        }
    }

    fn run_side_check(&mut self, node: usize, check: SideCheck) {
        let seen = check
            .payload
            .get(1)
            .is_some_and(|j| !(node + usize::from(*j)).is_multiple_of(3));
        let span = check_span_payload(&check.payload, self.bttc_head(node));
        let (result, data) = if let Some(checked) = span.clone() {
            checked
        } else if seen {
            (SideTxResult::Yes, check.payload.to_vec())
        } else {
            (SideTxResult::No, check.payload.to_vec())
        };
        // A span is checked against the node's own chain: a local lookup, quick.
        let slowest = if span.is_some() {
            5
        } else {
            self.scenario.side_check_ms_max.max(1)
        };
        let at = self.clock.now_ms + self.rng.between(1, slowest);
        self.push(
            at,
            Event::SideResult {
                node,
                result: SideCheckResult {
                    height: check.height,
                    tx_hash: check.tx_hash,
                    result,
                    data,
                },
            },
        );
    }

    /// Records what was signed, lets a byzantine sender rewrite its message per recipient, and
    /// puts each copy on the network.
    fn route(&mut self, from: usize, outgoing: Outgoing) {
        let (to, wire) = match outgoing {
            Outgoing::Broadcast(wire) => (None, wire),
            Outgoing::To(peer, wire) => match self.addresses.iter().position(|a| *a == peer) {
                Some(i) => (Some(i), wire),
                None => return,
            },
        };
        self.observe(&wire);
        let recipients: Vec<usize> = match to {
            Some(i) => vec![i],
            None => (0..self.nodes.len()).filter(|i| *i != from).collect(),
        };
        if self.is_byzantine(from) && self.signed_by(from, &wire) {
            self.equivocate(from, &wire, &recipients);
            return;
        }
        for to in recipients {
            self.send(from, to, wire.clone());
        }
    }

    /// Records a signed consensus message put on the network, under its signer (a relayed
    /// message is its signer's, not the relay's).
    fn observe(&mut self, wire: &Wire) {
        let (kind, signer, height, round, value) = match wire {
            Wire::Proposal { proposal, .. } => {
                let p = proposal.proposal;
                self.proposals
                    .entry((p.height, p.round, p.proposer))
                    .or_default()
                    .insert(p.value);
                (
                    SignedKind::Proposal,
                    p.proposer,
                    p.height,
                    p.round,
                    Some(p.value),
                )
            }
            Wire::Prevote(v) => {
                let v = v.vote;
                (SignedKind::Prevote, v.validator, v.height, v.round, v.value)
            }
            Wire::Precommit(c) => {
                let v = c.vote.vote;
                (
                    SignedKind::Precommit,
                    v.validator,
                    v.height,
                    v.round,
                    v.value,
                )
            }
            _ => return,
        };
        let Some(node) = self.addresses.iter().position(|a| *a == signer) else {
            return;
        };
        if !self.is_byzantine(node) {
            self.honest_signed
                .entry((node, height, round, kind))
                .or_default()
                .insert(value);
        }
    }

    /// Whether `wire` is a consensus message `node` signed (not one it relays).
    fn signed_by(&self, node: usize, wire: &Wire) -> bool {
        let signer = match wire {
            Wire::Proposal { proposal, .. } => proposal.proposal.proposer,
            Wire::Prevote(v) => v.vote.validator,
            Wire::Precommit(c) => c.vote.vote.validator,
            _ => return false,
        };
        signer == self.addresses[node]
    }

    /// Puts one copy on the network: partitions drop it, loss drops it, duplication doubles
    /// it, a random delay reorders it, and the adversary may slow it further.
    fn send(&mut self, from: usize, to: usize, wire: Wire) {
        if self.link_drops(from, to) {
            return;
        }
        let copies = if self.rng.chance(self.scenario.duplicate_percent) {
            2
        } else {
            1
        };
        let mut extra = 0;
        if let Some((until, ms)) = self.slow_links.get(&(from, to))
            && self.clock.now_ms < *until
        {
            extra += ms;
        }
        if matches!(wire, Wire::Proposal { .. })
            && self.rng.chance(self.scenario.late_proposals_percent)
        {
            extra += self.scenario.slow_link_ms;
        }
        let len = wire.encode().len();
        let sender = self.addresses[from];
        for _ in 0..copies {
            let delay = 1 + self.rng.below(self.scenario.delay_ms_max) + extra;
            self.push(
                self.clock.now_ms + delay,
                Event::Deliver {
                    to,
                    inbound: Inbound {
                        from: sender,
                        wire: wire.clone(),
                        len,
                    },
                },
            );
        }
    }

    /// A byzantine validator's consensus message: with [`Strategy::ToEveryone`] everyone gets
    /// it and a conflicting one; with [`Strategy::Split`] each recipient gets one of the two.
    fn equivocate(&mut self, from: usize, wire: &Wire, recipients: &[usize]) {
        let Some(host) = self.nodes[from].host.as_ref() else {
            return;
        };
        let key = self.nodes[from].key;
        let chain_id = SIM_CHAIN_ID;
        let salt = self.rng.next_u64();
        let fresh_block = |host: &Host, salt: u64| {
            let mut draft = host.app().draft(host.address(), 0);
            draft.time_ms = host.app().time_ms + 1 + salt % 1_000;
            Block::new(draft, Vec::new(), host.last_commit().to_vec())
        };
        let conflicting = match wire {
            Wire::Proposal { proposal, .. } => {
                let block = fresh_block(host, salt);
                let mut p = proposal.proposal;
                p.value = block.hash();
                Wire::Proposal {
                    proposal: SignedProposal::new(chain_id, &key, p),
                    block: Box::new(block),
                }
            }
            Wire::Prevote(v) => Wire::Prevote(flip(chain_id, &key, v, salt)),
            Wire::Precommit(c) => Wire::Precommit(Box::new(CommitVote::new(
                chain_id,
                &key,
                flip(chain_id, &key, &c.vote, salt),
                c.side.clone(),
                c.chain.clone(),
            ))),
            _ => return,
        };
        self.observe(&conflicting);
        for &to in recipients {
            match self.scenario.strategy {
                Strategy::ToEveryone => {
                    self.send(from, to, wire.clone());
                    self.send(from, to, conflicting.clone());
                }
                Strategy::Split => {
                    let pick = if self.split_side(wire).contains(&to) {
                        wire
                    } else {
                        &conflicting
                    };
                    self.send(from, to, pick.clone());
                }
            }
        }
    }

    /// The validators that get a byzantine message itself rather than its conflicting twin:
    /// chosen once per height, round and kind, the same for every byzantine validator, so that
    /// their votes pile up on the same side. Half for proposals and prevotes (a prevote quorum
    /// some see and others do not); a few for precommits (a decision some reach and the others
    /// do not).
    fn split_side(&mut self, wire: &Wire) -> Vec<usize> {
        let (height, round, kind) = match wire {
            Wire::Proposal { proposal, .. } => (
                proposal.proposal.height,
                proposal.proposal.round,
                SignedKind::Proposal,
            ),
            Wire::Prevote(v) => (v.vote.height, v.vote.round, SignedKind::Prevote),
            Wire::Precommit(c) => (c.vote.vote.height, c.vote.vote.round, SignedKind::Precommit),
            _ => return Vec::new(),
        };
        if let Some(side) = self.splits.get(&(height, round, kind)) {
            return side.clone();
        }
        let mut honest: Vec<usize> = self.honest().collect();
        self.rng.shuffle(&mut honest);
        let size = match kind {
            SignedKind::Precommit => 1 + self.rng.below((honest.len() / 3).max(1) as u64) as usize,
            _ => honest.len().div_ceil(2),
        };
        honest.truncate(size);
        self.splits.insert((height, round, kind), honest.clone());
        honest
    }

    /// A byzantine validator entering a round proposes a block of its own at once, whether
    /// or not the round is its to propose.
    fn propose_out_of_turn(&mut self, node: usize) {
        let Some(host) = self.nodes[node].host.as_ref() else {
            return;
        };
        let status = host.status();
        let at = (status.height.next(), status.round);
        if self.nodes[node].last_round == Some(at) {
            return;
        }
        let mut draft = host.app().draft(host.address(), 0);
        draft.time_ms = host.app().time_ms + 1 + self.rng.below(1_000);
        let block = Block::new(draft, Vec::new(), host.last_commit().to_vec());
        self.nodes[node].last_round = Some(at);
        let proposal = crate::delivery::tendermint::Proposal {
            height: at.0,
            round: at.1,
            value: block.hash(),
            valid_round: None,
            proposer: self.addresses[node],
        };
        let wire = Wire::Proposal {
            proposal: SignedProposal::new(SIM_CHAIN_ID, &self.nodes[node].key, proposal),
            block: Box::new(block),
        };
        self.observe(&wire);
        for to in 0..self.nodes.len() {
            if to != node {
                self.send(node, to, wire.clone());
            }
        }
    }

    /// BTTC at the end of a run: no block both imported and refused by honest nodes, every
    /// node on one head, and the chain and its spans moved on.
    fn check_bttc(&self, bttc: &BttcLayer) -> Result<(), Violation> {
        for (hash, why) in &bttc.refused {
            if bttc.accepted.contains_key(hash)
                || bttc
                    .nodes
                    .iter()
                    .any(|n| n.store.chain.hashes.contains(hash))
            {
                return Err(Violation::ImportDisagreement {
                    hash: *hash,
                    why: why.clone(),
                });
            }
        }
        let heads: Vec<(u64, B256)> = bttc
            .nodes
            .iter()
            .map(|n| (n.store.chain.tip().number, n.store.chain.tip_hash()))
            .collect();
        if heads.iter().any(|h| *h != heads[0]) {
            return Err(Violation::Diverged { heads });
        }
        let scenario = self.scenario.bttc.as_ref().expect("a BTTC scenario");
        let spans = bttc.nodes[0]
            .host
            .as_ref()
            .map_or(0, |h| h.bor_tip().current_span.id);
        let seconds = scenario.produce_until_ms / 1_000;
        if heads[0].0 < seconds / 3 || spans < 1 {
            return Err(Violation::BttcStalled {
                head: heads[0].0,
                spans,
            });
        }
        Ok(())
    }

    /// The validator set of `height` (no set changes in the simulation): the genesis set with
    /// priorities advanced once per earlier height.
    fn validators_at(&self, height: DeliveryHeight) -> ValidatorSet {
        let mut set = self.genesis.validators.clone();
        if height.0 > 1 {
            set.increment_proposer_priority((height.0 - 1) as u32);
        }
        set
    }

    /// Checks the run: agreement and validity of every committed block, no double sign by an
    /// honest validator, evidence only against byzantine ones, and every honest validator at
    /// the scenario's heights.
    pub fn check(&self) -> Result<(), Violation> {
        let honest: Vec<usize> = self.honest().collect();
        let top = honest.iter().map(|&i| self.committed(i)).max().unwrap_or(0);
        for h in 1..=top {
            let height = DeliveryHeight(h);
            let hashes: BTreeSet<B256> = honest
                .iter()
                .filter_map(|&i| self.nodes[i].store.blocks().get(&height))
                .map(|(b, _)| b.hash())
                .collect();
            if hashes.len() > 1 {
                return Err(Violation::Disagreement {
                    height,
                    hashes: hashes.into_iter().collect(),
                });
            }
        }
        for &i in &honest {
            for (height, (block, commit)) in self.nodes[i].store.blocks() {
                let round = commit.first().map_or(0, |c| c.vote.vote.round);
                let proposer = self.validators_at(*height).proposer_for_round(round);
                let proposed = self
                    .proposals
                    .get(&(*height, round, proposer))
                    .is_some_and(|values| values.contains(&block.hash()));
                if !proposed {
                    return Err(Violation::NotProposed {
                        node: i,
                        height: *height,
                        round,
                        value: block.hash(),
                    });
                }
            }
        }
        for ((node, height, round, kind), values) in &self.honest_signed {
            if values.len() > 1 {
                return Err(Violation::DoubleSign {
                    node: *node,
                    height: *height,
                    round: *round,
                    kind: *kind,
                });
            }
        }
        if let Some(violation) = &self.milestone_violation {
            return Err(violation.clone());
        }
        if let Some(violation) = &self.bttc_violation {
            return Err(violation.clone());
        }
        if let Some(bttc) = &self.bttc {
            self.check_bttc(bttc)?;
        }
        if let Some(node) = self.evidence.iter().find(|i| !self.is_byzantine(**i)) {
            return Err(Violation::EvidenceAgainstHonest { node: *node });
        }
        for &i in &honest {
            let committed = self.committed(i);
            if committed < self.scenario.heights {
                return Err(Violation::NotDecided {
                    node: i,
                    committed,
                    heights: self.scenario.heights,
                });
            }
        }
        Ok(())
    }
}

/// A conflicting vote: nil for a value, a made-up value for nil.
fn flip(chain_id: u64, key: &SecretKey, signed: &SignedVote, salt: u64) -> SignedVote {
    let mut vote = signed.vote;
    vote.value = match vote.value {
        Some(_) => None,
        None => Some(keccak256(salt.to_be_bytes())),
    };
    debug_assert!(matches!(vote.kind, VoteKind::Prevote | VoteKind::Precommit));
    sign_vote(chain_id, key, vote)
}
