//! Polled filters (`eth_newFilter`, `eth_newBlockFilter`, `eth_newPendingTransactionFilter`,
//! `eth_getFilterChanges`, `eth_getFilterLogs`, `eth_uninstallFilter`); idle ones expire.

use super::{
    RpcBackend,
    handlers::{
        EthRpc, INVALID_PARAMS, LIMIT_EXCEEDED, SERVER, collect_logs_in_steps, err, filter_range,
        internal,
    },
};
use alloy_primitives::{B256, U128};
use alloy_rpc_types_eth::{BlockNumberOrTag, Filter, FilterBlockOption, Log};
use bttc_engine::chain::BlockReader;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use parking_lot::Mutex;
use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::{Duration, Instant},
};
use tokio::sync::broadcast::{self, error::TryRecvError};

/// What one poll of a filter returns: block or transaction hashes, or logs.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum FilterChanges {
    Hashes(Vec<B256>),
    Logs(Vec<Log>),
}

#[rpc(server, namespace = "eth")]
pub trait EthFilterApi {
    #[method(name = "newFilter")]
    fn new_filter(&self, filter: Filter) -> RpcResult<U128>;
    #[method(name = "newBlockFilter")]
    fn new_block_filter(&self) -> RpcResult<U128>;
    #[method(name = "newPendingTransactionFilter")]
    fn new_pending_filter(&self) -> RpcResult<U128>;
    /// What happened since the last poll (since installation, on the first).
    #[method(name = "getFilterChanges", blocking)]
    fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges>;
    /// Every log a log filter matches, as `eth_getLogs` would answer it.
    #[method(name = "getFilterLogs", blocking)]
    fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>>;
    #[method(name = "uninstallFilter")]
    fn uninstall_filter(&self, id: U128) -> RpcResult<bool>;
}

enum Kind {
    /// Hashes of blocks from `next` on.
    Blocks { next: u64 },
    /// Matching logs of blocks from `next` on.
    Logs { filter: Box<Filter>, next: u64 },
    /// Hashes of transactions pooled since the last poll.
    Pending { feed: broadcast::Receiver<B256> },
}

struct Installed {
    kind: Kind,
    polled: Instant,
}

/// The installed filters, bounded in number; each expires after `idle` without a poll.
pub struct Filters {
    installed: Mutex<HashMap<u128, Arc<Mutex<Installed>>>>,
    max: usize,
    idle: Duration,
}

impl Filters {
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            installed: Mutex::new(HashMap::new()),
            max,
            idle,
        }
    }

    fn install(&self, kind: Kind) -> RpcResult<U128> {
        let now = Instant::now();
        let mut installed = self.installed.lock();
        if installed.len() >= self.max {
            Self::expire_locked(&mut installed, self.idle, now);
            if installed.len() >= self.max {
                return Err(err(
                    LIMIT_EXCEEDED,
                    format!(
                        "too many filters installed (limit {}): uninstall some or let them expire",
                        self.max
                    ),
                ));
            }
        }
        let id = loop {
            let id = secp256k1::rand::random::<u128>();
            if id != 0 && !installed.contains_key(&id) {
                break id;
            }
        };
        installed.insert(id, Arc::new(Mutex::new(Installed { kind, polled: now })));
        Ok(U128::from(id))
    }

    fn get(&self, id: U128) -> RpcResult<Arc<Mutex<Installed>>> {
        self.installed
            .lock()
            .get(&id.to::<u128>())
            .cloned()
            .ok_or_else(|| err(SERVER, "filter not found"))
    }

    fn remove(&self, id: U128) -> bool {
        self.installed.lock().remove(&id.to::<u128>()).is_some()
    }

    /// Drops the filters not polled for `idle`.
    pub fn expire(&self, now: Instant) {
        Self::expire_locked(&mut self.installed.lock(), self.idle, now);
    }

    fn expire_locked(
        installed: &mut HashMap<u128, Arc<Mutex<Installed>>>,
        idle: Duration,
        now: Instant,
    ) {
        // A filter being polled right now is locked, and not idle.
        installed.retain(|_, f| {
            f.try_lock()
                .is_none_or(|f| now.saturating_duration_since(f.polled) < idle)
        });
    }

    /// Expires idle filters every quarter of the idle time until `filters` is dropped.
    pub fn spawn_sweeper(filters: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(filters);
        let period = (filters.idle / 4).max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(filters) = weak.upgrade() else {
                    return;
                };
                filters.expire(Instant::now());
            }
        });
    }
}

/// The first block a filter installed at `tip` reports: the next one.
fn first_new_block(tip: u64) -> u64 {
    tip + 1
}

