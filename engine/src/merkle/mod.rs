//! Merkle structures: the incremental state trie, checkpoint trees and their proofs.

pub mod checkpoint;
pub mod proof;
pub mod state_root;
pub mod trie;
