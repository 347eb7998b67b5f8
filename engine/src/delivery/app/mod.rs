//! The Delivery application: a deterministic state machine over committed blocks (a key-value
//! store, per-validator nonces, side-transaction outcomes, the validator set, spans and
//! milestones), with an application hash after every block. Each module gives a message its
//! stateful check, its side check and its post handler; this file dispatches to them.

pub mod span;

use super::{
    block::{
        Block, BlockDraft, BlockError, CheckTxError, CommitError, CommitVote, DeliveryTx,
        TIME_DRIFT_MAX_MS, TX_BYTES_PER_BLOCK_MAX, TxKind, side_signature_matches, verify_commit,
    },
    milestone::{self, Milestone},
    side_tx::{SIDE_TXS_PER_BLOCK_MAX, SideTx, SideTxResult, SideTxVote, tally},
    tendermint::DeliveryHeight,
    validators::{VALIDATORS_MAX, ValidatorSet},
};
use crate::chain::bor::span::Span;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use span::{ProposeSpan, ProposeSpanError, SIDE_PROPOSE_SPAN, SPANS_KEPT, SpanConfig};
use std::collections::BTreeMap;

/// Keys and values of the key-value state.
pub const KEY_LEN_MAX: usize = 64;

/// Side-transaction payload tags.
pub const SIDE_FACT: u8 = 0;
pub const SIDE_ADD_VALIDATOR: u8 = 1;
pub const SIDE_REMOVE_VALIDATOR: u8 = 2;

/// The bytes a validator signs with its verdict on a side payload (spec §1.4): nothing for a
/// span (no root chain verifies it), the payload itself for the demo's facts and validator
/// changes.
pub fn sign_data(payload: &[u8]) -> &[u8] {
    match payload.first() {
        Some(&SIDE_PROPOSE_SPAN) => &[],
        _ => payload,
    }
}

/// What one block changed: the application hash chains over these, and the store writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub kv: Vec<(Bytes, Bytes)>,
    pub nonces: Vec<(Address, u64)>,
    /// Side transactions decided at this block (those of two heights before).
    pub side_outcomes: Vec<(B256, SideTxResult)>,
    pub validators_changed: bool,
    /// The milestone this block decided, if it moved.
    pub milestone: Option<Milestone>,
    /// The span this block decided, if any.
    pub span: Option<u64>,
}

impl Changes {
    fn digest(&self, validators: &ValidatorSet) -> B256 {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.kv.len() as u32).to_be_bytes());
        for (k, v) in &self.kv {
            out.push(k.len() as u8);
            out.extend_from_slice(k);
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
        for (a, n) in &self.nonces {
            out.extend_from_slice(a.as_slice());
            out.extend_from_slice(&n.to_be_bytes());
        }
        for (h, r) in &self.side_outcomes {
            out.extend_from_slice(h.as_slice());
            out.push(*r as u8);
        }
        out.extend_from_slice(validators.hash().as_slice());
        if let Some(m) = &self.milestone {
            out.extend_from_slice(&m.number.to_be_bytes());
            out.extend_from_slice(m.hash.as_slice());
        }
        if let Some(span) = self.span {
            out.extend_from_slice(b"span");
            out.extend_from_slice(&span.to_be_bytes());
        }
        keccak256(out)
    }
}

/// The application state after block `height`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppState {
    pub chain_id: u64,
    pub height: DeliveryHeight,
    pub block_hash: B256,
    pub time_ms: u64,
    pub app_hash: B256,
    /// The validators of height `height + 1` (priorities advanced once per height).
    pub validators: ValidatorSet,
    /// The validators of `height`: they signed the commit the next block carries.
    pub last_validators: ValidatorSet,
    pub nonces: BTreeMap<Address, u64>,
    pub kv: BTreeMap<Bytes, Bytes>,
    /// Side transactions of the last two heights, awaiting their tally: (height, payloads).
    pub pending_side: Vec<(DeliveryHeight, Vec<Bytes>)>,
    /// The last final BTTC block (block 0 until validators agree on more).
    pub milestone: Milestone,
    /// The BTTC chain this Delivery chain makes spans for, if any.
    pub span_config: Option<SpanConfig>,
    /// The latest decided spans with the height whose block decided each, oldest first (at
    /// most [`SPANS_KEPT`]).
    pub spans: Vec<(DeliveryHeight, Span)>,
}

