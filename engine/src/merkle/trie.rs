//! Incremental Merkle-Patricia trie over nodes stored by path.
//!
//! Every node of a trie is kept (RLP-encoded, as alloy-trie encodes it) under its nibble path
//! from the root, so an update loads only the nodes on the paths of the keys that change and
//! re-encodes only those: its cost grows with the changed keys, not with the size of the trie.
//! The store holds exactly the nodes reachable from the root; updates return the node writes and
//! deletions that keep it so.

use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use alloy_trie::{
    EMPTY_ROOT_HASH, Nibbles, TrieMask,
    nodes::{BranchNode, ExtensionNode, LeafNode, RlpNode, TrieNode},
};
use rayon::prelude::*;

/// Which trie a node belongs to: the account trie, or the storage trie of one hashed address.
pub type TrieOwner = Option<B256>;

/// Changes at or above this count split the root branch's children across threads.
const PARALLEL_CHANGES_MIN: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum TrieError {
    #[error("reading trie node failed: {0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("trie node at {path:?} of {owner:?} is missing")]
    Missing { owner: TrieOwner, path: Nibbles },
    #[error("stored trie node at path {path:?} of {owner:?} does not decode: {source}")]
    Decode {
        owner: TrieOwner,
        path: Nibbles,
        source: alloy_rlp::Error,
    },
}

/// Read access to stored trie nodes. Implemented by MDBX and by in-memory stores in tests.
pub trait TrieReader: Sync {
    /// The RLP of the node at `path` in the trie of `owner`, if one is stored.
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError>;

    /// The decoded node at `path`. Stores that can lend their bytes decode them in place
    /// instead of copying them out first.
    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        self.trie_node(owner, path)?
            .map(|rlp| decode_node(owner, path, &rlp))
            .transpose()
    }
}

/// Decodes a stored node, naming where it was found if it is corrupt.
pub fn decode_node(
    owner: TrieOwner,
    path: &Nibbles,
    mut rlp: &[u8],
) -> Result<TrieNode, TrieError> {
    TrieNode::decode(&mut rlp).map_err(|source| TrieError::Decode {
        owner,
        path: *path,
        source,
    })
}

/// Node writes (`Some`) and deletions (`None`) of one trie, by path; one final entry per path.
pub type NodeWrites = HashMap<Nibbles, Option<Vec<u8>>>;

/// A key (64 nibbles) and its new value; `None` deletes the key.
pub type Change = (Nibbles, Option<Vec<u8>>);

/// A node with the reference its parent holds to it.
type Built = Option<(TrieNode, RlpNode)>;

/// Applies `changes` (sorted by key, keys unique, all of the same length) to the trie of
/// `owner`, whose stored nodes `reader` gives (none at all when `wiped`). Returns the new root
/// and the node writes that bring the store to it.
pub fn update_trie<R: TrieReader>(
    reader: &R,
    owner: TrieOwner,
    wiped: bool,
    changes: &[Change],
) -> Result<(B256, NodeWrites), TrieError> {
    debug_assert!(
        changes.windows(2).all(|w| w[0].0 < w[1].0),
        "changes sorted and unique"
    );
    // About three nodes are rewritten per changed key below the shared upper levels.
    let writes = NodeWrites::with_capacity_and_hasher(changes.len() * 3 + 16, Default::default());
    let mut updater = Updater {
        reader,
        owner,
        wiped,
        writes,
    };
    let root = updater.load(&Nibbles::new())?;
    updater.update(Nibbles::new(), root, changes)?;
    let root_hash = match updater.load_raw(&Nibbles::new())? {
        Some(rlp) => keccak256(&rlp),
        None => EMPTY_ROOT_HASH,
    };
    Ok((root_hash, updater.writes))
}

/// The root hash of the trie of `owner` as stored, without changes.
pub fn stored_root<R: TrieReader>(reader: &R, owner: TrieOwner) -> Result<B256, TrieError> {
    Ok(reader
        .trie_node(owner, &Nibbles::new())?
        .map_or(EMPTY_ROOT_HASH, keccak256))
}

struct Updater<'a, R> {
    reader: &'a R,
    owner: TrieOwner,
    wiped: bool,
    writes: NodeWrites,
}

