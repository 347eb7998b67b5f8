//! The Delivery chain's MDBX environment: committed blocks and their commits, the application
//! state, the consensus write-ahead log, and the votes this validator signed (which refuse a
//! second, different vote for the same height, round and kind).

use crate::{StorageError, SyncMode};
use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::{
    delivery::{
        app::{AppState, Changes},
        block::{Block, CommitVote, decode_commit, encode_commit},
        signing::{SignedVote, decode_signed_vote, encode_signed_vote},
        tendermint::{Vote, VoteKind},
        validators::ValidatorSet,
        wal::{WalEntry, decode_wal_entry, encode_wal_entry},
    },
    primitives::{ByteReader, DecodeError},
};
use libmdbx::{
    Database, DatabaseOptions, Mode, RW, ReadWriteOptions, TableFlags, Transaction, WriteFlags,
    WriteMap,
};
use std::{borrow::Cow, path::Path};

/// sequence number (8, BE) → WAL record
const WAL: &str = "Wal";
/// height (8) ‖ round (4) ‖ kind (1) → signed vote
const SIGNED_VOTES: &str = "SignedVotes";
/// height (8) → block
const BLOCKS: &str = "Blocks";
/// height (8) → the commit that decided it
const COMMITS: &str = "Commits";
/// "app" → application state summary (see `encode_app_meta`)
const META: &str = "Meta";
/// key → value of the application's key-value state
const KV: &str = "Kv";
/// address (20) → nonce (8)
const NONCES: &str = "Nonces";
/// block hash → a proposed block of the current height (kept so a restart can re-propose it)
const PENDING: &str = "PendingBlocks";
/// height (8) ‖ round (4) ‖ validator (20) ‖ has_value (1) ‖ value (32) → a received precommit
/// with its side results (an equivocator's two precommits are both kept)
const PRECOMMITS: &str = "Precommits";
const META_APP: &[u8] = b"app";

#[derive(Debug, thiserror::Error)]
pub enum DeliveryStoreError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "refusing to sign {new:?}: already signed {signed:?} at the same height, round and kind"
    )]
    DoubleSign {
        signed: Box<SignedVote>,
        new: Box<SignedVote>,
    },
    #[error("stored delivery record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

impl From<libmdbx::Error> for DeliveryStoreError {
    fn from(e: libmdbx::Error) -> Self {
        Self::Storage(StorageError::Mdbx(e))
    }
}

pub struct DeliveryDb {
    db: Database<WriteMap>,
}

fn vote_key(v: &Vote) -> [u8; 13] {
    let mut key = [0u8; 13];
    key[..8].copy_from_slice(&v.height.0.to_be_bytes());
    key[8..12].copy_from_slice(&v.round.to_be_bytes());
    key[12] = match v.kind {
        VoteKind::Prevote => 1,
        VoteKind::Precommit => 2,
    };
    key
}

