//! Merkle structures: the incremental state trie (and, later, checkpoint trees and proofs).

pub mod state_root;
pub mod trie;
