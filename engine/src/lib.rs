//! bttc-engine: all BTTC protocol logic, free of sockets, files and clocks.
//!
//! Drivers (the `bttc` binary, `bttc-storage`, `bttc-net`) own threads, I/O and time; the engine
//! defines the traits it needs (state reader, trie node reader) and pure functions over batches.

pub mod chain;
pub mod crypto;
pub mod delivery;
pub mod env;
pub mod exec;
pub mod merkle;
pub mod pipeline;
pub mod planted;
pub mod primitives;
pub mod root;
pub mod testkit;
