//! Our Solidity proof libraries (engine/contracts, compiled by solc-js into committed artifacts)
//! run on revm through the engine's executor, fed with proofs built in Rust: both sides must
//! agree on every checkpoint and receipt proof, and both must refuse tampered ones.

use alloy_consensus::{Eip658Value, Receipt, ReceiptEnvelope, TxType};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, LogData, U256, address};
use alloy_sol_types::{SolCall, sol};
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{BlockEnv, CallRequest, MemState, call},
    merkle::checkpoint::{CheckpointTree, HeaderLeaf},
    root::exit::{ExitPayload, encode_proof_nodes, receipt_proof},
};
use std::path::Path;

sol! {
    function checkMembership(bytes32 leaf, uint256 index, bytes32 root, bytes proof) external pure returns (bool);
    function verifyReceipt(bytes value, bytes path, bytes nodes, bytes32 root) external pure returns (bool);
    function readExit(bytes payload) external pure returns (uint256 headerNumber, uint256 blockNumber, uint256 logIndex, address emitter);
}

const HARNESS: Address = address!("00000000000000000000000000000000000000aa");

struct Chain {
    spec: ChainSpec,
    state: MemState,
    env: BlockEnv,
}

impl Chain {
    fn new() -> Self {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/artifacts/ProofHarness.json");
        let artifact: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("committed artifact"))
                .unwrap();
        let code: Bytes = artifact["deployedBytecode"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            artifact["evmVersion"], "paris",
            "root-chain code must not use PUSH0"
        );
        let mut state = MemState::default();
        state.insert_contract(HARNESS, code, U256::ZERO);
        let spec = ChainSpec::dev();
        let env = BlockEnv {
            number: 1,
            timestamp: 1_700_000_000,
            fee_recipient: Address::ZERO,
            gas_limit: spec.gas_limit,
            base_fee: 0,
            difficulty: U256::ZERO,
            prevrandao: B256::ZERO,
            excess_blob_gas: 0,
        };
        Self { spec, state, env }
    }

    fn call<C: SolCall>(&self, c: C) -> Result<C::Return, String> {
        let out = call(
            &self.spec,
            &self.state,
            &self.env,
            &CallRequest {
                to: Some(HARNESS),
                gas: Some(30_000_000),
                input: c.abi_encode().into(),
                ..Default::default()
            },
        )
        .unwrap();
        if !out.success {
            return Err(format!("call failed: {out:?}"));
        }
        C::abi_decode_returns(&out.output).map_err(|e| e.to_string())
    }
}

#[test]
fn checkpoint_proofs_built_in_rust_verify_in_solidity() {
    let chain = Chain::new();
    let headers: Vec<HeaderLeaf> = (0..37u64)
        .map(|i| HeaderLeaf {
            number: 5_000 + i,
            time: 1_700_000_000 + 2 * i,
            tx_root: B256::repeat_byte(i as u8),
            receipt_root: B256::repeat_byte(0x80 | i as u8),
        })
        .collect();
    let tree = CheckpointTree::from_headers(&headers);
    for i in [0usize, 1, 17, 36] {
        let proof: Bytes = tree.proof(i).unwrap().into();
        let leaf = headers[i].hash();
        let ok = |leaf, index: u64, proof: Bytes| {
            chain
                .call(checkMembershipCall {
                    leaf,
                    index: U256::from(index),
                    root: tree.root(),
                    proof,
                })
                .unwrap()
        };
        assert!(ok(leaf, i as u64, proof.clone()));
        assert!(!ok(leaf, i as u64 + 1, proof.clone()));
        let mut tampered = proof.to_vec();
        tampered[40] ^= 0x10;
        assert!(!ok(leaf, i as u64, tampered.into()));
        assert!(!ok(leaf, i as u64, proof.slice(..proof.len() - 1)));
    }
}

fn receipts(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let receipt = Receipt {
                status: Eip658Value::Eip658(true),
                cumulative_gas_used: 50_000 * (i as u64 + 1),
                logs: vec![Log {
                    address: Address::with_last_byte(0x10 + i as u8),
                    data: LogData::new_unchecked(
                        vec![B256::repeat_byte(1), B256::with_last_byte(i as u8)],
                        vec![i as u8; 32].into(),
                    ),
                }],
            };
            let ty = if i % 2 == 0 {
                TxType::Legacy
            } else {
                TxType::Eip1559
            };
            ReceiptEnvelope::from_typed(ty, receipt).encoded_2718()
        })
        .collect()
}

#[test]
fn receipt_proofs_and_exit_payloads_built_in_rust_read_and_verify_in_solidity() {
    let chain = Chain::new();
    for n in [1usize, 5, 20, 140] {
        let encoded = receipts(n);
        for index in [0, n / 2, n - 1] {
            let proof = receipt_proof(&encoded, index).unwrap();
            let nodes = encode_proof_nodes(&proof.nodes);
            let verify = |value: Bytes, path: Bytes, nodes: Vec<u8>| {
                chain
                    .call(verifyReceiptCall {
                        value,
                        path,
                        nodes: nodes.into(),
                        root: proof.root,
                    })
                    .unwrap_or(false)
            };
            assert!(
                verify(proof.receipt.clone(), proof.branch_mask(), nodes.clone()),
                "n={n} i={index}"
            );
            // A tampered receipt, another path, a tampered node: refused.
            let mut receipt = proof.receipt.to_vec();
            let at = receipt.len() - 1;
            receipt[at] ^= 1;
            assert!(!verify(receipt.into(), proof.branch_mask(), nodes.clone()));
            if n > 1 {
                let other = receipt_proof(&encoded, (index + 1) % n).unwrap();
                assert!(!verify(
                    proof.receipt.clone(),
                    other.branch_mask(),
                    nodes.clone()
                ));
            }
            let mut bad_nodes = nodes.clone();
            let at = bad_nodes.len() - 5;
            bad_nodes[at] ^= 1;
            assert!(!verify(
                proof.receipt.clone(),
                proof.branch_mask(),
                bad_nodes
            ));

            let payload = ExitPayload {
                header_number: U256::from(20_000),
                block_proof: vec![3u8; 64].into(),
                block_number: 7_777,
                block_time: 1_700_000_000,
                tx_root: B256::repeat_byte(9),
                receipt_root: proof.root,
                receipt: proof.clone(),
                log_index: 0,
            };
            let read = chain
                .call(readExitCall {
                    payload: payload.encode().into(),
                })
                .unwrap();
            assert_eq!(read.headerNumber, U256::from(20_000));
            assert_eq!(read.blockNumber, U256::from(7_777));
            assert_eq!(read.logIndex, U256::ZERO);
            assert_eq!(read.emitter, Address::with_last_byte(0x10 + index as u8));
        }
    }
}