impl AppState {
    pub fn genesis(chain_id: u64, validators: &[Address], time_ms: u64) -> Self {
        let set = ValidatorSet::equal(validators.iter().copied());
        Self {
            chain_id,
            height: DeliveryHeight(0),
            block_hash: B256::ZERO,
            time_ms,
            app_hash: keccak256(set.encode()),
            validators: set.clone(),
            last_validators: set,
            nonces: BTreeMap::new(),
            kv: BTreeMap::new(),
            pending_side: Vec::new(),
            milestone: Milestone::default(),
            span_config: None,
            spans: Vec::new(),
        }
    }

    /// This chain makes spans for a BTTC chain: span 0 holds the genesis validators.
    pub fn with_spans(mut self, config: SpanConfig) -> Self {
        let validators = span::span_validators(&self.validators);
        self.spans = vec![(
            DeliveryHeight(0),
            Span::first(&config.params, &validators, config.bttc_chain_id),
        )];
        self.span_config = Some(config);
        self.app_hash = keccak256([self.app_hash.as_slice(), b"spans"].concat());
        self
    }

    /// The last decided span.
    pub fn last_span(&self) -> Option<&Span> {
        self.spans.last().map(|(_, s)| s)
    }

    /// The span holding BTTC block `number`, if still kept.
    pub fn span_of(&self, number: u64) -> Option<&Span> {
        self.spans
            .iter()
            .rev()
            .map(|(_, s)| s)
            .find(|s| s.contains(number))
    }

