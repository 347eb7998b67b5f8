//! A seeded simulated world for tests: a clock, a network that delays, drops, duplicates and
//! reorders messages, partitions that heal and links an adversary slows on purpose, stores that
//! crash (a persist batch wholly written or not at all), and side checks that take time. It
//! drives the same validator hosts a node runs, carried out by the same [`Effects::carry_out`],
//! and records what they did so that tests can check safety and liveness for each seed.
//!
//! [`Effects::carry_out`]: crate::delivery::host::Effects::carry_out

pub mod bttc;
pub mod chain;
pub mod delivery;
pub mod rng;
pub mod store;

pub use rng::Rng;
pub use store::SimStore;

/// The simulation's clock: time moves only when the world moves it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SimClock {
    pub now_ms: u64,
}

impl crate::env::Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now_ms
    }
}
