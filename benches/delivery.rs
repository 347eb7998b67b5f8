//! delivery::verify_votes: 100 vote signatures checked as one parallel batch, against the same
//! 100 checked one by one, in the same run.

use bttc_engine::delivery::signing::{
    SignedVote, example_vote, sign_vote, verify_vote, verify_votes,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use secp256k1::SecretKey;
use std::hint::black_box;

const VOTES: usize = 100;
const CHAIN_ID: u64 = 199;

fn bench(c: &mut Criterion) {
    let votes: Vec<SignedVote> = (0..VOTES)
        .map(|i| {
            let key =
                SecretKey::from_byte_array(alloy_primitives::keccak256((i as u64).to_be_bytes()).0)
                    .unwrap();
            sign_vote(
                CHAIN_ID,
                &key,
                example_vote(&key, 10, 0, Some(alloy_primitives::B256::repeat_byte(7))),
            )
        })
        .collect();
    assert!(verify_votes(CHAIN_ID, &votes).iter().all(Result::is_ok));
    assert!(votes.iter().all(|v| verify_vote(CHAIN_ID, v).is_ok()));

    let id = BenchmarkId::from_parameter(format!("votes={VOTES}"));
    let mut group = c.benchmark_group("delivery::verify_votes");
    group.sample_size(30);
    group.bench_function(id.clone(), |b| {
        b.iter(|| black_box(verify_votes(CHAIN_ID, black_box(&votes))))
    });
    group.finish();
    let mut group = c.benchmark_group("delivery::verify_votes_one_by_one");
    group.sample_size(30);
    group.bench_function(id, |b| {
        b.iter(|| {
            for v in black_box(&votes) {
                black_box(verify_vote(CHAIN_ID, v)).unwrap();
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
