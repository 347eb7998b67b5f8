//! The parallel executor against the sequential one: thousands of random blocks (proptest)
//! mixing transfers, token transfers, swaps on one pool, nonce chains, creations,
//! self-destructs, reverts, out-of-gas, precompiles, BLOCKHASH and the fee recipient's balance,
//! under Ethereum and BTTC rules; one conflicted block executed 1,000 times; block building.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::{SolCall, SolValue};
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{
        BlockEnv, BlockExecutor, BlockOutcome, ExecError, MemState, ParallelExecutor,
        SequentialBlock, SequentialExecutor,
        testing::{self, POOL, PROBE, TOKEN},
    },
    primitives::RecoveredTx,
    root::contracts::child::{Child, Probe},
};
use proptest::prelude::*;

const SENDERS: u64 = 8;
/// Sender with little money: its transactions run out of it.
const POOR: u64 = SENDERS - 1;
const ETHER: u128 = 1_000_000_000_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Transfer {
        to: u8,
        amount: u32,
    },
    TokenTransfer {
        to: u8,
        amount: u32,
    },
    Swap {
        zero_for_one: bool,
        amount: u32,
    },
    RecordCoinbase,
    PayCoinbase {
        amount: u32,
    },
    Blockhash,
    Hashes {
        len: u8,
    },
    /// Writes `rounds` slots; with `low_gas` runs out of gas.
    Burn {
        rounds: u8,
    },
    Fail,
    Bump {
        key: u8,
    },
    /// CREATE2 of a child by the probe, which may destroy itself in its constructor.
    Spawn {
        salt: u8,
        destroy: bool,
        value: u16,
    },
    /// A creation transaction of a child.
    Create {
        destroy: bool,
    },
    /// `destroy()` on the child `Spawn { salt, destroy: false }` makes.
    DestroyChild {
        salt: u8,
    },
    /// A transaction whose nonce skips one: invalid, so the block fails, the same way in both.
    NonceGap,
}

/// What makes a random block invalid, if anything.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    None,
    /// The transaction at this position skips a nonce.
    NonceGap(prop::sample::Index),
    /// The last sender can pay for about one transaction.
    PoorSender,
}

fn flaw() -> impl Strategy<Value = Flaw> {
    prop_oneof![
        8 => Just(Flaw::None),
        1 => any::<prop::sample::Index>().prop_map(Flaw::NonceGap),
        1 => Just(Flaw::PoorSender),
    ]
}

#[derive(Debug, Clone)]
struct TxSpec {
    sender: u8,
    op: Op,
    low_gas: bool,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u32>()).prop_map(|(to, amount)| Op::Transfer { to, amount }),
        5 => (any::<u8>(), any::<u32>()).prop_map(|(to, amount)| Op::TokenTransfer { to, amount }),
        5 => (any::<bool>(), any::<u32>())
            .prop_map(|(zero_for_one, amount)| Op::Swap { zero_for_one, amount }),
        2 => Just(Op::RecordCoinbase),
        2 => any::<u32>().prop_map(|amount| Op::PayCoinbase { amount }),
        1 => Just(Op::Blockhash),
        1 => any::<u8>().prop_map(|len| Op::Hashes { len }),
        2 => (0u8..40).prop_map(|rounds| Op::Burn { rounds }),
        1 => Just(Op::Fail),
        3 => (0u8..4).prop_map(|key| Op::Bump { key }),
        2 => (0u8..4, any::<bool>(), any::<u16>())
            .prop_map(|(salt, destroy, value)| Op::Spawn { salt, destroy, value }),
        1 => any::<bool>().prop_map(|destroy| Op::Create { destroy }),
        2 => (0u8..4).prop_map(|salt| Op::DestroyChild { salt }),
    ]
}

fn tx_spec() -> impl Strategy<Value = TxSpec> {
    (0u8..SENDERS as u8, op(), prop::bool::weighted(0.1)).prop_map(|(sender, op, low_gas)| TxSpec {
        sender,
        op,
        low_gas,
    })
}

/// Who receives the fees.
#[derive(Debug, Clone, Copy)]
enum Recipient {
    /// An account no transaction names.
    Fresh,
    /// A sender: its own transactions read the account.
    Sender,
    /// The probe contract: a contract as the fee recipient.
    Probe,
    /// An account that exists but is empty (EIP-161 removes it when touched without a fee).
    Empty,
}

