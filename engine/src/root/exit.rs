//! Exits (spec §3.2): the receipt-trie proof of a BTTC receipt, the `RootChainManager.exit`
//! payload that carries it with the checkpoint proof of its block, the exit's replay key, and
//! a verifier with the contracts' Merkle-Patricia proof semantics.

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_rlp::{Encodable, Header};
use alloy_trie::{HashBuilder, Nibbles, proof::ProofRetainer};

/// A receipt with the trie nodes that prove it against a block's receipts root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptProof {
    /// The receipt as stored in the trie (its EIP-2718 encoding).
    pub receipt: Bytes,
    /// Trie nodes from the root to the receipt's leaf, each RLP-encoded.
    pub nodes: Vec<Bytes>,
    /// The trie key, `rlp(index)`.
    pub key: Bytes,
    pub root: B256,
}

impl ReceiptProof {
    /// The `branchMask` of an exit: the key hex-prefix encoded as an even path (`0x00 ‖ key`).
    pub fn branch_mask(&self) -> Bytes {
        [&[0u8][..], &self.key].concat().into()
    }
}

/// Builds the receipt trie of a block from its receipts' encodings and proves receipt `index`.
pub fn receipt_proof(encoded_receipts: &[Vec<u8>], index: usize) -> Option<ReceiptProof> {
    if index >= encoded_receipts.len() {
        return None;
    }
    let key_of = |i: usize| alloy_rlp::encode(i);
    let mut entries: Vec<(Nibbles, &[u8])> = encoded_receipts
        .iter()
        .enumerate()
        .map(|(i, r)| (Nibbles::unpack(key_of(i)), r.as_slice()))
        .collect();
    entries.sort_by_key(|e| e.0);
    let target = Nibbles::unpack(key_of(index));
    let mut builder =
        HashBuilder::default().with_proof_retainer(ProofRetainer::from_iter([target]));
    for (key, value) in &entries {
        builder.add_leaf(*key, value);
    }
    let root = builder.root();
    let nodes = builder
        .take_proof_nodes()
        .into_nodes_sorted()
        .into_iter()
        .filter(|(path, _)| path.len() <= target.len() && target.starts_with(path))
        .map(|(_, node)| node)
        .collect();
    Some(ReceiptProof {
        receipt: encoded_receipts[index].clone().into(),
        nodes,
        key: key_of(index).into(),
        root,
    })
}

/// Nibbles of a hex-prefix encoded path, as the contracts' `_getNibbleArray` reads them (a
/// first nibble of 1 or 3 marks an odd path whose second nibble belongs to it).
pub fn hp_nibbles(encoded: &[u8]) -> Vec<u8> {
    let Some(first) = encoded.first() else {
        return Vec::new();
    };
    let all = encoded.iter().flat_map(|b| [b >> 4, b & 0x0f]);
    if matches!(first >> 4, 1 | 3) {
        all.skip(1).collect()
    } else {
        all.skip(2).collect()
    }
}

/// One RLP item's full encoding and, for a list, its items; `None` if malformed.
fn rlp_items(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut buf = bytes;
    let header = Header::decode(&mut buf).ok()?;
    if !header.list || buf.len() != header.payload_length {
        return None;
    }
    let mut items = Vec::new();
    while !buf.is_empty() {
        let start = buf;
        let h = Header::decode(&mut buf).ok()?;
        if buf.len() < h.payload_length {
            return None;
        }
        buf = &buf[h.payload_length..];
        items.push(&start[..start.len() - buf.len()]);
    }
    Some(items)
}

/// The payload of an RLP string item.
fn rlp_string(item: &[u8]) -> Option<&[u8]> {
    let mut buf = item;
    let header = Header::decode(&mut buf).ok()?;
    (!header.list && buf.len() == header.payload_length).then_some(buf)
}

