//! Delivery blocks: validator-signed transactions, headers, signed proposals, and commits whose
//! precommits carry side-transaction results; their binary codecs and validity checks.

use super::{
    milestone::ChainVote,
    side_tx::{SideTxResult, SideTxVote, side_tx_sign_hash},
    signing::{
        SIGNED_VOTE_LEN, SignedVote, decode_signed_vote, encode_signed_vote, key_address,
        verify_votes,
    },
    tendermint::{DeliveryHeight, Proposal, Round, Vote, VoteKind},
    validators::ValidatorSet,
    wal::{decode_proposal, encode_proposal},
};
use crate::{
    crypto::{recover_hash_signer, sign_hash_recoverable},
    primitives::{ByteReader, DecodeError},
};
use alloy_primitives::{Address, B256, Bytes, keccak256};
use secp256k1::SecretKey;

/// Transactions one block may carry.
pub const TXS_PER_BLOCK_MAX: usize = 1_000;
/// Bytes of one transaction's payload.
pub const TX_PAYLOAD_MAX: usize = 4_096;
/// Encoded bytes of all transactions of one block (leaves room for the commit in a block).
pub const TX_BYTES_PER_BLOCK_MAX: usize = 4 << 20;
/// Side results one precommit may carry (one per side transaction of a block).
pub const SIDE_RESULTS_MAX: usize = super::side_tx::SIDE_TXS_PER_BLOCK_MAX;
/// Encoded size of a block (bounds decoding and network frames).
pub const BLOCK_BYTES_MAX: usize = 6 << 20;
/// How far ahead of the local clock a proposed block's time may be.
pub const TIME_DRIFT_MAX_MS: u64 = 10_000;

const TX_DOMAIN: &[u8] = b"bttc/delivery/tx/v1";
const PROPOSAL_DOMAIN: &[u8] = b"bttc/delivery/proposal/v1";
const SIDE_RESULTS_DOMAIN: &[u8] = b"bttc/delivery/side-results/v1";

/// What a transaction does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// `key_len(1) ‖ key ‖ value`: writes one entry of the key-value state.
    Set = 1,
    /// A side transaction (spec §6.2): checked outside by every validator, tallied two heights
    /// later. Payload `0x00 ‖ fact` records a fact; `0x01 ‖ address` adds a validator and
    /// `0x02 ‖ address` removes one, when more than 2/3 vote yes.
    Side = 2,
    /// A side transaction the block's proposer includes because it is due (DESIGN.md §10.2),
    /// such as the next span: signed by the proposer, nonce 0, consuming no nonce.
    Due = 3,
}

/// A transaction signed by a validator; `nonce` counts the signer's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryTx {
    pub kind: TxKind,
    pub nonce: u64,
    pub payload: Bytes,
    pub signature: [u8; 65],
}

impl DeliveryTx {
    fn sign_hash(chain_id: u64, kind: TxKind, nonce: u64, payload: &[u8]) -> B256 {
        let mut bytes = Vec::with_capacity(TX_DOMAIN.len() + 17 + payload.len());
        bytes.extend_from_slice(TX_DOMAIN);
        bytes.extend_from_slice(&chain_id.to_be_bytes());
        bytes.push(kind as u8);
        bytes.extend_from_slice(&nonce.to_be_bytes());
        bytes.extend_from_slice(payload);
        keccak256(bytes)
    }

    pub fn signed(
        chain_id: u64,
        key: &SecretKey,
        kind: TxKind,
        nonce: u64,
        payload: Bytes,
    ) -> Self {
        let signature =
            sign_hash_recoverable(key, &Self::sign_hash(chain_id, kind, nonce, &payload));
        Self {
            kind,
            nonce,
            payload,
            signature,
        }
    }

    /// The signer, or `None` for a malformed signature.
    pub fn signer(&self, chain_id: u64) -> Option<Address> {
        recover_hash_signer(
            &Self::sign_hash(chain_id, self.kind, self.nonce, &self.payload),
            &self.signature,
        )
    }

