//! The Bor chain store on MDBX against the in-memory one: the same producer seals the same
//! blocks on both (spans committed, so contract storage changes too); unwinding MDBX blocks
//! restores the parent's state, state root and Bor meta exactly, a reopened store continues
//! where it stopped, and the chain made again after an unwind is the same chain.

use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use bttc_engine::{
    chain::{
        bor::{
            genesis::BorGenesis,
            host::{BorStore, ChainHost},
            span::{Span, SpanValidator},
        },
        builder::TxSource,
        genesis::Genesis,
        spec::ChainSpec,
    },
    delivery::{milestone::Milestone, signing::key_address},
    exec::{ExecMode, StateReader, testing},
    primitives::{DeliveryHeight, RecoveredTx},
    testkit::{
        bttc::{BttcLayer, SIM_BOR},
        chain::BorMemStore,
    },
};
use bttc_storage::{ChainDb, SyncMode, bor::BorDb};
use std::sync::Arc;

fn key() -> secp256k1::SecretKey {
    secp256k1::SecretKey::from_byte_array([7; 32]).unwrap()
}

/// The genesis `BttcLayer` builds for one validator, for the MDBX store.
fn genesis(spec: &ChainSpec) -> BorGenesis {
    let senders: Vec<Address> = (0..16).map(testing::account).collect();
    BorGenesis {
        base: Genesis {
            timestamp: 0,
            ..Genesis::dev(&senders)
        },
        params: SIM_BOR,
        chain_id: spec.chain_id,
        validators: vec![SpanValidator {
            id: 1,
            power: 1,
            signer: key_address(&key()),
        }],
    }
}

/// Spans 1.. with the one validator, decided at Delivery height 1.
fn later_spans(first: &Span) -> Vec<(DeliveryHeight, Span)> {
    (1..4)
        .map(|id| {
            let start = first.end_block + 1 + (id - 1) * SIM_BOR.span;
            (
                DeliveryHeight(1),
                Span {
                    id,
                    start_block: start,
                    end_block: start + SIM_BOR.span - 1,
                    ..first.clone()
                },
            )
        })
        .collect()
}

/// Three transfers from three senders, nonces read from `store`'s state.
struct Transfers(Vec<Arc<RecoveredTx>>);

impl Transfers {
    fn next_for<S: BorStore>(spec: &ChainSpec, store: &S, number: u64) -> Self {
        let view = store.view();
        let txs = (0..3)
            .map(|k| {
                let sender = testing::account(k);
                let nonce = view.account(&sender).unwrap().map_or(0, |a| a.nonce);
                Arc::new(testing::tx(
                    spec,
                    sender,
                    nonce,
                    TxKind::Call(testing::account(1_000 + number)),
                    U256::from(1),
                    Bytes::new(),
                    21_000,
                ))
            })
            .rev()
            .collect();
        Self(txs)
    }
}

impl TxSource for Transfers {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.0.pop()
    }
    fn skip_sender(&mut self, _: &Address) {}
}

/// Seals on `store` until its tip is `until`, each block at its producer's earliest time.
fn produce_to<S: BorStore>(spec: &ChainSpec, host: &mut ChainHost, store: &mut S, until: u64) {
    while store.tip().0.number < until {
        let at = host.poll_timeout(store).expect("the only producer's turn");
        let mut txs = Transfers::next_for(spec, store, store.tip().0.number + 1);
        let effects = host.handle_timeout(store, at, &mut txs).unwrap();
        assert!(effects.head.is_some(), "sealed a block at {at} ms");
        assert_eq!(store.body(store.tip().0.number).unwrap().len(), 3);
    }
}

fn open_host<S: BorStore>(spec: &ChainSpec, store: &S, first: &Span) -> ChainHost {
    let mut host = ChainHost::open(spec.clone(), Some(key()), ExecMode::Sequential, store);
    host.delivery
        .update(DeliveryHeight(1), &later_spans(first), Milestone::default());
    host
}

#[test]
fn mdbx_bor_store_commits_unwinds_and_reopens_like_memory() {
    let layer = BttcLayer::new(&[key()], 0, SIM_BOR);
    let spec = layer.spec.clone();
    let genesis = genesis(&spec);
    let first = genesis.first_span();
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let db = Arc::new(ChainDb::open(dir.path(), "bor-test", SyncMode::Durable).unwrap());
        BorDb::open(db, &genesis, &spec).unwrap()
    };
    let mut disk = open();
    let mut memory: BorMemStore = layer.nodes[0].store.clone();
    assert_eq!(disk.tip(), memory.tip(), "one genesis");
    assert_eq!(disk.meta(0), memory.meta(0));

    let mut on_memory = open_host(&spec, &memory, &first);
    let mut on_disk = open_host(&spec, &disk, &first);
    produce_to(&spec, &mut on_memory, &mut memory, 40);
    produce_to(&spec, &mut on_disk, &mut disk, 40);
    for n in 0..=40 {
        assert_eq!(disk.canonical(n), memory.canonical(n), "block {n}");
        assert_eq!(disk.meta(n), memory.meta(n), "meta {n}");
    }
    let spans_seen = memory.meta(40).unwrap().tip.current_span.id;
    assert!(
        spans_seen >= 2,
        "spans were committed (now span {spans_seen})"
    );

    // Unwind across a span commit, then check the state against the stored parent.
    disk.unwind_to(13).unwrap();
    assert_eq!(disk.tip(), memory.canonical(13).unwrap());
    assert_eq!(disk.meta(13), memory.meta(13));
    assert_eq!(disk.meta(14), None, "the unwound blocks' meta is gone");
    assert_eq!(disk.body(14), None);
    let root = disk.db().read().unwrap().full_state_root().unwrap();
    assert_eq!(root, memory.canonical(13).unwrap().0.state_root);

    // A reopened store holds the unwound chain; producing again makes the same blocks.
    drop(on_disk);
    drop(disk);
    let mut disk = open();
    assert_eq!(disk.tip().0.number, 13);
    let mut on_disk = open_host(&spec, &disk, &first);
    produce_to(&spec, &mut on_disk, &mut disk, 14);
    let (_, hash) = disk.tip();
    assert_eq!(hash, memory.canonical(14).unwrap().1);
    assert_ne!(hash, B256::ZERO);
}

#[test]
fn a_database_of_another_genesis_is_refused() {
    let layer = BttcLayer::new(&[key()], 0, SIM_BOR);
    let spec = layer.spec.clone();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(ChainDb::open(dir.path(), "bor-test", SyncMode::Durable).unwrap());
    BorDb::open(db.clone(), &genesis(&spec), &spec).unwrap();
    let mut other = genesis(&spec);
    other.base.timestamp = 5;
    let refused = BorDb::open(db, &other, &spec);
    assert!(refused.is_err(), "another genesis");
}
