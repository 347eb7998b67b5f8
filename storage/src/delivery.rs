//! The Delivery chain's MDBX environment: committed blocks and their commits, the application
//! state, and for the height being decided the write-ahead log, the signed-vote record, the
//! received precommits and the proposed blocks. A validator host's persist batch is written in
//! one transaction: wholly or not at all.

use crate::{
    StorageError, SyncMode,
    table::{DbTx, Decode, Encode, begin_read, begin_write, tables},
};
use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::chain::bor::{BorParams, Span, SpanValidator};
use bttc_engine::{
    delivery::{
        app::AppState,
        app::span::{SPANS_KEPT, SpanConfig},
        block::{Block, CommitVote, SignedProposal, decode_commit, encode_commit},
        host::{
            PersistBatch, PersistOp, SIGNED_RECORD_HEIGHTS_KEPT, SignedKind, SignedMessage, Stored,
        },
        milestone::Milestone,
        side_tx::SIDE_TXS_PER_BLOCK_MAX,
        signing::{SIGNED_VOTE_LEN, SignedVote, decode_signed_vote, encode_signed_vote},
        tendermint::Round,
        validators::VALIDATORS_MAX,
        validators::ValidatorSet,
        wal::{WalEntry, decode_wal_entry, encode_wal_entry},
    },
    env::DeliveryStore,
    primitives::{ByteReader, DecodeError, DeliveryHeight},
};
use libmdbx::{Database, DatabaseOptions, Mode, ReadWriteOptions, TableFlags, WriteMap};
use std::path::Path;

tables! {
    /// sequence → log record of the current height (the first is its `Height` record)
    Wal: u64 => WalEntry;
    /// (height, round, kind) → a message this validator signed
    SignedMessages: SignedKey => SignedMessage;
    /// height → committed block
    Blocks: DeliveryHeight => Block;
    /// height → the commit that decided it
    Commits: DeliveryHeight => Commit;
    /// the application state after the last block, without its entries and nonces
    Meta: MetaKey => AppState;
    /// the application's key-value entries
    Kv: Bytes => Bytes;
    /// validator → its transaction count
    Nonces: Address => u64;
    /// block hash → a block proposed at the current height (a restart re-proposes or commits it)
    PendingBlocks: B256 => Block;
    /// (height, round, validator, value) → a received precommit with its side results (an
    /// equivocator's two precommits are both kept)
    Precommits: PrecommitKey => CommitVote;
}

/// The Delivery database of one validator.
pub struct DeliveryDb {
    db: Database<WriteMap>,
}