fn recipient() -> impl Strategy<Value = Recipient> {
    prop_oneof![
        Just(Recipient::Fresh),
        Just(Recipient::Sender),
        Just(Recipient::Probe),
        Just(Recipient::Empty),
    ]
}

fn child_init_code(destroy: bool) -> Bytes {
    [Child::BYTECODE.as_ref(), &destroy.abi_encode()]
        .concat()
        .into()
}

/// Where `Probe.spawn(salt, false)` puts its child.
fn spawned_child(salt: u8) -> Address {
    PROBE.create2(
        B256::with_last_byte(salt),
        keccak256(child_init_code(false)),
    )
}

/// An address for a transfer target: senders, contracts, the fee recipient, children, fresh.
fn target(index: u8, coinbase: Address) -> Address {
    match index % 12 {
        i @ 0..8 => testing::account(i as u64),
        8 => coinbase,
        9 => PROBE,
        10 => spawned_child(index % 4),
        _ => testing::account(100 + index as u64),
    }
}

struct Block {
    spec: ChainSpec,
    state: MemState,
    env: BlockEnv,
    txs: Vec<RecoveredTx>,
}

fn build(spec: ChainSpec, recipient: Recipient, specs: &[TxSpec], flaw: Flaw) -> Block {
    let mut specs = specs.to_vec();
    if let Flaw::NonceGap(at) = flaw {
        let at = at.index(specs.len());
        specs[at].op = Op::NonceGap;
    }
    let senders: Vec<Address> = (0..SENDERS).map(testing::account).collect();
    let coinbase = match recipient {
        Recipient::Fresh => testing::account(999),
        Recipient::Sender => senders[0],
        Recipient::Probe => PROBE,
        Recipient::Empty => testing::account(998),
    };
    let mut state = MemState::default();
    testing::fund(
        &mut state,
        senders.iter().copied(),
        U256::from(1_000 * ETHER),
    );
    if let Flaw::PoorSender = flaw {
        testing::fund(
            &mut state,
            [senders[POOR as usize]],
            U256::from(ETHER / 1_000),
        );
    }
    testing::fund(&mut state, [testing::account(998)], U256::ZERO);
    testing::install_pool(&mut state, &senders, 1_000_000 * ETHER, 1_000 * ETHER);
    testing::install_probe(&mut state);
    testing::install_token(&mut state, &senders, 1_000_000);
    state.block_hashes.insert(0, keccak256(b"genesis"));
    let env = testing::block_env(&spec, coinbase);

    let mut nonces = [0u64; SENDERS as usize];
    let txs = specs
        .iter()
        .map(|s| {
            let sender = senders[s.sender as usize];
            let nonce = &mut nonces[s.sender as usize];
            let (to, value, input, gas) = match &s.op {
                Op::Transfer { to, amount } => (
                    TxKind::Call(target(*to, coinbase)),
                    U256::from(*amount) * U256::from(1_000_000_000u64),
                    Bytes::new(),
                    30_000,
                ),
                Op::TokenTransfer { to, amount } => (
                    TxKind::Call(TOKEN),
                    U256::ZERO,
                    testing::token_transfer_calldata(
                        target(*to, coinbase),
                        *amount as u128 % 2_000_000,
                    ),
                    80_000,
                ),
                Op::Swap {
                    zero_for_one,
                    amount,
                } => (
                    TxKind::Call(POOL),
                    U256::ZERO,
                    testing::swap_calldata(*zero_for_one, *amount as u128 * 1_000_000_000),
                    120_000,
                ),
                Op::RecordCoinbase => (
                    probe(Probe::recordCoinbaseCall {}),
                    U256::ZERO,
                    call(Probe::recordCoinbaseCall {}),
                    100_000,
                ),
                Op::PayCoinbase { amount } => (
                    probe(Probe::payCoinbaseCall {}),
                    U256::from(*amount),
                    call(Probe::payCoinbaseCall {}),
                    100_000,
                ),
                Op::Blockhash => (
                    probe(Probe::recordBlockhashCall {}),
                    U256::ZERO,
                    call(Probe::recordBlockhashCall {}),
                    100_000,
                ),
                Op::Hashes { len } => {
                    let data = vec![*len; *len as usize];
                    (
                        TxKind::Call(PROBE),
                        U256::ZERO,
                        call(Probe::hashesCall { data: data.into() }),
                        200_000,
                    )
                }
                Op::Burn { rounds } => (
                    TxKind::Call(PROBE),
                    U256::ZERO,
                    call(Probe::burnCall {
                        rounds: U256::from(*rounds),
                    }),
                    300_000,
                ),
                Op::Fail => (
                    TxKind::Call(PROBE),
                    U256::ZERO,
                    call(Probe::failCall {
                        amount: U256::from(7),
                    }),
                    100_000,
                ),
                Op::Bump { key } => (
                    TxKind::Call(PROBE),
                    U256::ZERO,
                    call(Probe::bumpCall {
                        key: U256::from(*key),
                    }),
                    100_000,
                ),
                Op::Spawn {
                    salt,
                    destroy,
                    value,
                } => (
                    TxKind::Call(PROBE),
                    U256::from(*value),
                    call(Probe::spawnCall {
                        salt: B256::with_last_byte(*salt),
                        destroy: *destroy,
                    }),
                    300_000,
                ),
                Op::Create { destroy } => (
                    TxKind::Create,
                    U256::from(5),
                    child_init_code(*destroy),
                    200_000,
                ),
                Op::DestroyChild { salt } => (
                    TxKind::Call(spawned_child(*salt)),
                    U256::ZERO,
                    call(Child::destroyCall { heir: coinbase }),
                    100_000,
                ),
                Op::NonceGap => {
                    *nonce += 1;
                    (
                        TxKind::Call(senders[0]),
                        U256::from(1),
                        Bytes::new(),
                        30_000,
                    )
                }
            };
            // Too little gas: the intrinsic cost is covered, the work is not.
            let intrinsic = 21_000
                + if to.is_create() {
                    32_000 + 2 * input.len() as u64
                } else {
                    0
                }
                + input
                    .iter()
                    .map(|b| if *b == 0 { 4 } else { 16 })
                    .sum::<u64>();
            let gas = if s.low_gas {
                (gas / 4).max(intrinsic + 1_000)
            } else {
                gas
            };
            let tx = testing::tx(&spec, sender, *nonce, to, value, input, gas);
            *nonce += 1;
            tx
        })
        .collect();
    Block {
        spec,
        state,
        env,
        txs,
    }
}

