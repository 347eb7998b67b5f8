//! A node's BTTC chain under Bor as a sans-I/O state machine: blocks from peers and the
//! producer's timer in, with the time; commits, unwinds and blocks to send out. It chooses
//! the heaviest chain (total difficulty) but never reorganizes below the last milestone,
//! imports a block only once its own Delivery chain has reached the block's pinned height,
//! and, on a validator, seals a block when its turn comes.

use super::{
    block::{
        BorBlockError, BorTip, DeliveryFacts, Production, import, produce, system_calls, turn,
    },
    extra::Vanity,
    snapshot::Snapshot,
    span::Span,
};
use crate::{
    chain::{
        builder::{BLOCK_TXS_MAX, BuiltBlock, TxSource},
        spec::ChainSpec,
    },
    delivery::{
        milestone::{CHAIN_VOTE_HASHES_MAX, ChainVote, Milestone},
        signing::key_address,
    },
    exec::{ExecMode, StateReader},
    merkle::trie::TrieReader,
    primitives::{DeliveryHeight, RecoveredTx},
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use std::collections::{BTreeMap, HashMap};

/// Blocks kept off the canonical chain (side branches, orphans, blocks waiting for Delivery).
pub const SIDE_BLOCKS_MAX: usize = 512;
/// Canonical blocks whose snapshot and total difficulty are kept for reorganizations.
pub const RECENT_MAX: usize = 1_024;
/// How long a producer that could not build (a span not decided yet) waits to try again.
const PRODUCE_RETRY_MS: u64 = 500;
/// Spans kept from the Delivery chain, with the height that decided each.
const SPANS_KEPT: usize = 16;

/// The chain store the host reads and writes: one canonical chain, a block at a time.
pub trait BorStore {
    type Error: std::error::Error + Send + Sync + 'static;
    type View<'a>: StateReader + TrieReader
    where
        Self: 'a;

    /// The state after the tip.
    fn view(&self) -> Self::View<'_>;
    fn tip(&self) -> (Header, B256);
    fn canonical(&self, number: u64) -> Option<(Header, B256)>;
    fn body(&self, number: u64) -> Option<Vec<RecoveredTx>>;
    /// Commits a block on the tip with its snapshot and total difficulty.
    fn commit(&mut self, block: BuiltBlock, meta: ChainMeta) -> Result<(), Self::Error>;
    /// The snapshot and total difficulty stored with canonical block `number`.
    fn meta(&self, number: u64) -> Option<ChainMeta>;
    /// Takes blocks off the tip until `number` is the tip.
    fn unwind_to(&mut self, number: u64) -> Result<(), Self::Error>;
}

/// What a node keeps with each canonical block besides the block: the Bor snapshot and span
/// after it, and the chain's total difficulty, so that a restart needs no replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMeta {
    pub tip: BorTip,
    pub total_difficulty: u128,
}

/// A block as it travels: header and transactions (senders recovered by the driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireBlock {
    pub header: Header,
    pub txs: Vec<RecoveredTx>,
}

/// What one handling step asks the driver to do.
#[derive(Debug, Default)]
pub struct ChainEffects {
    /// Blocks this node sealed, to announce and push to peers.
    pub broadcast: Vec<WireBlock>,
    /// Blocks to fetch from peers by hash (a parent this node lacks).
    pub fetch: Vec<B256>,
    /// The new canonical head after the step, if it moved: (number, hash).
    pub head: Option<(u64, B256)>,
    /// Reorganizations: (blocks taken off, blocks put on).
    pub reorgs: Vec<(u64, u64)>,
    /// Blocks refused, with why: the driver marks the peer that sent them.
    pub refused: Vec<(B256, BorBlockError)>,
    /// Messages for the peer whose message this step handled (answers and requests).
    pub reply: Vec<super::wire::ChainMessage>,
}

