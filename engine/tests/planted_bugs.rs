//! The simulation has teeth: for each bug planted in the protocol (a test-only switch, built
//! only with the `planted-bugs` feature), the seeded simulation finds the violation that bug
//! causes within a CI-sized number of seeds, and prints the seed. Run by `scripts/test.sh` as
//! `cargo test --workspace --features bttc-engine/planted-bugs --test planted_bugs`.
#![cfg(feature = "planted-bugs")]

use bttc_engine::{
    planted::{Bug, plant},
    testkit::delivery::{Scenario, Violation, World},
};

/// Seeds tried per bug before the hunt counts as failed.
const SEEDS_MAX: u64 = 3_000;

/// Runs seeds (4, 7 and 10 validators in turn) with `bug` planted until a run breaks the
/// property `expected` names; returns the seed and the violation.
fn hunt(bug: Bug, expected: fn(&Violation) -> bool) -> (u64, usize, Violation) {
    plant(Some(bug));
    let found = (0..SEEDS_MAX).find_map(|seed| {
        let n = [4, 7, 10][(seed % 3) as usize];
        let mut world = World::new(Scenario::random(n, seed));
        world.run();
        match world.check() {
            Err(v) if expected(&v) => Some((seed, n, v)),
            _ => None,
        }
    });
    plant(None);
    let (seed, n, violation) =
        found.unwrap_or_else(|| panic!("{bug:?}: no violation in {SEEDS_MAX} seeds"));
    println!("{bug:?}: seed {seed} ({n} validators): {violation}");
    (seed, n, violation)
}

#[test]
fn ignored_locks_break_agreement() {
    hunt(Bug::IgnoreLocks, |v| {
        matches!(v, Violation::Disagreement { .. })
    });
}

#[test]
fn a_two_thirds_quorum_breaks_agreement() {
    hunt(Bug::QuorumTwoThirds, |v| {
        matches!(v, Violation::Disagreement { .. })
    });
}

#[test]
fn proposals_from_anyone_get_decided() {
    hunt(Bug::AnyProposer, |v| {
        matches!(v, Violation::NotProposed { .. })
    });
}

#[test]
fn a_restart_without_the_signed_record_double_signs() {
    hunt(Bug::ForgetSignedRecord, |v| {
        matches!(v, Violation::DoubleSign { .. })
    });
}
