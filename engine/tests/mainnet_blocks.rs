//! Differential test against real Ethereum mainnet blocks.
//!
//! Every directory `<number>/` of the data set (`BTTC_MAINNET_BLOCKS`, else
//! `../shared/data/mainnet-blocks` next to the repository) holds one block as
//! `eth_getBlockByNumber` returns it with full transactions (`block.json.gz`), the state its
//! transactions read (`pre_state.json.gz`) and, when the block uses `BLOCKHASH`, the ancestor
//! hashes it needs (`block_hashes.json.gz`). Each block is executed with the sequential executor
//! under the mainnet hardfork of its height; gas used, logs bloom and (from Byzantium, when
//! receipts carry a status instead of a state root) the receipts root must match the header.
//! Every sender is also recovered and compared with the RPC's `from`.

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bloom, Bytes, KECCAK256_EMPTY, U256, keccak256};
use bttc_engine::{
    chain::spec::{ChainSpec, FeeRules},
    crypto::{RecoverError, recover_tx_sender},
    exec::{
        BlockEnv, BlockExecutor, BlockOutcome, ExecError, ExecStats, MemState, ParallelExecutor,
        SequentialExecutor, TxInvalid,
    },
    primitives::{Account, RecoveredTx, block_logs_bloom, receipts_root},
};
use flate2::read::GzDecoder;
use revm::primitives::hardfork::SpecId;
use serde::Deserialize;
use serde_json::Value;
use std::{
    collections::HashMap,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    str::FromStr,
    time::Instant,
};

/// Block directories the data set holds; a smaller count means a partial copy.
const EXPECTED_BLOCKS: usize = 52;

/// First block of each mainnet hardfork activated by height.
const FORKS_BY_NUMBER: &[(u64, SpecId)] = &[
    (0, SpecId::FRONTIER),
    (1_150_000, SpecId::HOMESTEAD),
    (2_463_000, SpecId::TANGERINE),
    (2_675_000, SpecId::SPURIOUS_DRAGON),
    (4_370_000, SpecId::BYZANTIUM),
    (7_280_000, SpecId::PETERSBURG),
    (9_069_000, SpecId::ISTANBUL),
    (12_244_000, SpecId::BERLIN),
    (12_965_000, SpecId::LONDON),
    (15_537_394, SpecId::MERGE),
];
const SHANGHAI_TIME: u64 = 1_681_338_455;
const CANCUN_TIME: u64 = 1_710_338_135;
const HOMESTEAD_BLOCK: u64 = 1_150_000;
const BYZANTIUM_BLOCK: u64 = 4_370_000;

fn mainnet_spec_id(number: u64, timestamp: u64) -> SpecId {
    if timestamp >= CANCUN_TIME {
        return SpecId::CANCUN;
    }
    if timestamp >= SHANGHAI_TIME {
        return SpecId::SHANGHAI;
    }
    FORKS_BY_NUMBER
        .iter()
        .rev()
        .find(|(first, _)| number >= *first)
        .map(|(_, spec)| *spec)
        .expect("block 0 is Frontier")
}

// ---------------------------------------------------------------------------------------------
// Pre-state

#[derive(Deserialize)]
struct PreAccount {
    basic: PreBasic,
    code: Option<PreCode>,
    storage: HashMap<String, String>,
    code_hash: Option<B256>,
}

#[derive(Deserialize)]
struct PreBasic {
    balance: String,
    nonce: u64,
}

/// revm's analysed bytecode: the contract is the first `original_len` bytes of `bytecode`
/// (the rest is analysis padding); the jump table is ignored.
#[derive(Deserialize)]
struct PreCode {
    bytecode: Bytes,
    original_len: usize,
}

fn parse_u256(s: &str) -> Result<U256, String> {
    U256::from_str(s).map_err(|e| format!("bad quantity {s:?}: {e}"))
}

fn load_state(dir: &Path) -> Result<MemState, String> {
    let pre: HashMap<Address, PreAccount> = read_json(&dir.join("pre_state.json.gz"))?;
    let mut state = MemState::default();
    for (address, acc) in pre {
        let code = match acc.code {
            Some(c) => {
                let len = c.original_len;
                if len > c.bytecode.len() {
                    return Err(format!(
                        "pre_state {address}: original_len {len} exceeds bytecode length {}",
                        c.bytecode.len()
                    ));
                }
                c.bytecode.slice(..len)
            }
            None => Bytes::new(),
        };
        let code_hash = if code.is_empty() {
            KECCAK256_EMPTY
        } else {
            keccak256(&code)
        };
        if let Some(given) = acc.code_hash
            && given != code_hash
        {
            return Err(format!(
                "pre_state {address}: code_hash {given} but keccak(code) = {code_hash}"
            ));
        }
        if !code.is_empty() {
            state.codes.insert(code_hash, code);
        }
        state.accounts.insert(
            address,
            Account {
                nonce: acc.basic.nonce,
                balance: parse_u256(&acc.basic.balance)?,
                code_hash,
            },
        );
        for (slot, value) in &acc.storage {
            state
                .storage
                .insert((address, parse_u256(slot)?), parse_u256(value)?);
        }
    }
    let hashes_path = dir.join("block_hashes.json.gz");
    if hashes_path.exists() {
        let hashes: HashMap<String, B256> = read_json(&hashes_path)?;
        for (number, hash) in hashes {
            let number = number
                .parse::<u64>()
                .map_err(|e| format!("block_hashes key {number:?}: {e}"))?;
            state.block_hashes.insert(number, hash);
        }
    }
    Ok(state)
}

