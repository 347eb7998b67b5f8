//! Deterministic simulation of Delivery validators: the validator hosts the node runs, with
//! simulated stores, network, side checks and clock, driven from a seed (see
//! `bttc_engine::testkit::delivery` for the faults). Every seed checks agreement, validity (a
//! decided block was proposed by its round's proposer), no double sign by an honest validator,
//! evidence only against byzantine validators, and liveness once faults heal. A seed run twice
//! gives the same event hash; a failing seed prints itself and replays with `SIM_SEED=<seed>`.
//! `SIM_SEEDS` sets the number of seeds for each of 4, 7 and 10 validators (default 1000).

use bttc_engine::testkit::delivery::{Scenario, Strategy, World};

fn seeds() -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000)
}

/// Runs one seed and panics with the seed and the violation if a property broke.
fn run_seed(n: usize, seed: u64) -> World {
    let mut world = World::new(Scenario::random(n, seed));
    world.run();
    if let Err(violation) = world.check() {
        panic!(
            "seed {seed} ({n} validators) failed: {violation}\n  scenario: {:?}\n  replay: SIM_SEED={seed} SIM_VALIDATORS={n} cargo test -p bttc-engine --test tendermint_sim one_seed",
            world.scenario
        );
    }
    world
}

fn many(n: usize, first: u64) {
    let started = std::time::Instant::now();
    let (mut restarts, mut steps) = (0, 0);
    for seed in first..first + seeds() {
        let world = run_seed(n, seed);
        restarts += world.restarts;
        steps += world.steps;
    }
    println!(
        "{n} validators: {} seeds, {steps} steps, {restarts} restarts, {:.1} s",
        seeds(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn four_validators_under_faults() {
    many(4, 0);
}

#[test]
fn seven_validators_under_faults() {
    many(7, 100_000);
}

#[test]
fn ten_validators_under_faults() {
    many(10, 200_000);
}

/// `SIM_SEED=<seed> SIM_VALIDATORS=<n>`: replays one seed (what a failure prints).
#[test]
fn one_seed() {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let n = std::env::var("SIM_VALIDATORS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    let world = run_seed(n, seed);
    println!(
        "seed {seed}: ok at {} ms, {} steps, event hash {}",
        world.now_ms(),
        world.steps,
        world.event_hash()
    );
}

#[test]
fn a_seed_replays_identically() {
    for seed in [3, 42, 7_001] {
        assert_eq!(
            run_seed(4, seed).event_hash(),
            run_seed(4, seed).event_hash()
        );
    }
    assert_ne!(run_seed(4, 42).event_hash(), run_seed(4, 43).event_hash());
}

#[test]
fn equivocation_to_everyone_is_caught_as_evidence() {
    let (mut seeds, mut caught) = (0, 0);
    for seed in 0..200 {
        let mut scenario = Scenario::calm(4, 50_000 + seed);
        scenario.byzantine = vec![(seed % 4) as usize];
        scenario.strategy = Strategy::ToEveryone;
        let mut world = World::new(scenario);
        world.run();
        world.check().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        seeds += 1;
        caught += u64::from(!world.evidence.is_empty());
    }
    println!("evidence caught in {caught} of {seeds} seeds");
    assert!(
        caught * 100 >= seeds * 95,
        "evidence in only {caught} of {seeds}"
    );
}

/// Milestones and spans: validators report a BTTC chain that grows every 50 ms, each with its
/// own lag, one of them (byzantine) a fork of its own. The milestone follows the canonical
/// chain only and keeps advancing; the fork never becomes final; spans keep being decided as
/// the chain enters each last span.
#[test]
fn milestones_finalize_the_chain_a_quorum_holds_and_never_a_fork() {
    for seed in 0..20 {
        let mut scenario = Scenario::calm(4, seed);
        scenario.heights = 40;
        scenario.bttc_block_ms = 50;
        scenario.bttc_lag_ms = vec![0, 100, 250, 0];
        scenario.byzantine = vec![3];
        let mut world = World::new(scenario);
        world.run();
        world.check().unwrap_or_else(|v| panic!("seed {seed}: {v}"));
        for node in 0..3 {
            // Spans of 32 blocks at 50 ms a block: a new span every 1.6 s of simulated time.
            let span = world.last_span_id(node).unwrap_or(0);
            assert!(
                span >= 2,
                "seed {seed}: validator {node} decided only span {span}"
            );
            let m = world.milestone(node);
            // 40 heights take well over a second of simulated time: dozens of blocks.
            assert!(
                m.number >= 10,
                "seed {seed}: validator {node} finalized only {} blocks by {} ms",
                m.number,
                world.now_ms()
            );
        }
    }
}
