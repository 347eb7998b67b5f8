//! Ethereum JSON-RPC over HTTP (jsonrpsee): `eth_*`, `net_*`, `web3_*` with geth-shaped answers.

mod bor;
pub mod convert;
mod debug;
pub mod delivery;
mod eth;
pub mod events;
pub mod filter;
mod handlers;
mod net;
pub mod pubsub;
mod txpool;
mod web3;

pub use bor::{BorApiServer, BorValidator};
pub use debug::DebugApiServer;
pub use eth::EthApiServer;
pub use handlers::EthRpc;
pub use net::NetApiServer;
pub use txpool::TxpoolApiServer;
pub use web3::Web3ApiServer;

use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::{
    chain::{BlockReader, mempool::PoolError, spec::ChainSpec},
    exec::{StateError, StateReader},
    primitives::RecoveredTx,
};
use http::{HeaderValue, Method, header};
use jsonrpsee::{
    RpcModule,
    server::{
        BatchRequestConfig, Server, ServerConfig, ServerHandle, middleware::http::HostFilterLayer,
    },
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};
use tower_http::cors::{self, CorsLayer};

/// Runs CPU-bound work (EVM calls, log scans) on a pool of warm threads, one per core, off
/// the async workers: cheap reads stay responsive while calls run, and no thread is started
/// per request. A panic in `work` becomes an internal error.
pub(crate) async fn on_cpu<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, jsonrpsee::types::ErrorObjectOwned> {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("rpc-cpu-{i}"))
            .build()
            .expect("starting the RPC CPU pool")
    });
    let (done, result) = tokio::sync::oneshot::channel();
    pool.spawn(move || {
        // The caller gave up (disconnected, timed out): skip the work.
        if done.is_closed() {
            return;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = done.send(outcome);
    });
    match result.await {
        Ok(Ok(value)) => Ok(value),
        _ => Err(handlers::internal("the request's work failed")),
    }
}

/// Why a node could not answer a read.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("storage: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error(transparent)]
    State(#[from] StateError),
}

impl BackendError {
    /// A store's error, kept as the source.
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage(Box::new(e))
    }
}

/// Why a raw transaction was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("transaction does not decode: {0}")]
    Decode(#[from] alloy_eips::eip2718::Eip2718Error),
    #[error("node is busy: ingest queue is full, try again")]
    Busy,
    #[error("node is shutting down")]
    Closed,
    #[error(transparent)]
    State(#[from] StateError),
}

/// What the RPC server needs from the node.
pub trait RpcBackend: Send + Sync + 'static {
    /// A consistent read snapshot of the latest committed block and state.
    type View<'a>: StateReader + BlockReader + bttc_engine::merkle::trie::TrieReader
    where
        Self: 'a;

    fn view(&self) -> Result<Self::View<'_>, StateError>;
    fn spec(&self) -> &ChainSpec;
    /// The committed tip and pooled transactions, for subscriptions and filters.
    fn events(&self) -> &events::ChainEvents;
    /// Validates and pools a transaction (sender recovery runs in the node's pipeline).
    fn submit(&self, raw: Bytes) -> impl Future<Output = Result<B256, SubmitError>> + Send;
    fn pool_tx(&self, hash: &B256) -> Option<Arc<RecoveredTx>>;
    /// The next nonce of `address` counting its pooled transactions, read consistently with
    /// the latest committed state.
    fn pending_nonce(&self, address: &Address) -> Result<u64, StateError>;
    /// Pooled transactions: (pending, queued).
    fn pool_counts(&self) -> (usize, usize);
    /// The last milestone this node holds (its block is final), on a chain that has them.
    fn milestone(&self) -> Option<bttc_engine::delivery::milestone::Milestone> {
        None
    }
    /// Pooled transactions by sender and nonce: (pending, queued).
    fn pool_content(
        &self,
    ) -> (
        bttc_engine::chain::mempool::PoolContent,
        bttc_engine::chain::mempool::PoolContent,
    );
}

/// Bounds of the JSON-RPC server; each one refused with a clear error.
#[derive(Debug, Clone, Copy)]
pub struct RpcLimits {
    pub request_bytes_max: u32,
    pub response_bytes_max: u32,
    pub connections_max: u32,
    pub batch_len_max: u32,
    /// Gas of `eth_call`, `eth_estimateGas` and `eth_createAccessList`.
    pub gas_cap: u64,
    /// Blocks one `eth_getLogs` may span.
    pub logs_block_range_max: u64,
    /// Logs one `eth_getLogs` may return.
    pub logs_results_max: usize,
    /// Live `eth_subscribe` subscriptions on one WebSocket connection.
    pub subscriptions_per_connection_max: u32,
    /// Installed filters, all callers together.
    pub filters_max: usize,
    /// A filter not polled for this long is uninstalled.
    pub filter_idle: Duration,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            request_bytes_max: 16 << 20,
            response_bytes_max: 128 << 20,
            connections_max: 2_000,
            batch_len_max: 1_000,
            gas_cap: handlers::RPC_GAS_CAP,
            logs_block_range_max: handlers::LOGS_BLOCK_RANGE_MAX,
            logs_results_max: handlers::LOGS_RESULT_MAX,
            subscriptions_per_connection_max: 1_024,
            filters_max: 10_000,
            filter_idle: Duration::from_secs(300),
        }
    }
}