    pub fn hash(&self) -> B256 {
        let mut out = Vec::new();
        self.encode(&mut out);
        keccak256(out)
    }

    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        1 + 8 + 4 + self.payload.len() + 65
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind as u8);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.signature);
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        let kind = match r.u8()? {
            1 => TxKind::Set,
            2 => TxKind::Side,
            3 => TxKind::Due,
            k => return Err(r.error(format!("transaction kind {k}"))),
        };
        let nonce = r.u64()?;
        let len = r.u32()? as usize;
        if len > TX_PAYLOAD_MAX {
            return Err(r.error(format!("payload of {len} bytes")));
        }
        let payload = Bytes::copy_from_slice(r.take(len)?);
        let signature = r.take(65)?.try_into().expect("65 bytes");
        Ok(Self {
            kind,
            nonce,
            payload,
            signature,
        })
    }
}

/// A block header. `app_hash` is the application state after the previous block (Tendermint's
/// convention), so a proposer need not execute its block to propose it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub height: DeliveryHeight,
    pub time_ms: u64,
    pub proposer: Address,
    pub prev_hash: B256,
    pub app_hash: B256,
    /// The validators of this height (members and powers).
    pub validators_hash: B256,
    pub txs_hash: B256,
    pub last_commit_hash: B256,
}

const HEADER_LEN: usize = 8 + 8 + 20 + 32 * 5;

impl Header {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(self.proposer.as_slice());
        for h in [
            self.prev_hash,
            self.app_hash,
            self.validators_hash,
            self.txs_hash,
            self.last_commit_hash,
        ] {
            out.extend_from_slice(h.as_slice());
        }
    }

    fn decode(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: r.height()?,
            time_ms: r.u64()?,
            proposer: r.address()?,
            prev_hash: r.b256()?,
            app_hash: r.b256()?,
            validators_hash: r.b256()?,
            txs_hash: r.b256()?,
            last_commit_hash: r.b256()?,
        })
    }

    /// The block hash: what consensus votes on.
    pub fn hash(&self) -> B256 {
        let mut out = Vec::with_capacity(HEADER_LEN);
        self.encode(&mut out);
        keccak256(out)
    }
}

/// One side result in a precommit: `tx_hash(32) ‖ result(1) ‖ has_sig(1) ‖ sig(65)?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideEntry {
    pub tx_hash: B256,
    pub result: SideTxResult,
    /// The signature over `keccak256(result ‖ sign_data)` (spec §1.4), for Yes/No results.
    pub signature: Option<[u8; 65]>,
}

/// A precommit with the side results and the BTTC chain its validator attached. Both (even
/// when empty) are signed together with the precommit's height, round, value and voter, so
/// that nobody can strip them or move them to another vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitVote {
    pub vote: SignedVote,
    pub side: Vec<SideEntry>,
    /// The validator's BTTC blocks after the last milestone (DESIGN.md §10.4).
    pub chain: ChainVote,
    /// Over `keccak256(domain ‖ chain_id ‖ height ‖ round ‖ value ‖ validator ‖ entries ‖
    /// chain vote)`.
    pub side_signature: [u8; 65],
}

fn side_results_hash(chain_id: u64, vote: &Vote, side: &[SideEntry], chain: &ChainVote) -> B256 {
    let mut bytes = Vec::with_capacity(SIDE_RESULTS_DOMAIN.len() + 80 + side.len() * 99);
    bytes.extend_from_slice(SIDE_RESULTS_DOMAIN);
    bytes.extend_from_slice(&chain_id.to_be_bytes());
    bytes.extend_from_slice(&vote.height.0.to_be_bytes());
    bytes.extend_from_slice(&vote.round.to_be_bytes());
    bytes.push(u8::from(vote.value.is_some()));
    bytes.extend_from_slice(vote.value.unwrap_or_default().as_slice());
    bytes.extend_from_slice(vote.validator.as_slice());
    encode_side_entries(side, &mut bytes);
    chain.encode(&mut bytes);
    keccak256(bytes)
}

fn encode_side_entries(side: &[SideEntry], out: &mut Vec<u8>) {
    out.extend_from_slice(&(side.len() as u32).to_be_bytes());
    for e in side {
        out.extend_from_slice(e.tx_hash.as_slice());
        out.push(e.result as u8);
        match e.signature {
            Some(sig) => {
                out.push(1);
                out.extend_from_slice(&sig);
            }
            None => out.push(0),
        }
    }
}

