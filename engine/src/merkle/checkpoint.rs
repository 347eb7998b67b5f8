//! Checkpoint Merkle trees (spec §1.2, §1.3): the root over a range of BTTC block headers that
//! root chains store, membership proofs for exits, and the fee-account root.

use alloy_primitives::{Address, B256, U256, keccak256};

/// Blocks one checkpoint may cover (bor's `MaxCheckpointLength`).
pub const CHECKPOINT_BLOCKS_MAX: u64 = 1 << 15;

/// The header fields a checkpoint leaf commits to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLeaf {
    pub number: u64,
    pub time: u64,
    pub tx_root: B256,
    pub receipt_root: B256,
}

impl HeaderLeaf {
    /// `keccak256(abi.encodePacked(uint256 number, uint256 time, bytes32 txRoot, bytes32
    /// receiptRoot))`.
    pub fn hash(&self) -> B256 {
        let mut bytes = [0u8; 128];
        bytes[24..32].copy_from_slice(&self.number.to_be_bytes());
        bytes[56..64].copy_from_slice(&self.time.to_be_bytes());
        bytes[64..96].copy_from_slice(self.tx_root.as_slice());
        bytes[96..].copy_from_slice(self.receipt_root.as_slice());
        keccak256(bytes)
    }
}

fn parent(left: &B256, right: &B256) -> B256 {
    let mut bytes = [0u8; 64];
    bytes[..32].copy_from_slice(left.as_slice());
    bytes[32..].copy_from_slice(right.as_slice());
    keccak256(bytes)
}

/// A checkpoint tree: leaves padded with zero (unhashed) leaves to a power of two, parents
/// `keccak256(left ‖ right)` without sorting. `levels[0]` are the leaves, the last the root.
#[derive(Debug, Clone)]
pub struct CheckpointTree {
    levels: Vec<Vec<B256>>,
}

impl CheckpointTree {
    /// The tree over leaf hashes (at least one).
    pub fn new(leaves: Vec<B256>) -> Self {
        let width = leaves.len().max(1).next_power_of_two();
        let mut level = leaves;
        level.resize(width, B256::ZERO);
        let mut levels = vec![level];
        while levels.last().expect("a level").len() > 1 {
            let next = levels
                .last()
                .expect("a level")
                .chunks_exact(2)
                .map(|pair| parent(&pair[0], &pair[1]))
                .collect();
            levels.push(next);
        }
        Self { levels }
    }

    pub fn from_headers(headers: &[HeaderLeaf]) -> Self {
        Self::new(headers.iter().map(HeaderLeaf::hash).collect())
    }

    pub fn root(&self) -> B256 {
        self.levels.last().expect("a level")[0]
    }

    /// The siblings from leaf `index` up to the root, concatenated (the contracts' `proof`).
    pub fn proof(&self, index: usize) -> Option<Vec<u8>> {
        if index >= self.levels[0].len() {
            return None;
        }
        let mut proof = Vec::with_capacity(32 * (self.levels.len() - 1));
        let mut i = index;
        for level in &self.levels[..self.levels.len() - 1] {
            proof.extend_from_slice(level[i ^ 1].as_slice());
            i /= 2;
        }
        Some(proof)
    }
}

/// The contracts' `Merkle.checkMembership(leaf, index, root, proof)`.
pub fn check_membership(leaf: B256, index: u64, root: B256, proof: &[u8]) -> bool {
    if !proof.len().is_multiple_of(32) {
        return false;
    }
    let height = proof.len() / 32;
    if height < 64 && index >= 1u64 << height {
        return false;
    }
    let mut hash = leaf;
    let mut index = index;
    for sibling in proof.chunks_exact(32) {
        let sibling = B256::from_slice(sibling);
        hash = if index.is_multiple_of(2) {
            parent(&hash, &sibling)
        } else {
            parent(&sibling, &hash)
        };
        index /= 2;
    }
    hash == root
}

/// The fee-account root (spec §1.3): accounts sorted by address, leaves
/// `keccak256(abi.encode(address, uint256))`, an odd level pairs its last node with itself.
pub fn account_root(accounts: &[(Address, U256)]) -> B256 {
    let mut sorted = accounts.to_vec();
    sorted.sort_by_key(|(a, _)| *a);
    let mut level: Vec<B256> = sorted
        .iter()
        .map(|(address, fee)| {
            let mut bytes = [0u8; 64];
            bytes[12..32].copy_from_slice(address.as_slice());
            bytes[32..].copy_from_slice(&fee.to_be_bytes::<32>());
            keccak256(bytes)
        })
        .collect();
    if level.is_empty() {
        return B256::ZERO;
    }
    if level.len() % 2 == 1 {
        level.push(*level.last().expect("non-empty"));
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| parent(&pair[0], pair.get(1).unwrap_or(&pair[0])))
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::b256;

    /// The spec's synthetic vector (§1.2): blocks 1000..=1002.
    #[test]
    fn spec_vector_root_and_proofs() {
        let root_of_empty =
            b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");
        let headers: Vec<HeaderLeaf> = (0..3u64)
            .map(|i| HeaderLeaf {
                number: 1000 + i,
                time: 1_640_000_000 + 2 * i,
                tx_root: root_of_empty,
                receipt_root: root_of_empty,
            })
            .collect();
        assert_eq!(
            headers[0].hash(),
            b256!("6612fa3357e8123f2e8990d407d65796212f56d5880aabaa1aa06e1a26a3b3c4")
        );
        let tree = CheckpointTree::from_headers(&headers);
        assert_eq!(
            tree.root(),
            b256!("60b80d8446b2f5ab246dc2674f9bc7c3bdc000f8ae733849596927dfc5e74667")
        );
        for (i, h) in headers.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            assert_eq!(proof.len(), 64);
            assert!(check_membership(h.hash(), i as u64, tree.root(), &proof));
            // The wrong index, a flipped proof byte or a short proof fail.
            assert!(!check_membership(
                h.hash(),
                (i as u64 + 1) % 4,
                tree.root(),
                &proof
            ));
            let mut bad = proof.clone();
            bad[5] ^= 1;
            assert!(!check_membership(h.hash(), i as u64, tree.root(), &bad));
            assert!(!check_membership(
                h.hash(),
                i as u64,
                tree.root(),
                &proof[..63]
            ));
        }
        // An index beyond the proof's width is refused (the contract's require).
        assert!(!check_membership(
            headers[0].hash(),
            4,
            tree.root(),
            &tree.proof(0).unwrap()
        ));
    }

    #[test]
    fn single_leaf_and_account_roots() {
        let leaf = B256::repeat_byte(7);
        let tree = CheckpointTree::new(vec![leaf]);
        assert_eq!(tree.root(), leaf);
        assert_eq!(tree.proof(0).unwrap(), Vec::<u8>::new());
        assert!(check_membership(leaf, 0, leaf, &[]));
        // One account: keccak(L ‖ L).
        let a = (Address::with_last_byte(1), U256::from(5));
        let mut bytes = [0u8; 64];
        bytes[31] = 1;
        bytes[63] = 5;
        let l = keccak256(bytes);
        assert_eq!(account_root(&[a]), parent(&l, &l));
        // Three accounts: the last leaf is duplicated; order of input does not matter.
        let b = (Address::with_last_byte(2), U256::from(6));
        let c = (Address::with_last_byte(3), U256::ZERO);
        assert_eq!(account_root(&[c, a, b]), account_root(&[a, b, c]));
    }
}
