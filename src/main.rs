//! The `bttc` command: CLI and wiring only; the protocol lives in bttc-engine.

mod delivery;
mod devnet;
mod import;
mod node;
mod replay;

use alloy_primitives::{Address, utils::format_ether};
use bttc_engine::{
    chain::{
        genesis::{DEV_ACCOUNT_COUNT, Genesis, dev_signers},
        spec::ChainSpec,
    },
    exec::ExecMode,
};
use bttc_net::rpc::{HttpAccess, RpcLimits, start};
use bttc_storage::{ChainDb, SyncMode};
use clap::{Parser, Subcommand, ValueEnum};
use eyre::{Context, bail};
use mimalloc::MiMalloc;
use node::Node;
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

#[derive(Parser)]
#[command(name = "bttc", version, about = "BitTorrent Chain node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node. With --dev: a single-node chain with funded dev accounts; without: serve the
    /// chain `bttc import` wrote into --datadir.
    Node(NodeArgs),
    /// Inspect a node's database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run one Delivery chain validator.
    Delivery(DeliveryArgs),
    /// Start a local Delivery chain: N validator processes on loopback.
    Devnet(devnet::DevnetArgs),
    /// Import a chain: a geth-style genesis file and RLP-encoded blocks, each executed and
    /// checked (state root, receipts root, hash) before it is written.
    Import(import::ImportArgs),
    /// Execute one block directory of the mainnet-block data set format (block, pre-state,
    /// ancestor hashes); the last line printed is a JSON summary.
    Replay(replay::ReplayArgs),
}

#[derive(clap::Args)]
struct DeliveryArgs {
    /// Directory of this validator's database (and its optional `side-facts` file).
    #[arg(long)]
    datadir: PathBuf,
    /// The Delivery genesis file (as `bttc devnet` writes it).
    #[arg(long)]
    genesis: PathBuf,
    /// File holding this validator's secp256k1 key in hex.
    #[arg(long = "key-file")]
    key_file: PathBuf,
    /// JSON-RPC listen address (defaults to this validator's entry in the genesis).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// How commits reach the disk.
    #[arg(long = "db.sync", value_enum, default_value = "durable")]
    db_sync: DbSync,
}

#[derive(Subcommand)]
enum DbCommand {
    /// Checks every stored header's hash and parent link, and recomputes the state root of the
    /// tip from the account and storage tables (independently of the stored trie nodes).
    Verify {
        #[arg(long, default_value = "./data/dev")]
        datadir: PathBuf,
        #[arg(long, default_value = "dev")]
        chain: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum DbSync {
    /// Every block is on disk before it is announced.
    Durable,
    /// Ordered, crash-consistent commits without fsync (benchmark rigs).
    SafeNoSync,
}

#[derive(clap::Args)]
struct NodeArgs {
    /// Run a development chain (single producer, prefunded accounts).
    #[arg(long)]
    dev: bool,
    /// Chain rules: `dev` (newest hardfork) or `bttc-mainnet` (Berlin, chain id 199, BTTC fees).
    #[arg(long, default_value = "dev")]
    chain: String,
    /// Directory of the node's databases.
    #[arg(long, default_value = "./data/dev")]
    datadir: PathBuf,
    #[arg(long = "http.addr", default_value = "127.0.0.1")]
    http_addr: std::net::IpAddr,
    #[arg(long = "http.port", default_value_t = 8545)]
    http_port: u16,
    /// Browser origins allowed to call over HTTP (CORS), comma-separated; `*` allows any.
    #[arg(long = "http.corsdomain", default_value = "*", value_delimiter = ',')]
    http_corsdomain: Vec<String>,
    /// `Host` names the HTTP and WebSocket servers answer (any port), comma-separated; `*`
    /// allows any. Guards a local node against DNS rebinding.
    #[arg(
        long = "http.vhosts",
        default_value = "localhost,127.0.0.1,[::1]",
        value_delimiter = ','
    )]
    http_vhosts: Vec<String>,
    #[arg(long = "ws.addr", default_value = "127.0.0.1")]
    ws_addr: std::net::IpAddr,
    /// JSON-RPC over WebSocket, with eth_subscribe; 0 picks a free port.
    #[arg(long = "ws.port", default_value_t = 8546)]
    ws_port: u16,
    /// Seconds between blocks; 0 makes a block as soon as transactions arrive.
    #[arg(long = "block-time", default_value_t = 2.0)]
    block_time: f64,
    /// How commits reach the disk.
    #[arg(long = "db.sync", value_enum, default_value = "durable")]
    db_sync: DbSync,
    /// Receiver of the block fees (dev accounts' first address if not given).
    #[arg(long)]
    coinbase: Option<Address>,
    /// With --dev: the chain's genesis from a geth-style genesis file (alloc, chain id, forks
    /// active at genesis) instead of the built-in dev genesis.
    #[arg(long, requires = "dev")]
    genesis: Option<PathBuf>,
    /// How blocks are executed when produced: `parallel` (Block-STM on one worker per core)
    /// or `sequential`. Both give identical blocks.
    #[arg(long, default_value_t = ExecMode::Parallel)]
    exec: ExecMode,
    #[command(flatten)]
    rpc: RpcArgs,
}

