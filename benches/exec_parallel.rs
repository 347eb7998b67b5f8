//! exec_parallel::* against exec_sequential::*: the parallel executor and sequential revm on
//! the same blocks in the same run. Blocks: 10,000 transfers from independent senders, 10,000
//! ERC-20 transfers from independent senders, 2,000 swaps on one pool, one sender's chain of
//! 10,000 transfers, and every block of the mainnet data set (`BTTC_MAINNET_BLOCKS`, else
//! `../shared/data/mainnet-blocks`; skipped with a notice when absent). Each block's parallel
//! outcome is checked equal to the sequential one before timing.

mod common;

use alloy_primitives::{Address, Bytes, TxKind, U256};
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{
        BlockEnv, BlockExecutor, MemState, ParallelExecutor, SequentialExecutor, replay,
        testing::{self, POOL},
    },
    primitives::RecoveredTx,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::{hint::black_box, io::Read, path::PathBuf, time::Duration};

struct Workload {
    name: String,
    param: String,
    spec: ChainSpec,
    state: MemState,
    env: BlockEnv,
    txs: Vec<RecoveredTx>,
}

const ETHER: u128 = 1_000_000_000_000_000_000;

fn synthetic() -> Vec<Workload> {
    let spec = ChainSpec::dev();
    let env = testing::block_env(&spec, Address::with_last_byte(0xcc));
    let recipient = |n: u64| testing::account(1_000_000 + n);
    let mut out = Vec::new();

    let senders: Vec<Address> = (0..10_000).map(testing::account).collect();
    let mut state = MemState::default();
    testing::fund(&mut state, senders.iter().copied(), U256::from(ETHER));
    let transfers = senders
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let to = TxKind::Call(recipient(n as u64));
            testing::tx(&spec, *s, 0, to, U256::from(1), Bytes::new(), 21_000)
        })
        .collect();
    out.push(Workload {
        name: "transfers".into(),
        param: "txs=10000".into(),
        spec: spec.clone(),
        state: state.clone(),
        env,
        txs: transfers,
    });

    let mut token_state = state.clone();
    common::install_token(&mut token_state, &senders);
    let erc20 = senders
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let data = common::transfer_calldata(recipient(n as u64), 1);
            testing::tx(
                &spec,
                *s,
                0,
                TxKind::Call(common::TOKEN),
                U256::ZERO,
                data,
                100_000,
            )
        })
        .collect();
    out.push(Workload {
        name: "erc20".into(),
        param: "txs=10000".into(),
        spec: spec.clone(),
        state: token_state,
        env,
        txs: erc20,
    });

    let traders = &senders[..2_000];
    let mut pool_state = state.clone();
    testing::install_pool(&mut pool_state, traders, 1_000_000 * ETHER, 1_000 * ETHER);
    let swaps = traders
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let data = testing::swap_calldata(n % 2 == 0, 1_000_000_000 + n as u128);
            testing::tx(&spec, *s, 0, TxKind::Call(POOL), U256::ZERO, data, 150_000)
        })
        .collect();
    out.push(Workload {
        name: "amm_swaps".into(),
        param: "txs=2000".into(),
        spec: spec.clone(),
        state: pool_state,
        env,
        txs: swaps,
    });

    let chain = (0..10_000u64)
        .map(|n| {
            let to = TxKind::Call(recipient(n));
            testing::tx(
                &spec,
                senders[0],
                n,
                to,
                U256::from(1),
                Bytes::new(),
                21_000,
            )
        })
        .collect();
    out.push(Workload {
        name: "dependent".into(),
        param: "txs=10000".into(),
        spec,
        state,
        env,
        txs: chain,
    });
    out
}

fn read_gz(path: &std::path::Path) -> Vec<u8> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text
}

fn mainnet() -> Vec<Workload> {
    let root = std::env::var_os("BTTC_MAINNET_BLOCKS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mainnet-blocks")
        });
    let Ok(entries) = std::fs::read_dir(&root) else {
        eprintln!(
            "SKIPPED exec_parallel::mainnet: no data set at {} (set BTTC_MAINNET_BLOCKS)",
            root.display()
        );
        return Vec::new();
    };
    let mut numbers: Vec<u64> = entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
        .into_iter()
        .map(|number| {
            let dir = root.join(number.to_string());
            let hashes = dir.join("block_hashes.json.gz");
            let hashes = hashes.exists().then(|| read_gz(&hashes));
            let state =
                replay::parse_state(&read_gz(&dir.join("pre_state.json.gz")), hashes.as_deref())
                    .expect("pre-state parses");
            let block = replay::parse_block(&read_gz(&dir.join("block.json.gz")), state)
                .expect("block parses");
            Workload {
                name: "mainnet".into(),
                param: number.to_string(),
                spec: block.spec,
                state: block.state,
                env: block.env,
                txs: block.txs,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for w in synthetic().into_iter().chain(mainnet()) {
        let sequential = SequentialExecutor {
            spec: w.spec.clone(),
        };
        let parallel = ParallelExecutor {
            spec: w.spec.clone(),
            workers: 0,
        };
        let expected = sequential.execute_block(&w.state, &w.env, &w.txs).unwrap();
        let (got, stats) = parallel
            .execute_with_stats(&w.state, &w.env, &w.txs)
            .unwrap();
        assert!(got == expected, "{} {}: parallel differs", w.name, w.param);
        assert!(
            expected
                .receipts
                .iter()
                .all(|r| r.receipt.status.coerce_status())
                || w.name == "mainnet",
            "{}: every transaction succeeds",
            w.name
        );
        eprintln!("{} {}: {stats:?}", w.name, w.param);

        let id = BenchmarkId::from_parameter(&w.param);
        let short = w.name == "mainnet";
        for (prefix, parallel_run) in [("exec_sequential", false), ("exec_parallel", true)] {
            let mut group = c.benchmark_group(format!("{prefix}::{}", w.name));
            group
                .throughput(Throughput::Elements(w.txs.len() as u64))
                .sample_size(10);
            if short {
                group
                    .warm_up_time(Duration::from_millis(300))
                    .measurement_time(Duration::from_secs(1));
            }
            group.bench_function(id.clone(), |b| {
                b.iter(|| {
                    let outcome = if parallel_run {
                        parallel.execute_block(&w.state, &w.env, black_box(&w.txs))
                    } else {
                        sequential.execute_block(&w.state, &w.env, black_box(&w.txs))
                    };
                    black_box(outcome.unwrap())
                })
            });
            group.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