fn decode_side_entries(r: &mut ByteReader<'_>) -> Result<Vec<SideEntry>, DecodeError> {
    let count = r.u32()? as usize;
    if count > SIDE_RESULTS_MAX {
        return Err(r.error(format!("{count} side results")));
    }
    let mut side = Vec::with_capacity(count);
    for _ in 0..count {
        let tx_hash = r.b256()?;
        let result = match r.u8()? {
            0 => SideTxResult::Skip,
            1 => SideTxResult::Yes,
            2 => SideTxResult::No,
            b => return Err(r.error(format!("side result {b}"))),
        };
        let signature = if r.flag()? {
            Some(r.take(65)?.try_into().expect("65 bytes"))
        } else {
            None
        };
        side.push(SideEntry {
            tx_hash,
            result,
            signature,
        });
    }
    Ok(side)
}

impl CommitVote {
    /// A precommit with this validator's side results and chain vote, signed by `key`.
    pub fn new(
        chain_id: u64,
        key: &SecretKey,
        vote: SignedVote,
        side: Vec<SideEntry>,
        chain: ChainVote,
    ) -> Self {
        let side_signature =
            sign_hash_recoverable(key, &side_results_hash(chain_id, &vote.vote, &side, &chain));
        Self {
            vote,
            side,
            chain,
            side_signature,
        }
    }

    /// Checks the side results' signature (the vote's own is checked in batches elsewhere).
    pub fn side_signature_ok(&self, chain_id: u64) -> bool {
        let v = &self.vote.vote;
        recover_hash_signer(
            &side_results_hash(chain_id, v, &self.side, &self.chain),
            &self.side_signature,
        ) == Some(v.validator)
    }

    /// The side results as the tally reads them.
    pub fn side_votes(&self) -> impl Iterator<Item = SideTxVote> + '_ {
        self.side.iter().map(|e| SideTxVote {
            tx_hash: e.tx_hash,
            validator: self.vote.vote.validator,
            result: e.result,
            signature: e.signature,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&encode_signed_vote(&self.vote));
        encode_side_entries(&self.side, out);
        self.chain.encode(out);
        out.extend_from_slice(&self.side_signature);
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        let vote = decode_signed_vote(r.take(SIGNED_VOTE_LEN)?)
            .ok_or_else(|| r.error("malformed signed vote"))?;
        let side = decode_side_entries(r)?;
        let chain = ChainVote::decode(r)?;
        let side_signature = r.take(65)?.try_into().expect("65 bytes");
        Ok(Self {
            vote,
            side,
            chain,
            side_signature,
        })
    }
}

/// A Delivery block: header, transactions, and the commit of the previous height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<DeliveryTx>,
    pub last_commit: Vec<CommitVote>,
}

fn txs_hash(txs: &[DeliveryTx]) -> B256 {
    let mut out = Vec::new();
    for tx in txs {
        tx.encode(&mut out);
    }
    keccak256(out)
}

fn commit_hash(commit: &[CommitVote]) -> B256 {
    let mut out = Vec::new();
    for c in commit {
        c.encode(&mut out);
    }
    keccak256(out)
}

/// The fields a proposer chooses; the hashes over contents are computed.
#[derive(Debug, Clone)]
pub struct BlockDraft {
    pub height: DeliveryHeight,
    pub time_ms: u64,
    pub proposer: Address,
    pub prev_hash: B256,
    pub app_hash: B256,
    pub validators_hash: B256,
}

impl Block {
    pub fn new(draft: BlockDraft, txs: Vec<DeliveryTx>, last_commit: Vec<CommitVote>) -> Self {
        let header = Header {
            height: draft.height,
            time_ms: draft.time_ms,
            proposer: draft.proposer,
            prev_hash: draft.prev_hash,
            app_hash: draft.app_hash,
            validators_hash: draft.validators_hash,
            txs_hash: txs_hash(&txs),
            last_commit_hash: commit_hash(&last_commit),
        };
        Self {
            header,
            txs,
            last_commit,
        }
    }