impl<R: TrieReader> Updater<'_, R> {
    fn load_raw(&self, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        if let Some(w) = self.writes.get(path) {
            return Ok(w.clone());
        }
        if self.wiped {
            return Ok(None);
        }
        self.reader.trie_node(self.owner, path)
    }

    fn load(&self, path: &Nibbles) -> Result<Option<TrieNode>, TrieError> {
        if let Some(w) = self.writes.get(path) {
            return w
                .as_deref()
                .map(|rlp| decode_node(self.owner, path, rlp))
                .transpose();
        }
        if self.wiped {
            return Ok(None);
        }
        self.reader.decoded_trie_node(self.owner, path)
    }

    fn write(&mut self, path: Nibbles, node: TrieNode) -> Built {
        let mut rlp = Vec::with_capacity(node.length());
        node.encode(&mut rlp);
        let reference = RlpNode::from_rlp(&rlp);
        self.writes.insert(path, Some(rlp));
        Some((node, reference))
    }

    /// Writes a branch straight from its children, without building an alloy `BranchNode`.
    /// The node handed back is a stand-in: callers only look inside leaves and extensions.
    fn write_branch(&mut self, path: Nibbles, children: &[Option<RlpNode>; 16]) -> Built {
        // Each child is already an RLP item (an inline node or a 32-byte hash); an empty
        // child and the empty value are 0x80, as in alloy-trie's branch encoding.
        let payload: usize = children
            .iter()
            .map(|c| c.as_ref().map_or(1, |c| c.len()))
            .sum::<usize>()
            + 1;
        let mut rlp = Vec::with_capacity(payload + 3);
        alloy_rlp::Header {
            list: true,
            payload_length: payload,
        }
        .encode(&mut rlp);
        for child in children {
            match child {
                Some(c) => rlp.extend_from_slice(c),
                None => rlp.push(alloy_rlp::EMPTY_STRING_CODE),
            }
        }
        rlp.push(alloy_rlp::EMPTY_STRING_CODE);
        let reference = RlpNode::from_rlp(&rlp);
        self.writes.insert(path, Some(rlp));
        Some((TrieNode::Branch(BranchNode::default()), reference))
    }

    fn delete(&mut self, path: Nibbles) -> Built {
        self.writes.insert(path, None);
        None
    }

    /// Applies `changes` (all under `path`) to `node`, the node at `path`, and returns the node
    /// now at `path`.
    fn update(
        &mut self,
        path: Nibbles,
        node: Option<TrieNode>,
        changes: &[Change],
    ) -> Result<Built, TrieError> {
        match node {
            None | Some(TrieNode::EmptyRoot) => {
                let entries: Vec<(Nibbles, &[u8])> = inserts(changes).collect();
                Ok(self.build(path, &entries))
            }
            Some(TrieNode::Leaf(mut leaf)) => {
                let existing = path.join(&leaf.key);
                // The common case: one key's value changes in place.
                if let [(key, Some(value))] = changes
                    && *key == existing
                {
                    leaf.value.clear();
                    leaf.value.extend_from_slice(value);
                    return Ok(self.write(path, TrieNode::Leaf(leaf)));
                }
                let mut entries: Vec<(Nibbles, &[u8])> = inserts(changes).collect();
                if changes.binary_search_by(|(k, _)| k.cmp(&existing)).is_err() {
                    let at = entries.partition_point(|(k, _)| *k < existing);
                    entries.insert(at, (existing, &leaf.value));
                }
                Ok(self.build(path, &entries))
            }
            Some(TrieNode::Extension(ext)) => self.update_extension(path, ext, changes),
            Some(TrieNode::Branch(branch)) => self.update_branch(path, branch, changes),
        }
    }

    fn update_extension(
        &mut self,
        path: Nibbles,
        ext: ExtensionNode,
        changes: &[Change],
    ) -> Result<Built, TrieError> {
        let child_path = path.join(&ext.key);
        // Deleting a key that is not under the extension is a no-op; inserting one splits it.
        let split_at = inserts(changes)
            .filter(|(k, _)| !k.starts_with(&child_path))
            .map(|(k, _)| k.slice(path.len()..).common_prefix_length(&ext.key))
            .min();
        let Some(split_at) = split_at else {
            let inside: Vec<Change> = changes
                .iter()
                .filter(|(k, _)| k.starts_with(&child_path))
                .cloned()
                .collect();
            if inside.is_empty() {
                return Ok(self.write(path, TrieNode::Extension(ext)));
            }
            let child = self.load(&child_path)?;
            let child = self.update(child_path, child, &inside)?;
            return Ok(self.finish_extension(path, ext.key, child));
        };
        // A branch now stands `split_at` nibbles below `path`; the old extension's remainder
        // hangs from it at the nibble where the new keys diverge.
        let branch_path = path.join(&ext.key.slice(..split_at));
        let nibble = ext.key.get_unchecked(split_at);
        let remainder = ext.key.slice(split_at + 1..);
        let child_ref = if remainder.is_empty() {
            ext.child
        } else {
            let mut remainder_path = branch_path;
            remainder_path.push(nibble);
            let node = TrieNode::Extension(ExtensionNode::new(remainder, ext.child));
            self.write(remainder_path, node).expect("written").1
        };
        let mut state_mask = TrieMask::default();
        state_mask.set_bit(nibble);
        let branch = BranchNode::new(vec![child_ref], state_mask);
        let built = self.update_branch(branch_path, branch, changes)?;
        if split_at == 0 {
            Ok(built)
        } else {
            Ok(self.finish_extension(path, ext.key.slice(..split_at), built))
        }
    }

    /// Puts an extension with `key` at `path` over `child` (the node now at `path + key`),
    /// merging it into the child when the child is a leaf or an extension.
    fn finish_extension(&mut self, path: Nibbles, key: Nibbles, child: Built) -> Built {
        let child_path = path.join(&key);
        match child {
            None => self.delete(path),
            Some((TrieNode::Leaf(leaf), _)) => {
                self.delete(child_path);
                self.write(
                    path,
                    TrieNode::Leaf(LeafNode::new(key.join(&leaf.key), leaf.value)),
                )
            }
            Some((TrieNode::Extension(e), _)) => {
                self.delete(child_path);
                self.write(
                    path,
                    TrieNode::Extension(ExtensionNode::new(key.join(&e.key), e.child)),
                )
            }
            Some((_, reference)) => self.write(
                path,
                TrieNode::Extension(ExtensionNode::new(key, reference)),
            ),
        }
    }

    fn update_branch(
        &mut self,
        path: Nibbles,
        branch: BranchNode,
        changes: &[Change],
    ) -> Result<Built, TrieError> {
        let mut children: [Option<RlpNode>; 16] = Default::default();
        let mut stack = branch.stack.into_iter();
        for nibble in 0..16u8 {
            if branch.state_mask.is_bit_set(nibble) {
                children[nibble as usize] = stack.next();
            }
        }
        let depth = path.len();
        let mut groups: Vec<(u8, &[Change])> = Vec::new();
        let mut rest = changes;
        while let Some((first, _)) = rest.first() {
            let nibble = first.get_unchecked(depth);
            let len = rest.partition_point(|(k, _)| k.get_unchecked(depth) == nibble);
            groups.push((nibble, &rest[..len]));
            rest = &rest[len..];
        }
        if depth == 0 && changes.len() >= PARALLEL_CHANGES_MIN {
            let results: Vec<Result<(u8, Built, NodeWrites), TrieError>> = groups
                .par_iter()
                .map(|&(nibble, group)| {
                    let mut sub = Updater {
                        reader: self.reader,
                        owner: self.owner,
                        wiped: self.wiped,
                        writes: NodeWrites::with_capacity_and_hasher(
                            group.len() * 3 + 16,
                            Default::default(),
                        ),
                    };
                    let child_path = child_path(&path, nibble);
                    let child = if children[nibble as usize].is_some() {
                        sub.load(&child_path)?
                    } else {
                        None
                    };
                    let built = sub.update(child_path, child, group)?;
                    Ok((nibble, built, sub.writes))
                })
                .collect();
            for result in results {
                let (nibble, built, writes) = result?;
                self.writes.extend(writes);
                children[nibble as usize] = built.map(|(_, r)| r);
            }
        } else {
            for (nibble, group) in groups {
                let child_path = child_path(&path, nibble);
                let child = if children[nibble as usize].is_some() {
                    self.load(&child_path)?
                } else {
                    None
                };
                let built = self.update(child_path, child, group)?;
                children[nibble as usize] = built.map(|(_, r)| r);
            }
        }

        let mut present = children.iter().enumerate().filter(|(_, c)| c.is_some());
        let (first, second) = (present.next(), present.next());
        match (first, second) {
            (None, _) => Ok(self.delete(path)),
            (Some((only, _)), None) => {
                // One child left: the branch collapses into it.
                let only = only as u8;
                let child_path = child_path(&path, only);
                // Rare: read the survivor back (from this update's writes if it changed).
                let child = self.load(&child_path)?.ok_or(TrieError::Missing {
                    owner: self.owner,
                    path: child_path,
                })?;
                let key = Nibbles::from_nibbles_unchecked([only]);
                let reference = children[only as usize].take().expect("present");
                Ok(self.finish_extension(path, key, Some((child, reference))))
            }
            _ => Ok(self.write_branch(path, &children)),
        }
    }

    /// Builds a fresh subtree at `path` from `entries` (sorted full keys under `path`).
    fn build(&mut self, path: Nibbles, entries: &[(Nibbles, &[u8])]) -> Built {
        match entries {
            [] => self.delete(path),
            [(key, value)] => {
                let leaf = LeafNode::new(key.slice(path.len()..), value.to_vec());
                self.write(path, TrieNode::Leaf(leaf))
            }
            [(first, _), .., (last, _)] => {
                let common = first.common_prefix_length(last);
                if common > path.len() {
                    let key = first.slice(path.len()..common);
                    let child = self.build(first.slice(..common), entries);
                    return self.finish_extension(path, key, child);
                }
                let depth = path.len();
                let mut children: [Option<RlpNode>; 16] = Default::default();
                let mut rest = entries;
                while let Some((key, _)) = rest.first() {
                    let nibble = key.get_unchecked(depth);
                    let len = rest.partition_point(|(k, _)| k.get_unchecked(depth) == nibble);
                    let (_, reference) = self
                        .build(child_path(&path, nibble), &rest[..len])
                        .expect("non-empty");
                    children[nibble as usize] = Some(reference);
                    rest = &rest[len..];
                }
                self.write_branch(path, &children)
            }
        }
    }
}

