//! recover::senders: parallel sender recovery against libsecp256k1 on one thread, same run.

mod common;

use alloy_consensus::TxEnvelope;
use bttc_engine::{chain::spec::ChainSpec, crypto::recover_senders};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use secp256k1::{
    Message, SECP256K1,
    ecdsa::{RecoverableSignature, RecoveryId},
};
use std::hint::black_box;

const TXS: usize = 10_000;

fn bench(c: &mut Criterion) {
    let spec = ChainSpec::dev();
    let signers = common::signers(1_000);
    let txs = common::signed_txs(&spec, &signers, TXS / 1_000, |_, _| {
        (
            alloy_primitives::TxKind::Call(alloy_primitives::Address::ZERO),
            alloy_primitives::U256::from(1),
            Default::default(),
            21_000,
        )
    });
    let envelopes: Vec<TxEnvelope> = txs.iter().map(|t| t.envelope.clone()).collect();
    let expected: Vec<_> = txs.iter().map(|t| t.sender).collect();
    // The baseline gets its inputs ready-made: signature hash, compact signature, recovery id.
    let inputs: Vec<(Message, RecoverableSignature)> = envelopes
        .iter()
        .map(|e| {
            let sig = e.signature();
            let mut compact = [0u8; 64];
            compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
            compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
            let recid = RecoveryId::try_from(i32::from(sig.v())).unwrap();
            (
                Message::from_digest(e.signature_hash().0),
                RecoverableSignature::from_compact(&compact, recid).unwrap(),
            )
        })
        .collect();

    // Check both paths before timing them.
    let recovered: Vec<_> = recover_senders(&envelopes)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(recovered, expected);
    for ((msg, sig), sender) in inputs.iter().zip(&expected) {
        let key = SECP256K1.recover_ecdsa(*msg, sig).unwrap();
        let address =
            alloy_primitives::Address::from_raw_public_key(&key.serialize_uncompressed()[1..]);
        assert_eq!(&address, sender);
    }

    let id = BenchmarkId::from_parameter(format!("txs={TXS}"));
    let mut group = c.benchmark_group("recover::senders");
    group
        .throughput(Throughput::Elements(TXS as u64))
        .sample_size(10);
    group.bench_function(id.clone(), |b| {
        b.iter(|| black_box(recover_senders(black_box(&envelopes))))
    });
    group.finish();

    let mut group = c.benchmark_group("recover::libsecp256k1_one_thread");
    group
        .throughput(Throughput::Elements(TXS as u64))
        .sample_size(10);
    group.bench_function(id, |b| {
        b.iter(|| {
            for (msg, sig) in black_box(&inputs) {
                black_box(SECP256K1.recover_ecdsa(*msg, sig).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
