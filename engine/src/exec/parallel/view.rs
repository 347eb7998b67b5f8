//! The state one transaction incarnation reads: multi-version memory over the parent state,
//! exactly as the sequential overlay would show it at that transaction; every read is recorded
//! for validation.

use super::memory::{AccountEntry, CoinbaseRead, Location, MvMemory, Origin, Read, TxIdx, Value};
use crate::{
    exec::{StateError, StateReader},
    primitives::Account,
};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, map::HashMap};
use parking_lot::RwLock;
use revm::{Database, bytecode::Bytecode, state::AccountInfo};

/// Why a read could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ViewError {
    /// The value is an ESTIMATE of this aborted transaction: wait for it.
    #[error("blocked on transaction {0}")]
    Blocked(TxIdx),
    #[error(transparent)]
    State(#[from] StateError),
}

impl revm::database_interface::DBErrorMarker for ViewError {}

/// One recorded read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadEntry {
    Location(Location, Origin),
    /// The fee recipient's account is validated by value: it sums many transactions' fees.
    Coinbase(CoinbaseRead),
}

/// How an account's storage reads resolve, from the account as the transaction read it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StorageRule {
    /// The account as read (a write of the same value is no write).
    pub(crate) entry: AccountEntry,
    /// Slots this block has not written read as zero: the storage was wiped, or the account
    /// was deleted earlier in the block.
    pub(crate) hides_base: bool,
}

impl StorageRule {
    fn of(entry: AccountEntry, in_block: bool) -> Self {
        Self {
            entry,
            hides_base: entry.wiped_by > 0 || (in_block && entry.account.is_none()),
        }
    }
}

/// What every transaction view of a block shares.
pub(crate) struct Shared<'a, S> {
    pub(crate) state: &'a S,
    pub(crate) memory: MvMemory,
    /// Analysed code by hash: from the parent state, or deployed in this block.
    pub(crate) codes: RwLock<HashMap<B256, Bytecode>>,
    pub(crate) coinbase: Address,
    /// The fee recipient's account in the parent state.
    pub(crate) coinbase_base: Option<Account>,
}

impl<S> Shared<'_, S> {
    fn bytecode(&self, base: &dyn StateReader, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK256_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.codes.read().get(&code_hash) {
            return Ok(code.clone());
        }
        let code = base
            .bytecode(&code_hash)?
            .ok_or(StateError::MissingCode(code_hash))?;
        self.codes.write().insert(code_hash, code.clone());
        Ok(code)
    }
}

/// revm's database for one incarnation of transaction `txn`.
pub(crate) struct TxView<'a, S> {
    shared: &'a Shared<'a, S>,
    /// The parent state as this worker reads it (its own database transaction, if any).
    base: &'a dyn StateReader,
    txn: TxIdx,
    sender: Address,
    /// The sender's balance as this transaction read it (for BTTC's fee log).
    pub(crate) sender_balance: U256,
    pub(crate) reads: Vec<ReadEntry>,
    pub(crate) rules: HashMap<Address, StorageRule>,
}

impl<'a, S: StateReader> TxView<'a, S> {
    pub(crate) fn new(shared: &'a Shared<'a, S>, base: &'a dyn StateReader) -> Self {
        Self {
            shared,
            base,
            txn: 0,
            sender: Address::ZERO,
            sender_balance: U256::ZERO,
            reads: Vec::new(),
            rules: HashMap::default(),
        }
    }

    /// Starts a new incarnation of `txn`, sent by `sender`.
    pub(crate) fn begin(&mut self, txn: TxIdx, sender: Address) {
        self.txn = txn;
        self.sender = sender;
        self.sender_balance = U256::ZERO;
        self.reads.clear();
        self.rules.clear();
    }

    fn account(&mut self, address: Address) -> Result<Option<Account>, ViewError> {
        let shared = self.shared;
        if address == shared.coinbase {
            let read = shared
                .memory
                .read_coinbase(self.txn, shared.coinbase_base)
                .map_err(ViewError::Blocked)?;
            self.reads.push(ReadEntry::Coinbase(read));
            self.rules
                .insert(address, StorageRule::of(read.entry, read.in_block));
            return Ok(read.entry.account);
        }
        let location = Location::Account(address);
        let read = shared.memory.read(&location, self.txn);
        // Recorded first: a failed parent-state read is validated like any other.
        self.reads
            .push(ReadEntry::Location(location, read.origin()));
        let (account, rule) = match read {
            Read::Estimate(blocking) => return Err(ViewError::Blocked(blocking)),
            Read::Base => {
                let account = self.base.account(&address)?;
                let entry = AccountEntry {
                    account,
                    wiped_by: 0,
                };
                (account, StorageRule::of(entry, false))
            }
            Read::Version(_, _, Value::Account(entry)) => {
                (entry.account, StorageRule::of(entry, true))
            }
            Read::Version(_, _, Value::Storage(_)) => {
                unreachable!("an account location holds an account")
            }
        };
        self.reads
            .push(ReadEntry::Location(location, read.origin()));
        self.rules.insert(address, rule);
        Ok(account)
    }
}

impl<S: StateReader> Database for TxView<'_, S> {
    type Error = ViewError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, ViewError> {
        let account = self.account(address)?;
        if address == self.sender {
            self.sender_balance = account.map_or(U256::ZERO, |a| a.balance);
        }
        Ok(account.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, ViewError> {
        Ok(self.shared.bytecode(self.base, code_hash)?)
    }

    fn storage(&mut self, address: Address, slot: U256) -> Result<U256, ViewError> {
        let rule = match self.rules.get(&address) {
            Some(rule) => *rule,
            None => {
                // revm loads an account before its storage; resolve it anyway if it did not.
                self.account(address)?;
                self.rules[&address]
            }
        };
        let location = Location::Storage(address, slot);
        let read = self.shared.memory.read(&location, self.txn);
        self.reads
            .push(ReadEntry::Location(location, read.origin()));
        let value = match read {
            Read::Estimate(blocking) => return Err(ViewError::Blocked(blocking)),
            Read::Version(writer, _, Value::Storage(value))
                if rule.entry.wiped_by == 0 || writer + 1 >= rule.entry.wiped_by =>
            {
                value
            }
            Read::Version(_, _, Value::Storage(_)) => U256::ZERO,
            Read::Version(_, _, Value::Account(_)) => {
                unreachable!("a storage location holds a slot")
            }
            Read::Base if rule.hides_base => U256::ZERO,
            Read::Base => self.base.storage(&address, &slot)?,
        };
        self.reads
            .push(ReadEntry::Location(location, read.origin()));
        Ok(value)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, ViewError> {
        Ok(self
            .base
            .block_hash(number)?
            .ok_or(StateError::MissingBlockHash(number))?)
    }
}

/// Whether every read of `reads`, made by transaction `txn`, would read the same now.
pub(crate) fn reads_valid<S: StateReader>(
    shared: &Shared<'_, S>,
    txn: TxIdx,
    reads: &[ReadEntry],
) -> bool {
    reads.iter().all(|read| match read {
        ReadEntry::Location(location, origin) => {
            let now = shared.memory.read(location, txn).origin();
            now == *origin && !matches!(now, Origin::Estimate(_))
        }
        ReadEntry::Coinbase(seen) => shared
            .memory
            .read_coinbase(txn, shared.coinbase_base)
            .is_ok_and(|now| now == *seen),
    })
}
