//! The BTTC chains of a simulated network: each validator's chain store and chain host, the
//! genesis they share, and what the world saw of them, for the checks of a run.

use super::chain::{BorMemStore, MemChain};
use crate::{
    chain::{
        bor::{
            BorParams,
            genesis::BorGenesis,
            host::{ChainEffects, ChainHost},
            span::SpanValidator,
        },
        builder::TxSource,
        genesis::Genesis,
        spec::ChainSpec,
    },
    exec::{ExecMode, testing},
    primitives::RecoveredTx,
};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use secp256k1::SecretKey;
use std::{collections::BTreeMap, sync::Arc};

/// A network's BTTC timing for simulations: whole seconds as in headers, short sprints and
/// spans so that many pass in a minute of simulated time.
pub const SIM_BOR: BorParams = BorParams {
    sprint: 4,
    span: 16,
    first_span_end: 15,
    period_secs: 1,
    producer_delay_secs: 2,
    backup_multiplier_secs: 1,
    producer_count: 11,
};

/// Senders whose transfers fill the simulated blocks.
const SENDERS: u64 = 16;

/// One node's BTTC side.
pub struct BttcNode {
    pub store: BorMemStore,
    pub host: Option<ChainHost>,
    pub key: Option<SecretKey>,
    pub wake: Option<u64>,
}

/// Everything BTTC in a simulated world.
pub struct BttcLayer {
    pub spec: ChainSpec,
    pub nodes: Vec<BttcNode>,
    senders: Vec<Address>,
    /// Every block an honest node imported or sealed, by hash: its number.
    pub accepted: BTreeMap<B256, u64>,
    /// Every block an honest node refused, by hash, with the reason.
    pub refused: BTreeMap<B256, String>,
    /// Blocks sealed by a backup (not the in-turn producer).
    pub backup_blocks: u64,
    pub reorgs: u64,
    pub sealed: u64,
}

impl BttcLayer {
    /// Chains for `keys.len()` validators plus `full_nodes` nodes without a key, all from one
    /// genesis whose span 0 holds every validator.
    pub fn new(keys: &[SecretKey], full_nodes: usize, params: BorParams) -> Self {
        let spec = ChainSpec {
            bor: Some(params),
            ..ChainSpec::devnet()
        };
        let validators: Vec<SpanValidator> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| SpanValidator {
                id: i as u64 + 1,
                power: 1,
                signer: crate::delivery::signing::key_address(k),
            })
            .collect();
        let senders: Vec<Address> = (0..SENDERS).map(testing::account).collect();
        let genesis = BorGenesis {
            base: Genesis {
                timestamp: 0,
                ..Genesis::dev(&senders)
            },
            params,
            chain_id: spec.chain_id,
            validators,
        };
        let changes = genesis.changes(&spec).expect("the genesis builds");
        let chain = MemChain::genesis(&changes, |root| genesis.base.header(&spec, root))
            .expect("the genesis root");
        let meta = genesis
            .meta(chain.tip_hash())
            .expect("the genesis producers");
        let store = BorMemStore::new(chain, meta);
        let nodes = keys
            .iter()
            .map(|k| Some(*k))
            .chain((0..full_nodes).map(|_| None))
            .map(|key| BttcNode {
                store: store.clone(),
                host: None,
                key,
                wake: None,
            })
            .collect();
        Self {
            spec,
            nodes,
            senders,
            accepted: BTreeMap::new(),
            refused: BTreeMap::new(),
            backup_blocks: 0,
            reorgs: 0,
            sealed: 0,
        }
    }

    /// Starts (or restarts) node `i`'s chain host from its store.
    pub fn open(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.host = Some(ChainHost::open(
            self.spec.clone(),
            node.key,
            ExecMode::Sequential,
            &node.store,
        ));
        node.wake = None;
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i].host = None;
        self.nodes[i].wake = None;
    }

    /// Transfers for the next block a producer seals: `count` of them, nonces counted from
    /// the sealing node's own state so that a lost block's transfers come again.
    pub fn candidates(&self, i: usize, count: usize) -> Candidates {
        let chain = &self.nodes[i].store.chain;
        let txs = (0..count)
            .map(|k| {
                let s = k % self.senders.len();
                let sender = self.senders[s];
                let nonce = chain.state.accounts.get(&sender).map_or(0, |a| a.nonce);
                Arc::new(testing::tx(
                    &self.spec,
                    sender,
                    nonce,
                    TxKind::Call(testing::account(1_000 + k as u64)),
                    U256::from(1),
                    Bytes::new(),
                    21_000,
                ))
            })
            .collect::<Vec<_>>();
        Candidates(txs.into_iter())
    }

    /// Notes what an honest node's step did.
    pub fn observe(&mut self, effects: &ChainEffects, honest: bool) {
        self.reorgs += effects.reorgs.len() as u64;
        if !honest {
            return;
        }
        for block in &effects.broadcast {
            self.accepted
                .insert(block.header.hash_slow(), block.header.number);
        }
        for (hash, why) in &effects.refused {
            self.refused.entry(*hash).or_insert_with(|| why.to_string());
        }
    }
}

/// Candidate transactions in order.
pub struct Candidates(std::vec::IntoIter<Arc<RecoveredTx>>);

impl TxSource for Candidates {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.0.next()
    }
    fn skip_sender(&mut self, _: &Address) {}
}