impl DeliveryDb {
    /// Opens (creating if needed) the environment in directory `path`.
    pub fn open(path: &Path, sync: SyncMode) -> Result<Self, StorageError> {
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
        let db = Database::<WriteMap>::open_with_options(
            path,
            DatabaseOptions {
                max_tables: Some(ALL.len() as u64 + 2),
                mode: Mode::ReadWrite(ReadWriteOptions {
                    sync_mode: sync.into(),
                    max_size: Some(1 << 40),
                    growth_step: Some(64 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?;
        let txn = db.begin_rw_txn()?;
        for table in ALL {
            txn.create_table(Some(table), TableFlags::empty())?;
        }
        txn.commit()?;
        Ok(Self { db })
    }

    fn read(&self) -> Result<DbTx<'_>, StorageError> {
        begin_read(&self.db)
    }

    /// Writes a host's persist batch in one transaction.
    pub fn write_batch(&self, batch: &PersistBatch) -> Result<(), StorageError> {
        let txn = begin_write(&self.db)?;
        let mut next_seq = txn.last::<Wal>()?.map_or(0, |(seq, _)| seq + 1);
        for op in &batch.ops {
            match op {
                PersistOp::Commit(record) => {
                    let height = record.block.header.height;
                    txn.put::<Blocks>(&height, &record.block)?;
                    txn.put::<Commits>(&height, &Commit(record.commit.clone()))?;
                    txn.put::<Meta>(&MetaKey::App, &record.state)?;
                    for (k, v) in &record.changes.kv {
                        txn.put::<Kv>(k, v)?;
                    }
                    for (a, n) in &record.changes.nonces {
                        txn.put::<Nonces>(a, n)?;
                    }
                }
                PersistOp::BeginHeight(height) => {
                    txn.clear::<Wal>()?;
                    txn.append::<Wal>(&0, &WalEntry::Height(*height))?;
                    next_seq = 1;
                    let mut stale = Vec::new();
                    txn.walk::<PendingBlocks>(None, |hash, block| {
                        if block.header.height < *height {
                            stale.push(hash);
                        }
                        Ok(true)
                    })?;
                    for hash in stale {
                        txn.delete::<PendingBlocks>(&hash)?;
                    }
                    txn.delete_while::<Precommits>(None, |k| k.height < *height)?;
                    let keep_from =
                        DeliveryHeight(height.0.saturating_sub(SIGNED_RECORD_HEIGHTS_KEPT));
                    txn.delete_while::<SignedMessages>(None, |k| k.height < keep_from)?;
                }
                PersistOp::Wal(entry) => {
                    txn.append::<Wal>(&next_seq, entry)?;
                    next_seq += 1;
                }
                PersistOp::Signed(signed) => {
                    let key = SignedKey {
                        height: signed.height(),
                        round: signed.round(),
                        kind: signed.kind(),
                    };
                    // The host checked the record before signing: the first entry stays.
                    if txn.get::<SignedMessages>(&key)?.is_none() {
                        txn.put::<SignedMessages>(&key, signed)?;
                    }
                }
                PersistOp::Precommit(c) => {
                    let key = PrecommitKey::of(c);
                    if txn.get::<Precommits>(&key)?.is_none() {
                        txn.put::<Precommits>(&key, c)?;
                    }
                }
                PersistOp::Pending(block) => txn.put::<PendingBlocks>(&block.hash(), block)?,
            }
        }
        txn.commit()
    }

    /// What a restarting validator needs (see [`DeliveryStore::load`]).
    pub fn load(&self) -> Result<Stored, StorageError> {
        let txn = self.read()?;
        let app = match txn.get::<Meta>(&MetaKey::App)? {
            Some(mut state) => {
                txn.walk::<Kv>(None, |k, v| {
                    state.kv.insert(k, v);
                    Ok(true)
                })?;
                txn.walk::<Nonces>(None, |a, n| {
                    state.nonces.insert(a, n);
                    Ok(true)
                })?;
                Some(state)
            }
            None => None,
        };
        let next = app.as_ref().map_or(DeliveryHeight(1), |a| a.height.next());
        let tip = match txn.last::<Blocks>()? {
            Some((height, block)) => {
                let commit = txn.get::<Commits>(&height)?.ok_or(StorageError::Missing {
                    table: <Commits as crate::table::Table>::NAME,
                    what: "the commit of the last block",
                })?;
                Some((block, commit.0))
            }
            None => None,
        };
        let mut wal = Vec::new();
        txn.walk::<Wal>(None, |_, entry| {
            wal.push(entry);
            Ok(true)
        })?;
        let mut signed = Vec::new();
        let from = SignedKey {
            height: next,
            round: 0,
            kind: SignedKind::Proposal,
        };
        txn.walk::<SignedMessages>(Some(&from), |k, s| {
            if k.height != next {
                return Ok(false);
            }
            signed.push(s);
            Ok(true)
        })?;
        let mut precommits = Vec::new();
        txn.walk::<Precommits>(Some(&PrecommitKey::first_of(next)), |k, c| {
            if k.height != next {
                return Ok(false);
            }
            precommits.push(c);
            Ok(true)
        })?;
        let mut pending = Vec::new();
        txn.walk::<PendingBlocks>(None, |_, block| {
            if block.header.height == next {
                pending.push(block);
            }
            Ok(true)
        })?;
        Ok(Stored {
            app,
            tip,
            wal,
            signed,
            precommits,
            pending,
        })
    }

    /// A committed block with the commit that decided it.
    pub fn block(
        &self,
        height: DeliveryHeight,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, StorageError> {
        let txn = self.read()?;
        let (Some(block), Some(commit)) =
            (txn.get::<Blocks>(&height)?, txn.get::<Commits>(&height)?)
        else {
            return Ok(None);
        };
        Ok(Some((block, commit.0)))
    }

    /// One entry of the application's key-value state.
    pub fn value(&self, key: &Bytes) -> Result<Option<Bytes>, StorageError> {
        self.read()?.get::<Kv>(key)
    }

    /// Every vote this validator signed and still keeps, by height, round and kind.
    pub fn signed_votes(&self) -> Result<Vec<SignedVote>, StorageError> {
        let mut out = Vec::new();
        self.read()?.walk::<SignedMessages>(None, |_, s| {
            match s {
                SignedMessage::Prevote(v) => out.push(v),
                SignedMessage::Precommit(c) => out.push(c.vote),
                SignedMessage::Proposal(_) => {}
            }
            Ok(true)
        })?;
        Ok(out)
    }
}

/// A shared handle writes: MDBX keeps one write transaction at a time.
impl DeliveryStore for &DeliveryDb {
    type Error = StorageError;

    fn write(&mut self, batch: &PersistBatch) -> Result<(), StorageError> {
        self.write_batch(batch)
    }

    fn load(&self) -> Result<Stored, StorageError> {
        DeliveryDb::load(self)
    }

    fn block(
        &self,
        height: DeliveryHeight,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, StorageError> {
        DeliveryDb::block(self, height)
    }
}

/// Keys of the `Meta` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// The application state.
    App,
}

impl Encode for MetaKey {
    type Encoded = &'static [u8];

    fn encode(&self) -> &'static [u8] {
        match self {
            MetaKey::App => b"app",
        }
    }
}

impl Decode for MetaKey {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            b"app" => Ok(MetaKey::App),
            _ => Err(DecodeError::new(
                "meta key",
                format!("unknown key {bytes:?}"),
            )),
        }
    }
}

/// `height(8) ‖ round(4) ‖ kind(1)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedKey {
    pub height: DeliveryHeight,
    pub round: Round,
    pub kind: SignedKind,
}

impl Encode for SignedKey {
    type Encoded = [u8; 13];

