//! bttc-engine: all BTTC protocol logic, free of sockets, files and clocks.
//!
//! Drivers (the `bttc` binary, `bttc-storage`, `bttc-net`) own threads, I/O and time; the engine
//! defines the traits it needs (state reader, trie node reader) and pure functions over batches.

pub mod chain;
pub mod crypto;
pub mod delivery;
pub mod exec;
pub mod merkle;
pub mod pipeline;
pub mod primitives;
pub mod root;
