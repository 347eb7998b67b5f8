//! Differential test against real Ethereum mainnet blocks.
//!
//! Every directory `<number>/` of the data set (`BTTC_MAINNET_BLOCKS`, else
//! `../shared/data/mainnet-blocks` next to the repository) holds one block as
//! `eth_getBlockByNumber` returns it with full transactions (`block.json.gz`), the state its
//! transactions read (`pre_state.json.gz`) and, when the block uses `BLOCKHASH`, the ancestor
//! hashes it needs (`block_hashes.json.gz`). Each block is executed under the mainnet hardfork
//! of its height by the sequential executor, whose gas used, logs bloom and (from Byzantium,
//! when receipts carry a status instead of a state root) receipts root must match the header,
//! and by the parallel executor on 2 and on 4 workers, which must equal the sequential run on
//! every receipt and on the full post-state (so it matches the header too). Every sender is
//! also recovered and compared with the RPC's `from`.

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::keccak256;
use bttc_engine::{
    crypto::{RecoverError, recover_tx_sender},
    exec::{
        BlockExecutor, BlockOutcome, ExecError, ExecStats, ParallelExecutor, SequentialExecutor,
        TxInvalid, replay,
    },
    primitives::{block_logs_bloom, receipts_root},
};
use flate2::read::GzDecoder;
use std::{
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    time::Instant,
};

/// Block directories the data set holds; a smaller count means a partial copy.
const EXPECTED_BLOCKS: usize = 52;

const HOMESTEAD_BLOCK: u64 = 1_150_000;

/// What one block's check found.
#[derive(Default)]
struct BlockReport {
    txs: usize,
    high_s: usize,
    mismatches: Vec<String>,
    stats: ExecStats,
}

/// Every receipt and the full post-state of the parallel run must be the sequential run's.
fn compare_outcomes(sequential: &BlockOutcome, parallel: &BlockOutcome, out: &mut Vec<String>) {
    if parallel.gas_used != sequential.gas_used {
        out.push(format!(
            "parallel gas used {}, sequential {}",
            parallel.gas_used, sequential.gas_used
        ));
    }
    if parallel.receipts.len() != sequential.receipts.len() {
        out.push(format!(
            "parallel made {} receipts, sequential {}",
            parallel.receipts.len(),
            sequential.receipts.len()
        ));
    }
    if let Some(i) = (0..parallel.receipts.len().min(sequential.receipts.len()))
        .find(|&i| parallel.receipts[i] != sequential.receipts[i])
    {
        out.push(format!("parallel receipt {i} differs from sequential"));
    }
    let (p, s) = (&parallel.changes, &sequential.changes);
    if p.codes != s.codes {
        out.push("parallel deployed code differs from sequential".into());
    }
    for address in p.accounts.keys().chain(s.accounts.keys()) {
        if p.accounts.get(address) != s.accounts.get(address) {
            out.push(format!(
                "post-state of {address}: parallel {:?}, sequential {:?}",
                p.accounts.get(address),
                s.accounts.get(address)
            ));
            break;
        }
    }
}

fn read_gz(path: &Path) -> Result<Vec<u8>, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text)
}