    /// Side payloads the proposer of the next block includes, given its BTTC head.
    pub fn due_messages(&self, bttc_head: Option<u64>) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let (Some(config), Some(last), Some(head)) =
            (&self.span_config, self.last_span(), bttc_head)
            && let Some(msg) = span::due(config, last, head, self.block_hash)
            && !self.span_pending(msg.id)
        {
            out.push(msg.encode());
        }
        out
    }

    /// Whether a proposal of span `id` awaits its tally.
    fn span_pending(&self, id: u64) -> bool {
        self.pending_side.iter().flat_map(|(_, p)| p).any(|p| {
            p.first() == Some(&SIDE_PROPOSE_SPAN)
                && ProposeSpan::decode(p).is_ok_and(|m| m.id == id)
        })
    }

    /// The span module's stateful check of a proposal at inclusion.
    fn check_span(&self, payload: &[u8]) -> Result<(), CheckTxError> {
        let msg = ProposeSpan::decode(payload).map_err(|_| CheckTxError::SidePayload)?;
        let (Some(config), Some(last)) = (&self.span_config, self.last_span()) else {
            return Err(ProposeSpanError::NoSpans.into());
        };
        if self.span_pending(msg.id) {
            return Err(ProposeSpanError::Pending(msg.id).into());
        }
        Ok(span::check(config, last, self.block_hash, &msg)?)
    }

    /// A copy without the key-value entries and nonces (a store keeps those as changes).
    pub fn without_entries(&self) -> Self {
        Self {
            chain_id: self.chain_id,
            height: self.height,
            block_hash: self.block_hash,
            time_ms: self.time_ms,
            app_hash: self.app_hash,
            validators: self.validators.clone(),
            last_validators: self.last_validators.clone(),
            nonces: BTreeMap::new(),
            kv: BTreeMap::new(),
            pending_side: self.pending_side.clone(),
            milestone: self.milestone,
            span_config: self.span_config,
            spans: self.spans.clone(),
        }
    }

    pub fn nonce(&self, signer: &Address) -> u64 {
        self.nonces.get(signer).copied().unwrap_or(0)
    }

    /// The header fields of the next block, proposed by `proposer` at `time_ms` (raised to
    /// follow the previous block's time).
    pub fn draft(&self, proposer: Address, time_ms: u64) -> BlockDraft {
        BlockDraft {
            height: self.height.next(),
            time_ms: time_ms.max(self.time_ms + 1),
            proposer,
            prev_hash: self.block_hash,
            app_hash: self.app_hash,
            validators_hash: self.validators.hash(),
        }
    }

    /// Checks a transaction against the state with `nonces` already used by earlier
    /// transactions of the same block.
    fn check_tx(
        &self,
        tx: &DeliveryTx,
        used: &BTreeMap<Address, u64>,
        proposer: Address,
    ) -> Result<Address, CheckTxError> {
        let signer = tx.signer(self.chain_id).ok_or(CheckTxError::Signature)?;
        if !self.validators.contains(&signer) {
            return Err(CheckTxError::NotValidator(signer));
        }
        if tx.kind == TxKind::Due {
            if signer != proposer {
                return Err(CheckTxError::NotProposer { signer, proposer });
            }
            if tx.nonce != 0 {
                return Err(CheckTxError::DueNonce(tx.nonce));
            }
            return match tx.payload.first() {
                Some(&SIDE_PROPOSE_SPAN) => self.check_span(&tx.payload).map(|()| signer),
                _ => Err(CheckTxError::SidePayload),
            };
        }
        let expected = used
            .get(&signer)
            .copied()
            .unwrap_or_else(|| self.nonce(&signer));
        if tx.nonce != expected {
            return Err(CheckTxError::Nonce {
                got: tx.nonce,
                expected,
            });
        }
        match tx.kind {
            TxKind::Set => {
                let key_len = tx.payload.first().copied().unwrap_or(0) as usize;
                if key_len == 0 || key_len > KEY_LEN_MAX || tx.payload.len() < 1 + key_len {
                    return Err(CheckTxError::Key(key_len));
                }
            }
            TxKind::Side => match tx.payload.first() {
                Some(&SIDE_FACT) => {}
                Some(&(SIDE_ADD_VALIDATOR | SIDE_REMOVE_VALIDATOR)) if tx.payload.len() == 21 => {}
                _ => return Err(CheckTxError::SidePayload),
            },
            TxKind::Due => unreachable!("handled above"),
        }
        Ok(signer)
    }

    /// Which of `candidates` (in order) may go into the next block: each checked as if the
    /// ones before it were included. At most `limit` are taken.
    pub fn select_txs(&self, candidates: &[DeliveryTx], limit: usize) -> Vec<DeliveryTx> {
        let mut used = BTreeMap::new();
        let mut out = Vec::new();
        let mut side = 0;
        let mut bytes = 0;
        for tx in candidates {
            if out.len() >= limit || bytes + tx.encoded_len() > TX_BYTES_PER_BLOCK_MAX {
                break;
            }
            if tx.kind != TxKind::Set && side >= SIDE_TXS_PER_BLOCK_MAX {
                continue;
            }
            if tx.kind == TxKind::Due {
                continue;
            }
            if let Ok(signer) = self.check_tx(tx, &used, Address::ZERO) {
                side += 1 - usize::from(tx.kind == TxKind::Set);
                bytes += tx.encoded_len();
                used.insert(signer, tx.nonce + 1);
                out.push(tx.clone());
            }
        }
        out
    }

    /// Whether `block` may follow this state. `now_ms` bounds the block's time when checking
    /// a fresh proposal; catch-up of committed blocks passes `None`.
    pub fn check_block(&self, block: &Block, now_ms: Option<u64>) -> Result<(), BlockError> {
        let h = &block.header;
        if h.height != self.height.next() {
            return Err(BlockError::Height {
                got: h.height,
                expected: self.height.next(),
            });
        }
        if h.prev_hash != self.block_hash {
            return Err(BlockError::Header("prev_hash"));
        }
        if h.app_hash != self.app_hash {
            return Err(BlockError::Header("app_hash"));
        }
        if h.validators_hash != self.validators.hash() {
            return Err(BlockError::Header("validators_hash"));
        }
        if !self.validators.contains(&h.proposer) {
            return Err(BlockError::Header("proposer"));
        }
        if h.time_ms <= self.time_ms {
            return Err(BlockError::TimeNotIncreasing {
                time_ms: h.time_ms,
                prev_ms: self.time_ms,
            });
        }
        if let Some(now_ms) = now_ms
            && h.time_ms > now_ms + TIME_DRIFT_MAX_MS
        {
            return Err(BlockError::TimeAhead {
                time_ms: h.time_ms,
                now_ms,
            });
        }
        // The hashes over contents must match what the header names.
        let rebuilt = Block::new(
            self.draft(h.proposer, h.time_ms),
            block.txs.clone(),
            block.last_commit.clone(),
        );
        if rebuilt.header != *h {
            return Err(BlockError::Header("txs_hash or last_commit_hash"));
        }
        if self.height.0 == 0 {
            if !block.last_commit.is_empty() {
                return Err(CommitError::FirstBlock.into());
            }
        } else {
            verify_commit(
                self.chain_id,
                &self.last_validators,
                self.height,
                self.block_hash,
                &block.last_commit,
            )?;
        }
        let bytes: usize = block.txs.iter().map(DeliveryTx::encoded_len).sum();
        if bytes > TX_BYTES_PER_BLOCK_MAX {
            return Err(BlockError::TxBytes { bytes });
        }
        let count = block.side_txs().count();
        if count > SIDE_TXS_PER_BLOCK_MAX {
            return Err(BlockError::SideTxs { count });
        }
        let mut used = BTreeMap::new();
        let mut spans = 0;
        for (index, tx) in block.txs.iter().enumerate() {
            let signer = self
                .check_tx(tx, &used, h.proposer)
                .map_err(|source| BlockError::Tx { index, source })?;
            if tx.kind == TxKind::Due {
                spans += 1;
                if spans > 1 {
                    return Err(BlockError::Tx {
                        index,
                        source: CheckTxError::SecondSpan,
                    });
                }
            } else {
                used.insert(signer, tx.nonce + 1);
            }
        }
        Ok(())
    }

    /// Applies a checked block: its transactions, then the tally of the side transactions of
    /// two heights before from the side results its last commit carries. Validator changes
    /// decided here take effect at the next height.
    pub fn apply(&mut self, block: &Block) -> Changes {
        let mut changes = Changes::default();
        for tx in &block.txs {
            if tx.kind == TxKind::Due {
                continue;
            }
            let Some(signer) = tx.signer(self.chain_id) else {
                continue;
            };
            let nonce = self.nonce(&signer) + 1;
            self.nonces.insert(signer, nonce);
            changes.nonces.push((signer, nonce));
            if tx.kind == TxKind::Set {
                let key_len = tx.payload[0] as usize;
                let key = tx.payload.slice(1..1 + key_len);
                let value = tx.payload.slice(1 + key_len..);
                self.kv.insert(key.clone(), value.clone());
                changes.kv.push((key, value));
            }
        }

        let height = block.header.height;
        let mut next_set: Option<Vec<Address>> = None;
        if let Some(pos) = self
            .pending_side
            .iter()
            .position(|(h, _)| h.0 + 2 == height.0)
        {
            let (_, payloads) = self.pending_side.remove(pos);
            let results: Vec<SideTxVote> = block
                .last_commit
                .iter()
                .flat_map(CommitVote::side_votes)
                .collect();
            for payload in payloads {
                let tx_hash = SideTx {
                    payload: payload.clone(),
                }
                .hash();
                let votes: Vec<SideTxVote> = results
                    .iter()
                    .filter(|v| {
                        v.tx_hash == tx_hash && side_signature_matches(v, sign_data(&payload))
                    })
                    .copied()
                    .collect();
                let result = tally(&self.last_validators, &votes);
                changes.side_outcomes.push((tx_hash, result));
                let mut key = b"side/".to_vec();
                key.extend_from_slice(tx_hash.as_slice());
                let record = Bytes::from(vec![result as u8]);
                self.kv.insert(Bytes::from(key.clone()), record.clone());
                changes.kv.push((Bytes::from(key), record));
                if result == SideTxResult::Yes && payload[0] == SIDE_PROPOSE_SPAN {
                    if let (Some(config), Some(last), Ok(msg)) = (
                        &self.span_config,
                        self.last_span(),
                        ProposeSpan::decode(&payload),
                    ) && let Some(next) = span::post(config, last, &self.last_validators, &msg)
                    {
                        changes.span = Some(next.id);
                        self.spans.push((height, next));
                        if self.spans.len() > SPANS_KEPT {
                            self.spans.remove(0);
                        }
                    }
                } else if result == SideTxResult::Yes && payload[0] != SIDE_FACT {
                    let set = next_set.get_or_insert_with(|| {
                        self.validators
                            .validators()
                            .iter()
                            .map(|v| v.address)
                            .collect()
                    });
                    let address = Address::from_slice(&payload[1..21]);
                    if payload[0] == SIDE_ADD_VALIDATOR {
                        if !set.contains(&address) && set.len() < VALIDATORS_MAX {
                            set.push(address);
                        }
                    } else if set.len() > 1 {
                        set.retain(|a| *a != address);
                    }
                }
            }
        }
        self.pending_side.retain(|(h, _)| h.0 + 2 > height.0);
        let start = self.milestone.number + 1;
        let votes = block
            .last_commit
            .iter()
            .map(|c| (c.vote.vote.validator, &c.chain));
        if let Some((number, hash)) = milestone::decide(&self.last_validators, start, votes) {
            self.milestone = Milestone {
                number,
                hash,
                delivery_height: height.0,
            };
            changes.milestone = Some(self.milestone);
        }
        let side: Vec<Bytes> = block.side_txs().map(|t| t.payload.clone()).collect();
        if !side.is_empty() {
            self.pending_side.push((height, side));
        }

        self.last_validators = self.validators.clone();
        let current: Vec<Address> = self
            .validators
            .validators()
            .iter()
            .map(|v| v.address)
            .collect();
        match next_set.map(|mut m| {
            m.sort();
            m
        }) {
            Some(members) if members != current => {
                self.validators = ValidatorSet::equal(members);
                changes.validators_changed = true;
            }
            _ => self.validators.increment_proposer_priority(1),
        }
        self.app_hash = keccak256(
            [
                self.app_hash.as_slice(),
                changes.digest(&self.validators).as_slice(),
            ]
            .concat(),
        );
        self.height = height;
        self.block_hash = block.hash();
        self.time_ms = block.header.time_ms;
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::{
        block::SideEntry,
        side_tx::sign_side_tx,
        signing::{key_address, sign_vote},
        tendermint::{Vote, VoteKind},
    };
    use secp256k1::SecretKey;

    const CHAIN: u64 = 9;

    fn keys(n: u8) -> Vec<SecretKey> {
        (1..=n)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect()
    }

    /// The commit of the state's tip by `signers`, each attaching `side(i)` results.
    fn commit(
        state: &AppState,
        keys: &[SecretKey],
        side: impl Fn(usize) -> Vec<SideEntry>,
    ) -> Vec<CommitVote> {
        let mut commit = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let vote = sign_vote(
                    CHAIN,
                    k,
                    Vote {
                        kind: VoteKind::Precommit,
                        height: state.height,
                        round: 0,
                        value: Some(state.block_hash),
                        validator: key_address(k),
                    },
                );
                CommitVote::new(CHAIN, k, vote, side(i), Default::default())
            })
            .collect::<Vec<_>>();
        commit.sort_by_key(|c| c.vote.vote.validator);
        commit
    }

    fn next_block(
        state: &AppState,
        keys: &[SecretKey],
        txs: Vec<DeliveryTx>,
        side: impl Fn(usize) -> Vec<SideEntry>,
    ) -> Block {
        let last_commit = if state.height.0 == 0 {
            Vec::new()
        } else {
            commit(state, keys, side)
        };
        let proposer = state.validators.proposer();
        Block::new(
            state.draft(proposer, state.time_ms + 1_000),
            txs,
            last_commit,
        )
    }

    #[test]
    fn side_votes_that_disagree_add_a_validator_two_heights_later() {
        let keys = keys(5);
        let members: Vec<Address> = keys[..4].iter().map(key_address).collect();
        let newcomer = key_address(&keys[4]);
        let mut state = AppState::genesis(CHAIN, &members, 0);
        let add = Bytes::from([&[SIDE_ADD_VALIDATOR][..], newcomer.as_slice()].concat());
        let fact = Bytes::from_static(&[SIDE_FACT, 7]);
        let txs = vec![
            DeliveryTx::signed(CHAIN, &keys[0], TxKind::Side, 0, add.clone()),
            DeliveryTx::signed(CHAIN, &keys[0], TxKind::Side, 1, fact.clone()),
            DeliveryTx::signed(
                CHAIN,
                &keys[1],
                TxKind::Set,
                0,
                Bytes::from_static(b"\x01kv"),
            ),
        ];
        // Height 1 carries the side transactions.
        let b1 = next_block(&state, &keys[..4], txs, |_| Vec::new());
        state.check_block(&b1, Some(1_000)).unwrap();
        state.apply(&b1);
        assert_eq!(
            state.kv.get(&Bytes::from_static(b"k")).unwrap().as_ref(),
            b"v"
        );
        // Height 2: precommits of height 1 carry results. All four approve the addition; only
        // two of four saw the fact (not a quorum) and two say No (not a quorum either).
        let entry = |payload: &Bytes, result| SideEntry {
            tx_hash: keccak256(payload),
            result,
            signature: sign_side_tx(&keys[0], result, payload),
        };
        let results = |i: usize| {
            let sign = |payload: &Bytes, result| SideEntry {
                signature: sign_side_tx(&keys[i], result, payload),
                ..entry(payload, result)
            };
            let fact_result = if i < 2 {
                SideTxResult::Yes
            } else {
                SideTxResult::No
            };
            vec![sign(&add, SideTxResult::Yes), sign(&fact, fact_result)]
        };
        let b2 = next_block(&state, &keys[..4], Vec::new(), |_| Vec::new());
        state.check_block(&b2, None).unwrap();
        state.apply(&b2);
        assert_eq!(state.validators.len(), 4);
        let b3 = next_block(&state, &keys[..4], Vec::new(), results);
        state.check_block(&b3, None).unwrap();
        let changes = state.apply(&b3);
        assert_eq!(
            changes.side_outcomes,
            vec![
                (keccak256(&add), SideTxResult::Yes),
                (keccak256(&fact), SideTxResult::Skip)
            ]
        );
        assert!(changes.validators_changed);
        // The new set holds five and takes effect at height 4.
        assert_eq!(state.validators.len(), 5);
        assert!(state.validators.contains(&newcomer));
        assert_eq!(state.last_validators.len(), 4);
        // A non-member's transaction and a replayed nonce are refused.
        let stranger = SecretKey::from_byte_array([42; 32]).unwrap();
        let bad = DeliveryTx::signed(
            CHAIN,
            &stranger,
            TxKind::Set,
            0,
            Bytes::from_static(b"\x01ab"),
        );
        let replay = DeliveryTx::signed(
            CHAIN,
            &keys[1],
            TxKind::Set,
            0,
            Bytes::from_static(b"\x01ab"),
        );
        let b4 = next_block(&state, &keys[..4], vec![bad.clone()], |_| Vec::new());
        assert!(matches!(
            state.check_block(&b4, None),
            Err(BlockError::Tx { .. })
        ));
        let b4 = next_block(&state, &keys[..4], vec![replay.clone()], |_| Vec::new());
        assert!(matches!(
            state.check_block(&b4, None),
            Err(BlockError::Tx { .. })
        ));
        assert!(state.select_txs(&[bad, replay], 10).is_empty());
    }

    #[test]
    fn the_same_blocks_give_the_same_app_hash_and_a_bad_header_is_refused() {
        let keys = keys(4);
        let members: Vec<Address> = keys.iter().map(key_address).collect();
        let run = || {
            let mut state = AppState::genesis(CHAIN, &members, 0);
            let mut hashes = Vec::new();
            for i in 0..5u64 {
                let tx = DeliveryTx::signed(
                    CHAIN,
                    &keys[0],
                    TxKind::Set,
                    i,
                    Bytes::from(vec![1, b'k', i as u8]),
                );
                let b = next_block(&state, &keys, vec![tx], |_| Vec::new());
                state.check_block(&b, None).unwrap();
                state.apply(&b);
                hashes.push(state.app_hash);
            }
            (state, hashes)
        };
        let (state, first) = run();
        assert_eq!(first, run().1);
        assert_eq!(first.len(), 5);
        let mut b = next_block(&state, &keys, Vec::new(), |_| Vec::new());
        b.header.app_hash = B256::ZERO;
        assert_eq!(
            state.check_block(&b, None),
            Err(BlockError::Header("app_hash"))
        );
        let b = next_block(&state, &keys[..2], Vec::new(), |_| Vec::new());
        assert!(matches!(
            state.check_block(&b, None),
            Err(BlockError::Commit(_))
        ));
    }

    #[test]
    fn the_proposer_includes_a_due_span_which_is_decided_with_its_votes() {
        use crate::delivery::side_tx::sign_side_tx;
        let keys = keys(4);
        let members: Vec<Address> = keys.iter().map(key_address).collect();
        let config = SpanConfig {
            params: crate::chain::spec::DEVNET_BOR,
            bttc_chain_id: 1029,
        };
        let mut state = AppState::genesis(CHAIN, &members, 0).with_spans(config);
        let key_of = |a: Address| *keys.iter().find(|k| key_address(k) == a).unwrap();
        // Nothing is due before the proposer knows a head.
        assert!(state.due_messages(None).is_empty());
        let due = state.due_messages(Some(3));
        assert_eq!(due.len(), 1);
        let proposer = state.validators.proposer();
        let tx = |k: &SecretKey, nonce, payload: &Bytes| {
            DeliveryTx::signed(CHAIN, k, TxKind::Due, nonce, payload.clone())
        };
        let other = keys.iter().find(|k| key_address(k) != proposer).unwrap();

        // Signed by someone else, with a nonce, twice, or for a later span: refused.
        for (txs, why) in [
            (vec![tx(other, 0, &due[0])], "not the proposer"),
            (vec![tx(&key_of(proposer), 1, &due[0])], "a nonce"),
            (
                vec![
                    tx(&key_of(proposer), 0, &due[0]),
                    tx(&key_of(proposer), 0, &due[0]),
                ],
                "twice",
            ),
        ] {
            let b = next_block(&state, &keys, txs, |_| Vec::new());
            assert!(
                matches!(state.check_block(&b, None), Err(BlockError::Tx { .. })),
                "{why}"
            );
        }
        let mut later = ProposeSpan::decode(&due[0]).unwrap();
        later.id = 2;
        let b = next_block(
            &state,
            &keys,
            vec![tx(&key_of(proposer), 0, &later.encode())],
            |_| Vec::new(),
        );
        assert!(matches!(
            state.check_block(&b, None),
            Err(BlockError::Tx {
                source: CheckTxError::Span(ProposeSpanError::Span(_)),
                ..
            })
        ));

        // Included at height 1, not due again while pending, decided at height 3.
        let b1 = next_block(
            &state,
            &keys,
            vec![tx(&key_of(proposer), 0, &due[0])],
            |_| Vec::new(),
        );
        state.check_block(&b1, None).unwrap();
        state.apply(&b1);
        assert!(state.due_messages(Some(3)).is_empty(), "pending");
        let b2 = next_block(&state, &keys, Vec::new(), |_| Vec::new());
        state.apply(&b2);
        let hash = keccak256(&due[0]);
        let yes = |i: usize| {
            vec![SideEntry {
                tx_hash: hash,
                result: SideTxResult::Yes,
                signature: sign_side_tx(&keys[i], SideTxResult::Yes, &[]),
            }]
        };
        let b3 = next_block(&state, &keys, Vec::new(), yes);
        state.check_block(&b3, None).unwrap();
        let changes = state.apply(&b3);
        assert_eq!(changes.span, Some(1));
        let span = state.last_span().unwrap();
        assert_eq!((span.id, span.start_block, span.end_block), (1, 32, 63));
        assert_eq!(span.producers.len(), 4);
        // The next one is due once the head reaches block 32.
        assert!(state.due_messages(Some(31)).is_empty());
        assert_eq!(state.due_messages(Some(32)).len(), 1);
    }
}