    pub fn hash(&self) -> B256 {
        self.header.hash()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 8 + self.txs.len() * 128);
        self.header.encode(&mut out);
        out.extend_from_slice(&(self.txs.len() as u32).to_be_bytes());
        for tx in &self.txs {
            tx.encode(&mut out);
        }
        encode_commit(&self.last_commit, &mut out);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > BLOCK_BYTES_MAX {
            return Err(DecodeError::new(
                "delivery block",
                format!("{} bytes", bytes.len()),
            ));
        }
        let mut r = ByteReader::new(bytes, "delivery block");
        let block = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(block)
    }

    pub fn decode_from(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        let header = Header::decode(r)?;
        let count = r.u32()? as usize;
        if count > TXS_PER_BLOCK_MAX {
            return Err(r.error(format!("{count} transactions")));
        }
        let txs = (0..count)
            .map(|_| DeliveryTx::decode(r))
            .collect::<Result<_, _>>()?;
        let last_commit = decode_commit(r)?;
        Ok(Self {
            header,
            txs,
            last_commit,
        })
    }

    /// Side transactions in block order.
    pub fn side_txs(&self) -> impl Iterator<Item = &DeliveryTx> {
        self.txs.iter().filter(|t| t.kind != TxKind::Set)
    }
}

pub fn encode_commit(commit: &[CommitVote], out: &mut Vec<u8>) {
    out.extend_from_slice(&(commit.len() as u32).to_be_bytes());
    for c in commit {
        c.encode(out);
    }
}

pub fn decode_commit(r: &mut ByteReader<'_>) -> Result<Vec<CommitVote>, DecodeError> {
    let count = r.u32()? as usize;
    if count > super::validators::VALIDATORS_MAX {
        return Err(r.error(format!("{count} commit votes")));
    }
    (0..count).map(|_| CommitVote::decode(r)).collect()
}

/// A proposal with its proposer's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedProposal {
    pub proposal: Proposal,
    pub signature: [u8; 65],
}

fn proposal_hash(chain_id: u64, p: &Proposal) -> B256 {
    let mut bytes = Vec::with_capacity(PROPOSAL_DOMAIN.len() + 80);
    bytes.extend_from_slice(PROPOSAL_DOMAIN);
    bytes.extend_from_slice(&chain_id.to_be_bytes());
    encode_proposal(p, &mut bytes);
    keccak256(bytes)
}

impl SignedProposal {
    pub fn new(chain_id: u64, key: &SecretKey, proposal: Proposal) -> Self {
        debug_assert_eq!(key_address(key), proposal.proposer);
        Self {
            signature: sign_hash_recoverable(key, &proposal_hash(chain_id, &proposal)),
            proposal,
        }
    }

    pub fn verify(&self, chain_id: u64) -> bool {
        recover_hash_signer(&proposal_hash(chain_id, &self.proposal), &self.signature)
            == Some(self.proposal.proposer)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_proposal(&self.proposal, out);
        out.extend_from_slice(&self.signature);
    }

    pub fn decode(r: &mut ByteReader<'_>) -> Result<Self, DecodeError> {
        let proposal = decode_proposal(r)?;
        let signature = r.take(65)?.try_into().expect("65 bytes");
        Ok(Self {
            proposal,
            signature,
        })
    }
}

/// Why a block is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block height {got}, expected {expected}")]
    Height {
        got: DeliveryHeight,
        expected: DeliveryHeight,
    },
    #[error("header field {0} does not match this chain")]
    Header(&'static str),
    #[error("block time {time_ms} is not after the previous block's {prev_ms}")]
    TimeNotIncreasing { time_ms: u64, prev_ms: u64 },
    #[error("block time {time_ms} is more than {TIME_DRIFT_MAX_MS} ms ahead of {now_ms}")]
    TimeAhead { time_ms: u64, now_ms: u64 },
    #[error("transaction {index}: {source}")]
    Tx { index: usize, source: CheckTxError },
    #[error("{bytes} bytes of transactions, more than {TX_BYTES_PER_BLOCK_MAX}")]
    TxBytes { bytes: usize },
    #[error(
        "{count} side transactions, more than {}",
        super::side_tx::SIDE_TXS_PER_BLOCK_MAX
    )]
    SideTxs { count: usize },
    #[error("last commit: {0}")]
    Commit(#[from] CommitError),
}