/// JSON-RPC serving limits; each is refused with a clear error when exceeded.
#[derive(clap::Args)]
struct RpcArgs {
    /// Requests in one batch.
    #[arg(long = "rpc.batch-request-limit", default_value_t = 1_000)]
    batch_request_limit: u32,
    /// Bytes of one request.
    #[arg(long = "rpc.max-request-bytes", default_value_t = 16 << 20)]
    max_request_bytes: u32,
    /// Bytes of one response.
    #[arg(long = "rpc.max-response-bytes", default_value_t = 128 << 20)]
    max_response_bytes: u32,
    /// Open HTTP connections.
    #[arg(long = "rpc.max-connections", default_value_t = 2_000)]
    max_connections: u32,
    /// Gas of eth_call, eth_estimateGas and eth_createAccessList.
    #[arg(long = "rpc.gascap", default_value_t = 50_000_000)]
    gas_cap: u64,
    /// Blocks one eth_getLogs may span.
    #[arg(long = "rpc.logs-block-range", default_value_t = 10_000)]
    logs_block_range: u64,
    /// Logs one eth_getLogs may return.
    #[arg(long = "rpc.logs-max-results", default_value_t = 10_000)]
    logs_max_results: usize,
    /// Live eth_subscribe subscriptions one WebSocket connection may hold.
    #[arg(long = "ws.max-subscriptions", default_value_t = 1_024)]
    max_subscriptions: u32,
    /// Filters (eth_newFilter and kin) installed at once, all callers together.
    #[arg(long = "rpc.max-filters", default_value_t = 10_000)]
    max_filters: usize,
    /// Seconds a filter lives without being polled.
    #[arg(long = "rpc.filter-timeout", default_value_t = 300)]
    filter_timeout: u64,
}

impl RpcArgs {
    fn limits(&self) -> eyre::Result<RpcLimits> {
        let limits = RpcLimits {
            request_bytes_max: self.max_request_bytes,
            response_bytes_max: self.max_response_bytes,
            connections_max: self.max_connections,
            batch_len_max: self.batch_request_limit,
            gas_cap: self.gas_cap,
            logs_block_range_max: self.logs_block_range,
            logs_results_max: self.logs_max_results,
            subscriptions_per_connection_max: self.max_subscriptions,
            filters_max: self.max_filters,
            filter_idle: Duration::from_secs(self.filter_timeout),
        };
        if [
            u64::from(limits.request_bytes_max),
            u64::from(limits.response_bytes_max),
            u64::from(limits.connections_max),
            u64::from(limits.batch_len_max),
            limits.gas_cap,
            limits.logs_block_range_max,
            limits.logs_results_max as u64,
            u64::from(limits.subscriptions_per_connection_max),
            limits.filters_max as u64,
            self.filter_timeout,
        ]
        .contains(&0)
        {
            bail!("every --rpc.* and --ws.* limit must be at least 1");
        }
        Ok(limits)
    }
}

fn main() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libmdbx=warn")),
        )
        .init();
    match Cli::parse().command {
        Command::Node(args) => run_node(args),
        Command::Db(DbCommand::Verify { datadir, chain }) => verify_db(&datadir, &chain),
        Command::Delivery(args) => run_delivery(args),
        Command::Devnet(args) => devnet::run(args),
        Command::Import(args) => import::run(args),
        Command::Replay(args) => replay::run(args),
    }
}

fn run_delivery(args: DeliveryArgs) -> eyre::Result<()> {
    let genesis = delivery::DeliveryGenesis::load(&args.genesis)?;
    let key = devnet::read_key(&args.key_file)?;
    let me = bttc_engine::delivery::signing::key_address(&key);
    let http = match args.http {
        Some(h) => h,
        None => {
            genesis
                .validators
                .iter()
                .find(|v| v.address == me)
                .ok_or_else(|| eyre::eyre!("key {me} is not a validator of this genesis"))?
                .rpc
        }
    };
    let sync = sync_mode(args.db_sync);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let validator = delivery::run_validator(
            delivery::DriverConfig {
                datadir: args.datadir,
                genesis,
                key,
                sync,
            },
            http,
            stop_rx,
        );
        tokio::pin!(validator);
        tokio::select! {
            r = &mut validator => return r,
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            _ = term.recv() => tracing::info!("terminated, shutting down"),
        }
        let _ = stop_tx.send(true);
        validator.await
    })
}

