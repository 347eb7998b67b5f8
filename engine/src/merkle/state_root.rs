//! The Ethereum state root after a block, updated from the block's changes alone.

use super::trie::{Change, NodeWrites, TrieError, TrieReader, stored_root, update_trie};
use crate::exec::StateChanges;
use alloy_primitives::{B256, U256, keccak256};
use alloy_trie::{Nibbles, TrieAccount};
use rayon::prelude::*;

/// The new root and the trie node writes that bring the store to it.
#[derive(Debug, Default)]
pub struct StateRootUpdate {
    pub root: B256,
    /// Storage tries to delete entirely, before `storage_writes` are applied.
    pub wiped_storage: Vec<B256>,
    /// Node writes of each changed storage trie, by hashed address.
    pub storage_writes: Vec<(B256, NodeWrites)>,
    pub account_writes: NodeWrites,
}

/// Storage slot key in its trie: keccak of the 32-byte slot.
pub fn hashed_slot(slot: &U256) -> B256 {
    keccak256(slot.to_be_bytes::<32>())
}

/// Computes the state root after `changes`, reading the parent's trie nodes from `reader`.
/// Storage tries of different accounts are updated in parallel.
pub fn update_state_root<R: TrieReader>(
    reader: &R,
    changes: &StateChanges,
) -> Result<StateRootUpdate, TrieError> {
    type PerAccount = (B256, Option<Vec<u8>>, bool, Option<NodeWrites>);
    let per_account: Vec<Result<PerAccount, TrieError>> = changes
        .accounts
        .par_iter()
        .map(|(address, change)| {
            let hashed = keccak256(address);
            let owner = Some(hashed);
            let wiped = change.storage_wiped;
            let Some(account) = change.account else {
                return Ok((hashed, None, wiped, None));
            };
            let (storage_root, writes) = if wiped || !change.storage.is_empty() {
                let mut slots: Vec<Change> = change
                    .storage
                    .iter()
                    .map(|(slot, value)| {
                        let value = (!value.is_zero())
                            .then(|| alloy_rlp::encode_fixed_size(value).to_vec());
                        (Nibbles::unpack(hashed_slot(slot)), value)
                    })
                    .collect();
                slots.sort_unstable_by_key(|c| c.0);
                let (root, writes) = update_trie(reader, owner, wiped, &slots)?;
                (root, Some(writes))
            } else {
                (stored_root(reader, owner)?, None)
            };
            let leaf = TrieAccount {
                nonce: account.nonce,
                balance: account.balance,
                storage_root,
                code_hash: account.code_hash,
            };
            Ok((hashed, Some(alloy_rlp::encode(leaf)), wiped, writes))
        })
        .collect();

    let mut update = StateRootUpdate::default();
    let mut account_changes: Vec<Change> = Vec::with_capacity(per_account.len());
    for result in per_account {
        let (hashed, leaf, wiped, writes) = result?;
        if wiped {
            update.wiped_storage.push(hashed);
        }
        if let Some(writes) = writes {
            update.storage_writes.push((hashed, writes));
        }
        account_changes.push((Nibbles::unpack(hashed), leaf));
    }
    account_changes.sort_unstable_by_key(|c| c.0);
    let (root, writes) = update_trie(reader, None, false, &account_changes)?;
    update.root = root;
    update.account_writes = writes;
    Ok(update)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{exec::AccountChange, merkle::trie::MemTrieStore, primitives::Account};
    use alloy_primitives::{Address, KECCAK256_EMPTY};
    use std::collections::BTreeMap;

    /// Reference: alloy-trie's `state_root_unhashed` over the whole state.
    fn reference(state: &BTreeMap<Address, (Account, BTreeMap<U256, U256>)>) -> B256 {
        alloy_trie::root::state_root_unhashed(state.iter().map(|(a, (acc, storage))| {
            let storage_root = alloy_trie::root::storage_root_unhashed(
                storage
                    .iter()
                    .filter(|(_, v)| !v.is_zero())
                    .map(|(k, v)| (B256::from(*k), *v)),
            );
            (
                *a,
                TrieAccount {
                    nonce: acc.nonce,
                    balance: acc.balance,
                    storage_root,
                    code_hash: acc.code_hash,
                },
            )
        }))
    }

    #[test]
    fn incremental_state_root_matches_reference() {
        let mut store = MemTrieStore::default();
        let mut state: BTreeMap<Address, (Account, BTreeMap<U256, U256>)> = BTreeMap::new();
        for round in 0u64..5 {
            let mut changes = StateChanges::default();
            for i in 0u64..40 {
                let address = Address::with_last_byte((i * 7 + round) as u8);
                let entry = state.entry(address).or_insert_with(|| {
                    (
                        Account {
                            code_hash: KECCAK256_EMPTY,
                            ..Default::default()
                        },
                        BTreeMap::new(),
                    )
                });
                let delete = (i + round) % 11 == 0;
                let wipe = (i + round) % 13 == 0;
                let mut change = AccountChange::default();
                if delete {
                    state.remove(&address);
                    change.storage_wiped = true;
                } else {
                    entry.0.nonce += 1;
                    entry.0.balance += U256::from(i * 1000 + round);
                    if wipe {
                        entry.1.clear();
                        change.storage_wiped = true;
                    }
                    for s in 0..(i % 5) {
                        let value = U256::from((s + round) % 3);
                        entry.1.insert(U256::from(s), value);
                        change.storage.insert(U256::from(s), value);
                    }
                    change.account = Some(entry.0);
                }
                changes.accounts.insert(address, change);
            }
            let update = update_state_root(&store, &changes).unwrap();
            assert_eq!(update.root, reference(&state), "round {round}");
            store.apply_state_update(update);
        }
    }
}
