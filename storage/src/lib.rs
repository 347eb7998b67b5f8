//! bttc-storage: the BTTC chain's MDBX database: typed tables, compact codecs, and one
//! read-write transaction per block, so that a crash at any instant leaves the last committed
//! block and nothing half-written.

pub mod bor;
pub mod codec;
pub mod delivery;
pub mod table;

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::{Nibbles, nodes::TrieNode};
use bttc_engine::{
    chain::BlockReader,
    exec::{StateChanges, StateError, StateReader},
    merkle::{
        state_root::StateRootUpdate,
        trie::{TrieError, TrieOwner, TrieReader, decode_node},
    },
    primitives::{Account, BlockNumber, RecoveredTx, StoredReceipt},
};
use codec::{
    BodyRef, ChainMetaKey, CodecError, ReceiptsRef, StorageKey, StorageValue, TrieKey, TxLocation,
};
use libmdbx::{Database, DatabaseOptions, Mode, ReadWriteOptions, TableFlags, WriteMap};
use std::path::Path;
use table::{DbTx, Decode, Table, Tx};
use tables::{
    Accounts, Bodies, Bytecodes, CanonicalHashes, HeaderNumbers, Headers, Meta, Storage, TrieNodes,
    TxLookup,
};

/// The chain environment's tables.
pub mod tables {
    use crate::{
        codec::{BlockReceipts, Body, ChainMetaKey, StorageKey, StorageValue, TrieKey, TxLocation},
        table::tables,
    };
    use alloy_consensus::Header;
    use alloy_primitives::{Address, B256, Bytes};
    use bttc_engine::primitives::{Account, BlockNumber};

    tables! {
        /// block number → header (RLP)
        Headers: BlockNumber => Header;
        /// block number → block hash (canonical chain)
        CanonicalHashes: BlockNumber => B256;
        /// block hash → block number
        HeaderNumbers: B256 => BlockNumber;
        /// block number → body (senders and EIP-2718 transactions)
        Bodies: BlockNumber => Body;
        /// block number → receipts
        Receipts: BlockNumber => BlockReceipts;
        /// transaction hash → block number and index
        TxLookup: B256 => TxLocation;
        /// address → account
        Accounts: Address => Account;
        /// address ‖ slot → value (non-zero values only)
        Storage: StorageKey => StorageValue;
        /// code hash → bytecode
        Bytecodes: B256 => Bytes;
        /// trie owner ‖ path → RLP trie node
        TrieNodes: TrieKey => Bytes;
        /// the tip's number, the chain's name
        Meta: ChainMetaKey => Bytes;
        /// block number → Bor snapshot, span and total difficulty after it (Bor chains)
        BorMeta: BlockNumber => Bytes;
        /// block number → the state changes that undo it (Bor chains, for reorganizations)
        ChangeSets: BlockNumber => Bytes;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("mdbx: {0}")]
    Mdbx(#[from] libmdbx::Error),
    #[error("creating the database directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("table {table}: {source}")]
    Codec {
        table: &'static str,
        source: CodecError,
    },
    #[error("table {table} lacks {what}")]
    Missing {
        table: &'static str,
        what: &'static str,
    },
    #[error(transparent)]
    Value(#[from] CodecError),
    #[error("database at {path} belongs to chain {found}, not {expected}")]
    WrongChain {
        path: String,
        found: String,
        expected: String,
    },
    #[error("block {number} cannot follow the stored tip {tip:?}")]
    NotNext {
        number: BlockNumber,
        tip: Option<BlockNumber>,
    },
}

/// How commits reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Every commit is on disk before it returns.
    #[default]
    Durable,
    /// Commits are ordered and never corrupt the database, but a system crash (not a process
    /// crash) may lose the last ones. For benchmark rigs.
    SafeNoSync,
}

impl From<SyncMode> for libmdbx::SyncMode {
    fn from(mode: SyncMode) -> Self {
        match mode {
            SyncMode::Durable => libmdbx::SyncMode::Durable,
            SyncMode::SafeNoSync => libmdbx::SyncMode::SafeNoSync,
        }
    }
}

/// Largest database size; the file grows in `GROWTH_STEP` increments up to it.
const SIZE_MAX: isize = 8 << 40;
const GROWTH_STEP: isize = 256 << 20;

/// The chain database.
pub struct ChainDb {
    db: Database<WriteMap>,
    codes: CodeCache,
}

/// Analysed contract code shared by all views. Code never changes under its hash, so no
/// entry goes stale; when full, the cache starts over.
#[derive(Default)]
struct CodeCache(parking_lot::Mutex<std::collections::HashMap<B256, bttc_engine::exec::Bytecode>>);

/// Contracts whose analysed code is kept.
const CODE_CACHE_LEN: usize = 4_096;

/// Everything one block writes, in one transaction.
pub struct BlockWrite<'a> {
    pub header: &'a Header,
    pub hash: B256,
    pub txs: &'a [RecoveredTx],
    pub receipts: &'a [StoredReceipt],
    pub changes: &'a StateChanges,
    pub root_update: &'a StateRootUpdate,
}

