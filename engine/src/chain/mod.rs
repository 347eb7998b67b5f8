//! The BTTC chain: chain specs, genesis, mempool, and block building.

pub mod builder;
pub mod genesis;
pub mod mempool;
pub mod spec;