/// The last block a log filter can report: its numbered `toBlock`, else no bound.
fn filter_end(filter: &Filter) -> u64 {
    match filter.block_option {
        FilterBlockOption::Range {
            to_block: Some(BlockNumberOrTag::Number(n)),
            ..
        } => n,
        FilterBlockOption::Range {
            to_block: Some(BlockNumberOrTag::Earliest),
            ..
        } => 0,
        FilterBlockOption::AtBlockHash(_) => 0,
        _ => u64::MAX,
    }
}

/// The first block a log filter can report: its numbered `fromBlock`, else none.
fn filter_start(filter: &Filter) -> u64 {
    match filter.block_option {
        FilterBlockOption::Range {
            from_block: Some(BlockNumberOrTag::Number(n)),
            ..
        } => n,
        _ => 0,
    }
}

impl<B: RpcBackend> EthRpc<B> {
    fn committed_tip(&self) -> RpcResult<u64> {
        let view = self.view()?;
        Self::tip(&view)
    }
}

impl<B: RpcBackend> EthFilterApiServer for EthRpc<B> {
    fn new_filter(&self, filter: Filter) -> RpcResult<U128> {
        let view = self.view()?;
        let tip = Self::tip(&view)?;
        // Refuse what `eth_getLogs` would refuse outright (a reversed range, an unknown hash),
        // and a numbered range reversed beyond the tip, which would never report anything.
        filter_range(&view, &filter, tip)?;
        if let FilterBlockOption::Range {
            from_block: Some(BlockNumberOrTag::Number(from)),
            to_block: Some(BlockNumberOrTag::Number(to)),
        } = filter.block_option
            && from > to
        {
            return Err(err(
                INVALID_PARAMS,
                format!("invalid block range: from {from} is after to {to}"),
            ));
        }
        drop(view);
        self.filters.install(Kind::Logs {
            filter: Box::new(filter),
            next: first_new_block(tip),
        })
    }

    fn new_block_filter(&self) -> RpcResult<U128> {
        let tip = self.committed_tip()?;
        self.filters.install(Kind::Blocks {
            next: first_new_block(tip),
        })
    }

    fn new_pending_filter(&self) -> RpcResult<U128> {
        self.filters.install(Kind::Pending {
            feed: self.backend.events().follow_pending(),
        })
    }

    fn filter_changes(&self, id: U128) -> RpcResult<FilterChanges> {
        let installed = self.filters.get(id)?;
        let mut installed = installed.lock();
        installed.polled = Instant::now();
        // One poll covers at most the eth_getLogs range; the rest waits for the next poll.
        let span = self.limits.logs_block_range_max;
        match &mut installed.kind {
            Kind::Blocks { next } => {
                let view = self.view()?;
                let tip = Self::tip(&view)?;
                let end = tip.min(next.saturating_add(span - 1));
                let mut hashes = Vec::new();
                for number in *next..=end {
                    hashes.push(
                        view.canonical_hash(number)
                            .map_err(internal)?
                            .ok_or_else(|| internal(format!("hash {number} missing")))?,
                    );
                }
                *next = (*next).max(end + 1);
                Ok(FilterChanges::Hashes(hashes))
            }
            Kind::Logs { filter, next } => {
                let view = self.view()?;
                let tip = Self::tip(&view)?;
                let from = (*next).max(filter_start(filter));
                let end = tip
                    .min(filter_end(filter))
                    .min(from.saturating_add(span - 1));
                if from > end {
                    // No new block yet, or the filter's range is behind us.
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                // Past the result limit a poll stops at a block's end; the next one goes on
                // from there, so a busy filter is never stuck.
                let (logs, last) =
                    collect_logs_in_steps(&view, from, end, filter, self.limits.logs_results_max)?;
                *next = last + 1;
                Ok(FilterChanges::Logs(logs))
            }
            Kind::Pending { feed } => {
                let mut hashes = Vec::new();
                loop {
                    match feed.try_recv() {
                        Ok(hash) => hashes.push(hash),
                        // Too slow a poller misses the oldest; it is told nothing more.
                        Err(TryRecvError::Lagged(_)) => continue,
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
                Ok(FilterChanges::Hashes(hashes))
            }
        }
    }

    fn filter_logs(&self, id: U128) -> RpcResult<Vec<Log>> {
        let installed = self.filters.get(id)?;
        let mut installed = installed.lock();
        installed.polled = Instant::now();
        let Kind::Logs { filter, .. } = &installed.kind else {
            return Err(err(SERVER, "filter not found: not a log filter"));
        };
        let filter = (**filter).clone();
        drop(installed);
        self.logs_now(filter)
    }

    fn uninstall_filter(&self, id: U128) -> RpcResult<bool> {
        Ok(self.filters.remove(id))
    }
}
