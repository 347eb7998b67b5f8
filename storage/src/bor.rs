//! The BTTC chain under Bor in MDBX: with each block, in the block's own transaction, its Bor
//! snapshot and total difficulty and the changes that undo it, so that a node takes blocks off
//! its tip (a reorganization) one whole transaction at a time and restarts without a replay.

use crate::{
    BlockWrite, ChainDb, ReadView, StorageError,
    codec::{ChainMetaKey, StorageKey, decode_account, encode_account},
    delivery::{decode_span, encode_span},
    table,
    tables::{
        Bodies, BorMeta, CanonicalHashes, ChangeSets, HeaderNumbers, Headers, Meta, Receipts,
        Storage, TxLookup,
    },
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::{Nibbles, nodes::TrieNode};
use bttc_engine::{
    chain::{
        bor::{
            Snapshot,
            block::BorTip,
            genesis::BorGenesis,
            host::{BorStore, ChainMeta},
        },
        builder::BuiltBlock,
        spec::ChainSpec,
    },
    delivery::validators::ValidatorSet,
    exec::{AccountChange, StateChanges, StateError, StateReader, reverse_changes},
    merkle::{
        state_root::update_state_root,
        trie::{TrieError, TrieOwner, TrieReader},
    },
    primitives::{Account, BlockNumber, ByteReader, DecodeError, RecoveredTx},
};
use std::sync::Arc;

/// Why the Bor store could not write or unwind.
#[derive(Debug, thiserror::Error)]
pub enum BorDbError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("reading the state: {0}")]
    State(#[from] StateError),
    #[error("the state trie: {0}")]
    Trie(#[from] TrieError),
    #[error("the genesis: {0}")]
    Genesis(String),
    #[error("block {0} has no stored changes to undo it")]
    NoUndo(BlockNumber),
    #[error("the genesis block cannot be unwound")]
    UnwindGenesis,
    #[error("undoing block {number} gave state root {got}, its parent has {expected}")]
    UndoRoot {
        number: BlockNumber,
        got: B256,
        expected: B256,
    },
    #[error("database holds genesis {found}, this network's is {expected}")]
    WrongGenesis { found: B256, expected: B256 },
}

/// `snapshot number ‖ hash ‖ set ‖ span ‖ total difficulty`.
pub fn encode_meta(meta: &ChainMeta) -> Vec<u8> {
    let snapshot = &meta.tip.snapshot;
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&snapshot.number.to_be_bytes());
    out.extend_from_slice(snapshot.hash.as_slice());
    let set = snapshot.set.encode();
    out.extend_from_slice(&(set.len() as u32).to_be_bytes());
    out.extend_from_slice(&set);
    encode_span(&mut out, &meta.tip.current_span);
    out.extend_from_slice(&meta.total_difficulty.to_be_bytes());
    out
}

pub fn decode_meta(bytes: &[u8]) -> Result<ChainMeta, DecodeError> {
    let mut r = ByteReader::new(bytes, "Bor block meta");
    let number = r.u64()?;
    let hash = r.b256()?;
    let len = r.u32()? as usize;
    let set = ValidatorSet::decode(r.take(len)?)?;
    let current_span = decode_span(&mut r)?;
    let total_difficulty = u128::from_be_bytes(r.take(16)?.try_into().expect("16 bytes"));
    r.finish()?;
    Ok(ChainMeta {
        tip: BorTip {
            snapshot: Snapshot { number, hash, set },
            current_span,
        },
        total_difficulty,
    })
}

const PRESENT: u8 = 1;
const WIPED: u8 = 2;

/// `count ‖ (address ‖ flags ‖ [account] ‖ slot count ‖ (slot ‖ value)*)* ‖ code count ‖
/// (hash ‖ len ‖ code)*`.
pub fn encode_changes(changes: &StateChanges) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(changes.accounts.len() as u32).to_be_bytes());
    for (address, change) in &changes.accounts {
        out.extend_from_slice(address.as_slice());
        let flags = if change.account.is_some() { PRESENT } else { 0 }
            | if change.storage_wiped { WIPED } else { 0 };
        out.push(flags);
        if let Some(account) = &change.account {
            let bytes = encode_account(account);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out.extend_from_slice(&(change.storage.len() as u32).to_be_bytes());
        for (slot, value) in &change.storage {
            out.extend_from_slice(&slot.to_be_bytes::<32>());
            out.extend_from_slice(&value.to_be_bytes::<32>());
        }
    }
    out.extend_from_slice(&(changes.codes.len() as u32).to_be_bytes());
    for (hash, code) in &changes.codes {
        out.extend_from_slice(hash.as_slice());
        out.extend_from_slice(&(code.len() as u32).to_be_bytes());
        out.extend_from_slice(code);
    }
    out
}