impl<'a> From<&'a bttc_engine::chain::builder::BuiltBlock> for BlockWrite<'a> {
    fn from(block: &'a bttc_engine::chain::builder::BuiltBlock) -> Self {
        Self {
            header: &block.header,
            hash: block.hash,
            txs: &block.txs,
            receipts: &block.receipts,
            changes: &block.changes,
            root_update: &block.root_update,
        }
    }
}

/// The chain node's store.
impl bttc_engine::env::ChainStore for ChainDb {
    type View<'a> = ReadView<'a>;

    fn read(&self) -> Result<ReadView<'_>, StateError> {
        ChainDb::read(self).map_err(StateError::store)
    }

    fn write_block(
        &self,
        block: &bttc_engine::chain::builder::BuiltBlock,
    ) -> Result<(), StateError> {
        ChainDb::write_block(self, &block.into()).map_err(StateError::store)
    }
}

impl ChainDb {
    /// Opens (creating if needed) the database in directory `path`, for the chain named
    /// `chain`; refuses a database made for another chain.
    pub fn open(path: &Path, chain: &str, sync: SyncMode) -> Result<Self, StorageError> {
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
        let db = Database::<WriteMap>::open_with_options(
            path,
            DatabaseOptions {
                max_tables: Some(tables::ALL.len() as u64 + 4),
                max_readers: Some(1024),
                no_rdahead: true,
                mode: Mode::ReadWrite(ReadWriteOptions {
                    sync_mode: sync.into(),
                    min_size: None,
                    max_size: Some(SIZE_MAX),
                    growth_step: Some(GROWTH_STEP),
                    shrink_threshold: None,
                }),
                ..Default::default()
            },
        )?;
        {
            let txn = db.begin_rw_txn()?;
            for name in tables::ALL {
                txn.create_table(Some(name), TableFlags::empty())?;
            }
            txn.commit()?;
        }
        let txn = table::begin_write(&db)?;
        match txn.get::<Meta>(&ChainMetaKey::Chain)? {
            Some(found) if found.as_ref() != chain.as_bytes() => {
                return Err(StorageError::WrongChain {
                    path: path.display().to_string(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                    expected: chain.to_owned(),
                });
            }
            Some(_) => {}
            None => txn.put::<Meta>(
                &ChainMetaKey::Chain,
                &Bytes::copy_from_slice(chain.as_bytes()),
            )?,
        }
        txn.commit()?;
        Ok(Self {
            db,
            codes: CodeCache::default(),
        })
    }

    /// A consistent read-only view of the latest committed state.
    pub fn read(&self) -> Result<ReadView<'_>, StorageError> {
        Ok(ReadView {
            txn: table::begin_read(&self.db)?,
            codes: &self.codes,
            db: &self.db,
        })
    }

    /// Writes a whole block — header, body, receipts, lookups, state, trie nodes and the new
    /// tip — in one transaction. Nothing of it is visible until the commit; a crash before
    /// the commit leaves the previous tip.
    pub fn write_block(&self, block: &BlockWrite<'_>) -> Result<(), StorageError> {
        let txn = table::begin_write(&self.db)?;
        write_block_in(&txn, block)?;
        txn.commit()
    }
}

