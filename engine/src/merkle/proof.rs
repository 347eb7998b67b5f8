//! EIP-1186 proofs from the stored trie: the nodes on a key's path, root first, as
//! `eth_getProof` returns them (nodes embedded in their parent are not listed on their own).

use crate::merkle::trie::{TrieError, TrieOwner, TrieReader};
use alloy_primitives::{B256, Bytes};
use alloy_trie::{Nibbles, nodes::TrieNode};

/// The proof of `key` (a hashed address or hashed slot) in the trie of `owner`. It ends at
/// the node that holds the key, or where the path shows that the key is absent.
pub fn trie_proof<R: TrieReader>(
    reader: &R,
    owner: TrieOwner,
    key: B256,
) -> Result<Vec<Bytes>, TrieError> {
    let key = Nibbles::unpack(key);
    let mut path = Nibbles::new();
    let mut proof = Vec::new();
    while let Some(rlp) = reader.trie_node(owner, &path)? {
        if path.is_empty() || rlp.len() >= 32 {
            proof.push(Bytes::from(rlp.clone()));
        }
        match crate::merkle::trie::decode_node(owner, &path, &rlp)? {
            TrieNode::Branch(branch) => {
                if path.len() >= key.len() {
                    break;
                }
                let nibble = key.get_unchecked(path.len());
                if !branch.state_mask.is_bit_set(nibble) {
                    break;
                }
                path.push(nibble);
            }
            TrieNode::Extension(ext) => {
                let rest = key.slice(path.len()..);
                if !rest.starts_with(&ext.key) {
                    break;
                }
                path.extend(&ext.key);
            }
            TrieNode::Leaf(_) | TrieNode::EmptyRoot => break,
        }
    }
    Ok(proof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::trie::{MemTrieStore, update_trie};
    use alloy_primitives::keccak256;
    use proptest::prelude::*;

    proptest! {
        /// Proofs of present keys prove their values and proofs of absent keys prove absence,
        /// against the root the store holds (alloy-trie's verifier is the judge).
        #[test]
        fn proofs_verify_for_present_and_absent_keys(
            seeds in proptest::collection::btree_set(any::<u16>(), 1..300),
            probes in proptest::collection::vec(any::<u16>(), 1..20),
        ) {
            let value = |s: u16| alloy_rlp::encode(u64::from(s) + 1);
            let changes: Vec<_> = seeds
                .iter()
                .map(|s| (Nibbles::unpack(keccak256(s.to_be_bytes())), Some(value(*s))))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let mut store = MemTrieStore::default();
            let (root, writes) = update_trie(&store, None, false, &changes).unwrap();
            store.apply(None, writes);
            for probe in seeds.iter().take(5).copied().chain(probes) {
                let key = keccak256(probe.to_be_bytes());
                let proof = trie_proof(&store, None, key).unwrap();
                let expected = seeds.contains(&probe).then(|| value(probe));
                prop_assert!(alloy_trie::proof::verify_proof(root, Nibbles::unpack(key), expected, &proof).is_ok());
                // A wrong claim fails.
                let wrong = Some(alloy_rlp::encode(u64::MAX));
                prop_assert!(alloy_trie::proof::verify_proof(root, Nibbles::unpack(key), wrong, &proof).is_err());
            }
        }
    }
}
