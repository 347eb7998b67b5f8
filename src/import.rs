//! `bttc import`: a geth-style genesis file and RLP-encoded blocks into a node database, each
//! block executed and checked against its header before it is written.

use bttc_engine::chain::import::{
    genesis_changes, genesis_header, import_block, spec_from_genesis,
};
use bttc_engine::exec::ExecMode;
use bttc_engine::merkle::state_root::update_state_root;
use bttc_storage::{ChainDb, SyncMode};
use eyre::{Context, bail, eyre};
use std::{
    fs::File,
    io::{BufReader, Read},
    path::{Path, PathBuf},
    time::Instant,
};

/// A single encoded block larger than this is refused (the biggest blocks are a few MiB).
const BLOCK_BYTES_MAX: usize = 64 << 20;
/// The genesis file an imported datadir keeps, for `bttc node --datadir`.
pub const GENESIS_FILE: &str = "genesis.json";

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Directory of the node's databases (created if missing).
    #[arg(long)]
    pub datadir: PathBuf,
    /// geth-style genesis file: chain config with fork blocks, alloc, header fields.
    #[arg(long)]
    pub genesis: PathBuf,
    /// RLP-encoded blocks, one after another (as `geth export` writes them).
    pub chain: PathBuf,
    /// How blocks are executed: `parallel` (Block-STM) or `sequential`; both must reproduce
    /// every header.
    #[arg(long, default_value_t = ExecMode::Parallel)]
    pub exec: ExecMode,
}

/// The database's chain name for an imported chain.
pub fn chain_name(chain_id: u64) -> String {
    format!("imported-{chain_id}")
}

/// Reads and parses a genesis file.
pub fn load_genesis(path: &Path) -> eyre::Result<alloy_genesis::Genesis> {
    let json = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading the genesis file {}", path.display()))?;
    serde_json::from_str(&json)
        .wrap_err_with(|| format!("parsing the genesis file {}", path.display()))
}

/// Writes `genesis` into an empty database, or checks that the database holds this genesis.
pub fn init_genesis(
    db: &ChainDb,
    spec: &bttc_engine::chain::spec::ChainSpec,
    genesis: &alloy_genesis::Genesis,
    db_path: &Path,
) -> eyre::Result<()> {
    let view = db.read()?;
    match view.tip_at()? {
        None => {
            let changes = genesis_changes(genesis);
            let root_update = update_state_root(&view, &changes)?;
            drop(view);
            let header = genesis_header(spec, genesis, root_update.root);
            let hash = crate::node::write_genesis(db, header, &changes, &root_update)?;
            println!(
                "genesis {hash} (chain id {}, {:?} rules)",
                spec.chain_id, spec.spec_id
            );
        }
        Some(_) => {
            let stored = view
                .header_at(0)?
                .ok_or_else(|| eyre!("the database has no genesis header"))?;
            let ours = genesis_header(spec, genesis, stored.state_root);
            if ours.hash_slow() != stored.hash_slow() {
                bail!(
                    "{} holds another chain's genesis ({}); this genesis file makes {}",
                    db_path.display(),
                    stored.hash_slow(),
                    ours.hash_slow()
                );
            }
        }
    }
    Ok(())
}

pub fn run(args: ImportArgs) -> eyre::Result<()> {
    let genesis = load_genesis(&args.genesis)?;
    let spec = spec_from_genesis(&genesis)?;
    // Open the chain file first: a refused import must leave no database behind.
    let file =
        File::open(&args.chain).wrap_err_with(|| format!("opening {}", args.chain.display()))?;
    std::fs::create_dir_all(&args.datadir)
        .wrap_err_with(|| format!("creating {}", args.datadir.display()))?;
    let db_path = args.datadir.join("chain");
    let db = ChainDb::open(&db_path, &chain_name(spec.chain_id), SyncMode::Durable)
        .wrap_err_with(|| format!("opening the database in {}", db_path.display()))?;

    // Genesis: written into a new database; an existing one must hold the same genesis.
    init_genesis(&db, &spec, &genesis, &db_path)?;
    std::fs::copy(&args.genesis, args.datadir.join(GENESIS_FILE))
        .wrap_err("keeping a copy of the genesis file in the datadir")?;

    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let (mut imported, mut skipped, mut txs, mut gas, mut read_bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    while let Some(bytes) = next_item(&mut reader)? {
        read_bytes += bytes.len() as u64;
        let mut slice = bytes.as_slice();
        let block: alloy_consensus::Block<alloy_consensus::TxEnvelope> =
            alloy_rlp::Decodable::decode(&mut slice).map_err(|e| {
                eyre!(
                    "block {} of the file does not decode: {e}",
                    imported + skipped + 1
                )
            })?;
        if !slice.is_empty() {
            bail!(
                "block {} of the file has trailing bytes",
                imported + skipped + 1
            );
        }
        let number = block.header.number;
        let view = db.read()?;
        let (tip, parent, parent_hash) = crate::node::tip_block(&view)?;
        if number <= tip {
            // Already imported: it must be the block we hold.
            let ours = view.canonical_hash_at(number)?;
            let theirs = block.header.hash_slow();
            if ours != Some(theirs) {
                bail!("block {number} {theirs} differs from the stored block {ours:?}");
            }
            skipped += 1;
            continue;
        }
        let block = import_block(&spec, &view, &parent, parent_hash, block, args.exec)?;
        drop(view);
        db.write_block(&crate::node::block_write(&block))?;
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
fn next_item(reader: &mut impl Read) -> eyre::Result<Option<Vec<u8>>> {
    let mut first = [0u8; 1];
    if reader.read(&mut first)? == 0 {
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
                .wrap_err("the file ends inside a block's length")?;
            item.extend_from_slice(&len);
            len.iter().fold(0usize, |acc, d| {
                acc.saturating_mul(256).saturating_add(usize::from(*d))
            })
        }
        _ => bail!("the file holds something other than an RLP list where a block should start"),
    };
    if payload > BLOCK_BYTES_MAX {
        bail!("a block of {payload} bytes is over the {BLOCK_BYTES_MAX}-byte limit");
    }
    let start = item.len();
    item.resize(start + payload, 0);
    reader
        .read_exact(&mut item[start..])
        .wrap_err("the file ends inside a block")?;
    Ok(Some(item))
}