/// Why the host stopped: its store failed (the node must stop).
#[derive(Debug, thiserror::Error)]
#[error("the chain store failed: {0}")]
pub struct StoreFailed(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// What the node's own Delivery chain says, as the BTTC chain reads it.
#[derive(Debug, Clone, Default)]
pub struct DeliveryView {
    pub height: DeliveryHeight,
    /// Spans with the height whose block decided them, oldest first.
    pub spans: Vec<(DeliveryHeight, Span)>,
    pub milestone: Milestone,
}

impl DeliveryView {
    /// The facts at `height`, if the Delivery chain has reached it.
    pub fn facts(&self, height: DeliveryHeight, current: &Span) -> Option<DeliveryFacts> {
        (height <= self.height).then(|| DeliveryFacts {
            height,
            next_span: self
                .spans
                .iter()
                .find(|(decided, s)| *decided <= height && s.id == current.id + 1)
                .map(|(_, s)| s.clone()),
        })
    }

    /// Takes the Delivery state after a commit at `height`: its spans and milestone.
    pub fn update(
        &mut self,
        height: DeliveryHeight,
        spans: &[(DeliveryHeight, Span)],
        milestone: Milestone,
    ) {
        self.height = self.height.max(height);
        for (decided, span) in spans {
            if !self.spans.iter().any(|(_, s)| s.id == span.id) {
                self.spans.push((*decided, span.clone()));
            }
        }
        if self.spans.len() > SPANS_KEPT {
            let extra = self.spans.len() - SPANS_KEPT;
            self.spans.drain(..extra);
        }
        if milestone.number >= self.milestone.number {
            self.milestone = milestone;
        }
    }
}

#[derive(Debug, Clone)]
struct Recent {
    hash: B256,
    tip: BorTip,
    total_difficulty: u128,
}

/// The BTTC chain of one node.
pub struct ChainHost {
    spec: ChainSpec,
    key: Option<secp256k1::SecretKey>,
    me: Option<Address>,
    exec: ExecMode,
    /// By number, the canonical blocks' snapshots and total difficulties (the last is the tip).
    recent: BTreeMap<u64, Recent>,
    /// The numbers of `recent` by hash: a block's parent is found without a scan.
    recent_index: HashMap<B256, u64>,
    side: HashMap<B256, WireBlock>,
    pub delivery: DeliveryView,
    /// The parent hash this producer last sealed on (one block per parent).
    sealed_on: Option<B256>,
    /// A parent this producer failed to build on, and when to try again.
    retry: Option<(B256, u64)>,
    /// The highest milestone whose block this node holds: nothing at or below it is unwound.
    final_floor: u64,
    pub refused_count: u64,
    /// Catching up with peers ahead: ranges asked for.
    pub(super) sync: super::sync::RangeSync,
}

impl ChainHost {
    /// A host over `store` (which holds at least genesis with its meta); a validator passes
    /// its key. The recent canonical blocks' snapshots come from the store.
    pub fn open<S: BorStore>(
        spec: ChainSpec,
        key: Option<secp256k1::SecretKey>,
        exec: ExecMode,
        store: &S,
    ) -> Self {
        let (tip, _) = store.tip();
        let mut recent = BTreeMap::new();
        for number in (0..=tip.number).rev().take(RECENT_MAX) {
            if let (Some((_, hash)), Some(meta)) = (store.canonical(number), store.meta(number)) {
                recent.insert(
                    number,
                    Recent {
                        hash,
                        tip: meta.tip,
                        total_difficulty: meta.total_difficulty,
                    },
                );
            }
        }
        assert!(!recent.is_empty(), "the store holds its tip's snapshot");
        let recent_index = recent.iter().map(|(n, r)| (r.hash, *n)).collect();
        Self {
            me: key.as_ref().map(key_address),
            spec,
            key,
            exec,
            recent,
            recent_index,
            side: HashMap::new(),
            delivery: DeliveryView::default(),
            sealed_on: None,
            retry: None,
            final_floor: 0,
            refused_count: 0,
            sync: Default::default(),
        }
    }

    fn tip(&self) -> (&u64, &Recent) {
        self.recent.last_key_value().expect("the tip is kept")
    }

    pub fn head(&self) -> (u64, B256) {
        let (number, recent) = self.tip();
        (*number, recent.hash)
    }

    pub fn bor_tip(&self) -> &BorTip {
        &self.tip().1.tip
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.bor_tip().snapshot
    }

    /// The chain this node reports in its precommits: its canonical hashes after `milestone`.
    pub fn chain_vote<S: BorStore>(&self, store: &S) -> ChainVote {
        let start = self.delivery.milestone.number + 1;
        let (head, _) = self.head();
        let hashes = (start..=head)
            .take(CHAIN_VOTE_HASHES_MAX)
            .map_while(|n| store.canonical(n).map(|(_, h)| h))
            .collect();
        ChainVote { start, hashes }
    }

    /// When the producer's turn comes for the block after the tip (ms), if this node is a
    /// producer of it and has not sealed on this parent yet.
    pub fn poll_timeout<S: BorStore>(&self, store: &S) -> Option<u64> {
        let me = self.me?;
        let (parent, hash) = store.tip();
        if self.sealed_on == Some(hash) || self.behind() {
            return None;
        }
        let turn = turn(&self.spec, self.snapshot(), &parent, &me)?;
        let retry = self
            .retry
            .filter(|(on, _)| *on == hash)
            .map_or(0, |(_, at)| at);
        Some((turn.earliest_secs * 1_000).max(retry))
    }

    /// The producer's timer: seals the block after the tip from `candidates` if its turn has
    /// come. A producer that cannot (a span Delivery has not decided) waits.
    pub fn handle_timeout<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        candidates: &mut dyn TxSource,
    ) -> Result<ChainEffects, StoreFailed> {
        let mut effects = ChainEffects::default();
        let (Some(me), Some(key)) = (self.me, self.key) else {
            return Ok(effects);
        };
        let (parent, parent_hash) = store.tip();
        if self.sealed_on == Some(parent_hash) || self.behind() {
            return Ok(effects);
        }
        let Some(turn) = turn(&self.spec, self.snapshot(), &parent, &me) else {
            return Ok(effects);
        };
        let retry = self
            .retry
            .filter(|(on, _)| *on == parent_hash)
            .map_or(0, |(_, at)| at);
        if now_ms < (turn.earliest_secs * 1_000).max(retry) {
            return Ok(effects);
        }
        if Self::pinned(&parent).is_some_and(|p| p > self.delivery.height) {
            // This node's Delivery chain is behind the one the parent was made from.
            self.retry = Some((parent_hash, now_ms + PRODUCE_RETRY_MS));
            return Ok(effects);
        }
        let current = self.bor_tip().current_span.clone();
        let facts = self
            .delivery
            .facts(self.delivery.height, &current)
            .expect("the view has reached its own height");
        let calls = match system_calls(&self.spec, &current, parent.number + 1, &facts) {
            Ok(calls) => calls,
            Err(e) => {
                tracing::warn!(%e, "cannot produce");
                self.retry = Some((parent_hash, now_ms + PRODUCE_RETRY_MS));
                return Ok(effects);
            }
        };
        let built = {
            let view = store.view();
            produce(
                &self.spec,
                &view,
                candidates,
                Production {
                    parent_hash,
                    timestamp: turn.earliest_secs.max(now_ms / 1_000),
                    parent,
                    turn,
                    vanity: Vanity {
                        delivery_height: self.delivery.height,
                    },
                    system_calls: calls,
                    key: &key,
                    signer: me,
                },
                self.exec,
            )
        };
        self.sealed_on = Some(parent_hash);
        match built {
            Ok(built) => {
                let wire = WireBlock {
                    header: built.header.clone(),
                    txs: built.txs.clone(),
                };
                self.commit(store, built, &facts, turn.difficulty)?;
                effects.head = Some(self.head());
                effects.broadcast.push(wire);
            }
            Err(e) => {
                tracing::warn!(%e, "producing failed");
                self.sealed_on = None;
                self.retry = Some((parent_hash, now_ms + PRODUCE_RETRY_MS));
            }
        }
        Ok(effects)
    }

    /// The Delivery chain moved: blocks that waited for it may import now.
    pub fn handle_delivery<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
    ) -> Result<ChainEffects, StoreFailed> {
        let mut effects = ChainEffects::default();
        self.advance(store, now_ms, &mut effects)?;
        effects.fetch.extend(self.missing_milestone());
        Ok(effects)
    }

    /// A block from a peer.
    pub fn handle_block<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        block: WireBlock,
    ) -> Result<ChainEffects, StoreFailed> {
        let mut effects = ChainEffects::default();
        let hash = block.header.hash_slow();
        let number = block.header.number;
        if block.txs.len() > BLOCK_TXS_MAX {
            self.refuse(
                &mut effects,
                hash,
                BorBlockError::Transactions {
                    included: 0,
                    listed: block.txs.len(),
                },
            );
            return Ok(effects);
        }
        let known = store.canonical(number).is_some_and(|(_, h)| h == hash);
        if known || self.side.contains_key(&hash) {
            return Ok(effects);
        }
        if number <= self.final_floor {
            // Where this node holds final blocks, no other block counts.
            return Ok(effects);
        }
        if self.side.len() >= SIDE_BLOCKS_MAX {
            // Keep room: drop the side block furthest from the tip.
            if let Some(far) = self
                .side
                .iter()
                .min_by_key(|(h, b)| (b.header.number, **h))
                .map(|(h, _)| *h)
            {
                self.side.remove(&far);
            }
        }
        let parent = block.header.parent_hash;
        self.side.insert(hash, block);
        let parent_known =
            self.side.contains_key(&parent) || self.recent_index.contains_key(&parent);
        if !parent_known {
            effects.fetch.push(parent);
        }
        self.advance(store, now_ms, &mut effects)?;
        Ok(effects)
    }

    /// Where the chain can go from the blocks held: extend the tip, or move to a heavier
    /// branch above the milestone. Each round imports or refuses at least one block, or ends.
    fn advance<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        effects: &mut ChainEffects,
    ) -> Result<(), StoreFailed> {
        let start_head = self.head();
        self.update_floor();
        while let Some(branch) = self.best_branch() {
            let refused_before = effects.refused.len();
            let moved = self.switch_to(store, now_ms, branch, effects)?;
            // Holding the milestone now forbids going back below it.
            self.update_floor();
            if !moved && effects.refused.len() == refused_before {
                break;
            }
        }
        self.update_floor();
        if self.head() != start_head {
            effects.head = Some(self.head());
        }
        Ok(())
    }

    /// The Delivery height a header pins, if it names one.
    fn pinned(header: &Header) -> Option<DeliveryHeight> {
        let vanity: &[u8; 32] = header.extra_data.get(..32)?.try_into().ok()?;
        Vanity::decode(vanity).map(|v| v.delivery_height)
    }

    /// The heaviest branch of side blocks that hangs off a recent canonical block at or above
    /// the milestone and, counting only the blocks this node can import now (their Delivery
    /// height reached), outweighs the tip: (fork point, blocks in order).
    fn best_branch(&self) -> Option<(u64, Vec<B256>)> {
        let (_, tip) = self.tip();
        let milestone = self.delivery.milestone;
        let holds_milestone = self.holds_milestone();
        let mut candidates = Vec::new();
        for hash in self.side.keys() {
            // Walk down to a canonical ancestor.
            let mut path = vec![*hash];
            let mut parent = self.side[hash].header.parent_hash;
            let mut fork = None;
            for _ in 0..SIDE_BLOCKS_MAX {
                if let Some(number) = self.recent_index.get(&parent) {
                    fork = Some((*number, self.recent[number].total_difficulty));
                    break;
                }
                let Some(up) = self.side.get(&parent) else {
                    break;
                };
                path.push(parent);
                parent = up.header.parent_hash;
            }
            let Some((fork_number, fork_td)) = fork else {
                continue;
            };
            // Final blocks are never taken off.
            if fork_number < self.final_floor {
                continue;
            }
            path.reverse();
            let importable = path
                .iter()
                .take_while(|h| {
                    Self::pinned(&self.side[*h].header).is_some_and(|p| p <= self.delivery.height)
                })
                .count();
            path.truncate(importable);
            if path.is_empty() {
                continue;
            }
            let total = fork_td
                + path
                    .iter()
                    .map(|h| self.side[h].header.difficulty.saturating_to::<u128>())
                    .sum::<u128>();
            let final_branch = !holds_milestone && path.contains(&milestone.hash);
            candidates.push((final_branch, total, fork_number, path));
        }
        // A node without the milestone's block takes the branch that holds it, however light;
        // otherwise the heaviest branch that outweighs the tip.
        let any_final = candidates.iter().any(|c| c.0);
        candidates
            .into_iter()
            .filter(|(fin, total, _, _)| {
                if any_final {
                    *fin
                } else {
                    *total > tip.total_difficulty
                }
            })
            .max_by(|a, b| {
                a.1.cmp(&b.1)
                    .then(b.3.len().cmp(&a.3.len()))
                    .then(b.3.cmp(&a.3))
            })
            .map(|(_, _, fork, path)| (fork, path))
    }

    /// Whether this node's canonical chain holds the milestone's block.
    fn holds_milestone(&self) -> bool {
        let m = self.delivery.milestone;
        self.recent.get(&m.number).is_some_and(|r| r.hash == m.hash) || m.number == 0
    }

    /// The milestone's block, if this node's head has passed its number on another branch:
    /// fetch it.
    pub fn missing_milestone(&self) -> Option<B256> {
        let m = self.delivery.milestone;
        let (head, _) = self.head();
        (head >= m.number && !self.holds_milestone() && !self.side.contains_key(&m.hash))
            .then_some(m.hash)
    }

    /// Raises the floor below which nothing is unwound once this node holds the milestone.
    fn update_floor(&mut self) {
        let m = self.delivery.milestone;
        if self.holds_milestone() {
            self.final_floor = self.final_floor.max(m.number);
        }
    }

    /// Whether this node has seen blocks beyond its head that it could not take yet: it is
    /// syncing, and a producer that is syncing does not seal (it would fork off its own).
    pub fn behind(&self) -> bool {
        let (head, _) = self.head();
        self.side.values().any(|b| b.header.number > head + 1)
    }

    /// Parents of held blocks that this node has nowhere, to fetch from peers (at most
    /// `limit`, the lowest first).
    pub fn missing_parents(&self, limit: usize) -> Vec<B256> {
        let mut missing: Vec<(u64, B256)> = self
            .side
            .values()
            .filter(|b| {
                let p = b.header.parent_hash;
                !self.side.contains_key(&p) && !self.recent_index.contains_key(&p)
            })
            .map(|b| (b.header.number, b.header.parent_hash))
            .collect();
        missing.sort();
        missing.dedup_by_key(|(_, h)| *h);
        missing.into_iter().take(limit).map(|(_, h)| h).collect()
    }

    /// The canonical hash this node holds at `number`, if recent.
    pub fn recent_hash(&self, number: u64) -> Option<B256> {
        self.recent.get(&number).map(|r| r.hash)
    }

    /// Moves the canonical chain to `fork` then `path`; returns whether blocks were put on. A
    /// block that fails is refused with its descendants; the old chain stays in the side set,
    /// so the next round takes it back if it is heavier.
    fn switch_to<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        (fork, path): (u64, Vec<B256>),
        effects: &mut ChainEffects,
    ) -> Result<bool, StoreFailed> {
        let (tip_number, _) = self.head();
        let taken_off = tip_number - fork;
        for number in fork + 1..=tip_number {
            if let (Some((header, hash)), Some(txs)) = (store.canonical(number), store.body(number))
            {
                self.side.insert(hash, WireBlock { header, txs });
            }
        }
        if taken_off > 0 {
            store
                .unwind_to(fork)
                .map_err(|e| StoreFailed(Box::new(e)))?;
            self.recent.retain(|n, _| *n <= fork);
            self.recent_index.retain(|_, n| *n <= fork);
        }
        let mut put_on = 0;
        for hash in path {
            let Some(block) = self.side.get(&hash).cloned() else {
                break;
            };
            match self.import_one(store, now_ms, block)? {
                Imported::Yes => {
                    self.side.remove(&hash);
                    put_on += 1;
                }
                Imported::Waiting => break,
                Imported::Refused(why) => {
                    self.refuse(effects, hash, why);
                    self.drop_descendants(hash);
                    break;
                }
            }
        }
        if taken_off > 0 {
            effects.reorgs.push((taken_off, put_on));
        }
        Ok(put_on > 0)
    }

    fn import_one<S: BorStore>(
        &mut self,
        store: &mut S,
        now_ms: u64,
        block: WireBlock,
    ) -> Result<Imported, StoreFailed> {
        let (parent, _) = store.tip();
        let current = self.bor_tip().current_span.clone();
        let Some(pinned) = Self::pinned(&block.header) else {
            return Ok(Imported::Refused(BorBlockError::Vanity));
        };
        let parent_pinned = Self::pinned(&parent).unwrap_or_default();
        if pinned < parent_pinned {
            return Ok(Imported::Refused(BorBlockError::PinnedHeight {
                pinned,
                given: parent_pinned,
            }));
        }
        let Some(facts) = self.delivery.facts(pinned, &current) else {
            return Ok(Imported::Waiting);
        };
        let imported = {
            let view = store.view();
            import(
                &self.spec,
                &view,
                self.snapshot(),
                &current,
                &facts,
                &parent,
                block.header,
                block.txs,
                Some(now_ms / 1_000),
                self.exec,
            )
        };
        match imported {
            Ok((built, _)) => {
                let difficulty = built.header.difficulty.saturating_to();
                self.commit(store, built, &facts, difficulty)?;
                Ok(Imported::Yes)
            }
            Err(e) => Ok(Imported::Refused(e)),
        }
    }

    fn commit<S: BorStore>(
        &mut self,
        store: &mut S,
        built: BuiltBlock,
        facts: &DeliveryFacts,
        difficulty: u64,
    ) -> Result<(), StoreFailed> {
        let mut tip = self.bor_tip().clone();
        let td = self.tip().1.total_difficulty + u128::from(difficulty);
        let (number, hash) = (built.header.number, built.hash);
        tip.advance(&self.spec, &built.header, hash, facts)
            .map_err(|e| StoreFailed(Box::new(e)))?;
        let meta = ChainMeta {
            tip: tip.clone(),
            total_difficulty: td,
        };
        store
            .commit(built, meta)
            .map_err(|e| StoreFailed(Box::new(e)))?;
        self.recent.insert(
            number,
            Recent {
                hash,
                tip,
                total_difficulty: td,
            },
        );
        self.recent_index.insert(hash, number);
        while self.recent.len() > RECENT_MAX {
            if let Some((_, old)) = self.recent.pop_first() {
                self.recent_index.remove(&old.hash);
            }
        }
        Ok(())
    }

    fn refuse(&mut self, effects: &mut ChainEffects, hash: B256, why: BorBlockError) {
        self.refused_count += 1;
        self.side.remove(&hash);
        effects.refused.push((hash, why));
    }

    fn drop_descendants(&mut self, bad: B256) {
        let mut bad_set = vec![bad];
        loop {
            let children: Vec<B256> = self
                .side
                .iter()
                .filter(|(_, b)| bad_set.contains(&b.header.parent_hash))
                .map(|(h, _)| *h)
                .filter(|h| !bad_set.contains(h))
                .collect();
            if children.is_empty() {
                break;
            }
            for child in children {
                self.side.remove(&child);
                bad_set.push(child);
            }
        }
    }

    pub(super) fn recent_hash_index(&self, hash: &B256) -> bool {
        self.recent_index.contains_key(hash)
    }

    pub(super) fn holds_side(&self, hash: &B256) -> bool {
        self.side.contains_key(hash)
    }

    /// A block this node holds by hash (canonical or side), to answer a peer's fetch.
    pub fn block_by_hash<S: BorStore>(&self, store: &S, hash: &B256) -> Option<WireBlock> {
        if let Some(block) = self.side.get(hash) {
            return Some(block.clone());
        }
        let number = self.recent_index.get(hash)?;
        let (header, _) = store.canonical(*number)?;
        Some(WireBlock {
            header,
            txs: store.body(*number)?,
        })
    }
}

/// What became of one block put on the chain.
enum Imported {
    Yes,
    /// Its pinned Delivery height is ahead of this node's Delivery chain.
    Waiting,
    Refused(BorBlockError),
}

impl std::fmt::Debug for ChainHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut side: Vec<(u64, B256)> = self
            .side
            .iter()
            .map(|(h, b)| (b.header.number, *h))
            .collect();
        side.sort();
        f.debug_struct("ChainHost")
            .field("head", &self.head())
            .field("delivery_height", &self.delivery.height)
            .field("milestone", &self.delivery.milestone.number)
            .field("side", &side)
            .field("refused", &self.refused_count)
            .finish()
    }
}