pub fn decode_changes(bytes: &[u8]) -> Result<StateChanges, DecodeError> {
    let mut r = ByteReader::new(bytes, "undo changes");
    let mut changes = StateChanges::default();
    // Every count is checked against the bytes left, so a corrupt count allocates nothing.
    let accounts = r.u32()? as usize;
    if accounts > r.remaining() / 29 {
        return Err(r.error(format!("{accounts} accounts")));
    }
    for _ in 0..accounts {
        let address = r.address()?;
        let flags = r.u8()?;
        let account = if flags & PRESENT != 0 {
            let len = r.u32()? as usize;
            Some(decode_account(r.take(len)?)?)
        } else {
            None
        };
        let slots = r.u32()? as usize;
        if slots > r.remaining() / 64 {
            return Err(r.error(format!("{slots} slots")));
        }
        let mut change = AccountChange {
            account,
            storage_wiped: flags & WIPED != 0,
            ..Default::default()
        };
        for _ in 0..slots {
            let slot = U256::from_be_slice(r.take(32)?);
            let value = U256::from_be_slice(r.take(32)?);
            change.storage.insert(slot, value);
        }
        changes.accounts.insert(address, change);
    }
    let codes = r.u32()? as usize;
    if codes > r.remaining() / 36 {
        return Err(r.error(format!("{codes} codes")));
    }
    for _ in 0..codes {
        let hash = r.b256()?;
        let len = r.u32()? as usize;
        changes
            .codes
            .insert(hash, Bytes::copy_from_slice(r.take(len)?));
    }
    r.finish()?;
    Ok(changes)
}

impl ReadView<'_> {
    /// Every non-zero storage slot of `address`, in slot order.
    pub fn slots_of(&self, address: &Address) -> Result<Vec<(U256, U256)>, StorageError> {
        let mut slots = Vec::new();
        self.txn
            .walk::<Storage>(Some(&StorageKey::first_of(*address)), |key, value| {
                if key.address != *address {
                    return Ok(false);
                }
                slots.push((key.slot, value.0));
                Ok(true)
            })?;
        Ok(slots)
    }

    /// The Bor snapshot and total difficulty kept with canonical block `number`.
    pub fn bor_meta_at(&self, number: BlockNumber) -> Result<Option<ChainMeta>, StorageError> {
        self.txn
            .get::<BorMeta>(&number)?
            .map(|bytes| {
                decode_meta(&bytes).map_err(|source| StorageError::Codec {
                    table: "BorMeta",
                    source,
                })
            })
            .transpose()
    }
}

impl ChainDb {
    /// Commits a Bor block with its meta and the changes that undo it, in one transaction.
    pub fn commit_bor_block(&self, block: &BuiltBlock, meta: &ChainMeta) -> Result<(), BorDbError> {
        let view = self.read()?;
        let undo = reverse_changes(&view, &block.changes, |address| {
            view.slots_of(address).map_err(StateError::store)
        })?;
        drop(view);
        let number = block.header.number;
        let txn = table::begin_write(&self.db)?;
        crate::write_block_in(&txn, &BlockWrite::from(block))?;
        txn.put::<BorMeta>(&number, &Bytes::from(encode_meta(meta)))?;
        txn.put::<ChangeSets>(&number, &Bytes::from(encode_changes(&undo)))?;
        txn.commit()?;
        Ok(())
    }

