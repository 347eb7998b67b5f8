//! An in-memory state: for tests, benches and differential checks against reference data.

use super::{StateChanges, StateError, StateReader};
use crate::primitives::{Account, BlockNumber};
use alloy_primitives::{Address, B256, Bytes, U256};
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct MemState {
    pub accounts: HashMap<Address, Account>,
    pub storage: HashMap<(Address, U256), U256>,
    pub codes: HashMap<B256, Bytes>,
    pub block_hashes: HashMap<BlockNumber, B256>,
}

impl MemState {
    /// Puts a contract with `code` at `address` (nonce 1, as after its creation).
    pub fn insert_contract(&mut self, address: Address, code: Bytes, balance: U256) {
        let code_hash = alloy_primitives::keccak256(&code);
        self.codes.insert(code_hash, code);
        self.accounts.insert(
            address,
            Account {
                nonce: 1,
                balance,
                code_hash,
            },
        );
    }

    /// Applies a block's changes, as the database would.
    pub fn apply(&mut self, changes: &StateChanges) {
        for (address, change) in &changes.accounts {
            if change.storage_wiped || change.account.is_none() {
                self.storage.retain(|(a, _), _| a != address);
            }
            match change.account {
                Some(account) => self.accounts.insert(*address, account),
                None => self.accounts.remove(address),
            };
            for (slot, value) in &change.storage {
                if value.is_zero() {
                    self.storage.remove(&(*address, *slot));
                } else {
                    self.storage.insert((*address, *slot), *value);
                }
            }
        }
        self.codes
            .extend(changes.codes.iter().map(|(h, c)| (*h, c.clone())));
    }
}

impl StateReader for MemState {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        Ok(self.accounts.get(address).copied())
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        Ok(self
            .storage
            .get(&(*address, *slot))
            .copied()
            .unwrap_or_default())
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        Ok(self.codes.get(code_hash).cloned())
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        Ok(self.block_hashes.get(&number).copied())
    }
}
