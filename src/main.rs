//! The `bttc` command line: arguments in, a call into `bttc-node` out. No protocol rule, loop or
//! lock lives here.

use alloy_primitives::Address;
use bttc_engine::exec::ExecMode;
use bttc_net::rpc::{HttpAccess, RpcLimits};
use bttc_node::{chain, delivery, devnet, import, replay};
use bttc_storage::SyncMode;
use clap::{Parser, Subcommand, ValueEnum};
use eyre::bail;
use mimalloc::MiMalloc;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

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
    Node(Box<NodeArgs>),
    /// Inspect a node's database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Run one Delivery chain validator.
    Delivery(DeliveryArgs),
    /// Start a local Delivery chain: N validator processes on loopback.
    Devnet(DevnetArgs),
    /// Import a chain: a geth-style genesis file and RLP-encoded blocks, each executed and
    /// checked (state root, receipts root, hash) before it is written.
    Import(ImportArgs),
    /// Execute one block directory of the mainnet-block data set format (block, pre-state,
    /// ancestor hashes); the last line printed is a JSON summary.
    Replay(ReplayArgs),
}

#[derive(clap::Args)]
struct DevnetArgs {
    /// Number of validators (1 to 100).
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Directory for the genesis, keys, databases and logs (kept across runs).
    #[arg(long, default_value = "./data/devnet")]
    datadir: PathBuf,
    /// RPC ports are base, base+1, ...; QUIC ports are base+100, base+101, ...
    #[arg(long = "base-port", default_value_t = 26600)]
    base_port: u16,
    /// Pause after each commit before the next height (ms). A BTTC block is final about one
    /// to two of these after its seal (its milestone rides on the next precommits).
    #[arg(long = "block-interval-ms", default_value_t = 250)]
    block_interval_ms: u64,
    /// Propose timeout of round 0 (ms); prevote and precommit timeouts are a third of it.
    #[arg(long = "timeout-propose-ms", default_value_t = 1000)]
    timeout_propose_ms: u64,
    /// Write the genesis and keys, then exit without starting validators.
    #[arg(long = "init-only")]
    init_only: bool,
    /// Run a Delivery chain alone (no BTTC chain): each validator is a `bttc delivery`.
    #[arg(long = "delivery-only")]
    delivery_only: bool,
    /// Full nodes to start beside the validators (no key; they sync and serve RPC).
    #[arg(long = "full-nodes", default_value_t = 0)]
    full_nodes: usize,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Directory of the node's databases (created if missing).
    #[arg(long)]
    datadir: PathBuf,
    /// geth-style genesis file: chain config with fork blocks, alloc, header fields.
    #[arg(long)]
    genesis: PathBuf,
    /// RLP-encoded blocks, one after another (as `geth export` writes them).
    chain: PathBuf,
    /// How blocks are executed: `parallel` (Block-STM) or `sequential`; both must reproduce
    /// every header.
    #[arg(long, default_value_t = ExecMode::Parallel)]
    exec: ExecMode,
}

