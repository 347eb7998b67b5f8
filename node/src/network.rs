//! The BTTC chain of a network node (DESIGN.md §10.1): the chain driver thread that moves
//! blocks, messages and time between QUIC peers, the MDBX store and the engine's
//! [`ChainHost`], and the genesis section that describes a network's BTTC chain. The
//! Delivery driver (`delivery.rs`) runs beside it in the same process; they meet through
//! channels and shared read-only values. No protocol rule lives here.

use crate::{NodeError, SystemClock, chain::ChainNode};
use alloy_consensus::TxEnvelope;
use alloy_primitives::Address;
use bttc_engine::{
    chain::{
        bor::{
            BorParams,
            genesis::BorGenesis,
            host::{ChainEffects, ChainHost, StoreFailed},
            span::{Span, SpanValidator},
            sync::PeerMessage,
            wire::{ChainMessage, GOSSIP_TXS_MAX},
        },
        builder::{BLOCK_TXS_MAX, TxSnapshot},
        genesis::Genesis,
        spec::ChainSpec,
    },
    delivery::{milestone::ChainVote, milestone::Milestone, wire::Wire},
    env::Clock,
    exec::{ExecMode, StateReader},
    primitives::DeliveryHeight,
};
use bttc_net::p2p::transport::P2p;
use bttc_storage::bor::BorDb;
use crossbeam::channel::{Receiver, RecvTimeoutError};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Inputs queued for the chain driver; beyond it a peer's message is dropped (and counted).
pub const CHAIN_INBOX_LEN: usize = 4_096;
/// How often a node tells its peers its head (a peer that missed a block then asks for it).
const STATUS_EVERY_MS: u64 = 1_000;
/// Parents asked for at once when blocks arrive before them.
const MISSING_PARENTS_ASKED: usize = 8;

/// A network's BTTC chain, as its genesis file gives it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BttcGenesisSection {
    pub chain_id: u64,
    /// Genesis header time (s).
    pub timestamp: u64,
    #[serde(flatten)]
    pub params: BorParams,
    /// Accounts funded at genesis.
    pub accounts: Vec<Address>,
}

impl BttcGenesisSection {
    pub fn params(&self) -> BorParams {
        self.params
    }

    /// The devnet's EVM rules with this chain's id and timing.
    pub fn spec(&self) -> ChainSpec {
        ChainSpec {
            chain_id: self.chain_id,
            bor: Some(self.params()),
            ..ChainSpec::devnet()
        }
    }

    /// The BTTC genesis whose span 0 is `first_span`'s validators (the Delivery genesis's).
    pub fn genesis(&self, first_span: &[SpanValidator]) -> BorGenesis {
        BorGenesis {
            base: Genesis {
                timestamp: self.timestamp,
                ..Genesis::dev(&self.accounts)
            },
            params: self.params(),
            chain_id: self.chain_id,
            validators: first_span.to_vec(),
        }
    }
}

/// What reaches the chain driver.
pub enum ChainInput {
    /// A peer's chain message.
    Peer {
        from: Address,
        message: Box<ChainMessage>,
    },
    /// The Delivery chain committed: its height, spans and milestone after it.
    Delivery {
        height: DeliveryHeight,
        spans: Vec<(DeliveryHeight, Span)>,
        milestone: Milestone,
    },
    /// Transactions this node's RPC callers sent, to pass on to the peers.
    Gossip(Vec<TxEnvelope>),
}

/// What the rest of the process reads of the chain: the vote for the next precommit, the
/// head, the milestone, the numbers shown by status.
#[derive(Default)]
pub struct ChainShared {
    pub vote: Mutex<Option<ChainVote>>,
    pub head: AtomicU64,
    /// The last milestone this node holds (`finalized` for RPC).
    pub milestone: Arc<RwLock<Milestone>>,
    pub status: RwLock<Value>,
    pub stop: AtomicBool,
}

/// The chain driver: one thread owning the chain host and its store.
pub struct ChainDriver {
    pub host: ChainHost,
    pub store: BorDb,
    pub node: Arc<ChainNode>,
    pub p2p: Arc<P2p>,
    pub inbox: Receiver<ChainInput>,
    pub shared: Arc<ChainShared>,
    pub spec: ChainSpec,
    /// Refused blocks and bad messages by the peer that sent them.
    pub marked: BTreeMap<Address, u64>,
    pub sealed: u64,
    pub imported: u64,
    pub reorgs: u64,
}

