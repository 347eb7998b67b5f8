//! storage::commit_block: one block's MDBX write transaction (10,000 ERC-20 transfers: bodies,
//! receipts, lookups, state and trie nodes), durable and without fsync.

mod common;

use alloy_consensus::Header;
use alloy_primitives::{Address, TxKind, U256, keccak256};
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{BlockExecutor, SequentialExecutor},
    merkle::{state_root::update_state_root, trie::MemTrieStore},
};
use bttc_storage::{BlockWrite, ChainDb, SyncMode};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::time::{Duration, Instant};

const TXS: usize = 10_000;
const SENDERS: usize = 100;

fn bench(c: &mut Criterion) {
    let spec = ChainSpec::dev();
    let signers = common::signers(SENDERS);
    let holders: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let txs = common::signed_txs(&spec, &signers, TXS / SENDERS, |s, n| {
        let to = Address::from_word(keccak256(((s * TXS + n) as u64).to_be_bytes()));
        (
            TxKind::Call(common::TOKEN),
            U256::ZERO,
            common::transfer_calldata(to, 1),
            100_000,
        )
    });
    let mut state = common::funded_state(&signers);
    common::install_token(&mut state, &holders);
    let outcome = SequentialExecutor { spec: spec.clone() }
        .execute_block(&state, &common::block_env(&spec), &txs)
        .unwrap();
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.receipt.status.coerce_status())
    );
    let root_update = update_state_root(&MemTrieStore::default(), &outcome.changes).unwrap();
    let node_writes = root_update.account_writes.len()
        + root_update
            .storage_writes
            .iter()
            .map(|w| w.1.len())
            .sum::<usize>();
    assert!(node_writes > TXS, "trie writes: {node_writes}");

    let mut group = c.benchmark_group("storage::commit_block");
    group
        .throughput(Throughput::Elements(TXS as u64))
        .sample_size(10);
    for (name, sync) in [
        ("durable", SyncMode::Durable),
        ("safe-no-sync", SyncMode::SafeNoSync),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = ChainDb::open(dir.path(), "bench", sync).unwrap();
        let mut number = 0u64;
        group.bench_function(
            BenchmarkId::from_parameter(format!("txs={TXS},sync={name}")),
            |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let header = Header {
                            number,
                            gas_used: outcome.gas_used,
                            ..Default::default()
                        };
                        let hash = header.hash_slow();
                        let write = BlockWrite {
                            header: &header,
                            hash,
                            txs: &txs,
                            receipts: &outcome.receipts,
                            changes: &outcome.changes,
                            root_update: &root_update,
                        };
                        let started = Instant::now();
                        db.write_block(&write).unwrap();
                        total += started.elapsed();
                        number += 1;
                    }
                    total
                })
            },
        );
        // The last block is there, whole.
        let view = db.read().unwrap();
        assert_eq!(view.tip_at().unwrap(), Some(number - 1));
        assert_eq!(view.body_at(number - 1).unwrap().unwrap().len(), TXS);
        assert_eq!(
            view.storage_at(&common::TOKEN, &common::balance_slot(holders[0]))
                .unwrap(),
            U256::from(10u128.pow(24) - 100)
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