#[derive(clap::Args)]
struct ReplayArgs {
    /// A block directory: `block.json[.gz]` (`eth_getBlockByNumber` with full transactions),
    /// `pre_state.json[.gz]` and, if the block uses BLOCKHASH, `block_hashes.json[.gz]`.
    dir: PathBuf,
    /// Executor: `parallel` (Block-STM) or `sequential`.
    #[arg(long, default_value_t = ExecMode::Parallel)]
    exec: ExecMode,
    /// Times this many executions and reports the median.
    #[arg(long, default_value_t = 1)]
    runs: u32,
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
    #[arg(long, conflicts_with = "validator")]
    dev: bool,
    /// Run a validator of a network: its Delivery chain and BTTC chain in one process, with
    /// the addresses the network's genesis gives it (needs --key and --network).
    #[arg(long, requires_all = ["key", "network"])]
    validator: bool,
    /// With --validator: the file holding the validator's secp256k1 key in hex.
    #[arg(long)]
    key: Option<PathBuf>,
    /// The network's genesis file (as `bttc devnet` writes it): with --validator this node
    /// validates; without, it is a full node that dials the validators the genesis lists.
    #[arg(long, conflicts_with = "dev")]
    network: Option<PathBuf>,
    /// A full node's QUIC address.
    #[arg(long, default_value = "127.0.0.1:0")]
    p2p: SocketAddr,
    /// A full node's Delivery JSON-RPC address (`delivery_status`).
    #[arg(long = "delivery.http", default_value = "127.0.0.1:0")]
    delivery_http: SocketAddr,
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
        Command::Node(args) if args.validator => run_network_validator(*args)?,
        Command::Node(args) if args.network.is_some() => run_full_node(*args)?,
        Command::Node(args) => chain::run(node_config(*args)?)?,
        Command::Db(DbCommand::Verify { datadir, chain }) => chain::verify_db(&datadir, &chain)?,
        Command::Delivery(args) => run_delivery(args)?,
        Command::Devnet(a) => devnet::run(devnet::DevnetConfig {
            validators: a.validators,
            datadir: a.datadir,
            base_port: a.base_port,
            block_interval_ms: a.block_interval_ms,
            timeout_propose_ms: a.timeout_propose_ms,
            init_only: a.init_only,
            delivery_only: a.delivery_only,
            full_nodes: a.full_nodes,
        })?,
        Command::Import(a) => import::run(import::ImportConfig {
            datadir: a.datadir,
            genesis: a.genesis,
            chain: a.chain,
            exec: a.exec,
        })?,
        Command::Replay(a) => replay::run(replay::ReplayConfig {
            dir: a.dir,
            exec: a.exec,
            runs: a.runs,
        })?,
    }
    Ok(())
}

fn sync_mode(sync: DbSync) -> SyncMode {
    match sync {
        DbSync::Durable => SyncMode::Durable,
        DbSync::SafeNoSync => SyncMode::SafeNoSync,
    }
}

fn node_config(args: NodeArgs) -> eyre::Result<chain::NodeConfig> {
    let list = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    };
    Ok(chain::NodeConfig {
        dev: args.dev,
        chain: args.chain,
        genesis: args.genesis,
        datadir: args.datadir,
        block_time_secs: args.block_time,
        sync: sync_mode(args.db_sync),
        coinbase: args.coinbase,
        exec: args.exec,
        endpoints: chain::Endpoints {
            http: SocketAddr::new(args.http_addr, args.http_port),
            ws: SocketAddr::new(args.ws_addr, args.ws_port),
            limits: args.rpc.limits()?,
            access: HttpAccess {
                cors_origins: list(&args.http_corsdomain),
                hosts: list(&args.http_vhosts),
            },
        },
    })
}

/// `bttc node --validator`: one validator of a network until Ctrl-C or SIGTERM.
fn run_network_validator(args: NodeArgs) -> eyre::Result<()> {
    let (Some(key), Some(genesis)) = (args.key.clone(), args.network.clone()) else {
        bail!("--validator needs --key FILE and --network FILE");
    };
    let datadir = args.datadir.clone();
    let sync = sync_mode(args.db_sync);
    let exec = args.exec;
    let endpoints = node_config(args)?.endpoints;
    bttc_node::network::run_validator_node(bttc_node::network::ValidatorNodeConfig {
        datadir,
        genesis,
        key,
        sync,
        exec,
        limits: endpoints.limits,
        access: endpoints.access,
    })?;
    Ok(())
}

/// `bttc node --network FILE`: a full node until Ctrl-C or SIGTERM.
fn run_full_node(args: NodeArgs) -> eyre::Result<()> {
    let Some(genesis) = args.network.clone() else {
        bail!("a full node needs --network FILE");
    };
    let (datadir, p2p, delivery_http) = (args.datadir.clone(), args.p2p, args.delivery_http);
    let (sync, exec) = (sync_mode(args.db_sync), args.exec);
    let endpoints = node_config(args)?.endpoints;
    bttc_node::network::run_full_node(bttc_node::network::FullNodeConfig {
        datadir,
        genesis,
        sync,
        exec,
        endpoints,
        delivery_http,
        p2p,
    })?;
    Ok(())
}

/// `bttc delivery`: one validator until Ctrl-C or SIGTERM.
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
                .ok_or(bttc_node::NodeError::NotAValidator(me))?
                .rpc
        }
    };
    delivery::run(delivery::ValidatorConfig {
        datadir: args.datadir,
        genesis,
        key,
        sync: sync_mode(args.db_sync),
        http,
        bttc_endpoints: None,
        exec: ExecMode::Parallel,
        full_node_p2p: None,
    })?;
    Ok(())
}