    fn encode(&self) -> [u8; 13] {
        let mut key = [0u8; 13];
        key[..8].copy_from_slice(&self.height.to_be_bytes());
        key[8..12].copy_from_slice(&self.round.to_be_bytes());
        key[12] = self.kind as u8;
        key
    }
}

fn signed_kind(byte: u8, r: &ByteReader<'_>) -> Result<SignedKind, DecodeError> {
    match byte {
        0 => Ok(SignedKind::Proposal),
        1 => Ok(SignedKind::Prevote),
        2 => Ok(SignedKind::Precommit),
        b => Err(r.error(format!("signed kind {b}"))),
    }
}

impl Decode for SignedKey {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "signed message key");
        let (height, round) = (r.height()?, r.u32()?);
        let kind = signed_kind(r.u8()?, &r)?;
        r.finish()?;
        Ok(Self {
            height,
            round,
            kind,
        })
    }
}

/// `kind(1) ‖ message`: a signed proposal, a signed prevote, or a precommit with its side
/// results.
impl Encode for SignedMessage {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.kind() as u8];
        match self {
            SignedMessage::Proposal(p) => p.encode(&mut out),
            SignedMessage::Prevote(v) => out.extend_from_slice(&encode_signed_vote(v)),
            SignedMessage::Precommit(c) => c.encode(&mut out),
        }
        out
    }
}

impl Decode for SignedMessage {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "signed message");
        let message = match signed_kind(r.u8()?, &r)? {
            SignedKind::Proposal => SignedMessage::Proposal(SignedProposal::decode(&mut r)?),
            SignedKind::Prevote => SignedMessage::Prevote(
                decode_signed_vote(r.take(SIGNED_VOTE_LEN)?)
                    .ok_or_else(|| r.error("malformed signed vote"))?,
            ),
            SignedKind::Precommit => SignedMessage::Precommit(CommitVote::decode(&mut r)?),
        };
        r.finish()?;
        Ok(message)
    }
}

