//! The Delivery node's JSON-RPC: `delivery_status`, `delivery_getBlock`, `delivery_sendTx`.

use super::{BackendError, RpcLimits};
use alloy_primitives::{Address, B256, Bytes};
use bttc_engine::{
    delivery::{
        block::{Block, CommitVote, TxKind},
        host::SubmitTxError,
    },
    primitives::DeliveryHeight,
};
use jsonrpsee::{
    RpcModule,
    core::RpcResult,
    proc_macros::rpc,
    server::ServerHandle,
    types::{ErrorObject, ErrorObjectOwned},
};
use serde::Serialize;
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc};

const INVALID_PARAMS: i32 = -32602;
const SERVER: i32 = -32000;

/// Why a transaction was not queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliverySubmitError {
    #[error(transparent)]
    Tx(#[from] SubmitTxError),
    #[error("the validator is shutting down")]
    Closed,
    #[error("the validator is busy: try again")]
    Busy,
}

/// What the Delivery RPC needs from the node.
pub trait DeliveryBackend: Send + Sync + 'static {
    /// The node's live status (a JSON object).
    fn status(&self) -> Value;
    /// A committed block with the commit that decided it.
    fn block(
        &self,
        height: DeliveryHeight,
    ) -> Result<Option<(Block, Vec<CommitVote>)>, BackendError>;
    /// One entry of the application's key-value state.
    fn value(&self, key: &Bytes) -> Result<Option<Bytes>, BackendError>;
    /// Signs a transaction with the node's validator key and queues it for a proposal.
    fn submit(
        &self,
        kind: TxKind,
        payload: Bytes,
    ) -> impl std::future::Future<Output = Result<B256, DeliverySubmitError>> + Send;
}

#[rpc(server, namespace = "delivery")]
pub trait DeliveryApi {
    #[method(name = "status")]
    fn status(&self) -> RpcResult<Value>;
    #[method(name = "getBlock")]
    fn get_block(&self, height: DeliveryHeight) -> RpcResult<Option<Value>>;
    /// The value of `key` in the application state (`side/<tx hash>` holds side outcomes).
    #[method(name = "getValue")]
    fn get_value(&self, key: Bytes) -> RpcResult<Option<Bytes>>;
    /// `kind` is `"set"` or `"side"`; `payload` as in the transaction format.
    #[method(name = "sendTx")]
    async fn send_tx(&self, kind: String, payload: Bytes) -> RpcResult<B256>;
}

struct DeliveryRpc<B> {
    backend: Arc<B>,
}

fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), None::<()>)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VoteJson {
    kind: &'static str,
    height: DeliveryHeight,
    round: u32,
    value: Option<B256>,
    validator: Address,
    signature: Bytes,
    side_results: Vec<Value>,
}

fn commit_vote_json(c: &CommitVote) -> VoteJson {
    let v = &c.vote.vote;
    VoteJson {
        kind: "precommit",
        height: v.height,
        round: v.round,
        value: v.value,
        validator: v.validator,
        signature: Bytes::copy_from_slice(&c.vote.signature),
        side_results: c
            .side
            .iter()
            .map(|e| {
                json!({
                    "txHash": e.tx_hash,
                    "result": e.result as u8,
                    "signature": e.signature.map(|s| Bytes::copy_from_slice(&s)),
                })
            })
            .collect(),
    }
}

/// A block and its commit as JSON.
pub fn block_json(block: &Block, commit: &[CommitVote]) -> Value {
    let h = &block.header;
    json!({
        "hash": block.hash(),
        "header": {
            "height": h.height,
            "timeMs": h.time_ms,
            "proposer": h.proposer,
            "prevHash": h.prev_hash,
            "appHash": h.app_hash,
            "validatorsHash": h.validators_hash,
            "txsHash": h.txs_hash,
            "lastCommitHash": h.last_commit_hash,
        },
        "txs": block.txs.iter().map(|t| json!({
            "hash": t.hash(),
            "kind": match t.kind { TxKind::Set => "set", TxKind::Side => "side", TxKind::Due => "due" },
            "nonce": t.nonce,
            "payload": t.payload,
        })).collect::<Vec<_>>(),
        "lastCommit": block.last_commit.iter().map(commit_vote_json).collect::<Vec<_>>(),
        "commit": commit.iter().map(commit_vote_json).collect::<Vec<_>>(),
    })
}

#[jsonrpsee::core::async_trait]
impl<B: DeliveryBackend> DeliveryApiServer for DeliveryRpc<B> {
    fn status(&self) -> RpcResult<Value> {
        Ok(self.backend.status())
    }

    fn get_block(&self, height: DeliveryHeight) -> RpcResult<Option<Value>> {
        let found = self
            .backend
            .block(height)
            .map_err(|e| err(SERVER, e.to_string()))?;
        Ok(found.map(|(block, commit)| block_json(&block, &commit)))
    }

    fn get_value(&self, key: Bytes) -> RpcResult<Option<Bytes>> {
        self.backend
            .value(&key)
            .map_err(|e| err(SERVER, e.to_string()))
    }

    async fn send_tx(&self, kind: String, payload: Bytes) -> RpcResult<B256> {
        let kind = match kind.as_str() {
            "set" => TxKind::Set,
            "side" => TxKind::Side,
            other => {
                return Err(err(
                    INVALID_PARAMS,
                    format!("unknown transaction kind {other:?}; use \"set\" or \"side\""),
                ));
            }
        };
        self.backend
            .submit(kind, payload)
            .await
            .map_err(|e| err(INVALID_PARAMS, e.to_string()))
    }
}

/// Starts the Delivery node's HTTP JSON-RPC server.
pub async fn start_delivery_http<B: DeliveryBackend>(
    backend: Arc<B>,
    addr: SocketAddr,
    limits: RpcLimits,
) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server = super::bind(addr, limits).await?;
    let local = server.local_addr()?;
    let mut module = RpcModule::new(());
    module
        .merge(DeliveryApiServer::into_rpc(DeliveryRpc { backend }))
        .expect("unique method names");
    Ok((local, server.start(module)))
}
