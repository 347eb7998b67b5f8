//! The Delivery chain's MDBX environment: the consensus write-ahead log and the votes this
//! validator signed, which refuse a second, different vote for the same height, round and kind.

use crate::{StorageError, SyncMode};
use bttc_engine::delivery::{
    signing::{SignedVote, decode_signed_vote, encode_signed_vote},
    tendermint::VoteKind,
    wal::{WalEntry, decode_wal_entry, encode_wal_entry},
};
use libmdbx::{
    Database, DatabaseOptions, Mode, ReadWriteOptions, TableFlags, WriteFlags, WriteMap,
};
use std::{borrow::Cow, path::Path};

/// sequence number (8, BE) → WAL record
const WAL: &str = "Wal";
/// height (8) ‖ round (4) ‖ kind (1) → signed vote
const SIGNED_VOTES: &str = "SignedVotes";

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
}

impl From<libmdbx::Error> for DeliveryStoreError {
    fn from(e: libmdbx::Error) -> Self {
        Self::Storage(StorageError::Mdbx(e))
    }
}

pub struct DeliveryDb {
    db: Database<WriteMap>,
}

fn vote_key(signed: &SignedVote) -> [u8; 13] {
    let v = &signed.vote;
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
                max_tables: Some(4),
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
        txn.create_table(Some(SIGNED_VOTES), TableFlags::empty())?;
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
        let key = vote_key(signed);
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
}