/// Writes a whole block into `txn` (which the caller commits).
pub(crate) fn write_block_in(
    txn: &table::DbTxMut<'_>,
    block: &BlockWrite<'_>,
) -> Result<(), StorageError> {
    let number = block.header.number;
    let tip = tip_of(txn)?;
    if number != tip.map_or(0, |t| t + 1) {
        return Err(StorageError::NotNext { number, tip });
    }
    txn.append::<Headers>(&number, block.header)?;
    txn.append::<CanonicalHashes>(&number, &block.hash)?;
    txn.put::<HeaderNumbers>(&block.hash, &number)?;
    txn.append_as::<Bodies, _>(&number, &BodyRef(block.txs))?;
    txn.append_as::<tables::Receipts, _>(&number, &ReceiptsRef(block.receipts))?;
    for (index, tx) in block.txs.iter().enumerate() {
        let location = TxLocation {
            block: number,
            index: index as u32,
        };
        txn.put::<TxLookup>(&tx.hash, &location)?;
    }
    apply_state(txn, block.changes, block.root_update)?;
    txn.put::<Meta>(
        &ChainMetaKey::Tip,
        &Bytes::copy_from_slice(&number.to_be_bytes()),
    )
}

/// Writes state changes and the trie nodes of the new root into `txn`.
pub(crate) fn apply_state(
    txn: &table::DbTxMut<'_>,
    changes: &StateChanges,
    update: &StateRootUpdate,
) -> Result<(), StorageError> {
    for (address, change) in &changes.accounts {
        if change.storage_wiped {
            txn.delete_while::<Storage>(Some(&StorageKey::first_of(*address)), |k| {
                k.address == *address
            })?;
        }
        match &change.account {
            Some(account) => txn.put::<Accounts>(address, account)?,
            None => {
                txn.delete::<Accounts>(address)?;
            }
        }
        for (slot, value) in &change.storage {
            let key = StorageKey {
                address: *address,
                slot: *slot,
            };
            if value.is_zero() {
                txn.delete::<Storage>(&key)?;
            } else {
                txn.put::<Storage>(&key, &StorageValue(*value))?;
            }
        }
    }
    for (hash, code) in &changes.codes {
        txn.put::<Bytecodes>(hash, code)?;
    }

    for owner in &update.wiped_storage {
        let first = TrieKey {
            owner: Some(*owner),
            path: Nibbles::default(),
        };
        txn.delete_while::<TrieNodes>(Some(&first), |k| k.owner == Some(*owner))?;
    }
    // Node writes come out of hash maps in no order; written in key order, neighbouring
    // nodes land on the same pages and the B-tree is walked once.
    let storage_writes = update.storage_writes.iter().map(|(o, w)| (Some(*o), w));
    let mut node_writes: Vec<(TrieKey, Option<&Vec<u8>>)> = storage_writes
        .chain(std::iter::once((None, &update.account_writes)))
        .flat_map(|(owner, writes)| {
            writes
                .iter()
                .map(move |(path, node)| (TrieKey { owner, path: *path }, node.as_ref()))
        })
        .collect();
    node_writes.sort_by_cached_key(|(key, _)| table::Encode::encode(key));
    for (key, node) in node_writes {
        match node {
            Some(rlp) => txn.put::<TrieNodes>(&key, &Bytes::copy_from_slice(rlp))?,
            None => {
                txn.delete::<TrieNodes>(&key)?;
            }
        }
    }
    Ok(())
}

/// The stored tip's number.
fn tip_of<K: libmdbx::TransactionKind>(
    txn: &Tx<'_, K>,
) -> Result<Option<BlockNumber>, StorageError> {
    txn.get::<Meta>(&ChainMetaKey::Tip)?
        .map(|bytes| {
            u64::decode(&bytes).map_err(|source| StorageError::Codec {
                table: Meta::NAME,
                source,
            })
        })
        .transpose()
}

/// A read-only snapshot of the database; implements the engine's state and trie readers.
pub struct ReadView<'db> {
    txn: DbTx<'db>,
    codes: &'db CodeCache,
    db: &'db Database<WriteMap>,
}