/// `height(8) ‖ round(4) ‖ validator(20) ‖ has_value(1) ‖ value(32)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrecommitKey {
    pub height: DeliveryHeight,
    pub round: Round,
    pub validator: Address,
    pub value: Option<B256>,
}

impl PrecommitKey {
    fn of(c: &CommitVote) -> Self {
        let v = c.vote.vote;
        Self {
            height: v.height,
            round: v.round,
            validator: v.validator,
            value: v.value,
        }
    }

    /// The smallest key of `height`.
    fn first_of(height: DeliveryHeight) -> Self {
        Self {
            height,
            round: 0,
            validator: Address::ZERO,
            value: None,
        }
    }
}

impl Encode for PrecommitKey {
    type Encoded = [u8; 65];

    fn encode(&self) -> [u8; 65] {
        let mut key = [0u8; 65];
        key[..8].copy_from_slice(&self.height.to_be_bytes());
        key[8..12].copy_from_slice(&self.round.to_be_bytes());
        key[12..32].copy_from_slice(self.validator.as_slice());
        key[32] = u8::from(self.value.is_some());
        key[33..].copy_from_slice(self.value.unwrap_or_default().as_slice());
        key
    }
}

impl Decode for PrecommitKey {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "precommit key");
        let (height, round, validator) = (r.height()?, r.u32()?, r.address()?);
        let has_value = r.flag()?;
        let value = r.b256()?;
        r.finish()?;
        Ok(Self {
            height,
            round,
            validator,
            value: has_value.then_some(value),
        })
    }
}

impl Encode for WalEntry {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        encode_wal_entry(self)
    }
}

impl Decode for WalEntry {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_wal_entry(bytes)
    }
}

impl Encode for Block {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        Block::encode(self)
    }
}

impl Decode for Block {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Block::decode(bytes)
    }
}

impl Encode for CommitVote {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        CommitVote::encode(self, &mut out);
        out
    }
}

impl Decode for CommitVote {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "precommit");
        let c = CommitVote::decode(&mut r)?;
        r.finish()?;
        Ok(c)
    }
}

/// The precommits that decided a block, sorted by signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit(pub Vec<CommitVote>);

impl Encode for Commit {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        encode_commit(&self.0, &mut out);
        out
    }
}

impl Decode for Commit {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "commit");
        let commit = decode_commit(&mut r)?;
        r.finish()?;
        Ok(Commit(commit))
    }
}