fn verify_db(datadir: &std::path::Path, chain: &str) -> eyre::Result<()> {
    let path = datadir.join("chain");
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    let db = ChainDb::open(&path, chain, SyncMode::Durable)?;
    let view = db.read()?;
    let Some(tip) = view.tip_at()? else {
        bail!("database has no blocks")
    };
    let mut parent_hash = None;
    for number in 0..=tip {
        let header = view
            .header_at(number)?
            .ok_or_else(|| eyre::eyre!("header {number} missing"))?;
        let hash = view
            .canonical_hash_at(number)?
            .ok_or_else(|| eyre::eyre!("hash {number} missing"))?;
        if header.hash_slow() != hash {
            bail!(
                "block {number}: stored hash {hash} is not the header's hash {}",
                header.hash_slow()
            );
        }
        if let Some(parent) = parent_hash
            && header.parent_hash != parent
        {
            bail!(
                "block {number}: parent hash {} does not link to block {}",
                header.parent_hash,
                number - 1
            );
        }
        parent_hash = Some(hash);
    }
    let header = view.header_at(tip)?.expect("checked above");
    let recomputed = view.full_state_root()?;
    println!("tip {tip} {}", parent_hash.unwrap_or_default());
    println!("header state root     {}", header.state_root);
    println!("recomputed state root {recomputed}");
    if recomputed != header.state_root {
        bail!("state root mismatch at block {tip}");
    }
    println!("ok: {} headers linked, state root matches", tip + 1);
    Ok(())
}