fn child_path(path: &Nibbles, nibble: u8) -> Nibbles {
    let mut p = *path;
    p.push(nibble);
    p
}

fn inserts(changes: &[Change]) -> impl Iterator<Item = (Nibbles, &[u8])> {
    changes
        .iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v)))
}

/// Root of a trie built from scratch with alloy-trie's `HashBuilder`, from `entries` sorted by
/// key: the reference the incremental trie is tested and benchmarked against.
pub fn full_root<'a>(entries: impl IntoIterator<Item = (Nibbles, &'a [u8])>) -> B256 {
    let mut builder = alloy_trie::HashBuilder::default();
    for (key, value) in entries {
        builder.add_leaf(key, value);
    }
    builder.root()
}

/// An in-memory trie node store: for tests, benches, and state kept without a database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MemTrieStore {
    accounts: HashMap<Nibbles, Vec<u8>>,
    storages: HashMap<B256, HashMap<Nibbles, Vec<u8>>>,
}

impl MemTrieStore {
    fn trie_mut(&mut self, owner: TrieOwner) -> &mut HashMap<Nibbles, Vec<u8>> {
        match owner {
            None => &mut self.accounts,
            Some(o) => self.storages.entry(o).or_default(),
        }
    }

    fn trie(&self, owner: TrieOwner) -> Option<&HashMap<Nibbles, Vec<u8>>> {
        match owner {
            None => Some(&self.accounts),
            Some(o) => self.storages.get(&o),
        }
    }