/// Opens the chain side: the store (genesis written if new) and the host.
pub fn open_chain(
    node: &ChainNode,
    genesis: &BorGenesis,
    spec: &ChainSpec,
    key: Option<secp256k1::SecretKey>,
    exec: ExecMode,
) -> Result<(ChainHost, BorDb), NodeError> {
    let store = BorDb::open(node.db().clone(), genesis, spec)
        .map_err(|e| NodeError::BttcStore(Box::new(e)))?;
    let host = ChainHost::open(spec.clone(), key, exec, &store);
    Ok((host, store))
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

impl ChainDriver {
    pub fn run(mut self) -> Result<(), NodeError> {
        let mut next_status = 0;
        self.publish();
        while !self.shared.stop.load(Ordering::Acquire) {
            let now = now_ms();
            if let Some(at) = self.host.poll_timeout(&self.store)
                && at <= now
            {
                self.produce(now)?;
                continue;
            }
            if now >= next_status {
                next_status = now + STATUS_EVERY_MS;
                self.tick();
            }
            let wake = self
                .host
                .poll_timeout(&self.store)
                .unwrap_or(u64::MAX)
                .min(next_status);
            let wait = Duration::from_millis(wake.saturating_sub(now).clamp(1, 200));
            match self.inbox.recv_timeout(wait) {
                Ok(input) => {
                    self.handle(input)?;
                    // Take what else has arrived before looking at the clock again.
                    while let Ok(input) = self.inbox.try_recv() {
                        self.handle(input)?;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let (head, hash) = self.host.head();
        tracing::info!(head, %hash, "BTTC chain stopped");
        Ok(())
    }

    /// The producer's turn: seal from the pool's best transactions at the next base fee.
    fn produce(&mut self, now: u64) -> Result<(), NodeError> {
        let (tip, _) = bttc_engine::chain::bor::host::BorStore::tip(&self.store);
        let base_fee = self.spec.next_base_fee(
            tip.gas_used,
            tip.gas_limit,
            tip.base_fee_per_gas.unwrap_or_default(),
        );
        let mut candidates = TxSnapshot::take(&self.node.pool().lock(), base_fee, BLOCK_TXS_MAX);
        let effects = self
            .host
            .handle_timeout(&mut self.store, now, &mut candidates)
            .map_err(store_failed)?;
        if effects.head.is_some() {
            self.sealed += 1;
        }
        self.after(None, effects);
        Ok(())
    }

    /// Every second: the head to every peer, and the parents still missing asked for.
    fn tick(&mut self) {
        self.p2p
            .broadcast(&Wire::Chain(Box::new(self.host.status())));
        for hash in self.host.missing_parents(MISSING_PARENTS_ASKED) {
            self.p2p
                .broadcast(&Wire::Chain(Box::new(ChainMessage::GetBlock { hash })));
        }
    }

    fn handle(&mut self, input: ChainInput) -> Result<(), NodeError> {
        let now = now_ms();
        match input {
            ChainInput::Peer { from, message } => {
                let message = match *message {
                    ChainMessage::Block(raw) => match raw.recover() {
                        Ok(block) => PeerMessage::Block(Box::new(block)),
                        Err(index) => {
                            tracing::warn!(%from, index, "refused a block: a transaction's signature does not recover");
                            self.mark(from);
                            return Ok(());
                        }
                    },
                    ChainMessage::Txs(txs) => {
                        let dropped = self.node.take_gossip(txs);
                        if dropped > 0 {
                            tracing::debug!(%from, dropped, "ingest queue full: gossiped transactions dropped");
                        }
                        return Ok(());
                    }
                    other => PeerMessage::Other(other),
                };
                let kind = tracing::enabled!(tracing::Level::DEBUG).then(|| match &message {
                    PeerMessage::Block(b) => format!("block {}", b.header.number),
                    PeerMessage::Other(m) => format!("{m:?}").chars().take(60).collect(),
                });
                let effects = self
                    .host
                    .handle_message(&mut self.store, now, message)
                    .map_err(store_failed)?;
                tracing::debug!(%from, ?kind, replies = effects.reply.len(), fetch = effects.fetch.len(), "peer message");
                self.after(Some(from), effects);
            }
            ChainInput::Delivery {
                height,
                spans,
                milestone,
            } => {
                self.host.delivery.update(height, &spans, milestone);
                let effects = self
                    .host
                    .handle_delivery(&mut self.store, now)
                    .map_err(store_failed)?;
                self.after(None, effects);
            }
            ChainInput::Gossip(txs) => {
                for chunk in txs.chunks(GOSSIP_TXS_MAX) {
                    self.p2p
                        .broadcast(&Wire::Chain(Box::new(ChainMessage::Txs(chunk.to_vec()))));
                }
            }
        }
        Ok(())
    }

    fn mark(&mut self, peer: Address) {
        *self.marked.entry(peer).or_default() += 1;
    }

    /// Carries out a step's effects: blocks out, answers to the asker, the pool and the
    /// RPC's view of the head, and the vote for the next precommit.
    fn after(&mut self, from: Option<Address>, effects: ChainEffects) {
        for block in &effects.broadcast {
            let raw = bttc_engine::chain::bor::wire::RawBlock::from(block);
            self.p2p
                .broadcast(&Wire::Chain(Box::new(ChainMessage::Block(Box::new(raw)))));
        }
        if let Some(peer) = from {
            for reply in effects.reply {
                self.p2p.send_to(peer, &Wire::Chain(Box::new(reply)));
            }
            // A block whose parent is missing: ask the peer that has the child.
            for hash in &effects.fetch {
                self.p2p.send_to(
                    peer,
                    &Wire::Chain(Box::new(ChainMessage::GetBlock { hash: *hash })),
                );
            }
        }
        for (hash, why) in &effects.refused {
            tracing::warn!(%hash, peer = ?from, %why, "refused a block");
            if let Some(peer) = from {
                self.mark(peer);
            }
        }
        self.reorgs += effects.reorgs.len() as u64;
        for (off, on) in &effects.reorgs {
            tracing::info!(off, on, "reorganized");
        }
        if let Some((number, hash)) = effects.head {
            if effects.broadcast.is_empty() {
                self.imported += 1;
            }
            tracing::info!(number, %hash, sealed = !effects.broadcast.is_empty(), "head");
            self.refresh_pool();
            self.node.events().block_committed(number);
        }
        self.publish();
    }

    /// Drops pooled transactions the new head's nonces leave behind.
    fn refresh_pool(&self) {
        let senders = self.node.pool().lock().senders();
        let Ok(view) = self.node.db().read() else {
            return;
        };
        let nonces: Vec<(Address, u64)> = senders
            .into_iter()
            .filter_map(|s| Some((s, view.account(&s).ok()?.map_or(0, |a| a.nonce))))
            .collect();
        self.node.pool().lock().on_new_nonces(nonces);
    }

    /// What the Delivery driver and RPC read: the chain vote, head, milestone and status.
    fn publish(&self) {
        let (head, head_hash) = self.host.head();
        *self.shared.vote.lock() = Some(self.host.chain_vote(&self.store));
        self.shared.head.store(head, Ordering::Release);
        let milestone = self.host.delivery.milestone;
        let held =
            bttc_engine::chain::bor::host::BorStore::canonical(&self.store, milestone.number)
                .is_some_and(|(_, h)| h == milestone.hash);
        if held {
            *self.shared.milestone.write() = milestone;
        }
        let snapshot = self.host.snapshot();
        *self.shared.status.write() = json!({
            "head": head,
            "head_hash": head_hash,
            "finalized": self.shared.milestone.read().number,
            "milestone": milestone.number,
            "in_turn": snapshot.proposer(),
            "span": self.host.bor_tip().current_span.id,
            "sealed": self.sealed,
            "imported": self.imported,
            "reorgs": self.reorgs,
            "refused": self.host.refused_count,
            "marked_peers": self.marked,
        });
    }
}

fn store_failed(e: StoreFailed) -> NodeError {
    NodeError::BttcStore(e.0)
}

/// A validator of a network to start (`bttc node --validator`).
pub struct ValidatorNodeConfig {
    pub datadir: std::path::PathBuf,
    /// The network's genesis (as `bttc devnet` writes it).
    pub genesis: std::path::PathBuf,
    pub key: std::path::PathBuf,
    pub sync: bttc_storage::SyncMode,
    pub exec: ExecMode,
    pub limits: bttc_net::rpc::RpcLimits,
    pub access: bttc_net::rpc::HttpAccess,
}

/// Runs one validator (its Delivery chain, its BTTC chain and both JSON-RPC servers, at the
/// addresses the genesis gives it) until Ctrl-C or SIGTERM.
pub fn run_validator_node(config: ValidatorNodeConfig) -> Result<(), NodeError> {
    let genesis = crate::delivery::DeliveryGenesis::load(&config.genesis)?;
    if genesis.bttc.is_none() {
        return Err(NodeError::Usage(
            "this genesis has no BTTC chain: run its validators with `bttc delivery`",
        ));
    }
    let key = crate::devnet::read_key(&config.key)?;
    let me = bttc_engine::delivery::signing::key_address(&key);
    let mine = genesis
        .validators
        .iter()
        .find(|v| v.address == me)
        .ok_or(NodeError::NotAValidator(me))?;
    let (Some(http), Some(ws)) = (mine.bttc_rpc, mine.bttc_ws) else {
        return Err(NodeError::Usage(
            "the genesis gives this validator no BTTC RPC addresses (bttc_rpc, bttc_ws)",
        ));
    };
    let delivery_http = mine.rpc;
    crate::delivery::run(crate::delivery::ValidatorConfig {
        datadir: config.datadir,
        genesis,
        key,
        sync: config.sync,
        http: delivery_http,
        bttc_endpoints: Some(crate::chain::Endpoints {
            http,
            ws,
            limits: config.limits,
            access: config.access,
        }),
        exec: config.exec,
        full_node_p2p: None,
    })
}

/// A full node of a network to start (`bttc node --network FILE` without `--validator`).
pub struct FullNodeConfig {
    pub datadir: std::path::PathBuf,
    pub genesis: std::path::PathBuf,
    pub sync: bttc_storage::SyncMode,
    pub exec: ExecMode,
    pub endpoints: crate::chain::Endpoints,
    /// Its Delivery JSON-RPC (`delivery_status`).
    pub delivery_http: std::net::SocketAddr,
    /// Its QUIC endpoint (it dials the validators the genesis lists).
    pub p2p: std::net::SocketAddr,
}

/// The file a full node keeps its identity key in (its QUIC certificate's key).
const NODE_KEY_FILE: &str = "node.key";

/// Runs a full node: it dials every validator of the genesis, follows the Delivery chain and
/// the BTTC chain, passes transactions on, serves JSON-RPC, and signs and seals nothing.
pub fn run_full_node(config: FullNodeConfig) -> Result<(), NodeError> {
    let genesis = crate::delivery::DeliveryGenesis::load(&config.genesis)?;
    if genesis.bttc.is_none() {
        return Err(NodeError::Usage("this genesis has no BTTC chain to follow"));
    }
    std::fs::create_dir_all(&config.datadir).map_err(|source| NodeError::File {
        what: "creating the data directory",
        path: config.datadir.clone(),
        source,
    })?;
    let key_path = config.datadir.join(NODE_KEY_FILE);
    if !key_path.exists() {
        let key = crate::devnet::random_key()?;
        std::fs::write(&key_path, format!("{}\n", hex::encode(key.secret_bytes()))).map_err(
            |source| NodeError::File {
                what: "writing the node key",
                path: key_path.clone(),
                source,
            },
        )?;
    }
    let key = crate::devnet::read_key(&key_path)?;
    if genesis
        .validators
        .iter()
        .any(|v| v.address == bttc_engine::delivery::signing::key_address(&key))
    {
        return Err(NodeError::Usage(
            "this node's key is a validator's: run it with --validator",
        ));
    }
    crate::delivery::run(crate::delivery::ValidatorConfig {
        datadir: config.datadir,
        genesis,
        key,
        sync: config.sync,
        http: config.delivery_http,
        bttc_endpoints: Some(config.endpoints),
        exec: config.exec,
        full_node_p2p: Some(config.p2p),
    })
}
