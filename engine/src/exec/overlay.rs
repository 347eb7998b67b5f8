//! The state changes of a block so far, layered over the parent state; revm reads through it.

use super::{StateError, StateReader};
use crate::primitives::Account;
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256};
use revm::{
    Database,
    bytecode::Bytecode,
    state::{AccountInfo, EvmState},
};
use std::collections::{BTreeMap, HashMap};

/// One account's change over a block. `account: None` means the account no longer exists.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccountChange {
    pub account: Option<Account>,
    /// The account's storage was destroyed (self-destruct, or re-creation) before `storage`.
    pub storage_wiped: bool,
    /// Slots written, with their values at the end of the block (zero means deleted).
    pub storage: BTreeMap<U256, U256>,
}

/// All state changes of a block, sorted by address so that writes are deterministic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateChanges {
    pub accounts: BTreeMap<Address, AccountChange>,
    /// Code deployed in the block, by hash.
    pub codes: BTreeMap<B256, Bytes>,
}

impl StateChanges {
    /// A hash over the post-state of every touched account and slot, in address and slot
    /// order: for each account its address, whether it exists, then nonce, balance and code
    /// hash if so, whether its storage was wiped, and its written slots with their values;
    /// then the hashes of the code deployed.
    pub fn digest(&self) -> B256 {
        let mut hasher = alloy_primitives::Keccak256::new();
        for (address, change) in &self.accounts {
            hasher.update(address);
            match &change.account {
                Some(account) => {
                    hasher.update([1]);
                    hasher.update(account.nonce.to_be_bytes());
                    hasher.update(account.balance.to_be_bytes::<32>());
                    hasher.update(account.code_hash);
                }
                None => hasher.update([0]),
            }
            hasher.update([u8::from(change.storage_wiped)]);
            hasher.update((change.storage.len() as u64).to_be_bytes());
            for (slot, value) in &change.storage {
                hasher.update(slot.to_be_bytes::<32>());
                hasher.update(value.to_be_bytes::<32>());
            }
        }
        for hash in self.codes.keys() {
            hasher.update(hash);
        }
        hasher.finalize()
    }
}

/// The parent state plus the changes made so far; implements revm's `Database`.
pub(crate) struct Overlay<'a, S> {
    parent: &'a S,
    pub(crate) changes: StateChanges,
    /// Analysed code, so each contract is analysed once per block.
    code_cache: HashMap<B256, Bytecode>,
    /// EIP-161: touched empty accounts are deleted (Spurious Dragon on).
    clear_empty: bool,
}

impl<'a, S: StateReader> Overlay<'a, S> {
    pub(crate) fn new(parent: &'a S, clear_empty: bool) -> Self {
        Self {
            parent,
            changes: StateChanges::default(),
            code_cache: HashMap::new(),
            clear_empty,
        }
    }

    pub(crate) fn parent(&self) -> &'a S {
        self.parent
    }

    pub(crate) fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        match self.changes.accounts.get(address) {
            Some(change) => Ok(change.account),
            None => self.parent.account(address),
        }
    }

    pub(crate) fn balance(&self, address: &Address) -> Result<U256, StateError> {
        Ok(self.account(address)?.map_or(U256::ZERO, |a| a.balance))
    }

    /// Folds the state a transaction left behind into the block's changes.
    pub(crate) fn apply(&mut self, state: EvmState) {
        for (address, account) in &state {
            self.apply_account(*address, account);
        }
    }

    /// Folds one account a transaction left behind into the block's changes.
    pub(crate) fn apply_account(&mut self, address: Address, account: &revm::state::Account) {
        if !account.is_touched() {
            return;
        }
        let change = self.changes.accounts.entry(address).or_default();
        if account.is_selfdestructed() {
            *change = AccountChange {
                account: None,
                storage_wiped: true,
                ..Default::default()
            };
            return;
        }
        if account.is_created() {
            change.storage_wiped = true;
            change.storage.clear();
        }
        if self.clear_empty && account.is_empty() {
            change.account = None;
            return;
        }
        let info = &account.info;
        if account.is_created()
            && let Some(code) = &info.code
            && !code.is_empty()
        {
            self.changes
                .codes
                .insert(info.code_hash, code.original_bytes());
            self.code_cache.insert(info.code_hash, code.clone());
        }
        change.account = Some(Account {
            nonce: info.nonce,
            balance: info.balance,
            code_hash: info.code_hash,
        });
        for (slot, value) in &account.storage {
            if value.is_changed() {
                change.storage.insert(*slot, value.present_value);
            }
        }
    }

    /// Replaces the changes with `accounts` (sorted by address) and the code deployed.
    pub(crate) fn set_changes(
        &mut self,
        accounts: impl IntoIterator<Item = (Address, AccountChange)>,
        codes: Vec<(B256, Bytecode)>,
    ) {
        debug_assert!(self.changes.accounts.is_empty(), "changes are set once");
        // Sorted input: the tree is built in one pass.
        self.changes.accounts = accounts.into_iter().collect();
        self.changes.codes = codes
            .iter()
            .map(|(hash, code)| (*hash, code.original_bytes()))
            .collect();
        self.code_cache.extend(codes);
    }
}

impl<S: StateReader> Database for Overlay<'_, S> {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        Ok(self.account(&address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            ..Default::default()
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK256_EMPTY {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.code_cache.get(&code_hash) {
            return Ok(code.clone());
        }
        let code = self
            .parent
            .bytecode(&code_hash)?
            .ok_or(StateError::MissingCode(code_hash))?;
        self.code_cache.insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage(&mut self, address: Address, slot: U256) -> Result<U256, StateError> {
        if let Some(change) = self.changes.accounts.get(&address) {
            if let Some(value) = change.storage.get(&slot) {
                return Ok(*value);
            }
            if change.storage_wiped || change.account.is_none() {
                return Ok(U256::ZERO);
            }
        }
        self.parent.storage(&address, &slot)
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StateError> {
        self.parent
            .block_hash(number)?
            .ok_or(StateError::MissingBlockHash(number))
    }
}

/// The changes that take the state after `changes` back to `pre` (the state before them):
/// each touched account's previous value and each written slot's previous value. An account
/// whose storage the changes wiped or deleted gets all its previous slots back, read through
/// `slots_of` (a store's walk of one account's storage).
pub fn reverse_changes<S: StateReader>(
    pre: &S,
    changes: &StateChanges,
    slots_of: impl Fn(&Address) -> Result<Vec<(U256, U256)>, StateError>,
) -> Result<StateChanges, StateError> {
    let mut reverse = StateChanges::default();
    for (address, change) in &changes.accounts {
        let mut back = AccountChange {
            account: pre.account(address)?,
            ..Default::default()
        };
        if change.storage_wiped || change.account.is_none() {
            back.storage_wiped = true;
            back.storage = slots_of(address)?.into_iter().collect();
        } else {
            for slot in change.storage.keys() {
                back.storage.insert(*slot, pre.storage(address, slot)?);
            }
        }
        reverse.accounts.insert(*address, back);
    }
    Ok(reverse)
}