/// Verifies `value` at the path `branch_mask` (hex-prefix encoded) against `root`, walking
/// `nodes` (RLP-encoded, root first) with the semantics of the contracts'
/// `MerklePatriciaProof.verify`: every node must hash to its parent's reference.
pub fn verify_mpt_proof(value: &[u8], branch_mask: &[u8], nodes: &[Bytes], root: B256) -> bool {
    let path = hp_nibbles(branch_mask);
    if path.is_empty() {
        return false;
    }
    let value_hash = keccak256(value);
    let mut at = 0usize;
    let mut expected = root;
    for node in nodes {
        if at > path.len() || keccak256(node) != expected {
            return false;
        }
        let Some(items) = rlp_items(node) else {
            return false;
        };
        let reference = |item: &[u8]| {
            rlp_string(item)
                .filter(|s| s.len() == 32)
                .map(B256::from_slice)
        };
        match items.len() {
            17 => {
                if at == path.len() {
                    return rlp_string(items[16]).is_some_and(|v| keccak256(v) == value_hash);
                }
                let Some(next) = reference(items[usize::from(path[at])]) else {
                    return false;
                };
                expected = next;
                at += 1;
            }
            2 => {
                let Some(partial) = rlp_string(items[0]).map(hp_nibbles) else {
                    return false;
                };
                let end = at + partial.len();
                let traversed = if end <= path.len() && path[at..end] == partial[..] {
                    partial.len()
                } else {
                    0
                };
                if at + traversed == path.len() {
                    return rlp_string(items[1]).is_some_and(|v| keccak256(v) == value_hash);
                }
                if traversed == 0 {
                    return false;
                }
                let Some(next) = reference(items[1]) else {
                    return false;
                };
                expected = next;
                at += traversed;
            }
            _ => return false,
        }
    }
    false
}

/// `RootChainManager.exit`'s input: the RLP list of spec §3.2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitPayload {
    /// The checkpoint's `headerBlocks` key (checkpoint number × 10000).
    pub header_number: U256,
    /// The block's membership proof in the checkpoint tree (concatenated siblings).
    pub block_proof: Bytes,
    pub block_number: u64,
    pub block_time: u64,
    pub tx_root: B256,
    pub receipt_root: B256,
    pub receipt: ReceiptProof,
    pub log_index: u64,
}

impl ExitPayload {
    pub fn encode(&self) -> Vec<u8> {
        let nodes = encode_proof_nodes(&self.receipt.nodes);
        let mut payload = Vec::new();
        self.header_number.encode(&mut payload);
        self.block_proof.encode(&mut payload);
        self.block_number.encode(&mut payload);
        self.block_time.encode(&mut payload);
        self.tx_root.encode(&mut payload);
        self.receipt_root.encode(&mut payload);
        self.receipt.receipt.encode(&mut payload);
        Bytes::from(nodes).encode(&mut payload);
        self.receipt.branch_mask().encode(&mut payload);
        self.log_index.encode(&mut payload);
        super::rlp_list(&payload)
    }

    /// `keccak256(abi.encodePacked(uint256 blockNumber, nibbles(branchMask), uint256
    /// logIndex))`: the key of `processedExits`.
    pub fn exit_hash(&self) -> B256 {
        let mut bytes = U256::from(self.block_number).to_be_bytes_vec();
        bytes.extend(hp_nibbles(&self.receipt.branch_mask()));
        bytes.extend_from_slice(&U256::from(self.log_index).to_be_bytes::<32>());
        keccak256(bytes)
    }
}

