//! The `txpool_*` methods.

use super::{RpcBackend, convert, handlers::*};
use alloy_primitives::U64;
use alloy_rpc_types_eth::Transaction;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
#[rpc(server, namespace = "txpool")]
pub trait TxpoolApi {
    /// geth's `txpool_status`: counts of pending and queued transactions.
    #[method(name = "status")]
    fn status(&self) -> RpcResult<TxpoolStatus>;
    /// geth's `txpool_content`: pending and queued transactions by sender and nonce.
    #[method(name = "content")]
    fn content(&self) -> RpcResult<TxpoolContent>;
}

/// Transactions by checksummed sender address, then by nonce (decimal), as geth writes them.
pub type TxpoolSide =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, Transaction>>;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TxpoolContent {
    pub pending: TxpoolSide,
    pub queued: TxpoolSide,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TxpoolStatus {
    pub pending: U64,
    pub queued: U64,
}

impl<B: RpcBackend> TxpoolApiServer for EthRpc<B> {
    fn content(&self) -> RpcResult<TxpoolContent> {
        let (pending, queued) = self.backend.pool_content();
        let side = |content: bttc_engine::chain::mempool::PoolContent| -> TxpoolSide {
            content
                .into_iter()
                .map(|(sender, txs)| {
                    (
                        sender.to_checksum(None),
                        txs.into_iter()
                            .map(|(nonce, tx)| {
                                (nonce.to_string(), convert::rpc_transaction(&tx, None))
                            })
                            .collect(),
                    )
                })
                .collect()
        };
        Ok(TxpoolContent {
            pending: side(pending),
            queued: side(queued),
        })
    }

    fn status(&self) -> RpcResult<TxpoolStatus> {
        let (pending, queued) = self.backend.pool_counts();
        Ok(TxpoolStatus {
            pending: U64::from(pending),
            queued: U64::from(queued),
        })
    }
}
