//! Deterministic simulation of a whole BTTC network in one process: Delivery validators (the
//! hosts the node runs) and, on every validator and a full node, the BTTC chain host with Bor
//! producers, block propagation over a lossy network, imports that wait for the node's own
//! Delivery chain, fork choice and milestones. Producers crash and restart, partitions heal,
//! messages are lost and reordered. Every seed checks that no final block is reorganized, that
//! honest nodes never judge a block differently, that all nodes end on one head, and that
//! blocks, spans and milestones keep coming. `NET_SEEDS` sets the number of seeds.

use bttc_engine::testkit::{
    bttc::SIM_BOR,
    delivery::{BttcScenario, Crash, MidStep, Scenario, World},
    rng::Rng,
};

fn seeds() -> u64 {
    std::env::var("NET_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

/// The faults of one seed: those of the Delivery simulation, plus producers that crash during
/// the run and come back.
fn scenario(validators: usize, seed: u64) -> Scenario {
    let mut s = Scenario::random(validators, seed);
    let mut rng = Rng::new(seed ^ 0xb77c);
    s.block_interval_ms = 200;
    s.bttc = Some(BttcScenario {
        params: SIM_BOR,
        full_nodes: 1,
        txs_per_block: 2,
        produce_until_ms: 40_000,
        settle_until_ms: 50_000,
        tick_ms: 500,
    });
    if rng.chance(50) {
        for _ in 0..1 + rng.below(2) {
            s.crashes.push(Crash {
                node: rng.below(validators as u64) as usize,
                at_ms: rng.between(3_000, 30_000),
                down_ms: rng.between(1_000, 6_000),
                mid_step: MidStep::Between,
            });
        }
    }
    s
}

fn run(validators: usize, seed: u64) -> World {
    let mut world = World::new(scenario(validators, seed));
    world.run();
    if std::env::var("NET_DEBUG").is_ok() {
        for node in 0..=validators {
            let chain = world.bttc.as_ref().unwrap().nodes[node].host.as_ref();
            eprintln!(
                "node {node}: delivery {:?}, spans {:?}, chain head {:?}, view {:?}/{:?}",
                world.status(node).map(|s| s.height),
                world.last_span_id(node),
                chain,
                chain.map(|c| c.delivery.height),
                chain.map(|c| c
                    .delivery
                    .spans
                    .iter()
                    .map(|(h, s)| (h.0, s.id))
                    .collect::<Vec<_>>()),
            );
        }
        eprintln!("now {} ms", world.now_ms());
    }
    if let Err(v) = world.check() {
        panic!(
            "seed {seed} ({validators} validators) failed: {v}\n  scenario: {:?}\n  replay: NET_SEED={seed} NET_VALIDATORS={validators} cargo test -p bttc-engine --test network_sim one_network_seed",
            world.scenario
        );
    }
    world
}

fn many(validators: usize, first: u64) {
    let started = std::time::Instant::now();
    let (mut sealed, mut backups, mut reorgs, mut restarts) = (0, 0, 0, 0);
    for seed in first..first + seeds() {
        let t = std::time::Instant::now();
        let world = run(validators, seed);
        if std::env::var("NET_VERBOSE").is_ok() {
            eprintln!(
                "seed {seed}: {:.2} s, {} steps",
                t.elapsed().as_secs_f64(),
                world.steps
            );
        }
        let bttc = world.bttc.as_ref().unwrap();
        sealed += bttc.sealed;
        backups += bttc.backup_blocks;
        reorgs += bttc.reorgs;
        restarts += world.restarts;
    }
    println!(
        "{validators} validators + 1 full node: {} seeds, {sealed} blocks sealed ({backups} by backups), {reorgs} reorgs, {restarts} restarts, {:.1} s",
        seeds(),
        started.elapsed().as_secs_f64()
    );
    assert!(backups > 0, "no seed made a backup seal");
}

#[test]
fn four_validators_and_a_full_node() {
    many(4, 0);
}

#[test]
fn seven_validators_and_a_full_node() {
    many(7, 50_000);
}

#[test]
fn one_network_seed() {
    let seed = std::env::var("NET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let validators = std::env::var("NET_VALIDATORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let world = run(validators, seed);
    let bttc = world.bttc.as_ref().unwrap();
    println!(
        "seed {seed}: head {:?}, {} sealed, {} by backups, {} reorgs",
        bttc.nodes[0].host.as_ref().map(|h| h.head()),
        bttc.sealed,
        bttc.backup_blocks,
        bttc.reorgs
    );
}