/// An HTTP JSON-RPC server bound to `addr` with `limits`, not yet serving.
pub(crate) async fn bind(addr: SocketAddr, limits: RpcLimits) -> std::io::Result<Server> {
    let config = ServerConfig::builder()
        .max_request_body_size(limits.request_bytes_max)
        .max_response_body_size(limits.response_bytes_max)
        .max_connections(limits.connections_max)
        .set_batch_request_config(BatchRequestConfig::Limit(limits.batch_len_max))
        .build();
    Server::builder().set_config(config).build(addr).await
}

/// Who may call over HTTP: browser origins (CORS) and `Host` names. `"*"` allows any.
#[derive(Debug, Clone)]
pub struct HttpAccess {
    pub cors_origins: Vec<String>,
    pub hosts: Vec<String>,
}

impl Default for HttpAccess {
    fn default() -> Self {
        Self {
            cors_origins: vec!["*".into()],
            hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
        }
    }
}

/// Why the servers did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid CORS origin {0:?}")]
    Origin(String),
    #[error("invalid host {0:?} in the host allow-list")]
    Host(String),
}

/// The running JSON-RPC servers; they stop when this is dropped or [`RpcServers::stop`]ped.
pub struct RpcServers {
    pub http: SocketAddr,
    pub ws: Option<SocketAddr>,
    handles: Vec<ServerHandle>,
}

impl RpcServers {
    pub fn stop(&self) {
        for handle in &self.handles {
            let _ = handle.stop();
        }
    }

    /// Resolves when the servers stop.
    pub async fn stopped(&self) {
        for handle in &self.handles {
            handle.clone().stopped().await;
        }
    }
}

fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, StartError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE]);
    if origins.iter().any(|o| o == "*") {
        return Ok(Some(layer.allow_origin(cors::Any)));
    }
    let parsed = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| StartError::Origin(o.clone())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(layer.allow_origin(parsed)))
}

fn host_layer(hosts: &[String]) -> Result<HostFilterLayer, StartError> {
    if hosts.iter().any(|h| h == "*") {
        return Ok(HostFilterLayer::disable());
    }
    // A name without a port allows it on any port, as geth's --http.vhosts does.
    let with_ports = hosts.iter().map(|h| {
        let bracketed_v6 = h.starts_with('[') && h.ends_with(']');
        if bracketed_v6 || !h.contains(':') {
            format!("{h}:*")
        } else {
            h.clone()
        }
    });
    HostFilterLayer::new(with_ports).map_err(|_| StartError::Host(hosts.join(",")))
}

/// Every method, on both transports; subscriptions only answer over WebSocket.
fn methods<B: RpcBackend>(rpc: EthRpc<B>) -> RpcModule<()> {
    let mut module = RpcModule::new(());
    let parts: [jsonrpsee::Methods; 8] = [
        EthApiServer::into_rpc(rpc.clone()).into(),
        filter::EthFilterApiServer::into_rpc(rpc.clone()).into(),
        pubsub::EthPubSubApiServer::into_rpc(rpc.clone()).into(),
        BorApiServer::into_rpc(rpc.clone()).into(),
        DebugApiServer::into_rpc(rpc.clone()).into(),
        NetApiServer::into_rpc(rpc.clone()).into(),
        TxpoolApiServer::into_rpc(rpc.clone()).into(),
        Web3ApiServer::into_rpc(rpc).into(),
    ];
    for part in parts {
        module.merge(part).expect("unique method names");
    }
    module
}

/// Starts JSON-RPC over HTTP on `http` and, when given, over WebSocket on `ws`; both serve
/// the same methods, state and filters.
pub async fn start<B: RpcBackend>(
    backend: Arc<B>,
    http: SocketAddr,
    ws: Option<SocketAddr>,
    limits: RpcLimits,
    access: &HttpAccess,
) -> Result<RpcServers, StartError> {
    let rpc = EthRpc::new(backend, limits);
    filter::Filters::spawn_sweeper(&rpc.filters);
    let module = methods(rpc);
    let config = |ws: bool| {
        let builder = ServerConfig::builder()
            .max_request_body_size(limits.request_bytes_max)
            .max_response_body_size(limits.response_bytes_max)
            .max_connections(limits.connections_max)
            .max_subscriptions_per_connection(limits.subscriptions_per_connection_max)
            .set_batch_request_config(BatchRequestConfig::Limit(limits.batch_len_max))
            .set_id_provider(pubsub::HexIds);
        if ws {
            builder.ws_only().build()
        } else {
            builder.http_only().build()
        }
    };
    let bind_error = |addr| move |source| StartError::Bind { addr, source };
    let http_middleware = tower::ServiceBuilder::new()
        .option_layer(cors_layer(&access.cors_origins)?)
        .layer(host_layer(&access.hosts)?);
    let http_server = Server::builder()
        .set_config(config(false))
        .set_http_middleware(http_middleware)
        .build(http)
        .await
        .map_err(bind_error(http))?;
    let http_local = http_server.local_addr().map_err(bind_error(http))?;
    let mut handles = vec![http_server.start(module.clone())];
    let mut ws_local = None;
    if let Some(ws) = ws {
        let ws_server = Server::builder()
            .set_config(config(true))
            .set_http_middleware(tower::ServiceBuilder::new().layer(host_layer(&access.hosts)?))
            .build(ws)
            .await
            .map_err(bind_error(ws))?;
        ws_local = Some(ws_server.local_addr().map_err(bind_error(ws))?);
        handles.push(ws_server.start(module));
    }
    Ok(RpcServers {
        http: http_local,
        ws: ws_local,
        handles,
    })
}