// ---------------------------------------------------------------------------------------------
// Block

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut text = Vec::new();
    GzDecoder::new(file)
        .read_to_end(&mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn field<'a>(block: &'a Value, name: &str) -> Result<&'a Value, String> {
    block
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| format!("block has no {name}"))
}

fn field_str<'a>(block: &'a Value, name: &str) -> Result<&'a str, String> {
    field(block, name)?
        .as_str()
        .ok_or_else(|| format!("block field {name} is not a string"))
}

fn field_u64(block: &Value, name: &str) -> Result<u64, String> {
    let s = field_str(block, name)?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|e| format!("{name} {s:?}: {e}"))
}

fn field_u64_or_zero(block: &Value, name: &str) -> Result<u64, String> {
    match block.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(_) => field_u64(block, name),
    }
}

fn field_parsed<T: FromStr>(block: &Value, name: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    let s = field_str(block, name)?;
    s.parse::<T>().map_err(|e| format!("{name} {s:?}: {e}"))
}

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

fn check_block(dir: &Path, number: u64) -> Result<BlockReport, String> {
    let block: Value = read_json(&dir.join("block.json.gz"))?;
    let mut report = BlockReport::default();

    let header_number = field_u64(&block, "number")?;
    if header_number != number {
        return Err(format!("directory {number} holds block {header_number}"));
    }
    let timestamp = field_u64(&block, "timestamp")?;
    let gas_limit = field_u64(&block, "gasLimit")?;
    let gas_used = field_u64(&block, "gasUsed")?;
    let logs_bloom: Bloom = field_parsed(&block, "logsBloom")?;
    let receipts_root_expected: B256 = field_parsed(&block, "receiptsRoot")?;
    let env = BlockEnv {
        number,
        timestamp,
        fee_recipient: field_parsed(&block, "miner")?,
        gas_limit,
        base_fee: field_u64_or_zero(&block, "baseFeePerGas")?,
        difficulty: field_parsed(&block, "difficulty")?,
        prevrandao: field_parsed(&block, "mixHash")?,
        excess_blob_gas: field_u64_or_zero(&block, "excessBlobGas")?,
    };

    let raw_txs = field(&block, "transactions")?
        .as_array()
        .ok_or("transactions is not an array")?;
    let mut txs = Vec::with_capacity(raw_txs.len());
    for (i, raw) in raw_txs.iter().enumerate() {
        let rpc: alloy_rpc_types_eth::Transaction =
            serde_json::from_value(raw.clone()).map_err(|e| format!("tx {i}: {e}"))?;
        let (envelope, from): (TxEnvelope, Address) = rpc.inner.into_parts();
        // The hash of our encoding must be the chain's: proves every signed field was mapped.
        let json_hash: B256 = field_parsed(raw, "hash").map_err(|e| format!("tx {i}: {e}"))?;
        let encoded_hash = keccak256(envelope.encoded_2718());
        if encoded_hash != json_hash {
            report.mismatches.push(format!(
                "tx {i}: encoding hashes to {encoded_hash}, chain says {json_hash}"
            ));
        }
        match recover_tx_sender(&envelope) {
            Ok(sender) if sender == from => {}
            Ok(sender) => report.mismatches.push(format!(
                "tx {i} ({json_hash}): recovered sender {sender}, RPC from {from}"
            )),
            Err(RecoverError::HighS) if number < HOMESTEAD_BLOCK => report.high_s += 1,
            Err(e) => report
                .mismatches
                .push(format!("tx {i} ({json_hash}): sender recovery failed: {e}")),
        }
        txs.push(RecoveredTx::new_unchecked(envelope, from));
    }
    report.txs = txs.len();

    let state = load_state(dir)?;
    let spec = ChainSpec {
        name: "ethereum-mainnet",
        chain_id: 1,
        spec_id: mainnet_spec_id(number, timestamp),
        gas_limit,
        fee_rules: FeeRules::Ethereum,
        ..ChainSpec::dev()
    };
    let parallel = ParallelExecutor {
        spec: spec.clone(),
        workers: 2,
    }
    .execute_with_stats(&state, &env, &txs);
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

    match parallel {
        Err(e) => report.mismatches.push(format!(
            "parallel execution failed where sequential did not: {e}"
        )),
        Ok((parallel, stats)) => {
            report.stats = stats;
            compare_outcomes(&outcome, &parallel, &mut report.mismatches);
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
    if number >= BYZANTIUM_BLOCK {
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
        "parallel: {parallel_blocks} blocks run by workers ({fell_back} fell back to \
         sequential), {executions} executions, {aborts} aborted"
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