fn check_block(dir: &Path, number: u64) -> Result<BlockReport, String> {
    let hashes_path = dir.join("block_hashes.json.gz");
    let hashes = if hashes_path.exists() {
        Some(read_gz(&hashes_path)?)
    } else {
        None
    };
    let state = replay::parse_state(&read_gz(&dir.join("pre_state.json.gz"))?, hashes.as_deref())
        .map_err(|e| e.to_string())?;
    let block = replay::parse_block(&read_gz(&dir.join("block.json.gz"))?, state)
        .map_err(|e| e.to_string())?;
    let mut report = BlockReport::default();
    if block.number != number {
        return Err(format!("directory {number} holds block {}", block.number));
    }
    for (i, (tx, json_hash)) in block.txs.iter().zip(&block.tx_hashes).enumerate() {
        // The hash of our encoding must be the chain's: proves every signed field was mapped.
        let encoded_hash = keccak256(tx.envelope.encoded_2718());
        if encoded_hash != *json_hash {
            report.mismatches.push(format!(
                "tx {i}: encoding hashes to {encoded_hash}, chain says {json_hash}"
            ));
        }
        match recover_tx_sender(&tx.envelope) {
            Ok(sender) if sender == tx.sender => {}
            Ok(sender) => report.mismatches.push(format!(
                "tx {i} ({json_hash}): recovered sender {sender}, RPC from {}",
                tx.sender
            )),
            Err(RecoverError::HighS) if number < HOMESTEAD_BLOCK => report.high_s += 1,
            Err(e) => report
                .mismatches
                .push(format!("tx {i} ({json_hash}): sender recovery failed: {e}")),
        }
    }
    report.txs = block.txs.len();
    let replay::ReplayBlock {
        spec,
        env,
        txs,
        state,
        gas_used,
        logs_bloom,
        receipts_root: receipts_root_expected,
        ..
    } = block;

    let parallel: Vec<_> = [2, 4]
        .into_iter()
        .map(|workers| {
            ParallelExecutor {
                spec: spec.clone(),
                workers,
            }
            .execute_with_stats(&state, &env, &txs)
        })
        .collect();
    let outcome = match (SequentialExecutor { spec }).execute_block(&state, &env, &txs) {
        Ok(outcome) => outcome,
        Err(e) => {
            let at = match &e {
                ExecError::Invalid(
                    TxInvalid::Rejected { hash, .. } | TxInvalid::BlockFull { hash, .. },
                ) => txs
                    .iter()
                    .position(|t| t.hash == *hash)
                    .map(|i| {
                        format!(
                            " at tx {i} (type {})",
                            alloy_eips::Typed2718::ty(&txs[i].envelope)
                        )
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            report.mismatches.push(format!("execution failed{at}: {e}"));
            return Ok(report);
        }
    };

    for (run, workers) in parallel.into_iter().zip([2, 4]) {
        match run {
            Err(e) => report.mismatches.push(format!(
                "parallel execution on {workers} workers failed where sequential did not: {e}"
            )),
            Ok((parallel, stats)) => {
                if workers == 2 {
                    report.stats = stats;
                }
                compare_outcomes(&outcome, &parallel, &mut report.mismatches);
            }
        }
    }
    if outcome.gas_used != gas_used {
        report.mismatches.push(format!(
            "gas used {}, header says {gas_used} (diff {:+})",
            outcome.gas_used,
            outcome.gas_used as i128 - gas_used as i128
        ));
    }
    let bloom = block_logs_bloom(&outcome.receipts);
    if bloom != logs_bloom {
        report
            .mismatches
            .push("logs bloom differs from the header's".to_string());
    }
    if number >= replay::BYZANTIUM_BLOCK {
        let root = receipts_root(&outcome.receipts);
        if root != receipts_root_expected {
            report.mismatches.push(format!(
                "receipts root {root}, header says {receipts_root_expected}"
            ));
        }
    }
    // Every transaction must have a receipt, in order.
    if outcome.receipts.len() != txs.len() {
        report.mismatches.push(format!(
            "{} receipts for {} transactions",
            outcome.receipts.len(),
            txs.len()
        ));
    }
    Ok(report)
}

fn data_dir() -> PathBuf {
    match std::env::var_os("BTTC_MAINNET_BLOCKS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/mainnet-blocks"),
    }
}

#[test]
fn mainnet_blocks_match_headers() {
    let started = Instant::now();
    let root = data_dir();
    if !root.is_dir() {
        let why = format!(
            "mainnet block data set not found at {} (set BTTC_MAINNET_BLOCKS to its directory)",
            root.display()
        );
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{why}");
        }
        println!("SKIPPED mainnet_blocks_match_headers: {why}");
        return;
    }

    let mut numbers: Vec<u64> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|entry| {
            let entry = entry.ok()?;
            if !entry.file_type().ok()?.is_dir() {
                return None;
            }
            entry.file_name().to_str()?.parse::<u64>().ok()
        })
        .collect();
    numbers.sort_unstable();

    let mut checked = 0usize;
    let mut txs = 0usize;
    let mut high_s = 0usize;
    let (mut executions, mut aborts, mut parallel_blocks, mut fell_back) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for &number in &numbers {
        match check_block(&root.join(number.to_string()), number) {
            Ok(report) => {
                checked += 1;
                txs += report.txs;
                high_s += report.high_s;
                executions += report.stats.executions;
                aborts += report.stats.aborts;
                parallel_blocks += usize::from(report.stats.workers > 0);
                fell_back += usize::from(report.stats.fell_back_at.is_some());
                for m in report.mismatches {
                    failures.push(format!("block {number}: {m}"));
                }
            }
            Err(e) => failures.push(format!("block {number}: could not be checked: {e}")),
        }
    }

    println!(
        "mainnet blocks: {checked} blocks checked, {txs} transactions executed, \
         {high_s} pre-Homestead high-s signatures not recovered, {} failures, {:.1?}",
        failures.len(),
        started.elapsed()
    );
    println!(
        "parallel on 2 workers: {parallel_blocks} blocks run by workers ({fell_back} fell back \
         to sequential), {executions} executions, {aborts} aborted"
    );
    assert!(
        failures.is_empty(),
        "{} mismatches against mainnet:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        checked,
        numbers.len(),
        "not every block directory was checked"
    );
    assert_eq!(
        numbers.len(),
        EXPECTED_BLOCKS,
        "the data set at {} should hold {EXPECTED_BLOCKS} blocks",
        root.display()
    );
}