    /// Takes the tip block off: its state undone, its header, body, receipts, lookups and
    /// meta removed, in one transaction. Returns the new tip's number.
    pub fn unwind_bor_tip(&self) -> Result<BlockNumber, BorDbError> {
        let view = self.read()?;
        let tip = view.tip_at()?.unwrap_or_default();
        if tip == 0 {
            return Err(BorDbError::UnwindGenesis);
        }
        let undo = view
            .txn
            .get::<ChangeSets>(&tip)?
            .ok_or(BorDbError::NoUndo(tip))?;
        let undo = decode_changes(&undo).map_err(|source| StorageError::Codec {
            table: "ChangeSets",
            source,
        })?;
        let update = update_state_root(&view, &undo)?;
        let parent = view.header_at(tip - 1)?.ok_or(StorageError::Missing {
            table: "Headers",
            what: "the tip's parent",
        })?;
        if update.root != parent.state_root {
            return Err(BorDbError::UndoRoot {
                number: tip,
                got: update.root,
                expected: parent.state_root,
            });
        }
        let hash = view.canonical_hash_at(tip)?.unwrap_or_default();
        let txs = view.body_at(tip)?.unwrap_or_default();
        drop(view);
        let txn = table::begin_write(&self.db)?;
        crate::apply_state(&txn, &undo, &update)?;
        for tx in &txs {
            txn.delete::<TxLookup>(&tx.hash)?;
        }
        txn.delete::<HeaderNumbers>(&hash)?;
        txn.delete::<Headers>(&tip)?;
        txn.delete::<CanonicalHashes>(&tip)?;
        txn.delete::<Bodies>(&tip)?;
        txn.delete::<Receipts>(&tip)?;
        txn.delete::<BorMeta>(&tip)?;
        txn.delete::<ChangeSets>(&tip)?;
        txn.put::<Meta>(
            &ChainMetaKey::Tip,
            &Bytes::copy_from_slice(&(tip - 1).to_be_bytes()),
        )?;
        txn.commit()?;
        Ok(tip - 1)
    }
}

/// A node's BTTC chain under Bor on MDBX: the engine's [`BorStore`] over a shared
/// [`ChainDb`] (JSON-RPC reads the same database).
pub struct BorDb {
    db: Arc<ChainDb>,
    /// The tip, kept so that the host's frequent asks need no transaction.
    tip: (Header, B256),
}

impl BorDb {
    /// Opens the chain in `db`, writing `genesis` first if the database is empty; refuses a
    /// database holding another genesis.
    pub fn open(
        db: Arc<ChainDb>,
        genesis: &BorGenesis,
        spec: &ChainSpec,
    ) -> Result<Self, BorDbError> {
        let changes = genesis
            .changes(spec)
            .map_err(|e| BorDbError::Genesis(e.to_string()))?;
        let view = db.read()?;
        if view.tip_at()?.is_none() {
            let update = update_state_root(&view, &changes)?;
            drop(view);
            let header = genesis.base.header(spec, update.root);
            let hash = header.hash_slow();
            let meta = genesis
                .meta(hash)
                .map_err(|e| BorDbError::Genesis(e.to_string()))?;
            let txn = table::begin_write(&db.db)?;
            crate::write_block_in(
                &txn,
                &BlockWrite {
                    header: &header,
                    hash,
                    txs: &[],
                    receipts: &[],
                    changes: &changes,
                    root_update: &update,
                },
            )?;
            txn.put::<BorMeta>(&0, &Bytes::from(encode_meta(&meta)))?;
            txn.commit()?;
        } else {
            // The genesis header is fixed by the genesis file: compare hashes.
            let root = bttc_engine::merkle::state_root::update_state_root(
                &bttc_engine::merkle::trie::MemTrieStore::default(),
                &changes,
            )?
            .root;
            let expected = genesis.base.header(spec, root).hash_slow();
            let found = view.canonical_hash_at(0)?.unwrap_or_default();
            if found != expected {
                return Err(BorDbError::WrongGenesis { found, expected });
            }
            drop(view);
        }
        let tip = Self::read_tip(&db)?;
        Ok(Self { db, tip })
    }

    fn read_tip(db: &ChainDb) -> Result<(Header, B256), StorageError> {
        let view = db.read()?;
        let number = view.tip_at()?.unwrap_or_default();
        let missing = |what| StorageError::Missing {
            table: "Headers",
            what,
        };
        let header = view.header_at(number)?.ok_or(missing("the tip's header"))?;
        let hash = view
            .canonical_hash_at(number)?
            .ok_or(missing("the tip's hash"))?;
        Ok((header, hash))
    }