impl ReadView<'_> {
    /// The number of the last committed block, if any.
    pub fn tip_at(&self) -> Result<Option<BlockNumber>, StorageError> {
        tip_of(&self.txn)
    }

    pub fn header_at(&self, number: BlockNumber) -> Result<Option<Header>, StorageError> {
        self.txn.get::<Headers>(&number)
    }

    pub fn canonical_hash_at(&self, number: BlockNumber) -> Result<Option<B256>, StorageError> {
        self.txn.get::<CanonicalHashes>(&number)
    }

    pub fn block_number_at(&self, hash: &B256) -> Result<Option<BlockNumber>, StorageError> {
        self.txn.get::<HeaderNumbers>(hash)
    }

    pub fn body_at(&self, number: BlockNumber) -> Result<Option<Vec<RecoveredTx>>, StorageError> {
        Ok(self.txn.get::<Bodies>(&number)?.map(|b| b.0))
    }

    pub fn receipts_at(
        &self,
        number: BlockNumber,
    ) -> Result<Option<Vec<StoredReceipt>>, StorageError> {
        Ok(self.txn.get::<tables::Receipts>(&number)?.map(|r| r.0))
    }

    pub fn tx_location_at(&self, hash: &B256) -> Result<Option<(BlockNumber, u32)>, StorageError> {
        Ok(self.txn.get::<TxLookup>(hash)?.map(|l| (l.block, l.index)))
    }

    pub fn account_at(&self, address: &Address) -> Result<Option<Account>, StorageError> {
        self.txn.get::<Accounts>(address)
    }

    pub fn storage_at(&self, address: &Address, slot: &U256) -> Result<U256, StorageError> {
        let key = StorageKey {
            address: *address,
            slot: *slot,
        };
        Ok(self
            .txn
            .get::<Storage>(&key)?
            .map(|v| v.0)
            .unwrap_or_default())
    }

    /// Recomputes the state root from the account and storage tables alone, ignoring the
    /// stored trie nodes: the check that the incremental trie agrees with the state.
    pub fn full_state_root(&self) -> Result<B256, StorageError> {
        let mut leaves: Vec<(B256, Vec<u8>)> = Vec::new();
        self.txn.walk::<Accounts>(None, |address, account| {
            let mut slots: Vec<(B256, U256)> = Vec::new();
            self.txn
                .walk::<Storage>(Some(&StorageKey::first_of(address)), |key, value| {
                    if key.address != address {
                        return Ok(false);
                    }
                    slots.push((
                        bttc_engine::merkle::state_root::hashed_slot(&key.slot),
                        value.0,
                    ));
                    Ok(true)
                })?;
            slots.sort_unstable_by_key(|s| s.0);
            let storage_root = alloy_trie::root::storage_root(slots.iter().map(|(k, v)| (*k, *v)));
            let leaf = alloy_trie::TrieAccount {
                nonce: account.nonce,
                balance: account.balance,
                storage_root,
                code_hash: account.code_hash,
            };
            leaves.push((
                alloy_primitives::keccak256(address),
                alloy_rlp::encode(leaf),
            ));
            Ok(true)
        })?;
        leaves.sort_unstable_by_key(|l| l.0);
        Ok(bttc_engine::merkle::trie::full_root(
            leaves
                .iter()
                .map(|(k, v)| (Nibbles::unpack(k), v.as_slice())),
        ))
    }

    pub fn code_at(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        self.txn.get::<Bytecodes>(hash)
    }
}

fn state_err(e: StorageError) -> StateError {
    StateError::store(e)
}

