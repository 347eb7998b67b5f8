//! exec::transfers and exec::erc20_transfers: sequential revm execution of a 10,000-transaction
//! block over in-memory state.

mod common;

use alloy_primitives::{Address, TxKind, U256};
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{BlockExecutor, SequentialExecutor},
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const TXS: usize = 10_000;
const SENDERS: usize = 100;

fn bench(c: &mut Criterion) {
    let spec = ChainSpec::dev();
    let signers = common::signers(SENDERS);
    let executor = SequentialExecutor { spec: spec.clone() };
    let env = common::block_env(&spec);
    let recipient = |s: usize, n: usize| {
        Address::from_word(alloy_primitives::keccak256(
            ((s * TXS + n) as u64).to_be_bytes(),
        ))
    };

    let transfers = common::signed_txs(&spec, &signers, TXS / SENDERS, |s, n| {
        (
            TxKind::Call(recipient(s, n)),
            U256::from(1),
            Default::default(),
            21_000,
        )
    });
    let state = common::funded_state(&signers);
    let outcome = executor.execute_block(&state, &env, &transfers).unwrap();
    assert_eq!(outcome.gas_used, 21_000 * TXS as u64);
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.receipt.status.coerce_status())
    );

    let holders: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let erc20 = common::signed_txs(&spec, &signers, TXS / SENDERS, |s, n| {
        (
            TxKind::Call(common::TOKEN),
            U256::ZERO,
            common::transfer_calldata(recipient(s, n), 1),
            100_000,
        )
    });
    let mut token_state = common::funded_state(&signers);
    common::install_token(&mut token_state, &holders);
    let outcome = executor.execute_block(&token_state, &env, &erc20).unwrap();
    assert!(
        outcome
            .receipts
            .iter()
            .all(|r| r.receipt.status.coerce_status() && r.receipt.logs.len() == 1)
    );
    let slot = common::balance_slot(recipient(0, 0));
    assert_eq!(
        outcome.changes.accounts[&common::TOKEN].storage[&slot],
        U256::from(1)
    );

    let id = BenchmarkId::from_parameter(format!("txs={TXS}"));
    let mut group = c.benchmark_group("exec::transfers");
    group
        .throughput(Throughput::Elements(TXS as u64))
        .sample_size(10);
    group.bench_function(id.clone(), |b| {
        b.iter(|| {
            black_box(
                executor
                    .execute_block(&state, &env, black_box(&transfers))
                    .unwrap(),
            )
        })
    });
    group.finish();
    let mut group = c.benchmark_group("exec::erc20_transfers");
    group
        .throughput(Throughput::Elements(TXS as u64))
        .sample_size(10);
    group.bench_function(id, |b| {
        b.iter(|| {
            black_box(
                executor
                    .execute_block(&token_state, &env, black_box(&erc20))
                    .unwrap(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