    pub fn db(&self) -> &Arc<ChainDb> {
        &self.db
    }

    /// Reads one value, logging a failure as the answer "absent" (the host treats an absent
    /// block as one it does not hold, and a store that keeps failing stops the node at its
    /// next write).
    fn get<T>(
        &self,
        what: &str,
        f: impl FnOnce(&ReadView<'_>) -> Result<Option<T>, StorageError>,
    ) -> Option<T> {
        match self.db.read().and_then(|view| f(&view)) {
            Ok(value) => value,
            Err(e) => {
                tracing::error!(error = %e, "reading {what}");
                None
            }
        }
    }
}

impl BorStore for BorDb {
    type Error = BorDbError;
    type View<'a> = BorView<'a>;

    fn view(&self) -> BorView<'_> {
        BorView(self.db.read().ok())
    }

    fn tip(&self) -> (Header, B256) {
        self.tip.clone()
    }

    fn canonical(&self, number: u64) -> Option<(Header, B256)> {
        if number == self.tip.0.number {
            return Some(self.tip.clone());
        }
        self.get("a canonical header", |view| {
            Ok(view.header_at(number)?.zip(view.canonical_hash_at(number)?))
        })
    }

    fn body(&self, number: u64) -> Option<Vec<RecoveredTx>> {
        self.get("a body", |view| view.body_at(number))
    }

    fn commit(&mut self, block: BuiltBlock, meta: ChainMeta) -> Result<(), BorDbError> {
        self.db.commit_bor_block(&block, &meta)?;
        self.tip = (block.header, block.hash);
        Ok(())
    }

    fn meta(&self, number: u64) -> Option<ChainMeta> {
        self.get("a block's Bor meta", |view| view.bor_meta_at(number))
    }

    fn unwind_to(&mut self, number: u64) -> Result<(), BorDbError> {
        while self.tip.0.number > number {
            self.db.unwind_bor_tip()?;
            self.tip = Self::read_tip(&self.db)?;
        }
        Ok(())
    }
}

/// A read view for the host; a view that could not be opened answers every read with an
/// error (the block being built or imported then fails, and nothing is written).
pub struct BorView<'a>(Option<ReadView<'a>>);

impl BorView<'_> {
    fn inner(&self) -> Result<&ReadView<'_>, StateError> {
        self.0.as_ref().ok_or_else(|| {
            StateError::store(StorageError::Missing {
                table: "-",
                what: "a read transaction",
            })
        })
    }
}

impl StateReader for BorView<'_> {
    fn fork(&self) -> Option<Box<dyn StateReader + '_>> {
        self.0.as_ref()?.fork()
    }
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.inner()?.account(address)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.inner()?.storage(address, slot)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.inner()?.code(code_hash)
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        self.inner()?.block_hash(number)
    }
    fn bytecode(
        &self,
        code_hash: &B256,
    ) -> Result<Option<bttc_engine::exec::Bytecode>, StateError> {
        self.inner()?.bytecode(code_hash)
    }
}

impl TrieReader for BorView<'_> {
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        let view = self.inner().map_err(|e| TrieError::Read(Box::new(e)))?;
        view.trie_node(owner, path)
    }
    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        let view = self.inner().map_err(|e| TrieError::Read(Box::new(e)))?;
        view.decoded_trie_node(owner, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_bad_counts_are_refused() {
        let mut changes = StateChanges::default();
        changes.accounts.insert(
            Address::repeat_byte(1),
            AccountChange {
                account: Some(Account {
                    nonce: 3,
                    balance: U256::from(7),
                    code_hash: alloy_primitives::KECCAK256_EMPTY,
                }),
                storage_wiped: true,
                storage: [(U256::from(1), U256::from(2))].into(),
            },
        );
        changes
            .accounts
            .insert(Address::repeat_byte(2), AccountChange::default());
        let bytes = encode_changes(&changes);
        assert_eq!(decode_changes(&bytes).unwrap(), changes);
        let mut huge = bytes.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode_changes(&huge).is_err());
        assert!(decode_changes(&bytes[..bytes.len() - 1]).is_err());
    }
}