/// Why a transaction may not go into the next block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckTxError {
    #[error("malformed signature")]
    Signature,
    #[error("signer {0} is not a validator")]
    NotValidator(Address),
    #[error("nonce {got}, expected {expected}")]
    Nonce { got: u64, expected: u64 },
    #[error("key of {0} bytes (1 to 64 allowed, followed by the value)")]
    Key(usize),
    #[error("malformed side transaction payload")]
    SidePayload,
    #[error("a due message signed by {signer}, not by the block's proposer {proposer}")]
    NotProposer { signer: Address, proposer: Address },
    #[error("a due message carries nonce {0}; due messages carry 0")]
    DueNonce(u64),
    #[error("a second span proposal in one block")]
    SecondSpan,
    #[error(transparent)]
    Span(#[from] super::app::span::ProposeSpanError),
}

/// Why a commit does not prove a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("the commit is empty")]
    Empty,
    #[error("the first block carries no last commit")]
    FirstBlock,
    #[error("vote {vote:?} is not a precommit for {value} at {height}/{round}")]
    NotFor {
        vote: Vote,
        value: B256,
        height: DeliveryHeight,
        round: Round,
    },
    #[error("{0} is not a validator")]
    NotValidator(Address),
    #[error("{0} is out of signer order or votes twice")]
    Order(Address),
    #[error("side results of {0} are not signed by it")]
    SideSignature(Address),
    #[error("power {power} is below the quorum {quorum}")]
    Quorum { power: i64, quorum: i64 },
    #[error("vote {index}: {source}")]
    Signature {
        index: usize,
        source: super::signing::VoteSignatureError,
    },
}

/// Checks that `commit` proves `value` at `height`: precommits of one round for `value`, sorted
/// strictly by signer address, each validly signed by a member of `validators`, holding more
/// than 2/3 of the power.
/// The vote signatures are verified as one batch.
pub fn verify_commit(
    chain_id: u64,
    validators: &ValidatorSet,
    height: DeliveryHeight,
    value: B256,
    commit: &[CommitVote],
) -> Result<Round, CommitError> {
    let Some(first) = commit.first() else {
        return Err(CommitError::Empty);
    };
    let round = first.vote.vote.round;
    let mut previous: Option<Address> = None;
    let mut power = 0;
    for c in commit {
        let v = &c.vote.vote;
        if v.kind != VoteKind::Precommit
            || v.height != height
            || v.round != round
            || v.value != Some(value)
        {
            return Err(CommitError::NotFor {
                vote: *v,
                value,
                height,
                round,
            });
        }
        if !validators.contains(&v.validator) {
            return Err(CommitError::NotValidator(v.validator));
        }
        // Sorted by signer, strictly, so a contract can check them in one pass (spec §1.4).
        if previous.is_some_and(|p| p >= v.validator) {
            return Err(CommitError::Order(v.validator));
        }
        previous = Some(v.validator);
        if !c.side_signature_ok(chain_id) {
            return Err(CommitError::SideSignature(v.validator));
        }
        power += validators.power_of(&v.validator);
    }
    let quorum = validators.quorum_power();
    if power < quorum {
        return Err(CommitError::Quorum { power, quorum });
    }
    let votes: Vec<SignedVote> = commit.iter().map(|c| c.vote).collect();
    if let Some((index, source)) = verify_votes(chain_id, &votes)
        .into_iter()
        .enumerate()
        .find_map(|(i, r)| r.err().map(|e| (i, e)))
    {
        return Err(CommitError::Signature { index, source });
    }
    Ok(round)
}

