//! Bor producers over whole chains in memory: four validators take turns by sprint, spans
//! are decided on a (modelled) Delivery chain and committed into the validator contract, a
//! backup seals with the right difficulty and time while the in-turn producer is down, and
//! every node imports every block to the same hash and state root. Bad blocks are refused
//! with their reason and change nothing.

use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use bttc_engine::{
    chain::{
        bor::{
            BorError, BorParams, Snapshot, Span, SpanValidator, Vanity,
            block::{
                BorBlockError, BorTip, DeliveryFacts, Production, import, produce, system_calls,
                turn,
            },
            genesis::BorGenesis,
            seal,
        },
        builder::{BuiltBlock, TxSource},
        genesis::Genesis,
        spec::ChainSpec,
    },
    delivery::signing::key_address,
    exec::{ExecMode, testing},
    primitives::{DeliveryHeight, RecoveredTx},
    testkit::chain::MemChain,
};
use std::sync::Arc;

const VALIDATORS: u8 = 4;

fn spec() -> ChainSpec {
    let mut spec = ChainSpec::devnet();
    // Three draws per span from four validators: spans change who produces.
    spec.bor = Some(BorParams {
        producer_count: 3,
        ..spec.bor.unwrap()
    });
    spec
}

fn key(i: u8) -> secp256k1::SecretKey {
    secp256k1::SecretKey::from_byte_array([i + 1; 32]).unwrap()
}

/// The Delivery chain as the BTTC chain sees it: spans decided so far, one per height.
struct Delivery {
    spans: Vec<Span>,
}

impl Delivery {
    /// What height `height` says: the spans decided up to it.
    fn facts(&self, height: DeliveryHeight, current: &Span) -> DeliveryFacts {
        let known = &self.spans[..height.0 as usize];
        DeliveryFacts {
            height,
            next_span: known.iter().find(|s| s.id == current.id + 1).cloned(),
        }
    }

    fn height(&self) -> DeliveryHeight {
        DeliveryHeight(self.spans.len() as u64)
    }

    /// The span module's rule: once the head enters the last span, the next one is decided.
    fn observe_head(
        &mut self,
        params: &BorParams,
        validators: &[SpanValidator],
        head: &Header,
        hash: B256,
    ) {
        let last = self.spans.last().unwrap();
        if head.number >= last.start_block {
            let next = last.next(params, validators, keccak256(hash)).unwrap();
            self.spans.push(next);
        }
    }
}

struct Node {
    chain: MemChain,
    tip: BorTip,
}

struct Pool {
    senders: Vec<Address>,
    nonces: Vec<u64>,
}

impl Pool {
    fn txs(&mut self, spec: &ChainSpec, count: usize) -> Vec<Arc<RecoveredTx>> {
        (0..count)
            .map(|i| {
                let k = i % self.senders.len();
                self.nonces[k] += 1;
                Arc::new(testing::tx(
                    spec,
                    self.senders[k],
                    self.nonces[k] - 1,
                    TxKind::Call(testing::account(1_000 + i as u64)),
                    U256::from(1_000),
                    Bytes::new(),
                    21_000,
                ))
            })
            .collect()
    }
}

struct Listed(std::vec::IntoIter<Arc<RecoveredTx>>);
impl TxSource for Listed {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.0.next()
    }
    fn skip_sender(&mut self, _: &Address) {}
}

struct Net {
    spec: ChainSpec,
    params: BorParams,
    validators: Vec<SpanValidator>,
    delivery: Delivery,
    /// Validators 0..4, then a full node.
    nodes: Vec<Node>,
    pool: Pool,
}

fn net() -> Net {
    let spec = spec();
    let params = spec.bor.unwrap();
    let validators: Vec<SpanValidator> = (0..VALIDATORS)
        .map(|i| SpanValidator {
            id: u64::from(i) + 1,
            power: 1,
            signer: key_address(&key(i)),
        })
        .collect();
    let senders: Vec<Address> = (0..8).map(testing::account).collect();
    let genesis = BorGenesis {
        base: Genesis::dev(&senders),
        params,
        chain_id: spec.chain_id,
        validators: validators.clone(),
    };
    let changes = genesis.changes(&spec).unwrap();
    let chain = MemChain::genesis(&changes, |root| genesis.base.header(&spec, root)).unwrap();
    let producers = genesis.first_span().producer_powers();
    let tip = BorTip {
        snapshot: Snapshot::genesis(chain.tip_hash(), &producers).unwrap(),
        current_span: genesis.first_span(),
    };
    let nodes = (0..=VALIDATORS)
        .map(|_| Node {
            chain: chain.clone(),
            tip: tip.clone(),
        })
        .collect();
    Net {
        delivery: Delivery {
            spans: vec![genesis.first_span()],
        },
        spec,
        params,
        validators,
        nodes,
        pool: Pool {
            nonces: vec![0; senders.len()],
            senders,
        },
    }
}

impl Net {
    fn validator_index(&self, signer: &Address) -> usize {
        self.validators
            .iter()
            .position(|v| v.signer == *signer)
            .unwrap()
    }