    pub fn apply(&mut self, owner: TrieOwner, writes: NodeWrites) {
        let trie = self.trie_mut(owner);
        for (path, node) in writes {
            match node {
                Some(rlp) => trie.insert(path, rlp),
                None => trie.remove(&path),
            };
        }
        if let Some(o) = owner
            && self.storages.get(&o).is_some_and(HashMap::is_empty)
        {
            self.storages.remove(&o);
        }
    }

    /// Applies a state root update: storage wipes first, then storage and account writes.
    pub fn apply_state_update(&mut self, update: super::state_root::StateRootUpdate) {
        for owner in update.wiped_storage {
            self.wipe(Some(owner));
        }
        for (owner, writes) in update.storage_writes {
            self.apply(Some(owner), writes);
        }
        self.apply(None, update.account_writes);
    }

    /// Deletes every node of the trie of `owner`.
    pub fn wipe(&mut self, owner: TrieOwner) {
        match owner {
            None => self.accounts.clear(),
            Some(o) => {
                self.storages.remove(&o);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.accounts.len() + self.storages.values().map(HashMap::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl TrieReader for MemTrieStore {
    fn trie_node(&self, owner: TrieOwner, path: &Nibbles) -> Result<Option<Vec<u8>>, TrieError> {
        Ok(self.trie(owner).and_then(|t| t.get(path)).cloned())
    }

    fn decoded_trie_node(
        &self,
        owner: TrieOwner,
        path: &Nibbles,
    ) -> Result<Option<TrieNode>, TrieError> {
        self.trie(owner)
            .and_then(|t| t.get(path))
            .map(|rlp| decode_node(owner, path, rlp))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn key(i: u64) -> Nibbles {
        Nibbles::unpack(keccak256(i.to_be_bytes()))
    }

    /// Applies rounds of changes incrementally and checks each root against a full rebuild,
    /// and that the store holds exactly the reachable nodes (rebuilt store has the same size).
    fn check_rounds(rounds: Vec<Vec<(u64, Option<u8>)>>, short_keys: bool) {
        let mut store = MemTrieStore::default();
        let mut model: BTreeMap<Nibbles, Vec<u8>> = BTreeMap::new();
        for round in rounds {
            let mut changes: BTreeMap<Nibbles, Option<Vec<u8>>> = BTreeMap::new();
            for (k, v) in round {
                let k = if short_keys {
                    // Few distinct nibbles: forces extensions, splits and collapses.
                    Nibbles::from_nibbles_unchecked([
                        (k % 3) as u8,
                        ((k / 3) % 3) as u8,
                        1,
                        (k / 9 % 4) as u8,
                    ])
                } else {
                    key(k)
                };
                changes.insert(k, v.map(|b| vec![b; 1 + (b as usize % 40)]));
            }
            let changes: Vec<Change> = changes.into_iter().collect();
            for (k, v) in &changes {
                match v {
                    Some(v) => model.insert(*k, v.clone()),
                    None => model.remove(k),
                };
            }
            let (root, writes) = update_trie(&store, None, false, &changes).unwrap();
            store.apply(None, writes);
            let expected = full_root(model.iter().map(|(k, v)| (*k, v.as_slice())));
            assert_eq!(root, expected);
            // The incremental store equals a store built in one go from the model.
            let mut fresh = MemTrieStore::default();
            let all: Vec<Change> = model.iter().map(|(k, v)| (*k, Some(v.clone()))).collect();
            let (fresh_root, writes) = update_trie(&fresh, None, false, &all).unwrap();
            fresh.apply(None, writes);
            assert_eq!(fresh_root, expected);
            assert_eq!(store, fresh, "store holds exactly the reachable nodes");
        }
    }

    #[test]
    fn empty_trie_has_empty_root() {
        let store = MemTrieStore::default();
        let (root, writes) = update_trie(&store, None, false, &[]).unwrap();
        assert_eq!(root, EMPTY_ROOT_HASH);
        assert!(writes.values().all(Option::is_none));
    }

    #[test]
    fn insert_then_delete_everything() {
        let ins: Vec<_> = (0..50).map(|i| (i, Some(i as u8))).collect();
        let del: Vec<_> = (0..50).map(|i| (i, None)).collect();
        check_rounds(vec![ins, del], false);
    }

    #[test]
    fn parallel_root_update_matches_rebuild() {
        let ins: Vec<_> = (0..2000).map(|i| (i, Some(i as u8))).collect();
        let upd: Vec<_> = (0..3000)
            .step_by(2)
            .map(|i| (i, if i % 3 == 0 { None } else { Some(7) }))
            .collect();
        check_rounds(vec![ins, upd], false);
    }

    proptest! {
        #[test]
        fn incremental_root_matches_rebuild(
            rounds in prop::collection::vec(prop::collection::vec((0u64..60, prop::option::of(any::<u8>())), 0..30), 1..6),
            short in any::<bool>(),
        ) {
            check_rounds(rounds, short);
        }
    }
}
