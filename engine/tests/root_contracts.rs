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

/// A block at `number` and `timestamp` without fees.
fn block_env(spec: &ChainSpec, number: u64, timestamp: u64) -> BlockEnv {
    BlockEnv {
        number,
        timestamp,
        fee_recipient: Address::ZERO,
        gas_limit: spec.gas_limit,
        base_fee: 0,
        difficulty: U256::from(1),
        prevrandao: B256::ZERO,
        excess_blob_gas: 0,
    }
}

const HARNESS: Address = address!("00000000000000000000000000000000000000aa");

struct Chain {
    spec: ChainSpec,
    state: MemState,
    env: BlockEnv,
}

impl Chain {
    fn new() -> Self {
        let (code, evm_version) = artifact("ProofHarness");
        assert_eq!(evm_version, "paris", "root-chain code must not use PUSH0");
        let mut state = MemState::default();
        state.insert_contract(HARNESS, code, U256::ZERO);
        let spec = ChainSpec::dev();
        let env = block_env(&spec, 1, 1_700_000_000);
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

use bttc_engine::root::contracts::{
    STATE_RECEIVER, SYSTEM_ADDRESS as SYSTEM,
    child::{RecordingReceiver, StateReceiver},
    root::StateSender,
};

const STATE_SENDER: Address = address!("00000000000000000000000000000000000000bb");
const TARGET: Address = address!("00000000000000000000000000000000000000cc");

/// A committed artifact's deployed code and EVM version.
fn artifact(name: &str) -> (Bytes, String) {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("contracts/artifacts/{name}.json"));
    let artifact: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("committed artifact")).unwrap();
    (
        artifact["deployedBytecode"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        artifact["evmVersion"].as_str().unwrap().to_owned(),
    )
}

fn artifact_code(name: &str) -> Bytes {
    artifact(name).0
}

/// Runs system calls (caller, callee, input) in one block on `state` and applies the changes.
fn run_block(
    spec: &ChainSpec,
    state: &mut MemState,
    calls: &[(Address, Address, Bytes)],
) -> Vec<bttc_engine::exec::SystemCallOutcome> {
    let env = block_env(spec, 16, 1_700_000_000);
    let mut block = bttc_engine::exec::SequentialBlock::new(spec, &*state, env);
    let outcomes = calls
        .iter()
        .map(|(from, to, input)| block.system_call(*from, *to, input.clone()).unwrap())
        .collect();
    let changes = block.finish().changes;
    state.apply(&changes);
    outcomes
}

fn read<C: SolCall>(spec: &ChainSpec, state: &MemState, to: Address, c: C) -> C::Return {
    let env = block_env(spec, 17, 1_700_000_002);
    let out = call(
        spec,
        state,
        &env,
        &CallRequest {
            to: Some(to),
            input: c.abi_encode().into(),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(out.success, "{out:?}");
    C::abi_decode_returns(&out.output).unwrap()
}

/// A state-sync record for `contract` (spec §2.3).
fn record(id: u64, contract: Address, data: &[u8]) -> Bytes {
    bttc_engine::root::state_sync::StateRecord {
        id,
        contract,
        data: Bytes::copy_from_slice(data),
        tx_hash: B256::repeat_byte(0x11),
        log_index: 3,
        chain_id: "199".into(),
    }
    .encode()
    .into()
}

#[test]
fn state_sender_counts_and_emits_state_synced_for_registered_senders_only() {
    let spec = ChainSpec::dev();
    let mut state = MemState::default();
    state.insert_contract(STATE_SENDER, artifact_code("StateSender"), U256::ZERO);
    let owner = Address::with_last_byte(1);
    let sender = Address::with_last_byte(2);
    // The constructor's effect: slot 0 holds the owner.
    state.storage.insert(
        (STATE_SENDER, U256::ZERO),
        U256::from_be_slice(owner.as_slice()),
    );
    let sync = |data: &'static [u8]| {
        Bytes::from(
            StateSender::syncStateCall {
                receiver: TARGET,
                data: Bytes::from_static(data),
            }
            .abi_encode(),
        )
    };
    let out = run_block(
        &spec,
        &mut state,
        &[
            (sender, STATE_SENDER, sync(b"early")),
            (
                owner,
                STATE_SENDER,
                StateSender::registerCall {
                    sender,
                    receiver: TARGET,
                }
                .abi_encode()
                .into(),
            ),
            (sender, STATE_SENDER, sync(b"one")),
            (sender, STATE_SENDER, sync(b"two")),
            (owner, STATE_SENDER, sync(b"owner is not the sender")),
        ],
    );
    assert_eq!(
        out.iter().map(|o| o.success).collect::<Vec<_>>(),
        [false, true, true, true, false]
    );
    let synced: Vec<StateSender::StateSynced> = out[2..4]
        .iter()
        .map(|o| {
            assert_eq!(o.logs.len(), 1);
            assert_eq!(
                o.logs[0].topics()[0],
                alloy_primitives::b256!(
                    "103fed9db65eac19c4d870f49ab7520fe03b99f1838e5996caf47e9e43308392"
                )
            );
            <StateSender::StateSynced as alloy_sol_types::SolEvent>::decode_log_data(
                &o.logs[0].data,
            )
            .unwrap()
        })
        .collect();
    assert_eq!(
        (
            synced[0].id,
            synced[0].contractAddress,
            synced[0].data.as_ref()
        ),
        (U256::from(1), TARGET, &b"one"[..])
    );
    assert_eq!(synced[1].id, U256::from(2));
    assert_eq!(
        read(&spec, &state, STATE_SENDER, StateSender::counterCall {}),
        U256::from(2)
    );
}

#[test]
fn state_receiver_commits_records_in_order_from_the_system_address_only() {
    let spec = ChainSpec::bttc_mainnet();
    let mut state = MemState::default();
    state.insert_contract(STATE_RECEIVER, artifact_code("StateReceiver"), U256::ZERO);
    state.insert_contract(TARGET, artifact_code("RecordingReceiver"), U256::ZERO);
    let commit = |id: u64, data: &[u8]| -> Bytes {
        StateReceiver::commitStateCall {
            _0: U256::from(1_700_000_000u64),
            recordBytes: record(id, TARGET, data),
        }
        .abi_encode()
        .into()
    };
    let stranger = Address::with_last_byte(9);
    let out = run_block(
        &spec,
        &mut state,
        &[
            (stranger, STATE_RECEIVER, commit(1, b"x")),
            (SYSTEM, STATE_RECEIVER, commit(2, b"gap")),
            (SYSTEM, STATE_RECEIVER, commit(1, b"first")),
            (SYSTEM, STATE_RECEIVER, commit(1, b"replay")),
            // The receiver refuses this one: the record still counts, the chain goes on.
            (SYSTEM, STATE_RECEIVER, commit(2, b"fail")),
            (SYSTEM, STATE_RECEIVER, commit(3, b"third")),
        ],
    );
    assert_eq!(
        out.iter().map(|o| o.success).collect::<Vec<_>>(),
        [false, false, true, false, true, true]
    );
    let returned = |o: &bttc_engine::exec::SystemCallOutcome| {
        StateReceiver::commitStateCall::abi_decode_returns(&o.output).unwrap()
    };
    assert!(returned(&out[2]));
    assert!(
        !returned(&out[4]),
        "the receiver's failure is reported, not raised"
    );
    assert_eq!(
        read(
            &spec,
            &state,
            STATE_RECEIVER,
            StateReceiver::lastStateIdCall {}
        ),
        U256::from(3)
    );
    assert_eq!(
        read(&spec, &state, TARGET, RecordingReceiver::receivedCall {}),
        U256::from(2)
    );
    assert_eq!(
        read(&spec, &state, TARGET, RecordingReceiver::lastDataCall {}).as_ref(),
        b"third"
    );
}
