//! `eth_subscribe` over WebSocket: `newHeads`, `logs` and `newPendingTransactions`.
//!
//! Block followers are told only the committed tip and read every block after the last one
//! they sent from storage, so a slow connection falls behind and catches up; it never skips a
//! head, and the node holds nothing per follower but a block number.

use super::{
    RpcBackend, convert,
    eth::{EthRpc, collect_logs, header_and_hash, internal},
};
use alloy_primitives::B256;
use alloy_rpc_types_eth::{
    Filter,
    pubsub::{Params, SubscriptionKind},
};
use jsonrpsee::{
    PendingSubscriptionSink, SubscriptionMessage, SubscriptionSink,
    core::{SubscriptionResult, async_trait, traits::IdProvider},
    proc_macros::rpc,
    types::{ErrorObjectOwned, SubscriptionId},
};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

/// Blocks read from storage per step of a follower that is behind.
const FOLLOW_BATCH_BLOCKS: u64 = 32;

#[rpc(server, namespace = "eth")]
pub trait EthPubSubApi {
    #[subscription(
        name = "subscribe" => "subscription",
        unsubscribe = "unsubscribe",
        item = serde_json::Value
    )]
    async fn subscribe(&self, kind: SubscriptionKind, params: Option<Params>)
    -> SubscriptionResult;
}

/// Subscription ids as geth writes them: a random 128-bit quantity in hex.
#[derive(Debug, Clone, Copy)]
pub struct HexIds;

impl IdProvider for HexIds {
    fn next_id(&self) -> SubscriptionId<'static> {
        SubscriptionId::Str(format!("{:#x}", secp256k1::rand::random::<u128>()).into())
    }
}

/// The connection went away or unsubscribed.
struct Closed;

async fn send(sink: &SubscriptionSink, item: &impl Serialize) -> Result<(), Closed> {
    let json = serde_json::value::to_raw_value(item).map_err(|_| Closed)?;
    sink.send(SubscriptionMessage::from(json))
        .await
        .map_err(|_| Closed)
}

impl<B: RpcBackend> EthRpc<B> {
    /// Blocks `from..=to` as `newHeads` items.
    fn heads(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<alloy_rpc_types_eth::Header>, ErrorObjectOwned> {
        let view = self.view()?;
        let mut out = Vec::new();
        for number in from..=to {
            let (header, hash) = header_and_hash(&view, number)?
                .ok_or_else(|| internal(format!("block {number} missing")))?;
            out.push(alloy_rpc_types_eth::Header::from_consensus(
                alloy_consensus::Sealed::new_unchecked(header, hash),
                None,
                None,
            ));
        }
        Ok(out)
    }

    /// Follows the committed tip, handing each new block range to `step` in order.
    async fn follow_blocks<T, F>(&self, sink: SubscriptionSink, step: F) -> Result<(), Closed>
    where
        T: Serialize,
        F: Fn(&Self, u64, u64) -> Result<Vec<T>, ErrorObjectOwned>,
    {
        let mut tip = self.backend.events().follow_tip();
        let mut next = *tip.borrow_and_update() + 1;
        loop {
            tokio::select! {
                changed = tip.changed() => if changed.is_err() { return Err(Closed) },
                _ = sink.closed() => return Err(Closed),
            }
            let tip = *tip.borrow_and_update();
            while next <= tip {
                let end = tip.min(next + FOLLOW_BATCH_BLOCKS - 1);
                let items = match step(self, next, end) {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::warn!(
                            from = next,
                            to = end,
                            "subscription stopped: {}",
                            e.message()
                        );
                        return Err(Closed);
                    }
                };
                for item in &items {
                    send(&sink, item).await?;
                }
                next = end + 1;
            }
        }
    }

    async fn follow_pending(&self, sink: SubscriptionSink, full: bool) -> Result<(), Closed> {
        let mut feed = self.backend.events().follow_pending();
        loop {
            let hash: B256 = tokio::select! {
                received = feed.recv() => match received {
                    Ok(hash) => hash,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "pending-transaction subscriber fell behind");
                        continue;
                    }
                    Err(RecvError::Closed) => return Err(Closed),
                },
                _ = sink.closed() => return Err(Closed),
            };
            if full {
                // Mined or replaced since it was announced: nothing to show.
                if let Some(tx) = self.backend.pool_tx(&hash) {
                    send(&sink, &convert::rpc_transaction(&tx, None)).await?;
                }
            } else {
                send(&sink, &hash).await?;
            }
        }
    }
}

#[async_trait]
impl<B: RpcBackend> EthPubSubApiServer for EthRpc<B> {
    async fn subscribe(
        &self,
        pending: PendingSubscriptionSink,
        kind: SubscriptionKind,
        params: Option<Params>,
    ) -> SubscriptionResult {
        let params = params.unwrap_or(Params::None);
        let full_pending = matches!(params, Params::Bool(true));
        let filter = match (&kind, params) {
            (SubscriptionKind::Logs, Params::Logs(filter)) => Some(*filter),
            (SubscriptionKind::Logs, Params::None) => Some(Filter::default()),
            (SubscriptionKind::Logs, Params::Bool(_)) => {
                pending
                    .reject(super::eth::err(
                        super::eth::INVALID_PARAMS,
                        "logs subscription takes a filter object",
                    ))
                    .await;
                return Ok(());
            }
            (SubscriptionKind::NewHeads | SubscriptionKind::NewPendingTransactions, _) => None,
            (other, _) => {
                pending
                    .reject(super::eth::err(
                        super::eth::INVALID_PARAMS,
                        format!("unsupported subscription {other}: use newHeads, logs or newPendingTransactions"),
                    ))
                    .await;
                return Ok(());
            }
        };
        let sink = pending.accept().await?;
        let _ = match kind {
            SubscriptionKind::NewHeads => self.follow_blocks(sink, Self::heads).await,
            SubscriptionKind::Logs => {
                let filter = filter.unwrap_or_default();
                self.follow_blocks(sink, move |rpc, from, to| {
                    let view = rpc.view()?;
                    collect_logs(&view, from, to, &filter, usize::MAX)
                })
                .await
            }
            _ => self.follow_pending(sink, full_pending).await,
        };
        Ok(())
    }
}