    /// The next block by producer `by` (a validator index) at its earliest time, sealed.
    fn produce_by(&mut self, by: usize, txs: usize) -> Result<BuiltBlock, BorBlockError> {
        let txs = self.pool.txs(&self.spec, txs);
        let node = &self.nodes[by];
        let parent = node.chain.tip().clone();
        let signer = key_address(&key(by as u8));
        let turn = turn(&self.spec, &node.tip.snapshot, &parent, &signer).expect("a producer");
        let height = self.delivery.height();
        let facts = self.delivery.facts(height, &node.tip.current_span);
        let calls = system_calls(
            &self.spec,
            &node.tip.current_span,
            parent.number + 1,
            &facts,
        )?;
        produce(
            &self.spec,
            &node.chain,
            &mut Listed(txs.into_iter()),
            Production {
                parent_hash: node.chain.tip_hash(),
                timestamp: turn.earliest_secs,
                parent,
                turn,
                vanity: Vanity {
                    delivery_height: height,
                },
                system_calls: calls,
                key: &key(by as u8),
                signer,
            },
            ExecMode::Parallel,
        )
    }

    /// Node `at` imports `block` (as received: header and body).
    fn import_at(
        &self,
        at: usize,
        header: &Header,
        txs: &[RecoveredTx],
    ) -> Result<BuiltBlock, BorBlockError> {
        let node = &self.nodes[at];
        // A vanity that names no height is refused by import; check it against the latest.
        let height = Vanity::decode(header.extra_data[..32].try_into().unwrap())
            .map_or(self.delivery.height(), |v| v.delivery_height);
        let facts = self.delivery.facts(height, &node.tip.current_span);
        import(
            &self.spec,
            &node.chain,
            &node.tip.snapshot,
            &node.tip.current_span,
            &facts,
            node.chain.tip(),
            header.clone(),
            txs.to_vec(),
            Some(header.timestamp),
            ExecMode::Parallel,
        )
        .map(|(built, _)| built)
    }

    fn commit_everywhere(&mut self, header: &Header, txs: &[RecoveredTx]) {
        let vanity = Vanity::decode(header.extra_data[..32].try_into().unwrap()).unwrap();
        for at in 0..self.nodes.len() {
            let built = self
                .import_at(at, header, txs)
                .unwrap_or_else(|e| panic!("node {at} refused block {}: {e}", header.number));
            let node = &mut self.nodes[at];
            let facts = self
                .delivery
                .facts(vanity.delivery_height, &node.tip.current_span);
            node.tip
                .advance(&self.spec, &built.header, built.hash, &facts)
                .unwrap();
            node.chain.commit(built);
        }
        let head = self.nodes[0].chain.tip().clone();
        let hash = self.nodes[0].chain.tip_hash();
        let validators = self.validators.clone();
        self.delivery
            .observe_head(&self.params, &validators, &head, hash);
    }
}

#[test]
fn producers_rotate_spans_commit_and_backups_take_over() {
    let mut net = net();
    let n_blocks = 4 * net.params.span + 8;
    let mut backups = 0;
    let mut signers_by_span: Vec<std::collections::BTreeSet<Address>> = Vec::new();
    for number in 1..=n_blocks {
        let snapshot = net.nodes[0].tip.snapshot.clone();
        let order = snapshot.succession_order();
        // In the third sprint of every span the in-turn producer is down.
        let sprint_in_span = (number % net.params.span) / net.params.sprint;
        let down = (number > net.params.sprint && sprint_in_span == 2).then(|| order[0]);
        let rank = order.iter().position(|a| Some(*a) != down).unwrap();
        let producer = net.validator_index(&order[rank]);
        let block = net.produce_by(producer, 3).unwrap();
        let parent = net.nodes[0].chain.tip().clone();

        // The seal, difficulty and time of the rank that sealed.
        assert_eq!(block.header.difficulty, U256::from(order.len() - rank));
        assert_eq!(
            block.header.timestamp,
            parent.timestamp + net.params.producer_delay(number, rank)
        );
        assert_eq!(seal::seal_author(&block.header), Some(order[rank]));
        assert_eq!(block.header.beneficiary, Address::ZERO);
        if rank > 0 {
            backups += 1;
        }
        let span = net
            .delivery
            .spans
            .iter()
            .find(|s| s.contains(number))
            .unwrap()
            .clone();
        assert!(
            span.producers.iter().any(|p| p.signer == order[rank]),
            "block {number} sealed by a producer of span {}",
            span.id
        );
        if signers_by_span.len() <= span.id as usize {
            signers_by_span.push(Default::default());
        }
        signers_by_span[span.id as usize].insert(order[rank]);

        let txs = block.txs.clone();
        let header = block.header.clone();
        net.commit_everywhere(&header, &txs);
        let hashes: Vec<B256> = net.nodes.iter().map(|n| n.chain.tip_hash()).collect();
        assert!(hashes.iter().all(|h| *h == hashes[0]), "block {number}");
    }
    let current = &net.nodes[0].tip.current_span;
    assert!(current.id >= 4, "spans committed: {}", current.id);
    assert!(backups >= 4 * net.params.sprint, "{backups} backup blocks");
    for node in &net.nodes {
        assert_eq!(node.tip, net.nodes[0].tip);
        assert_eq!(
            node.chain.tip().state_root,
            net.nodes[0].chain.tip().state_root
        );
    }
    // Fees: the signer of the last block took its priority fees (coinbase stays zero).
    let last = net.nodes[0].chain.tip().clone();
    let signer = seal::seal_author(&last).unwrap();
    assert!(net.nodes[0].chain.balance(&signer) > U256::ZERO);
    // Spans after the first draw 3 times from 4 validators: the producer sets differ.
    assert!(
        signers_by_span
            .iter()
            .any(|s| s.len() < VALIDATORS as usize)
    );
}