impl StateReader for ReadView<'_> {
    /// A read transaction of its own on the same snapshot (libmdbx serializes the operations
    /// of one transaction); `None` if a commit came in between.
    fn fork(&self) -> Option<Box<dyn StateReader + '_>> {
        let txn = table::begin_read(self.db).ok()?;
        (txn.id() == self.txn.id()).then(|| {
            Box::new(ReadView {
                txn,
                codes: self.codes,
                db: self.db,
            }) as Box<dyn StateReader + '_>
        })
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.account_at(address).map_err(state_err)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.storage_at(address, slot).map_err(state_err)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.code_at(code_hash).map_err(state_err)
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        self.canonical_hash_at(number).map_err(state_err)
    }
    fn bytecode(
        &self,
        code_hash: &B256,
    ) -> Result<Option<bttc_engine::exec::Bytecode>, StateError> {
        if let Some(code) = self.codes.0.lock().get(code_hash) {
            return Ok(Some(code.clone()));
        }
        let Some(raw) = self.code_at(code_hash).map_err(state_err)? else {
            return Ok(None);
        };
        let code = bttc_engine::exec::Bytecode::new_raw_checked(raw).map_err(|source| {
            StateError::Code {
                hash: *code_hash,
                source,
            }
        })?;
        let mut codes = self.codes.0.lock();
        if codes.len() >= CODE_CACHE_LEN {
            codes.clear();
        }
        codes.insert(*code_hash, code.clone());
        Ok(Some(code))
    }
}

impl BlockReader for ReadView<'_> {
    fn tip(&self) -> Result<Option<BlockNumber>, StateError> {
        self.tip_at().map_err(state_err)
    }
    fn header(&self, number: BlockNumber) -> Result<Option<Header>, StateError> {
        self.header_at(number).map_err(state_err)
    }
    fn canonical_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        self.canonical_hash_at(number).map_err(state_err)
    }
    fn block_number(&self, hash: &B256) -> Result<Option<BlockNumber>, StateError> {
        self.block_number_at(hash).map_err(state_err)
    }
    fn body(&self, number: BlockNumber) -> Result<Option<Vec<RecoveredTx>>, StateError> {
        self.body_at(number).map_err(state_err)
    }
    fn receipts(&self, number: BlockNumber) -> Result<Option<Vec<StoredReceipt>>, StateError> {
        self.receipts_at(number).map_err(state_err)
    }
    fn tx_location(&self, hash: &B256) -> Result<Option<(BlockNumber, u32)>, StateError> {
        self.tx_location_at(hash).map_err(state_err)
    }
    /// One cursor walk over the headers, reading each bloom in place from the memory map.
    fn visit_blooms(
        &self,
        from: BlockNumber,
        to: BlockNumber,
        visit: &mut dyn FnMut(BlockNumber, &alloy_primitives::Bloom) -> bool,
    ) -> Result<(), StateError> {
        self.txn
            .walk_raw::<Headers>(Some(&from), |number, rlp| {
                if number > to {
                    return Ok(false);
                }
                let bloom = bttc_engine::chain::header_rlp_bloom(rlp).ok_or_else(|| {
                    StorageError::Codec {
                        table: Headers::NAME,
                        source: CodecError::new(
                            "header",
                            format!("block {number} has no logs bloom where a header has it"),
                        ),
                    }
                })?;
                Ok(visit(number, &alloy_primitives::Bloom::from(*bloom)))
            })
            .map_err(state_err)
    }
}