impl DeliveryDb {
    pub fn open(path: &Path, sync: SyncMode) -> Result<Self, DeliveryStoreError> {
        std::fs::create_dir_all(path)
            .map_err(|e| libmdbx::Error::Other(e.raw_os_error().unwrap_or(0)))?;
        let db = Database::<WriteMap>::open_with_options(
            path,
            DatabaseOptions {
                max_tables: Some(12),
                mode: Mode::ReadWrite(ReadWriteOptions {
                    sync_mode: match sync {
                        SyncMode::Durable => libmdbx::SyncMode::Durable,
                        SyncMode::SafeNoSync => libmdbx::SyncMode::SafeNoSync,
                    },
                    max_size: Some(1 << 40),
                    growth_step: Some(64 << 20),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )?;
        let txn = db.begin_rw_txn()?;
        txn.create_table(Some(WAL), TableFlags::empty())?;
        for table in [
            SIGNED_VOTES,
            BLOCKS,
            COMMITS,
            META,
            KV,
            NONCES,
            PENDING,
            PRECOMMITS,
        ] {
            txn.create_table(Some(table), TableFlags::empty())?;
        }
        txn.commit()?;
        Ok(Self { db })
    }

    /// Appends records to the log in one durable transaction; returns once they are stored.
    pub fn append_wal(&self, entries: &[WalEntry]) -> Result<(), DeliveryStoreError> {
        let txn = self.db.begin_rw_txn()?;
        let wal = txn.open_table(Some(WAL))?;
        let first = {
            let mut cursor = txn.cursor(&wal)?;
            let last: Option<([u8; 8], ())> = cursor.last()?;
            last.map_or(0, |(k, ())| u64::from_be_bytes(k) + 1)
        };
        for (seq, entry) in (first..).zip(entries) {
            txn.put(
                &wal,
                seq.to_be_bytes(),
                encode_wal_entry(entry),
                WriteFlags::APPEND,
            )?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The log from its last `Height` record on: what a restart replays.
    pub fn wal_tail(&self) -> Result<Vec<WalEntry>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let wal = txn.open_table(Some(WAL))?;
        let mut tail = Vec::new();
        for item in txn
            .cursor(&wal)?
            .into_iter_back_start::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
        {
            let (_, bytes) = item?;
            let entry =
                decode_wal_entry(&bytes).map_err(|e| DeliveryStoreError::Corrupt(e.to_string()))?;
            let is_height = matches!(entry, WalEntry::Height(_));
            tail.push(entry);
            if is_height {
                break;
            }
        }
        tail.reverse();
        Ok(tail)
    }

    /// Stores a vote before it is broadcast. Storing the same vote again is fine (a replay
    /// re-emits it); a different vote at the same height, round and kind is refused.
    pub fn record_signed_vote(&self, signed: &SignedVote) -> Result<(), DeliveryStoreError> {
        let txn = self.db.begin_rw_txn()?;
        let table = txn.open_table(Some(SIGNED_VOTES))?;
        let key = vote_key(&signed.vote);
        let existing: Option<Vec<u8>> = txn.get(&table, key)?;
        if let Some(bytes) = existing {
            let stored = decode_signed_vote(&bytes)
                .ok_or_else(|| DeliveryStoreError::Corrupt("signed vote".to_owned()))?;
            if stored.vote == signed.vote {
                return Ok(());
            }
            return Err(DeliveryStoreError::DoubleSign {
                signed: Box::new(stored),
                new: Box::new(*signed),
            });
        }
        txn.put(
            &table,
            key,
            encode_signed_vote(signed),
            WriteFlags::NO_OVERWRITE,
        )?;
        txn.commit()?;
        Ok(())
    }

    /// Keeps received precommits (with their side results) of the current height, so that a
    /// commit can be assembled after a restart replays the log.
    pub fn record_precommits(&self, precommits: &[CommitVote]) -> Result<(), DeliveryStoreError> {
        if precommits.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_rw_txn()?;
        let table = txn.open_table(Some(PRECOMMITS))?;
        for c in precommits {
            let v = &c.vote.vote;
            let mut key = [0u8; 65];
            key[..8].copy_from_slice(&v.height.0.to_be_bytes());
            key[8..12].copy_from_slice(&v.round.to_be_bytes());
            key[12..32].copy_from_slice(v.validator.as_slice());
            key[32] = u8::from(v.value.is_some());
            key[33..].copy_from_slice(v.value.unwrap_or_default().as_slice());
            // The first copy stays: a later one with other side results does not replace it.
            let existing: Option<Vec<u8>> = txn.get(&table, key.as_slice())?;
            if existing.is_none() {
                let mut bytes = Vec::new();
                c.encode(&mut bytes);
                txn.put(&table, key, bytes, WriteFlags::UPSERT)?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Received precommits at `height`.
    pub fn precommits(&self, height: u64) -> Result<Vec<CommitVote>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let table = txn.open_table(Some(PRECOMMITS))?;
        let mut cursor = txn.cursor(&table)?;
        let prefix = height.to_be_bytes();
        let mut out = Vec::new();
        let mut entry: Option<(Vec<u8>, Vec<u8>)> = cursor.set_range(&prefix)?;
        while let Some((key, bytes)) = entry {
            if !key.starts_with(&prefix) {
                break;
            }
            let mut r = ByteReader::new(&bytes, "stored precommit");
            out.push(CommitVote::decode(&mut r)?);
            entry = cursor.next()?;
        }
        Ok(out)
    }

    /// Keeps a proposed block of the current height until the height commits.
    pub fn put_pending_block(&self, block: &Block) -> Result<(), DeliveryStoreError> {
        let txn = self.db.begin_rw_txn()?;
        let table = txn.open_table(Some(PENDING))?;
        txn.put(&table, block.hash(), block.encode(), WriteFlags::UPSERT)?;
        txn.commit()?;
        Ok(())
    }

    pub fn pending_block(&self, hash: B256) -> Result<Option<Block>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let table = txn.open_table(Some(PENDING))?;
        let bytes: Option<Vec<u8>> = txn.get(&table, hash.as_slice())?;
        Ok(bytes.map(|b| Block::decode(&b)).transpose()?)
    }

    /// Stores a decided block, its commit and the application state after it, in one
    /// transaction; drops the current height's pending blocks, precommits and older log.
    pub fn commit_block(
        &self,
        block: &Block,
        commit: &[CommitVote],
        state: &AppState,
        changes: &Changes,
    ) -> Result<(), DeliveryStoreError> {
        let height = block.header.height.to_be_bytes();
        let txn = self.db.begin_rw_txn()?;
        txn.put(
            &txn.open_table(Some(BLOCKS))?,
            height,
            block.encode(),
            WriteFlags::UPSERT,
        )?;
        let mut commit_bytes = Vec::new();
        encode_commit(commit, &mut commit_bytes);
        txn.put(
            &txn.open_table(Some(COMMITS))?,
            height,
            commit_bytes,
            WriteFlags::UPSERT,
        )?;
        let kv = txn.open_table(Some(KV))?;
        for (k, v) in &changes.kv {
            txn.put(&kv, k, v, WriteFlags::UPSERT)?;
        }
        let nonces = txn.open_table(Some(NONCES))?;
        for (a, n) in &changes.nonces {
            txn.put(&nonces, a.as_slice(), n.to_be_bytes(), WriteFlags::UPSERT)?;
        }
        txn.put(
            &txn.open_table(Some(META))?,
            META_APP,
            encode_app_meta(state),
            WriteFlags::UPSERT,
        )?;
        txn.clear_table(&txn.open_table(Some(PENDING))?)?;
        delete_below(&txn, PRECOMMITS, &(block.header.height + 1).to_be_bytes())?;
        // The log before the current height's first record is no longer replayed.
        let wal = txn.open_table(Some(WAL))?;
        let last_height_seq = {
            let mut cursor = txn.cursor(&wal)?;
            let mut seq = None;
            let mut entry: Option<([u8; 8], Vec<u8>)> = cursor.last()?;
            while let Some((key, bytes)) = entry {
                if matches!(decode_wal_entry(&bytes), Ok(WalEntry::Height(_))) {
                    seq = Some(key);
                    break;
                }
                entry = cursor.prev()?;
            }
            seq
        };
        if let Some(seq) = last_height_seq {
            delete_below(&txn, WAL, &seq)?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The application state, or `None` before the first block.
    pub fn app_state(&self, chain_id: u64) -> Result<Option<AppState>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let meta: Option<Vec<u8>> = txn.get(&txn.open_table(Some(META))?, META_APP)?;
        let Some(meta) = meta else {
            return Ok(None);
        };
        let mut state = decode_app_meta(chain_id, &meta)?;
        for item in txn
            .cursor(&txn.open_table(Some(KV))?)?
            .iter_start::<Vec<u8>, Vec<u8>>()
        {
            let (k, v) = item?;
            state.kv.insert(Bytes::from(k), Bytes::from(v));
        }
        for item in txn
            .cursor(&txn.open_table(Some(NONCES))?)?
            .iter_start::<Vec<u8>, [u8; 8]>()
        {
            let (a, n) = item?;
            if a.len() != 20 {
                return Err(DeliveryStoreError::Corrupt("nonce key".to_owned()));
            }
            state
                .nonces
                .insert(Address::from_slice(&a), u64::from_be_bytes(n));
        }
        Ok(Some(state))
    }

    /// One entry of the application's key-value state.
    pub fn value(&self, key: &[u8]) -> Result<Option<Vec<u8>>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        Ok(txn.get(&txn.open_table(Some(KV))?, key)?)
    }

    /// A committed block with the commit that decided it.
    pub fn block(
        &self,
        height: u64,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let key = height.to_be_bytes();
        let block: Option<Vec<u8>> = txn.get(&txn.open_table(Some(BLOCKS))?, key)?;
        let commit: Option<Vec<u8>> = txn.get(&txn.open_table(Some(COMMITS))?, key)?;
        match (block, commit) {
            (Some(b), Some(c)) => {
                let mut r = ByteReader::new(&c, "stored commit");
                let commit = decode_commit(&mut r)?;
                r.finish()?;
                Ok(Some((Block::decode(&b)?, commit)))
            }
            _ => Ok(None),
        }
    }

    /// The vote this validator signed at the height, round and kind of `vote`, if any: checked
    /// before signing, so that a conflicting vote is never even signed.
    pub fn signed_vote_at(&self, vote: &Vote) -> Result<Option<SignedVote>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let table = txn.open_table(Some(SIGNED_VOTES))?;
        let key = vote_key(vote);
        let bytes: Option<Vec<u8>> = txn.get(&table, key)?;
        bytes
            .map(|b| {
                decode_signed_vote(&b)
                    .ok_or_else(|| DeliveryStoreError::Corrupt("signed vote".to_owned()))
            })
            .transpose()
    }

    /// Every vote this validator signed, by height, round and kind.
    pub fn signed_votes(&self) -> Result<Vec<SignedVote>, DeliveryStoreError> {
        let txn = self.db.begin_ro_txn()?;
        let table = txn.open_table(Some(SIGNED_VOTES))?;
        let mut out = Vec::new();
        for item in txn
            .cursor(&table)?
            .iter_start::<Cow<'_, [u8]>, Cow<'_, [u8]>>()
        {
            let (_, bytes) = item?;
            out.push(
                decode_signed_vote(&bytes)
                    .ok_or_else(|| DeliveryStoreError::Corrupt("signed vote".to_owned()))?,
            );
        }
        Ok(out)
    }
}

/// Deletes every entry of `table` whose key sorts below `bound`.
fn delete_below(
    txn: &Transaction<'_, RW, WriteMap>,
    table: &str,
    bound: &[u8],
) -> Result<(), DeliveryStoreError> {
    let table = txn.open_table(Some(table))?;
    let mut cursor = txn.cursor(&table)?;
    let mut entry: Option<(Vec<u8>, ())> = cursor.first()?;
    while let Some((key, ())) = entry {
        if key.as_slice() >= bound {
            break;
        }
        cursor.del(WriteFlags::empty())?;
        entry = cursor.get_current()?;
    }
    Ok(())
}

/// `height ‖ block_hash ‖ time ‖ app_hash ‖ len ‖ validators ‖ len ‖ last_validators ‖
/// pending side transactions`; the key-value state and nonces live in their own tables.
fn encode_app_meta(state: &AppState) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&state.height.to_be_bytes());
    out.extend_from_slice(state.block_hash.as_slice());
    out.extend_from_slice(&state.time_ms.to_be_bytes());
    out.extend_from_slice(state.app_hash.as_slice());
    for set in [&state.validators, &state.last_validators] {
        let bytes = set.encode();
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(&(state.pending_side.len() as u32).to_be_bytes());
    for (height, payloads) in &state.pending_side {
        out.extend_from_slice(&height.to_be_bytes());
        out.extend_from_slice(&(payloads.len() as u32).to_be_bytes());
        for p in payloads {
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            out.extend_from_slice(p);
        }
    }
    out
}

fn decode_app_meta(chain_id: u64, bytes: &[u8]) -> Result<AppState, DecodeError> {
    let mut r = ByteReader::new(bytes, "application state");
    let height = r.u64()?;
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
        let h = r.u64()?;
        let n = r.u32()? as usize;
        if n > bttc_engine::delivery::side_pipeline::SIDE_TXS_PER_BLOCK_MAX {
            return Err(r.error(format!("{n} pending side transactions")));
        }
        let mut payloads = Vec::with_capacity(n);
        for _ in 0..n {
            let len = r.u32()? as usize;
            payloads.push(Bytes::copy_from_slice(r.take(len)?));
        }
        pending_side.push((h, payloads));
    }
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;
    use bttc_engine::delivery::{
        signing::{example_vote, sign_vote},
        tendermint::{DeliveryHeight, Input, Step, Timeout},
    };
    use secp256k1::SecretKey;

    #[test]
    fn log_and_votes_survive_reopening_and_double_signs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_byte_array([5; 32]).unwrap();
        let vote = sign_vote(
            199,
            &key,
            example_vote(&key, 3, 1, Some(B256::repeat_byte(1))),
        );
        let conflicting = sign_vote(199, &key, example_vote(&key, 3, 1, None));
        let timeout = |round| {
            WalEntry::Input(Input::Timeout(Timeout {
                step: Step::Propose,
                height: DeliveryHeight(3),
                round,
            }))
        };
        {
            let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
            db.append_wal(&[WalEntry::Height(DeliveryHeight(2)), timeout(0)])
                .unwrap();
            db.append_wal(&[WalEntry::Height(DeliveryHeight(3)), timeout(0), timeout(1)])
                .unwrap();
            db.record_signed_vote(&vote).unwrap();
            db.record_signed_vote(&vote).unwrap();
            assert!(matches!(
                db.record_signed_vote(&conflicting),
                Err(DeliveryStoreError::DoubleSign { .. })
            ));
        }
        let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
        assert_eq!(
            db.wal_tail().unwrap(),
            vec![WalEntry::Height(DeliveryHeight(3)), timeout(0), timeout(1)]
        );
        assert!(matches!(
            db.record_signed_vote(&conflicting),
            Err(DeliveryStoreError::DoubleSign { .. })
        ));
        assert_eq!(db.signed_votes().unwrap(), vec![vote]);
    }

    #[test]
    fn committed_blocks_and_app_state_survive_reopening() {
        use bttc_engine::delivery::{
            app::AppState,
            block::{Block, DeliveryTx, TxKind},
            signing::key_address,
        };
        let dir = tempfile::tempdir().unwrap();
        let key = SecretKey::from_byte_array([5; 32]).unwrap();
        let me = key_address(&key);
        let mut state = AppState::genesis(3, &[me], 10);
        let tx = DeliveryTx::signed(3, &key, TxKind::Set, 0, Bytes::from_static(b"\x01ab"));
        let block = Block::new(state.draft(me, 20), vec![tx], Vec::new());
        state.check_block(&block, None).unwrap();
        let changes = state.apply(&block);
        {
            let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
            assert_eq!(db.app_state(3).unwrap(), None);
            db.put_pending_block(&block).unwrap();
            assert_eq!(db.pending_block(block.hash()).unwrap(), Some(block.clone()));
            db.append_wal(&[WalEntry::Height(DeliveryHeight(1))])
                .unwrap();
            db.commit_block(&block, &[], &state, &changes).unwrap();
            assert_eq!(db.pending_block(block.hash()).unwrap(), None);
        }
        let db = DeliveryDb::open(dir.path(), SyncMode::Durable).unwrap();
        assert_eq!(db.app_state(3).unwrap(), Some(state));
        assert_eq!(db.block(1).unwrap(), Some((block, Vec::new())));
        assert_eq!(db.block(2).unwrap(), None);
    }
}
