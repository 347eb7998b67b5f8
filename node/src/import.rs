//! `bttc import`: a geth-style genesis file and RLP-encoded blocks into a node database, each
//! block executed and checked against its header (by the engine) before it is written.

use bttc_engine::{
    chain::{
        import::{genesis_changes, genesis_header, import_block, spec_from_genesis},
        producer::{ProduceError, tip_block},
    },
    exec::ExecMode,
    merkle::{state_root::update_state_root, trie::TrieError},
};
use bttc_storage::{ChainDb, StorageError, SyncMode};
use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
    time::Instant,
};

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{what} {path}: {source}")]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing the genesis file {path}: {source}")]
    GenesisJson {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Chain(#[from] bttc_engine::chain::import::ImportError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tip(#[from] ProduceError),
    #[error("the genesis state root: {0}")]
    Trie(#[from] TrieError),
    #[error("{path} holds another chain's genesis ({stored}); this genesis file makes {ours}")]
    OtherGenesis {
        path: PathBuf,
        stored: alloy_primitives::B256,
        ours: alloy_primitives::B256,
    },
    #[error("the database has no genesis header")]
    NoGenesisHeader,
    #[error("block {index} of the file does not decode: {source}")]
    Decode {
        index: u64,
        source: alloy_rlp::Error,
    },
    #[error("block {0} of the file has trailing bytes")]
    Trailing(u64),
    #[error("block {number} {theirs} differs from the stored block {ours:?}")]
    Differs {
        number: u64,
        theirs: alloy_primitives::B256,
        ours: Option<alloy_primitives::B256>,
    },
    #[error("reading the chain file: {0}")]
    Read(std::io::Error),
    #[error("the file ends inside a block's length: {0}")]
    TruncatedLength(std::io::Error),
    #[error("the file ends inside a block: {0}")]
    Truncated(std::io::Error),
    #[error("the file holds something other than an RLP list where a block should start")]
    NotAList,
    #[error("a block of {0} bytes is over the {BLOCK_BYTES_MAX}-byte limit")]
    TooLarge(usize),
}

/// A single encoded block larger than this is refused (the biggest blocks are a few MiB).
const BLOCK_BYTES_MAX: usize = 64 << 20;
/// The genesis file an imported datadir keeps, for `bttc node --datadir`.
pub const GENESIS_FILE: &str = "genesis.json";

/// An import to run.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    /// Directory of the node's databases (created if missing).
    pub datadir: PathBuf,
    /// geth-style genesis file: chain config with fork blocks, alloc, header fields.
    pub genesis: PathBuf,
    /// RLP-encoded blocks, one after another (as `geth export` writes them).
    pub chain: PathBuf,
    /// How blocks are executed; both executors must reproduce every header.
    pub exec: ExecMode,
}

/// The database's chain name for an imported chain.
pub fn chain_name(chain_id: u64) -> String {
    format!("imported-{chain_id}")
}

/// Reads and parses a genesis file.
pub fn load_genesis(path: &Path) -> Result<alloy_genesis::Genesis, ImportError> {
    let json = std::fs::read_to_string(path).map_err(|source| ImportError::File {
        what: "reading the genesis file",
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&json).map_err(|source| ImportError::GenesisJson {
        path: path.to_owned(),
        source,
    })
}

/// Writes `genesis` into an empty database, or checks that the database holds this genesis.
pub fn init_genesis(
    db: &ChainDb,
    spec: &bttc_engine::chain::spec::ChainSpec,
    genesis: &alloy_genesis::Genesis,
    db_path: &Path,
) -> Result<(), ImportError> {
    let view = db.read()?;
    match view.tip_at()? {
        None => {
            let changes = genesis_changes(genesis);
            let root_update = update_state_root(&view, &changes)?;
            drop(view);
            let header = genesis_header(spec, genesis, root_update.root);
            let hash = crate::chain::write_genesis(db, header, &changes, &root_update)?;
            println!(
                "genesis {hash} (chain id {}, {:?} rules)",
                spec.chain_id, spec.spec_id
            );
        }
        Some(_) => {
            let stored = view.header_at(0)?.ok_or(ImportError::NoGenesisHeader)?;
            let ours = genesis_header(spec, genesis, stored.state_root);
            if ours.hash_slow() != stored.hash_slow() {
                return Err(ImportError::OtherGenesis {
                    path: db_path.to_owned(),
                    stored: stored.hash_slow(),
                    ours: ours.hash_slow(),
                });
            }
        }
    }
    Ok(())
}

pub fn run(args: ImportConfig) -> Result<(), ImportError> {
    let genesis = load_genesis(&args.genesis)?;
    let spec = spec_from_genesis(&genesis)?;
    // Open the chain file first: a refused import must leave no database behind.
    let file = File::open(&args.chain).map_err(|source| ImportError::File {
        what: "opening",
        path: args.chain.clone(),
        source,
    })?;
    std::fs::create_dir_all(&args.datadir).map_err(|source| ImportError::File {
        what: "creating",
        path: args.datadir.clone(),
        source,
    })?;
    let db_path = args.datadir.join("chain");
    let db = ChainDb::open(&db_path, &chain_name(spec.chain_id), SyncMode::Durable)?;

    // Genesis: written into a new database; an existing one must hold the same genesis.
    init_genesis(&db, &spec, &genesis, &db_path)?;
    let kept = args.datadir.join(GENESIS_FILE);
    std::fs::copy(&args.genesis, &kept).map_err(|source| ImportError::File {
        what: "keeping a copy of the genesis file as",
        path: kept,
        source,
    })?;

    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let (mut imported, mut skipped, mut txs, mut gas, mut read_bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    while let Some(bytes) = next_item(&mut reader)? {
        read_bytes += bytes.len() as u64;
        let mut slice = bytes.as_slice();
        let index = imported + skipped + 1;
        let block: alloy_consensus::Block<alloy_consensus::TxEnvelope> =
            alloy_rlp::Decodable::decode(&mut slice)
                .map_err(|source| ImportError::Decode { index, source })?;
        if !slice.is_empty() {
            return Err(ImportError::Trailing(index));
        }
        let number = block.header.number;
        let view = db.read()?;
        let (tip, parent, parent_hash) = tip_block(&view)?;
        if number <= tip {
            // Already imported: it must be the block we hold.
            let ours = view.canonical_hash_at(number)?;
            let theirs = block.header.hash_slow();
            if ours != Some(theirs) {
                return Err(ImportError::Differs {
                    number,
                    theirs,
                    ours,
                });
            }
            skipped += 1;
            continue;
        }
        let block = import_block(&spec, &view, &parent, parent_hash, block, args.exec)?;
        drop(view);
        db.write_block(&(&block).into())?;
        imported += 1;
        txs += block.txs.len() as u64;
        gas += block.header.gas_used;
        if last_report.elapsed().as_secs() >= 1 {
            last_report = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "imported {imported} blocks (at {number}), {txs} txs, {:.1} Mgas/s, {:.0}% of the file",
                gas as f64 / secs / 1e6,
                read_bytes as f64 * 100.0 / total_bytes.max(1) as f64
            );
        }
    }
    let view = db.read()?;
    let tip = view.tip_at()?.unwrap_or_default();
    let hash = view.canonical_hash_at(tip)?.unwrap_or_default();
    println!(
        "imported {imported} blocks ({skipped} already present), {txs} transactions, in {:.2} s; tip {tip} {hash}",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The next RLP item of `reader` (a whole encoded block), or `None` at the end.
fn next_item(reader: &mut impl Read) -> Result<Option<Vec<u8>>, ImportError> {
    let mut first = [0u8; 1];
    if reader.read(&mut first).map_err(ImportError::Read)? == 0 {
        return Ok(None);
    }
    let b = first[0];
    let mut item = vec![b];
    let payload = match b {
        0xc0..=0xf7 => usize::from(b - 0xc0),
        0xf8..=0xff => {
            let mut len = vec![0u8; usize::from(b - 0xf7)];
            reader
                .read_exact(&mut len)
                .map_err(ImportError::TruncatedLength)?;
            item.extend_from_slice(&len);
            len.iter().fold(0usize, |acc, d| {
                acc.saturating_mul(256).saturating_add(usize::from(*d))
            })
        }
        _ => return Err(ImportError::NotAList),
    };
    if payload > BLOCK_BYTES_MAX {
        return Err(ImportError::TooLarge(payload));
    }
    let start = item.len();
    item.resize(start + payload, 0);
    reader
        .read_exact(&mut item[start..])
        .map_err(ImportError::Truncated)?;
    Ok(Some(item))
}