#[test]
fn bad_blocks_are_refused_and_change_nothing() {
    let mut net = net();
    // Run to just before a sprint end so that a sprint-end block can be forged too.
    let sprint_end = net.params.sprint * 2 - 1;
    for _ in 1..sprint_end {
        let order = net.nodes[0].tip.snapshot.succession_order();
        let by = net.validator_index(&order[0]);
        let block = net.produce_by(by, 2).unwrap();
        let (header, txs) = (block.header.clone(), block.txs.clone());
        net.commit_everywhere(&header, &txs);
    }
    let before = net.nodes[1].chain.tip_hash();
    let order = net.nodes[0].tip.snapshot.succession_order();
    let in_turn = net.validator_index(&order[0]);
    let backup = net.validator_index(&order[1]);
    let good = net.produce_by(in_turn, 2).unwrap();
    let reseal = |header: &mut Header, by: usize, middle: &[u8]| {
        let vanity: [u8; 32] = header.extra_data[..32].try_into().unwrap();
        seal::seal(header, vanity, middle, &key(by as u8));
    };
    let middle = good.header.extra_data[32..good.header.extra_data.len() - 65].to_vec();
    assert!(!middle.is_empty(), "a sprint-end block lists validators");

    let check = |header: Header, txs: &[RecoveredTx]| net.import_at(1, &header, txs).unwrap_err();

    // A bad seal (a header changed after sealing).
    let mut h = good.header.clone();
    h.gas_limit += 1;
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Header(BorError::UnknownSigner(_) | BorError::BadSeal)
    ));
    // An unknown signer.
    let mut h = good.header.clone();
    let vanity: [u8; 32] = h.extra_data[..32].try_into().unwrap();
    seal::seal(&mut h, vanity, &middle, &key(9));
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Header(BorError::UnknownSigner(_))
    ));
    // A backup claiming the in-turn difficulty.
    let mut h = good.header.clone();
    h.timestamp += net.params.backup_multiplier_secs;
    reseal(&mut h, backup, &middle);
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Header(BorError::Difficulty { .. })
    ));
    // A backup sealing before its delay.
    let mut h = good.header.clone();
    h.difficulty = U256::from(order.len() - 1);
    reseal(&mut h, backup, &middle);
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Header(BorError::TooEarly { .. })
    ));
    // Wrong sprint-end validator bytes.
    let mut h = good.header.clone();
    let mut wrong = middle.clone();
    wrong.truncate(40);
    reseal(&mut h, in_turn, &wrong);
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Header(BorError::SprintEndValidators)
    ));
    // A body that does not match its header.
    assert!(matches!(
        check(good.header.clone(), &good.txs[..1]),
        BorBlockError::Root {
            field: "transactions root",
            ..
        }
    ));
    // A state root that execution does not reach.
    let mut h = good.header.clone();
    h.state_root = B256::repeat_byte(7);
    reseal(&mut h, in_turn, &middle);
    assert!(matches!(
        check(h, &good.txs),
        BorBlockError::Root {
            field: "state root",
            ..
        }
    ));
    // A pinned Delivery height the importer's facts do not match.
    let mut h = good.header.clone();
    let vanity = Vanity {
        delivery_height: DeliveryHeight(99),
    };
    seal::seal(&mut h, vanity.encode(), &middle, &key(in_turn as u8));
    let node = &net.nodes[1];
    let facts = net
        .delivery
        .facts(net.delivery.height(), &node.tip.current_span);
    let err = import(
        &net.spec,
        &node.chain,
        &node.tip.snapshot,
        &node.tip.current_span,
        &facts,
        node.chain.tip(),
        h.clone(),
        good.txs.clone(),
        Some(h.timestamp),
        ExecMode::Sequential,
    )
    .unwrap_err();
    assert!(matches!(err, BorBlockError::PinnedHeight { .. }));

    // Nothing changed; the good block still imports.
    assert_eq!(net.nodes[1].chain.tip_hash(), before);
    let (header, txs) = (good.header.clone(), good.txs.clone());
    net.commit_everywhere(&header, &txs);
    assert_eq!(net.nodes[1].chain.tip_hash(), good.hash);
}