fn probe<C: SolCall>(_: C) -> TxKind {
    TxKind::Call(PROBE)
}

fn call<C: SolCall>(c: C) -> Bytes {
    c.abi_encode().into()
}

fn sequential(block: &Block) -> Result<BlockOutcome, ExecError> {
    SequentialExecutor {
        spec: block.spec.clone(),
    }
    .execute_block(&block.state, &block.env, &block.txs)
}

/// Random blocks the parallel executor ran on workers (not sequentially for being small).
static ON_WORKERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn parallel(block: &Block, workers: usize) -> Result<BlockOutcome, ExecError> {
    let (outcome, stats) = ParallelExecutor {
        spec: block.spec.clone(),
        workers,
    }
    .execute_with_stats(&block.state, &block.env, &block.txs)?;
    if stats.workers > 0 {
        ON_WORKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(outcome)
}

/// Parallel equals sequential on `block`: the same receipts and changes, or the same error.
/// Returns whether the block was valid.
fn check(block: &Block, workers: usize) -> Result<bool, TestCaseError> {
    let expected = sequential(block);
    let got = parallel(block, workers);
    match (&expected, &got) {
        (Ok(expected), Ok(got)) => {
            prop_assert_eq!(got.gas_used, expected.gas_used);
            prop_assert_eq!(got.receipts.len(), expected.receipts.len());
            for (i, (g, e)) in got.receipts.iter().zip(&expected.receipts).enumerate() {
                prop_assert_eq!(g, e, "receipt {}", i);
            }
            prop_assert_eq!(&got.changes, &expected.changes);
            Ok(true)
        }
        (Err(e), Err(g)) => {
            prop_assert_eq!(g, e);
            Ok(false)
        }
        _ => Err(TestCaseError::fail(format!(
            "sequential {:?}, parallel {:?}",
            expected.as_ref().err(),
            got.as_ref().err()
        ))),
    }
}

/// Runs `cases` random blocks under `spec`; returns (valid blocks, their transactions, invalid
/// blocks).
fn random_blocks(spec: ChainSpec, cases: u32) -> (usize, usize, usize) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let (valid, txs, invalid) = (
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop::collection::vec(tx_spec(), 1..80),
        recipient(),
        flaw(),
        2usize..5,
    );
    let result = runner.run(&strategy, |(specs, recipient, flaw, workers)| {
        let block = build(spec.clone(), recipient, &specs, flaw);
        match check(&block, workers)? {
            true => {
                valid.fetch_add(1, Relaxed);
                txs.fetch_add(block.txs.len(), Relaxed);
            }
            false => {
                invalid.fetch_add(1, Relaxed);
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    (valid.into_inner(), txs.into_inner(), invalid.into_inner())
}

/// Runs `cases` random blocks under `spec` and checks that enough were valid and ran on
/// workers (so the comparison covered parallel runs, not only errors or small blocks).
fn random_blocks_match(spec: ChainSpec, cases: u32, valid_min: usize) {
    let (valid, txs, invalid) = random_blocks(spec, cases);
    let on_workers = ON_WORKERS.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "{valid} valid blocks ({txs} transactions) and {invalid} invalid ones matched; \
         {on_workers} blocks ran on workers"
    );
    assert!(
        on_workers >= valid / 2,
        "too few blocks ran in parallel: {on_workers}"
    );
    assert!(valid >= valid_min, "too few valid random blocks: {valid}");
}

#[test]
fn random_blocks_under_ethereum_rules_match_sequential() {
    random_blocks_match(ChainSpec::dev(), 3_000, 2_000);
}

/// Berlin rules (self-destruct deletes, no base fee, legacy transactions) with BTTC's
/// transfer and fee logs.
#[test]
fn random_blocks_under_bttc_rules_match_sequential() {
    random_blocks_match(ChainSpec::bttc_mainnet(), 2_000, 1_300);
}

/// A block with every kind of conflict, deterministic.
fn conflicted_block(spec: ChainSpec, len: usize) -> Block {
    let ops = [
        Op::Swap {
            zero_for_one: true,
            amount: 7,
        },
        Op::Transfer { to: 3, amount: 9 },
        Op::TokenTransfer { to: 5, amount: 11 },
        Op::RecordCoinbase,
        Op::Swap {
            zero_for_one: false,
            amount: 5,
        },
        Op::Bump { key: 1 },
        Op::Spawn {
            salt: 2,
            destroy: true,
            value: 3,
        },
        Op::PayCoinbase { amount: 1_000 },
        Op::TokenTransfer { to: 1, amount: 2 },
        Op::Burn { rounds: 3 },
        Op::Fail,
        Op::Transfer { to: 8, amount: 1 },
    ];
    let specs: Vec<TxSpec> = (0..len)
        .map(|i| TxSpec {
            sender: ((i * 7 + i / 5) % (SENDERS as usize - 1)) as u8,
            op: ops[i % ops.len()].clone(),
            low_gas: i % 17 == 0,
        })
        .collect();
    build(spec, Recipient::Sender, &specs, Flaw::None)
}

#[test]
fn a_conflicted_block_gives_the_same_result_1000_times() {
    let block = conflicted_block(ChainSpec::dev(), 300);
    let expected = sequential(&block).expect("the block is valid");
    assert_eq!(expected.receipts.len(), 300);
    let mut stats = Vec::new();
    for run in 0..1_000 {
        let (got, s) = ParallelExecutor {
            spec: block.spec.clone(),
            workers: 2 + run % 3,
        }
        .execute_with_stats(&block.state, &block.env, &block.txs)
        .expect("parallel run");
        assert!(
            got == expected,
            "run {run} differs from sequential execution"
        );
        stats.push(s);
    }
    let aborted = stats.iter().filter(|s| s.aborts > 0).count();
    println!("1,000 runs equal; {aborted} of them aborted and re-executed at least once");
}

/// A fully dependent block runs sequentially; an independent one runs on workers without
/// aborts; both give the sequential result.
#[test]
fn dependent_blocks_fall_back_and_independent_ones_do_not() {
    let spec = ChainSpec::dev();
    let sender = testing::account(0);
    let mut state = MemState::default();
    testing::fund(
        &mut state,
        (0..1_000).map(testing::account),
        U256::from(ETHER),
    );
    let env = testing::block_env(&spec, testing::account(5_000));
    let chain: Vec<RecoveredTx> = (0..500)
        .map(|n| {
            testing::tx(
                &spec,
                sender,
                n,
                TxKind::Call(testing::account(2_000 + n)),
                U256::from(1),
                Bytes::new(),
                21_000,
            )
        })
        .collect();
    let independent: Vec<RecoveredTx> = (0..500)
        .map(|n| {
            testing::tx(
                &spec,
                testing::account(n),
                0,
                TxKind::Call(testing::account(3_000 + n)),
                U256::from(1),
                Bytes::new(),
                21_000,
            )
        })
        .collect();
    let executor = ParallelExecutor {
        spec: spec.clone(),
        workers: 2,
    };
    let sequential = SequentialExecutor { spec: spec.clone() };

    let (outcome, stats) = executor.execute_with_stats(&state, &env, &chain).unwrap();
    assert_eq!(
        stats.workers, 0,
        "a single sender's chain runs sequentially: {stats:?}"
    );
    assert!(outcome == sequential.execute_block(&state, &env, &chain).unwrap());

    let (outcome, stats) = executor
        .execute_with_stats(&state, &env, &independent)
        .unwrap();
    assert_eq!(stats.workers, 2, "{stats:?}");
    assert_eq!(stats.fell_back_at, None, "{stats:?}");
    assert!(
        outcome
            == sequential
                .execute_block(&state, &env, &independent)
                .unwrap()
    );

    // Swaps on one pool conflict on every transaction: the run falls back part way.
    let traders: Vec<Address> = (0..500).map(testing::account).collect();
    testing::install_pool(&mut state, &traders, 1_000_000 * ETHER, ETHER);
    let swaps: Vec<RecoveredTx> = traders
        .iter()
        .map(|t| {
            testing::tx(
                &spec,
                *t,
                0,
                TxKind::Call(POOL),
                U256::ZERO,
                testing::swap_calldata(true, 1_000),
                120_000,
            )
        })
        .collect();
    let (outcome, stats) = executor.execute_with_stats(&state, &env, &swaps).unwrap();
    println!("swaps on one pool: {stats:?}");
    assert!(outcome == sequential.execute_block(&state, &env, &swaps).unwrap());
}

/// Building from candidates: invalid ones are left out (the first of a sender reported), and
/// the block is exactly the sequential execution of what it includes.
#[test]
fn produce_leaves_out_invalid_candidates_and_stops_when_gas_runs_out() {
    let mut spec = ChainSpec::dev();
    spec.gas_limit = 40 * 21_000 + 10_000;
    let mut state = MemState::default();
    testing::fund(
        &mut state,
        (0..100).map(testing::account),
        U256::from(ETHER),
    );
    let env = testing::block_env(&spec, testing::account(5_000));
    let mut candidates: Vec<RecoveredTx> = (0..60)
        .map(|n| {
            testing::tx(
                &spec,
                testing::account(n % 30),
                n / 30,
                TxKind::Call(testing::account(200 + n)),
                U256::from(1),
                Bytes::new(),
                21_000,
            )
        })
        .collect();
    // Sender 3 cannot pay: its first transaction is rejected, its second skipped.
    candidates[3] = testing::tx(
        &spec,
        testing::account(3),
        0,
        TxKind::Call(testing::account(7)),
        U256::from(2 * ETHER),
        Bytes::new(),
        21_000,
    );
    let refs: Vec<&RecoveredTx> = candidates.iter().collect();
    let produced = ParallelExecutor {
        spec: spec.clone(),
        workers: 2,
    }
    .produce(&state, &env, &refs)
    .unwrap();
    assert_eq!(produced.rejected.len(), 1, "{:?}", produced.rejected);
    assert_eq!(produced.rejected[0].0, candidates[3].hash);
    assert!(!produced.included.contains(&3) && !produced.included.contains(&33));
    assert_eq!(
        produced.included.len(),
        40,
        "the block holds as many as its gas allows"
    );
    assert_eq!(produced.outcome.gas_used, 40 * 21_000);

    let mut block = SequentialBlock::new(&spec, &state, env);
    for &i in &produced.included {
        block.execute(&candidates[i]).unwrap();
    }
    assert!(block.finish() == produced.outcome);
}