/// The yes-signatures a side result carries must recover to its validator over the signed
/// data; checked by the application when it applies outcomes.
pub fn side_signature_matches(entry: &SideTxVote, data: &[u8]) -> bool {
    match entry.signature {
        Some(sig) => {
            recover_hash_signer(&side_tx_sign_hash(entry.result, data), &sig)
                == Some(entry.validator)
        }
        None => entry.result == SideTxResult::Skip || data.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signing::sign_vote;

    fn keys() -> Vec<SecretKey> {
        (1..=4)
            .map(|i| SecretKey::from_byte_array([i; 32]).unwrap())
            .collect()
    }

    fn block(keys: &[SecretKey]) -> Block {
        let tx = DeliveryTx::signed(7, &keys[0], TxKind::Set, 0, Bytes::from_static(b"\x01ab"));
        let prev = B256::repeat_byte(9);
        let commit = keys[..3]
            .iter()
            .map(|k| {
                let vote = sign_vote(
                    7,
                    k,
                    Vote {
                        kind: VoteKind::Precommit,
                        height: DeliveryHeight(4),
                        round: 1,
                        value: Some(prev),
                        validator: key_address(k),
                    },
                );
                let side = vec![SideEntry {
                    tx_hash: B256::repeat_byte(3),
                    result: SideTxResult::Skip,
                    signature: None,
                }];
                CommitVote::new(7, k, vote, side, ChainVote::default())
            })
            .collect::<Vec<_>>();
        let mut commit = commit;
        commit.sort_by_key(|c| c.vote.vote.validator);
        Block::new(
            BlockDraft {
                height: DeliveryHeight(5),
                time_ms: 1_000,
                proposer: key_address(&keys[1]),
                prev_hash: prev,
                app_hash: B256::repeat_byte(2),
                validators_hash: B256::repeat_byte(4),
            },
            vec![tx],
            commit,
        )
    }

    #[test]
    fn block_round_trips_and_commit_verifies() {
        let keys = keys();
        let b = block(&keys);
        let bytes = b.encode();
        assert_eq!(Block::decode(&bytes).unwrap(), b);
        assert_eq!(b.txs[0].signer(7), Some(key_address(&keys[0])));
        assert_ne!(b.txs[0].signer(8), Some(key_address(&keys[0])));
        let set = ValidatorSet::equal(keys.iter().map(key_address));
        assert_eq!(
            verify_commit(
                7,
                &set,
                DeliveryHeight(4),
                b.header.prev_hash,
                &b.last_commit
            ),
            Ok(1)
        );
        // Two votes are not a quorum of four; a vote for another value is refused.
        assert!(
            verify_commit(
                7,
                &set,
                DeliveryHeight(4),
                b.header.prev_hash,
                &b.last_commit[..2]
            )
            .is_err()
        );
        assert!(verify_commit(7, &set, DeliveryHeight(4), B256::ZERO, &b.last_commit).is_err());
        // Side results moved to another validator's vote no longer verify.
        let mut moved = b.last_commit.clone();
        moved[0].side_signature = moved[1].side_signature;
        assert!(verify_commit(7, &set, DeliveryHeight(4), b.header.prev_hash, &moved).is_err());
        // Out of signer order (or a voter twice) is refused.
        let mut unsorted = b.last_commit.clone();
        unsorted.reverse();
        assert!(verify_commit(7, &set, DeliveryHeight(4), b.header.prev_hash, &unsorted).is_err());
        let twice = vec![
            b.last_commit[0].clone(),
            b.last_commit[0].clone(),
            b.last_commit[1].clone(),
        ];
        assert!(verify_commit(7, &set, DeliveryHeight(4), b.header.prev_hash, &twice).is_err());
        // A forged vote signature fails the batch.
        let mut forged = b.last_commit.clone();
        forged[2].vote.signature = forged[1].vote.signature;
        assert!(verify_commit(7, &set, DeliveryHeight(4), b.header.prev_hash, &forged).is_err());
    }

    #[test]
    fn truncated_or_oversized_blocks_are_errors() {
        let bytes = block(&keys()).encode();
        for len in 0..bytes.len() {
            assert!(Block::decode(&bytes[..len]).is_err());
        }
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(Block::decode(&padded).is_err());
        assert!(Block::decode(&vec![0; BLOCK_BYTES_MAX + 1]).is_err());
    }

    #[test]
    fn proposals_are_signed_by_their_proposer() {
        let keys = keys();
        let p = Proposal {
            height: DeliveryHeight(3),
            round: 2,
            value: B256::repeat_byte(5),
            valid_round: Some(1),
            proposer: key_address(&keys[0]),
        };
        let signed = SignedProposal::new(7, &keys[0], p);
        assert!(signed.verify(7));
        let mut out = Vec::new();
        signed.encode(&mut out);
        let mut r = ByteReader::new(&out, "proposal");
        assert_eq!(SignedProposal::decode(&mut r).unwrap(), signed);
        let other = SignedProposal {
            proposal: Proposal { round: 3, ..p },
            ..signed
        };
        assert!(!other.verify(7));
    }
}
