//! Ethereum JSON-RPC over HTTP (jsonrpsee): `eth_*`, `net_*`, `web3_*` with geth-shaped answers.

pub mod convert;
pub mod delivery;
mod eth;

pub use eth::{
    BorApiServer, DebugApiServer, EthApiServer, EthRpc, NetApiServer, TxpoolApiServer,
    Web3ApiServer,
};

use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::{
    chain::{BlockReader, mempool::PoolError, spec::ChainSpec},
    exec::StateReader,
    primitives::RecoveredTx,
};
use jsonrpsee::{
    RpcModule,
    server::{BatchRequestConfig, Server, ServerConfig, ServerHandle},
};
use std::{future::Future, net::SocketAddr, sync::Arc};

/// Why a raw transaction was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("{0}")]
    Pool(#[from] PoolError),
    #[error("transaction does not decode: {0}")]
    Decode(String),
    #[error("node is busy: ingest queue is full, try again")]
    Busy,
    #[error("node is shutting down")]
    Closed,
    #[error("{0}")]
    Internal(String),
}

/// What the RPC server needs from the node.
pub trait RpcBackend: Send + Sync + 'static {
    /// A consistent read snapshot of the latest committed block and state.
    type View<'a>: StateReader + BlockReader + bttc_engine::merkle::trie::TrieReader
    where
        Self: 'a;

    fn view(&self) -> Result<Self::View<'_>, String>;
    fn spec(&self) -> &ChainSpec;
    /// Validates and pools a transaction (sender recovery runs in the node's pipeline).
    fn submit(&self, raw: Bytes) -> impl Future<Output = Result<B256, SubmitError>> + Send;
    fn pool_tx(&self, hash: &B256) -> Option<Arc<RecoveredTx>>;
    /// The next nonce of `address` counting its pooled transactions, read consistently with
    /// the latest committed state.
    fn pending_nonce(&self, address: &Address) -> Result<u64, String>;
    /// Pooled transactions: (pending, queued).
    fn pool_counts(&self) -> (usize, usize);
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
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            request_bytes_max: 16 << 20,
            response_bytes_max: 128 << 20,
            connections_max: 2_000,
            batch_len_max: 1_000,
            gas_cap: eth::RPC_GAS_CAP,
            logs_block_range_max: eth::LOGS_BLOCK_RANGE_MAX,
            logs_results_max: eth::LOGS_RESULT_MAX,
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

/// Starts the HTTP JSON-RPC server; it runs until the handle is stopped or dropped.
pub async fn start_http<B: RpcBackend>(
    backend: Arc<B>,
    addr: SocketAddr,
    limits: RpcLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server = bind(addr, limits).await?;
    let local = server.local_addr()?;
    let rpc = EthRpc::new(backend, limits);
    let mut module = RpcModule::new(());
    module
        .merge(EthApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    module
        .merge(BorApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    module
        .merge(DebugApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    module
        .merge(NetApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    module
        .merge(TxpoolApiServer::into_rpc(rpc.clone()))
        .expect("unique method names");
    module
        .merge(Web3ApiServer::into_rpc(rpc))
        .expect("unique method names");
    Ok((local, server.start(module)))
}