fn run_node(args: NodeArgs) -> eyre::Result<()> {
    if !args.dev {
        return run_follower(args);
    }
    if let Some(path) = &args.genesis {
        return run_dev_from_genesis(&args, path);
    }
    let Some(spec) = ChainSpec::by_name(&args.chain) else {
        bail!("unknown chain {:?}: use dev or bttc-mainnet", args.chain);
    };
    let block_time = block_time(args.block_time)?;
    let signers = dev_signers(DEV_ACCOUNT_COUNT)?;
    let addresses: Vec<Address> = signers.iter().map(|s| s.address()).collect();
    let genesis = Genesis::dev(&addresses);

    let sync = sync_mode(args.db_sync);
    let db_path = args.datadir.join("chain");
    let db = ChainDb::open(&db_path, spec.name, sync)
        .wrap_err_with(|| format!("opening the database in {}", db_path.display()))?;
    let node = Arc::new(Node::open(
        spec.clone(),
        db,
        Some(&genesis),
        block_time,
        args.coinbase.unwrap_or(addresses[0]),
        args.exec,
    )?);
    let (tip, tip_hash) = node.tip()?;

    println!(
        "\nbttc dev node — chain {} (id {}), {} rules",
        spec.name,
        spec.chain_id,
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    println!("\nAvailable accounts\n==================");
    for (i, (address, balance)) in genesis.alloc.iter().enumerate() {
        println!(
            "({i}) {address} ({} ETH)",
            format_ether(*balance)
                .trim_end_matches('0')
                .trim_end_matches('.')
        );
    }
    println!("\nPrivate keys\n==================");
    for (i, signer) in signers.iter().enumerate() {
        println!("({i}) {}", signer.to_bytes());
    }
    println!("\nData directory: {}", args.datadir.display());
    println!("Chain tip: block {tip} ({tip_hash})");
    serve(node, Endpoints::from_args(&args)?, true)
}

/// `bttc node --datadir DIR` without `--dev`: serves the chain `bttc import` wrote into DIR,
/// producing no blocks.
/// A producing node whose genesis comes from a geth-style file (benchmarks shape state so).
fn run_dev_from_genesis(args: &NodeArgs, path: &std::path::Path) -> eyre::Result<()> {
    let genesis = import::load_genesis(path)?;
    let (node, spec) = open_from_genesis(args, &genesis, block_time(args.block_time)?, true)?;
    let (tip, tip_hash) = node.tip()?;
    println!(
        "bttc dev node — chain id {} from {} ({} accounts), {} rules, tip {tip} ({tip_hash})",
        spec.chain_id,
        path.display(),
        genesis.alloc.len(),
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    serve(node, Endpoints::from_args(args)?, true)
}

/// A node on the database of a chain made from a geth-style `genesis`; with `write_genesis`
/// the genesis is written into a new database (or checked), else the database must already
/// hold the chain.
fn open_from_genesis(
    args: &NodeArgs,
    genesis: &alloy_genesis::Genesis,
    block_time: Duration,
    write_genesis: bool,
) -> eyre::Result<(Arc<Node>, ChainSpec)> {
    let spec = bttc_engine::chain::import::spec_from_genesis(genesis)?;
    let db_path = args.datadir.join("chain");
    let db = ChainDb::open(
        &db_path,
        &import::chain_name(spec.chain_id),
        sync_mode(args.db_sync),
    )
    .wrap_err_with(|| format!("opening the database in {}", db_path.display()))?;
    if write_genesis {
        import::init_genesis(&db, &spec, genesis, &db_path)?;
    }
    let node = Node::open(
        spec.clone(),
        db,
        None,
        block_time,
        args.coinbase.unwrap_or_default(),
        args.exec,
    )?;
    Ok((Arc::new(node), spec))
}

fn sync_mode(sync: DbSync) -> SyncMode {
    match sync {
        DbSync::Durable => SyncMode::Durable,
        DbSync::SafeNoSync => SyncMode::SafeNoSync,
    }
}

fn block_time(seconds: f64) -> eyre::Result<Duration> {
    if !(0.0..=3600.0).contains(&seconds) {
        bail!("--block-time must be between 0 and 3600 seconds, got {seconds}");
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn run_follower(args: NodeArgs) -> eyre::Result<()> {
    let genesis_path = args.datadir.join(import::GENESIS_FILE);
    if !genesis_path.exists() {
        bail!(
            "{} has no imported chain (no {}): run `bttc import --datadir {} --genesis FILE CHAIN.rlp`, or start a dev chain with `bttc node --dev`",
            args.datadir.display(),
            import::GENESIS_FILE,
            args.datadir.display()
        );
    }
    let genesis = import::load_genesis(&genesis_path)?;
    let (node, spec) = open_from_genesis(&args, &genesis, Duration::ZERO, false)?;
    let (tip, tip_hash) = node.tip()?;
    println!(
        "bttc node — imported chain (id {}), {} rules, tip {tip} ({tip_hash}); no blocks are produced",
        spec.chain_id,
        format!("{:?}", spec.spec_id).to_lowercase()
    );
    serve(node, Endpoints::from_args(&args)?, false)
}

/// Where and how the node serves JSON-RPC.
struct Endpoints {
    http: SocketAddr,
    ws: SocketAddr,
    limits: RpcLimits,
    access: HttpAccess,
}

impl Endpoints {
    fn from_args(args: &NodeArgs) -> eyre::Result<Self> {
        let list = |v: &[String]| -> Vec<String> {
            v.iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Ok(Self {
            http: SocketAddr::new(args.http_addr, args.http_port),
            ws: SocketAddr::new(args.ws_addr, args.ws_port),
            limits: args.rpc.limits()?,
            access: HttpAccess {
                cors_origins: list(&args.http_corsdomain),
                hosts: list(&args.http_vhosts),
            },
        })
    }
}

/// Serves JSON-RPC with the ingest thread (and, when `produce`, the block producer) until
/// interrupted, terminated or stopped; then stops everything in order.
fn serve(node: Arc<Node>, endpoints: Endpoints, produce: bool) -> eyre::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Calls and log queries run on blocking threads. A few, kept warm, serve them all; an
    // unbounded pool grows a thread (and a fresh allocator heap) per concurrent request.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(2 * cores)
        .enable_all()
        .build()?;
    let server = runtime
        .block_on(start(
            node.clone(),
            endpoints.http,
            Some(endpoints.ws),
            endpoints.limits,
            &endpoints.access,
        ))
        .wrap_err("starting the JSON-RPC servers")?;
    println!("\nListening on http://{}", server.http);
    if let Some(ws) = server.ws {
        println!("Listening on ws://{ws}");
    }
    println!();

    let ingest = {
        let node = node.clone();
        std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || node.run_ingest())?
    };
    let producer = if produce {
        let node = node.clone();
        Some(
            std::thread::Builder::new()
                .name("producer".into())
                .spawn(move || {
                    let result = node.run_producer();
                    if let Err(e) = &result {
                        tracing::error!("producer stopped: {e:#}");
                        node.stop();
                    }
                    result
                })?,
        )
    } else {
        None
    };

    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted, shutting down"),
            _ = term.recv() => tracing::info!("terminated, shutting down"),
            _ = server.stopped() => {},
            _ = wait_stopped(&node) => {},
        }
        eyre::Ok(())
    })?;
    node.stop();
    server.stop();
    ingest
        .join()
        .map_err(|_| eyre::eyre!("ingest thread panicked"))?;
    if let Some(producer) = producer {
        producer
            .join()
            .map_err(|_| eyre::eyre!("producer thread panicked"))??;
    }
    let (tip, tip_hash) = node.tip()?;
    println!("stopped at block {tip} ({tip_hash})");
    Ok(())
}

/// Resolves when the node stops by itself (e.g. the producer failed).
async fn wait_stopped(node: &Node) {
    while !node.is_stopping() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