/// `chain_id ‖ height ‖ block_hash ‖ time ‖ app_hash ‖ len ‖ validators ‖ len ‖
/// last_validators ‖ pending side transactions ‖ milestone (number, hash, Delivery height)`;
/// the entries and nonces have tables of their own.
impl Encode for AppState {
    type Encoded = Vec<u8>;

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.chain_id.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        out.extend_from_slice(self.block_hash.as_slice());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(self.app_hash.as_slice());
        for set in [&self.validators, &self.last_validators] {
            let bytes = set.encode();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(&(self.pending_side.len() as u32).to_be_bytes());
        for (height, payloads) in &self.pending_side {
            out.extend_from_slice(&height.to_be_bytes());
            out.extend_from_slice(&(payloads.len() as u32).to_be_bytes());
            for p in payloads {
                out.extend_from_slice(&(p.len() as u32).to_be_bytes());
                out.extend_from_slice(p);
            }
        }
        out.extend_from_slice(&self.milestone.number.to_be_bytes());
        out.extend_from_slice(self.milestone.hash.as_slice());
        out.extend_from_slice(&self.milestone.delivery_height.to_be_bytes());
        match &self.span_config {
            None => out.push(0),
            Some(config) => {
                out.push(1);
                let p = &config.params;
                for word in [
                    p.sprint,
                    p.span,
                    p.first_span_end,
                    p.period_secs,
                    p.producer_delay_secs,
                    p.backup_multiplier_secs,
                    p.producer_count as u64,
                    config.bttc_chain_id,
                ] {
                    out.extend_from_slice(&word.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(&(self.spans.len() as u32).to_be_bytes());
        for (decided, span) in &self.spans {
            out.extend_from_slice(&decided.0.to_be_bytes());
            encode_span(&mut out, span);
        }
        out
    }
}

/// `id ‖ start ‖ end ‖ chain id ‖ validators ‖ producers`, each list counted.
pub(crate) fn encode_span(out: &mut Vec<u8>, span: &Span) {
    for word in [span.id, span.start_block, span.end_block, span.chain_id] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    for list in [&span.validators, &span.producers] {
        out.extend_from_slice(&(list.len() as u32).to_be_bytes());
        for v in list {
            out.extend_from_slice(&v.id.to_be_bytes());
            out.extend_from_slice(&v.power.to_be_bytes());
            out.extend_from_slice(v.signer.as_slice());
        }
    }
}

pub(crate) fn decode_span(r: &mut ByteReader<'_>) -> Result<Span, DecodeError> {
    let (id, start_block, end_block, chain_id) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
    let mut list = || -> Result<Vec<SpanValidator>, DecodeError> {
        let count = r.u32()? as usize;
        if count > VALIDATORS_MAX {
            return Err(r.error(format!("{count} span validators")));
        }
        (0..count)
            .map(|_| {
                Ok(SpanValidator {
                    id: r.u64()?,
                    power: r.u64()?,
                    signer: r.address()?,
                })
            })
            .collect()
    };
    let validators = list()?;
    let producers = list()?;
    Ok(Span {
        id,
        start_block,
        end_block,
        validators,
        producers,
        chain_id,
    })
}

impl Decode for AppState {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = ByteReader::new(bytes, "application state");
        let chain_id = r.u64()?;
        let height = r.height()?;
        let block_hash = r.b256()?;
        let time_ms = r.u64()?;
        let app_hash = r.b256()?;
        let mut set = || -> Result<ValidatorSet, DecodeError> {
            let len = r.u32()? as usize;
            ValidatorSet::decode(r.take(len)?)
        };
        let validators = set()?;
        let last_validators = set()?;
        let count = r.u32()?;
        if count > 2 {
            return Err(r.error(format!("{count} pending side heights")));
        }
        let mut pending_side = Vec::new();
        for _ in 0..count {
            let h = r.height()?;
            let n = r.u32()? as usize;
            if n > SIDE_TXS_PER_BLOCK_MAX {
                return Err(r.error(format!("{n} pending side transactions")));
            }
            let mut payloads = Vec::with_capacity(n);
            for _ in 0..n {
                let len = r.u32()? as usize;
                payloads.push(Bytes::copy_from_slice(r.take(len)?));
            }
            pending_side.push((h, payloads));
        }
        let milestone = Milestone {
            number: r.u64()?,
            hash: r.b256()?,
            delivery_height: r.u64()?,
        };
        let span_config = if r.flag()? {
            let mut w = || r.u64();
            Some(SpanConfig {
                params: BorParams {
                    sprint: w()?,
                    span: w()?,
                    first_span_end: w()?,
                    period_secs: w()?,
                    producer_delay_secs: w()?,
                    backup_multiplier_secs: w()?,
                    producer_count: w()? as usize,
                },
                bttc_chain_id: w()?,
            })
        } else {
            None
        };
        let count = r.u32()? as usize;
        if count > SPANS_KEPT {
            return Err(r.error(format!("{count} spans")));
        }
        let spans = (0..count)
            .map(|_| Ok((r.height()?, decode_span(&mut r)?)))
            .collect::<Result<_, DecodeError>>()?;
        r.finish()?;
        Ok(AppState {
            chain_id,
            height,
            block_hash,
            time_ms,
            app_hash,
            validators,
            last_validators,
            nonces: Default::default(),
            kv: Default::default(),
            pending_side,
            milestone,
            span_config,
            spans,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bttc_engine::delivery::{
        block::{DeliveryTx, TxKind},
        host::CommitRecord,
        signing::{example_vote, key_address, sign_vote},
        tendermint::{Input, Step, Timeout},
    };
    use proptest::prelude::*;
    use secp256k1::SecretKey;

    fn timeout(round: u32) -> WalEntry {
        WalEntry::Input(Input::Timeout(Timeout {
            step: Step::Propose,
            height: DeliveryHeight(1),
            round,
        }))
    }

    /// A batch is written whole, and a reopened database gives a restart what it wrote: the
    /// log of the current height, its record, precommits and proposed blocks, the state and
    /// the tip.
    #[test]
    fn batches_survive_reopening_and_a_new_height_resets_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_byte_array([5; 32]).unwrap();
        let me = key_address(&key);
        let mut state = AppState::genesis(3, &[me], 10);
        let tx = DeliveryTx::signed(3, &key, TxKind::Set, 0, Bytes::from_static(b"\x01ab"));
        let block = Block::new(state.draft(me, 20), vec![tx], Vec::new());
        let vote = sign_vote(3, &key, example_vote(&key, 1, 0, Some(block.hash())));
        let precommit = CommitVote::new(3, &key, vote, Vec::new(), Default::default());
        let batch = PersistBatch {
            ops: vec![
                PersistOp::BeginHeight(DeliveryHeight(1)),
                PersistOp::Wal(timeout(0)),
                PersistOp::Pending(block.clone()),
                PersistOp::Signed(SignedMessage::Precommit(precommit.clone())),
                PersistOp::Precommit(precommit.clone()),
                PersistOp::Wal(timeout(1)),
            ],
        };
        {
            let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
            assert!(db.load().unwrap().app.is_none());
            db.write_batch(&batch).unwrap();
        }
        let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
        let stored = db.load().unwrap();
        assert_eq!(
            stored.wal,
            vec![WalEntry::Height(DeliveryHeight(1)), timeout(0), timeout(1)]
        );
        assert_eq!(stored.pending, vec![block.clone()]);
        assert_eq!(
            stored.signed,
            vec![SignedMessage::Precommit(precommit.clone())]
        );
        assert_eq!(stored.precommits, vec![precommit.clone()]);
        assert_eq!(db.signed_votes().unwrap(), vec![precommit.vote]);

        state.check_block(&block, None).unwrap();
        let changes = state.apply(&block);
        db.write_batch(&PersistBatch {
            ops: vec![
                PersistOp::Commit(Box::new(CommitRecord {
                    block: block.clone(),
                    commit: vec![precommit.clone()],
                    state: state.without_entries(),
                    changes,
                })),
                PersistOp::BeginHeight(DeliveryHeight(2)),
            ],
        })
        .unwrap();
        let stored = db.load().unwrap();
        assert_eq!(stored.app.as_ref(), Some(&state));
        assert_eq!(stored.tip, Some((block.clone(), vec![precommit.clone()])));
        assert_eq!(stored.wal, vec![WalEntry::Height(DeliveryHeight(2))]);
        assert!(stored.pending.is_empty() && stored.precommits.is_empty());
        assert!(
            stored.signed.is_empty(),
            "the record of height 1 is not height 2's"
        );
        assert_eq!(db.signed_votes().unwrap().len(), 1, "but it is kept");
        assert_eq!(
            db.value(&Bytes::from_static(b"a")).unwrap(),
            Some(Bytes::from_static(b"b"))
        );
        assert_eq!(
            db.block(DeliveryHeight(1)).unwrap(),
            Some((block, vec![precommit]))
        );
        assert_eq!(db.block(DeliveryHeight(2)).unwrap(), None);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            let _ = SignedMessage::decode(&bytes);
            let _ = SignedKey::decode(&bytes);
            let _ = PrecommitKey::decode(&bytes);
            let _ = AppState::decode(&bytes);
            let _ = Commit::decode(&bytes);
            let _ = MetaKey::decode(&bytes);
        }
    }
}
