//! An in-memory BTTC chain store for simulations: state, trie nodes and the canonical
//! headers of one node, written a whole block at a time.

use crate::{
    chain::builder::BuiltBlock,
    exec::{MemState, StateChanges, StateError, StateReader},
    merkle::{
        state_root::update_state_root,
        trie::{MemTrieStore, TrieError, TrieOwner, TrieReader},
    },
    primitives::{Account, BlockNumber},
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::{Nibbles, nodes::TrieNode};

/// One node's chain: the state after its tip, the trie of that state, and its headers.
#[derive(Debug, Clone, Default)]
pub struct MemChain {
    pub state: MemState,
    pub trie: MemTrieStore,
    pub headers: Vec<Header>,
    pub hashes: Vec<B256>,
}

impl MemChain {
    /// A chain holding genesis: `changes` over an empty state, under a header built by
    /// `header` from the resulting state root.
    pub fn genesis(
        changes: &StateChanges,
        header: impl FnOnce(B256) -> Header,
    ) -> Result<Self, TrieError> {
        let mut chain = Self::default();
        let update = update_state_root(&chain.trie, changes)?;
        let header = header(update.root);
        chain.state.apply(changes);
        chain.trie.apply_state_update(update);
        chain.hashes.push(header.hash_slow());
        chain.headers.push(header);
        Ok(chain)
    }

    pub fn tip(&self) -> &Header {
        self.headers.last().expect("a chain holds genesis")
    }

    pub fn tip_hash(&self) -> B256 {
        *self.hashes.last().expect("a chain holds genesis")
    }

    /// Commits a block on the tip.
    pub fn commit(&mut self, block: BuiltBlock) {
        assert_eq!(
            block.header.number,
            self.tip().number + 1,
            "blocks in order"
        );
        self.state.apply(&block.changes);
        self.trie.apply_state_update(block.root_update);
        self.state
            .block_hashes
            .insert(block.header.number, block.hash);
        self.hashes.push(block.hash);
        self.headers.push(block.header);
    }

    pub fn balance(&self, address: &Address) -> U256 {
        self.state
            .accounts
            .get(address)
            .map_or(U256::ZERO, |a| a.balance)
    }
}

impl StateReader for MemChain {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.state.account(address)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.state.storage(address, slot)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.state.code(code_hash)
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        Ok(self.hashes.get(number as usize).copied())
    }
}

impl TrieReader for MemChain {
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        self.trie.trie_node(owner, path)
    }
    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        self.trie.decoded_trie_node(owner, path)
    }
}