/// The RLP list of a proof's nodes, each node written as is (it is already RLP): the form
/// `MerklePatriciaProof.verify` reads.
pub fn encode_proof_nodes(nodes: &[Bytes]) -> Vec<u8> {
    let payload_length = nodes.iter().map(|n| n.len()).sum();
    let mut out = Vec::with_capacity(payload_length + 9);
    Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    for node in nodes {
        out.extend_from_slice(node);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{StoredReceipt, receipts_root};
    use alloy_consensus::{Eip658Value, Receipt};
    use alloy_eips::eip2718::Encodable2718;
    use alloy_primitives::{Address, Log, LogData};

    fn receipts(n: usize) -> Vec<StoredReceipt> {
        (0..n)
            .map(|i| StoredReceipt {
                tx_type: (i % 3) as u8,
                receipt: Receipt {
                    status: Eip658Value::Eip658(i % 5 != 0),
                    cumulative_gas_used: 21_000 * (i as u64 + 1),
                    logs: vec![Log {
                        address: Address::with_last_byte(i as u8),
                        data: LogData::new_unchecked(
                            vec![B256::repeat_byte(i as u8)],
                            vec![i as u8; 32].into(),
                        ),
                    }],
                },
            })
            .collect()
    }

    fn encode(receipts: &[StoredReceipt]) -> Vec<Vec<u8>> {
        receipts
            .iter()
            .map(|r| {
                let ty = alloy_consensus::TxType::try_from(r.tx_type).unwrap();
                alloy_consensus::ReceiptEnvelope::from_typed(ty, r.receipt.clone()).encoded_2718()
            })
            .collect()
    }

    #[test]
    fn every_receipt_of_blocks_of_many_sizes_proves_against_the_receipts_root() {
        for n in [1, 2, 3, 16, 17, 130, 300] {
            let receipts = receipts(n);
            let encoded = encode(&receipts);
            for index in [0, n / 2, n - 1] {
                let proof = receipt_proof(&encoded, index).unwrap();
                assert_eq!(proof.root, receipts_root(&receipts), "n={n}");
                assert!(
                    verify_mpt_proof(
                        &proof.receipt,
                        &proof.branch_mask(),
                        &proof.nodes,
                        proof.root
                    ),
                    "n={n} index={index}"
                );
                // Another receipt, another path, a tampered node or a missing node fail.
                let other = &encoded[(index + 1) % n];
                if n > 1 {
                    assert!(!verify_mpt_proof(
                        other,
                        &proof.branch_mask(),
                        &proof.nodes,
                        proof.root
                    ));
                    let wrong_path = receipt_proof(&encoded, (index + 1) % n)
                        .unwrap()
                        .branch_mask();
                    assert!(!verify_mpt_proof(
                        &proof.receipt,
                        &wrong_path,
                        &proof.nodes,
                        proof.root
                    ));
                }
                let mut tampered = proof.nodes.clone();
                let mut last = tampered.pop().unwrap().to_vec();
                let at = last.len() - 3;
                last[at] ^= 1;
                tampered.push(last.into());
                assert!(!verify_mpt_proof(
                    &proof.receipt,
                    &proof.branch_mask(),
                    &tampered,
                    proof.root
                ));
                assert!(!verify_mpt_proof(
                    &proof.receipt,
                    &proof.branch_mask(),
                    &proof.nodes[..proof.nodes.len() - 1],
                    proof.root
                ));
            }
        }
        assert!(receipt_proof(&encode(&receipts(2)), 2).is_none());
    }

    #[test]
    fn exit_payload_is_the_rlp_list_of_ten_items() {
        let encoded = encode(&receipts(20));
        let proof = receipt_proof(&encoded, 17).unwrap();
        let payload = ExitPayload {
            header_number: U256::from(30_000),
            block_proof: vec![7u8; 64].into(),
            block_number: 1_234,
            block_time: 1_640_000_000,
            tx_root: B256::repeat_byte(3),
            receipt_root: proof.root,
            receipt: proof.clone(),
            log_index: 0,
        };
        let bytes = payload.encode();
        let items = rlp_items(&bytes).unwrap();
        assert_eq!(items.len(), 10);
        assert_eq!(rlp_string(items[6]).unwrap(), &proof.receipt[..]);
        // Item 7 holds the RLP list of the proof's nodes.
        let nodes = rlp_items(rlp_string(items[7]).unwrap()).unwrap();
        assert_eq!(nodes.len(), proof.nodes.len());
        assert_eq!(rlp_string(items[8]).unwrap(), &[0x00, 0x11][..]);
        // The replay key: block number, the path's nibbles [1, 1], log index.
        let mut packed = U256::from(1_234).to_be_bytes_vec();
        packed.extend([1, 1]);
        packed.extend([0u8; 32]);
        assert_eq!(payload.exit_hash(), keccak256(packed));
    }

    #[test]
    fn hex_prefix_paths() {
        assert_eq!(hp_nibbles(&[0x00, 0x12]), vec![1, 2]);
        assert_eq!(hp_nibbles(&[0x20, 0x12]), vec![1, 2]);
        assert_eq!(hp_nibbles(&[0x13, 0x45]), vec![3, 4, 5]);
        assert_eq!(hp_nibbles(&[0x3a]), vec![0xa]);
        assert!(hp_nibbles(&[]).is_empty());
        assert!(!verify_mpt_proof(b"x", &[], &[], B256::ZERO));
    }
}