impl TrieReader for ReadView<'_> {
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        let key = TrieKey { owner, path: *path };
        self.txn
            .get_with::<TrieNodes, _>(&key, <[u8]>::to_vec)
            .map_err(|e| TrieError::Read(Box::new(e)))
    }

    /// Decodes straight from the memory map (read-only transactions lend their pages).
    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        let key = TrieKey { owner, path: *path };
        self.txn
            .get_with::<TrieNodes, _>(&key, |rlp| decode_node(owner, path, rlp))
            .map_err(|e| TrieError::Read(Box::new(e)))?
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bttc_engine::exec::AccountChange;
    use std::{sync::mpsc, time::Duration};

    /// Longest a read may take here; a read that waited for the open write would never end.
    const READ_DEADLINE: Duration = Duration::from_secs(10);

    fn balance_change(address: Address, balance: u64) -> StateChanges {
        let mut changes = StateChanges::default();
        changes.accounts.insert(
            address,
            AccountChange {
                account: Some(Account {
                    balance: U256::from(balance),
                    code_hash: alloy_primitives::KECCAK256_EMPTY,
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        changes
    }

    fn tip_and_balance(view: &ReadView<'_>, address: &Address) -> (Option<u64>, U256) {
        let balance = view
            .account_at(address)
            .unwrap()
            .unwrap_or_default()
            .balance;
        (view.tip_at().unwrap(), balance)
    }

    /// Reads answer from the last committed block while a block write is open, without
    /// waiting for it; a view keeps its snapshot across a later commit.
    #[test]
    fn reads_do_not_wait_for_an_open_block_write_and_keep_their_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let db = ChainDb::open(dir.path(), "test", SyncMode::Durable).unwrap();
        let alice = Address::repeat_byte(0xa1);
        let header = Header::default();
        db.write_block(&BlockWrite {
            header: &header,
            hash: header.hash_slow(),
            txs: &[],
            receipts: &[],
            changes: &balance_change(alice, 1),
            root_update: &StateRootUpdate::default(),
        })
        .unwrap();
        let before = db.read().unwrap();

        let (written_tx, written) = mpsc::channel();
        let (go_tx, go) = mpsc::channel::<()>();
        let db = &db;
        std::thread::scope(|scope| {
            // The writer: block 1 written, left uncommitted until the reads are done.
            scope.spawn(move || {
                let txn = table::begin_write(&db.db).unwrap();
                txn.put::<Meta>(
                    &ChainMetaKey::Tip,
                    &Bytes::copy_from_slice(&1u64.to_be_bytes()),
                )
                .unwrap();
                let account = balance_change(alice, 2).accounts[&alice].account.unwrap();
                txn.put::<Accounts>(&alice, &account).unwrap();
                written_tx.send(()).unwrap();
                go.recv().unwrap();
                txn.commit().unwrap();
            });
            written.recv().unwrap();
            let (answer_tx, answer) = mpsc::channel();
            scope.spawn(move || {
                let during = db.read().unwrap();
                answer_tx.send(tip_and_balance(&during, &alice)).unwrap();
            });
            let during = answer.recv_timeout(READ_DEADLINE);
            go_tx.send(()).unwrap();
            assert_eq!(
                during.expect("a read waited for the open write"),
                (Some(0), U256::from(1)),
                "a read during the write sees the last committed block"
            );
        });
        assert_eq!(
            tip_and_balance(&before, &alice),
            (Some(0), U256::from(1)),
            "a view keeps its snapshot after a commit"
        );
        let after = db.read().unwrap();
        assert_eq!(tip_and_balance(&after, &alice), (Some(1), U256::from(2)));
    }

    /// A view forked for another thread reads the same snapshot; after a commit the old view
    /// cannot fork (the new transaction would see newer state).
    #[test]
    fn forked_views_read_the_same_snapshot_or_are_refused() {
        use bttc_engine::exec::StateReader;
        let dir = tempfile::tempdir().unwrap();
        let db = ChainDb::open(dir.path(), "test", SyncMode::Durable).unwrap();
        let alice = Address::repeat_byte(0xa1);
        let write = |number: u64, balance: u64| {
            let header = Header {
                number,
                ..Header::default()
            };
            db.write_block(&BlockWrite {
                header: &header,
                hash: header.hash_slow(),
                txs: &[],
                receipts: &[],
                changes: &balance_change(alice, balance),
                root_update: &StateRootUpdate::default(),
            })
            .unwrap();
        };
        write(0, 1);
        let view = db.read().unwrap();
        let balance = |reader: &dyn StateReader| reader.account(&alice).unwrap().unwrap().balance;
        let forked = view.fork().expect("no commit since the view began");
        assert_eq!(balance(&*forked), U256::from(1));
        std::thread::scope(|scope| {
            scope.spawn(|| assert_eq!(balance(&*view.fork().unwrap()), U256::from(1)));
        });
        write(1, 2);
        assert!(
            view.fork().is_none(),
            "a fork after a commit would read newer state"
        );
        assert_eq!(
            balance(&*forked),
            U256::from(1),
            "a fork keeps its snapshot"
        );
        assert_eq!(balance(&view), U256::from(1));
    }
}
