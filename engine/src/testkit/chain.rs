//! An in-memory BTTC chain store for simulations: state, trie nodes and the canonical
//! headers of one node, written a whole block at a time.

use crate::{
    chain::{
        bor::host::{BorStore, ChainMeta},
        builder::BuiltBlock,
    },
    exec::{MemState, StateChanges, StateError, StateReader, reverse_changes},
    merkle::{
        state_root::update_state_root,
        trie::{MemTrieStore, TrieError, TrieOwner, TrieReader},
    },
    primitives::{Account, BlockNumber, RecoveredTx},
};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_trie::{Nibbles, nodes::TrieNode};

/// One node's chain: the state after its tip, the trie of that state, its headers and
/// bodies, and for each block the changes that undo it.
#[derive(Debug, Clone, Default)]
pub struct MemChain {
    pub state: MemState,
    pub trie: MemTrieStore,
    pub headers: Vec<Header>,
    pub hashes: Vec<B256>,
    pub bodies: Vec<Vec<RecoveredTx>>,
    undo: Vec<StateChanges>,
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
        chain.bodies.push(Vec::new());
        chain.undo.push(StateChanges::default());
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
        let undo = reverse_changes(&self.state, &block.changes, |address| {
            Ok(self.slots_of(address))
        })
        .expect("memory reads do not fail");
        self.state.apply(&block.changes);
        self.trie.apply_state_update(block.root_update);
        self.state
            .block_hashes
            .insert(block.header.number, block.hash);
        self.hashes.push(block.hash);
        self.headers.push(block.header);
        self.bodies.push(block.txs);
        self.undo.push(undo);
    }

    /// Takes blocks off the tip down to `number` (which stays), restoring state and trie.
    pub fn unwind_to(&mut self, number: u64) -> Result<(), TrieError> {
        while self.tip().number > number {
            let undo = self.undo.pop().expect("an undo per block");
            let update = update_state_root(&self.trie, &undo)?;
            self.state.apply(&undo);
            self.trie.apply_state_update(update);
            let header = self.headers.pop().expect("a header per block");
            self.state.block_hashes.remove(&header.number);
            self.hashes.pop();
            self.bodies.pop();
            debug_assert_eq!(
                self.trie_root(),
                self.tip().state_root,
                "the trie is back at the parent's root"
            );
        }
        Ok(())
    }

    fn trie_root(&self) -> B256 {
        crate::merkle::trie::stored_root(&self.trie, None).unwrap_or_default()
    }

    fn slots_of(&self, address: &Address) -> Vec<(U256, U256)> {
        let mut slots: Vec<(U256, U256)> = self
            .state
            .storage
            .iter()
            .filter(|((a, _), _)| a == address)
            .map(|((_, slot), value)| (*slot, *value))
            .collect();
        slots.sort_unstable();
        slots
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

/// A node's chain store under Bor: the chain and, with each canonical block, its snapshot and
/// total difficulty (a crash keeps both: each commit is whole).
#[derive(Debug, Clone)]
pub struct BorMemStore {
    pub chain: MemChain,
    meta: Vec<ChainMeta>,
}

impl BorMemStore {
    pub fn new(chain: MemChain, genesis: ChainMeta) -> Self {
        assert_eq!(chain.headers.len(), 1, "a chain holding genesis only");
        Self {
            chain,
            meta: vec![genesis],
        }
    }
}

impl BorStore for BorMemStore {
    type Error = TrieError;
    type View<'a> = MemView<'a>;

    fn view(&self) -> MemView<'_> {
        MemView(&self.chain)
    }
    fn tip(&self) -> (Header, B256) {
        (self.chain.tip().clone(), self.chain.tip_hash())
    }
    fn canonical(&self, number: u64) -> Option<(Header, B256)> {
        let i = usize::try_from(number).ok()?;
        Some((self.chain.headers.get(i)?.clone(), self.chain.hashes[i]))
    }
    fn body(&self, number: u64) -> Option<Vec<RecoveredTx>> {
        self.chain
            .bodies
            .get(usize::try_from(number).ok()?)
            .cloned()
    }
    fn commit(&mut self, block: BuiltBlock, meta: ChainMeta) -> Result<(), TrieError> {
        self.chain.commit(block);
        self.meta.push(meta);
        Ok(())
    }
    fn meta(&self, number: u64) -> Option<ChainMeta> {
        self.meta.get(usize::try_from(number).ok()?).cloned()
    }
    fn unwind_to(&mut self, number: u64) -> Result<(), TrieError> {
        self.chain.unwind_to(number)?;
        self.meta.truncate(number as usize + 1);
        Ok(())
    }
}

/// A read view of a [`MemChain`].
pub struct MemView<'a>(pub &'a MemChain);

impl StateReader for MemView<'_> {
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.0.account(address)
    }
    fn storage(&self, address: &Address, slot: &U256) -> Result<U256, StateError> {
        self.0.storage(address, slot)
    }
    fn code(&self, code_hash: &B256) -> Result<Option<Bytes>, StateError> {
        self.0.code(code_hash)
    }
    fn block_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError> {
        self.0.block_hash(number)
    }
}

impl TrieReader for MemView<'_> {
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        self.0.trie_node(owner, path)
    }
    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        self.0.decoded_trie_node(owner, path)
    }
}
