//! state_root::update: the incremental state root after 10,000 changed accounts out of
//! 1,000,000, against a full rebuild of the same state with alloy-trie's HashBuilder.

mod common;

use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, keccak256};
use alloy_trie::{EMPTY_ROOT_HASH, Nibbles, TrieAccount};
use bttc_engine::{
    exec::{AccountChange, StateChanges},
    merkle::{
        state_root::update_state_root,
        trie::{MemTrieStore, full_root},
    },
    primitives::Account,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const ACCOUNTS: u64 = 1_000_000;
const CHANGED: u64 = 10_000;

fn address(i: u64) -> Address {
    Address::from_word(keccak256(i.to_be_bytes()))
}

fn account(i: u64, round: u64) -> Account {
    Account {
        nonce: i + round,
        balance: U256::from(i * 1_000 + round),
        code_hash: KECCAK256_EMPTY,
    }
}

fn bench(c: &mut Criterion) {
    let mut store = MemTrieStore::default();
    let mut all = StateChanges::default();
    for i in 0..ACCOUNTS {
        all.accounts.insert(
            address(i),
            AccountChange {
                account: Some(account(i, 0)),
                ..Default::default()
            },
        );
    }
    let initial = update_state_root(&store, &all).unwrap();
    store.apply_state_update(initial);
    drop(all);

    // 10,000 accounts spread over the whole key space get new balances and nonces.
    let mut changes = StateChanges::default();
    for i in (0..ACCOUNTS).step_by((ACCOUNTS / CHANGED) as usize) {
        changes.accounts.insert(
            address(i),
            AccountChange {
                account: Some(account(i, 1)),
                ..Default::default()
            },
        );
    }
    // The full state after the change, as sorted trie leaves (what a rebuild starts from).
    let mut leaves: Vec<(Nibbles, Vec<u8>)> = (0..ACCOUNTS)
        .map(|i| {
            let round = u64::from(changes.accounts.contains_key(&address(i)));
            let a = account(i, round);
            let leaf = TrieAccount {
                nonce: a.nonce,
                balance: a.balance,
                storage_root: EMPTY_ROOT_HASH,
                code_hash: a.code_hash,
            };
            (
                Nibbles::unpack(keccak256(address(i))),
                alloy_rlp::encode(leaf),
            )
        })
        .collect();
    leaves.sort_unstable_by_key(|l| l.0);
    let rebuilt = full_root(leaves.iter().map(|(k, v)| (*k, v.as_slice())));
    let updated = update_state_root(&store, &changes).unwrap().root;
    assert_eq!(
        updated, rebuilt,
        "incremental root differs from the rebuild"
    );
    assert_ne!(updated, B256::ZERO);

    let id = BenchmarkId::from_parameter(format!("accounts={ACCOUNTS},changed={CHANGED}"));
    let mut group = c.benchmark_group("state_root::update");
    group.sample_size(20);
    group.bench_function(id.clone(), |b| {
        b.iter(|| black_box(update_state_root(&store, black_box(&changes)).unwrap().root))
    });
    group.finish();
    let mut group = c.benchmark_group("state_root::full_rebuild");
    group.sample_size(10);
    group.bench_function(id, |b| {
        b.iter(|| black_box(full_root(leaves.iter().map(|(k, v)| (*k, v.as_slice())))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
