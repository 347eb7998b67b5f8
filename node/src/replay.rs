//! `bttc replay DIR`: executes one block of the mainnet-block data set format and prints what
//! it produced, with the executor chosen by `--exec`; the last line is one JSON object.

use bttc_engine::{
    exec::{BlockExecutor, ConfiguredExecutor, ExecMode, replay},
    primitives::{block_logs_bloom, receipts_root},
};
use std::{
    io::Read,
    path::{Path, PathBuf},
    time::Instant,
};

/// Files larger than this are refused (the data set's largest pre-state is a few MiB).
const FILE_BYTES_MAX: u64 = 512 << 20;
/// Most timed runs.
const RUNS_MAX: u32 = 10_000;

/// A replay to run.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// A block directory: `block.json[.gz]` (`eth_getBlockByNumber` with full transactions),
    /// `pre_state.json[.gz]` and, if the block uses BLOCKHASH, `block_hashes.json[.gz]`.
    pub dir: PathBuf,
    pub exec: ExecMode,
    /// Times this many executions and reports the median.
    pub runs: u32,
}

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: more than {FILE_BYTES_MAX} bytes")]
    TooLarge { path: PathBuf },
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("{dir} has no {name}[.gz]")]
    Missing { dir: PathBuf, name: &'static str },
    #[error("--runs must be between 1 and {RUNS_MAX}")]
    Runs,
    #[error("{dir}: {source}")]
    Parse {
        dir: PathBuf,
        source: bttc_engine::exec::replay::ReplayError,
    },
    #[error("executing block {number}: {source}")]
    Exec {
        number: u64,
        source: bttc_engine::exec::ExecError,
    },
}

/// `name.gz` (decompressed) or `name`; `None` if neither exists.
fn read_file(dir: &Path, name: &str) -> Result<Option<Vec<u8>>, ReplayError> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    let (path, compressed) = if gz.exists() {
        (gz, true)
    } else if plain.exists() {
        (plain, false)
    } else {
        return Ok(None);
    };
    let failed = |source| ReplayError::File {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(failed)?;
    let mut bytes = Vec::new();
    let read = if compressed {
        flate2::read::GzDecoder::new(file)
            .take(FILE_BYTES_MAX + 1)
            .read_to_end(&mut bytes)
    } else {
        file.take(FILE_BYTES_MAX + 1).read_to_end(&mut bytes)
    };
    read.map_err(failed)?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(ReplayError::TooLarge { path });
    }
    Ok(Some(bytes))
}

pub fn run(args: ReplayConfig) -> Result<(), ReplayError> {
    if !(1..=RUNS_MAX).contains(&args.runs) {
        return Err(ReplayError::Runs);
    }
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(ReplayError::NotADirectory(dir.clone()));
    }
    let missing = |name| ReplayError::Missing {
        dir: dir.clone(),
        name,
    };
    let block = read_file(dir, "block.json")?.ok_or_else(|| missing("block.json"))?;
    let pre_state = read_file(dir, "pre_state.json")?.ok_or_else(|| missing("pre_state.json"))?;
    let hashes = read_file(dir, "block_hashes.json")?;
    let parse = |source| ReplayError::Parse {
        dir: dir.clone(),
        source,
    };
    let state = replay::parse_state(&pre_state, hashes.as_deref()).map_err(parse)?;
    let block = replay::parse_block(&block, state).map_err(parse)?;

    let executor = ConfiguredExecutor {
        spec: block.spec.clone(),
        mode: args.exec,
    };
    let mut times = Vec::with_capacity(args.runs as usize);
    let mut outcome = None;
    for _ in 0..args.runs {
        let started = Instant::now();
        let result = executor
            .execute_block(&block.state, &block.env, &block.txs)
            .map_err(|source| ReplayError::Exec {
                number: block.number,
                source,
            })?;
        times.push(started.elapsed());
        outcome = Some(result);
    }
    let outcome = outcome.expect("at least one run");
    times.sort_unstable();
    let time = times[times.len() / 2];
    let root = receipts_root(&outcome.receipts);
    let bloom_matches = block_logs_bloom(&outcome.receipts) == block.logs_bloom;
    // Before Byzantium receipts hold intermediate state roots, which a partial pre-state
    // cannot give: the receipts root is not comparable there.
    let root_matches =
        (block.number >= replay::BYZANTIUM_BLOCK).then_some(root == block.receipts_root);
    println!(
        "block {} ({:?}): {} transactions, {} gas ({} in the header), logs bloom {}, receipts \
         root {}, {:.3} ms {} (median of {})",
        block.number,
        block.spec.spec_id,
        block.txs.len(),
        outcome.gas_used,
        block.gas_used,
        if bloom_matches { "matches" } else { "DIFFERS" },
        match root_matches {
            Some(true) => "matches",
            Some(false) => "DIFFERS",
            None => "not comparable (pre-Byzantium)",
        },
        time.as_secs_f64() * 1e3,
        args.exec,
        args.runs,
    );
    let summary = serde_json::json!({
        "block": block.number,
        "txs": block.txs.len(),
        "gas_used": outcome.gas_used,
        "receipts_root": root,
        "state_digest": outcome.changes.digest(),
        "time_ms": time.as_secs_f64() * 1e3,
        "exec": args.exec.to_string(),
        "header_gas_used": block.gas_used,
        "matches_header": outcome.gas_used == block.gas_used
            && bloom_matches
            && root_matches != Some(false),
    });
    println!("{summary}");
    Ok(())
}
