//! `eth_subscribe` over WebSocket: `newHeads`, `logs` and `newPendingTransactions`.
//!
//! Block followers are told only the committed tip and read every block after the last one
//! they sent from storage, so a slow connection falls behind and catches up; it never skips a
//! head, and the node holds nothing per follower but a block number.

use super::{
    RpcBackend, convert,
    handlers::{EthRpc, collect_logs, header_and_hash, internal},
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
use tokio::sync::{
    broadcast::{self, error::RecvError},
    watch,
};

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

/// Why a follower stopped.
enum Stop {
    /// The connection went away or unsubscribed.
    Closed,
    /// Reading the chain failed; the subscriber is told with a closing error.
    Failed(String),
}

async fn send(sink: &SubscriptionSink, item: &impl Serialize) -> Result<(), Stop> {
    let json = serde_json::value::to_raw_value(item).map_err(|e| Stop::Failed(e.to_string()))?;
    sink.send(SubscriptionMessage::from(json))
        .await
        .map_err(|_| Stop::Closed)
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

    /// Follows the committed tip from `tip`'s current value, handing each new block range to
    /// `step` (run off the async workers) and sending what it returns, in order.
    async fn follow_blocks<T, F>(
        &self,
        sink: SubscriptionSink,
        mut tip: watch::Receiver<u64>,
        step: F,
    ) -> Result<(), Stop>
    where
        T: Serialize + Send + 'static,
        F: Fn(&Self, u64, u64) -> Result<Vec<T>, ErrorObjectOwned> + Clone + Send + 'static,
    {
        let mut next = *tip.borrow_and_update() + 1;
        loop {
            tokio::select! {
                changed = tip.changed() => if changed.is_err() { return Err(Stop::Closed) },
                _ = sink.closed() => return Err(Stop::Closed),
            }
            let tip = *tip.borrow_and_update();
            while next <= tip {
                let end = tip.min(next + FOLLOW_BATCH_BLOCKS - 1);
                let (rpc, step) = (self.clone(), step.clone());
                let items = super::on_cpu(move || step(&rpc, next, end))
                    .await
                    .and_then(|r| r)
                    .map_err(|e| {
                        Stop::Failed(format!("reading blocks {next}..={end}: {}", e.message()))
                    })?;
                for item in &items {
                    send(&sink, item).await?;
                }
                next = end + 1;
            }
        }
    }

    async fn follow_pending(
        &self,
        sink: SubscriptionSink,
        mut feed: broadcast::Receiver<B256>,
        full: bool,
    ) -> Result<(), Stop> {
        loop {
            let hash: B256 = tokio::select! {
                received = feed.recv() => match received {
                    Ok(hash) => hash,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "pending-transaction subscriber fell behind");
                        continue;
                    }
                    Err(RecvError::Closed) => return Err(Stop::Closed),
                },
                _ = sink.closed() => return Err(Stop::Closed),
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
                    .reject(super::handlers::err(
                        super::handlers::INVALID_PARAMS,
                        "logs subscription takes a filter object",
                    ))
                    .await;
                return Ok(());
            }
            (SubscriptionKind::NewHeads | SubscriptionKind::NewPendingTransactions, _) => None,
            (other, _) => {
                pending
                    .reject(super::handlers::err(
                        super::handlers::INVALID_PARAMS,
                        format!("unsupported subscription {other}: use newHeads, logs or newPendingTransactions"),
                    ))
                    .await;
                return Ok(());
            }
        };
        // Follow before accepting: the caller holds the id once accepted, and from then on
        // no block may be missed.
        let events = self.backend.events();
        let (tip, feed) = match kind {
            SubscriptionKind::NewPendingTransactions => (None, Some(events.follow_pending())),
            _ => (Some(events.follow_tip()), None),
        };
        let sink = pending.accept().await?;
        let stopped = match (kind, tip, feed) {
            (SubscriptionKind::NewHeads, Some(tip), _) => {
                self.follow_blocks(sink, tip, Self::heads).await
            }
            (SubscriptionKind::Logs, Some(tip), _) => {
                let filter = filter.unwrap_or_default();
                self.follow_blocks(sink, tip, move |rpc, from, to| {
                    let view = rpc.view()?;
                    collect_logs(&view, from, to, &filter, usize::MAX)
                })
                .await
            }
            (_, _, Some(feed)) => self.follow_pending(sink, feed, full_pending).await,
            _ => Ok(()),
        };
        if let Err(Stop::Failed(why)) = stopped {
            tracing::warn!("subscription stopped: {why}");
            return Err(why.into());
        }
        Ok(())
    }
}
