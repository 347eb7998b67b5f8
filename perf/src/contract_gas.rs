//! Gas used by our bridge contracts, executed by the engine's revm executor: `submitCheckpoint`
//! with 7, 21 and 100 validators (on the staking chain and on a mirror), `exit` with real
//! receipt and checkpoint proofs, `depositFor` and `commitState`. Transactions report their
//! whole gas (21,000 + calldata + execution); `commitState` is a system call, which has no
//! intrinsic cost, so it reports execution gas only.
//!
//! Usage: `contract-gas [--out FILE]`.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use bttc_engine::root::contracts::child::{ChildERC20, ChildERC721, NativeToken};
use bttc_engine::{
    chain::spec::{ChainSpec, SpecId},
    root::{
        checkpoint::CheckpointData,
        contracts::{NATIVE_TOKEN, root::StakeManager},
        testing::{
            TxRequest,
            bridge::{Child, Root, exit_payload, ok},
            staking::{BOR_CHAIN_ID, Staking, Validators},
            test_key,
        },
    },
};
use serde_json::json;

/// Root-chain rule sets measured: Ethereum today, and the EVM level the root contracts target.
fn rule_sets() -> Vec<ChainSpec> {
    vec![
        ChainSpec {
            name: "osaka",
            ..ChainSpec::dev()
        },
        ChainSpec {
            name: "paris",
            spec_id: SpecId::MERGE,
            ..ChainSpec::dev()
        },
    ]
}

/// Gas of the second checkpoint (steady state: the first also initialises storage) signed by
/// the quorum, and of the third signed by every validator.
fn checkpoint_gas(spec: &ChainSpec, n: usize, mirror: bool) -> (u64, u64) {
    let validators = Validators::new(n, 40 + n as u64);
    let mut s = if mirror {
        let mut s = Staking::deploy_on(spec.clone(), true);
        let owner = s.owner.clone();
        let genesis = StakeManager::initMirrorCall {
            ids: (1..=n).map(U256::from).collect(),
            signers: (0..n).map(|i| validators.address(i)).collect(),
            nonces: vec![U256::from(1); n],
        };
        ok(s.chain.send(&owner, s.stake_manager, genesis));
        s
    } else {
        Staking::with_validators_on(spec.clone(), &validators).0
    };
    let quorum: Vec<usize> = (0..n * 2 / 3 + 1).collect();
    let all: Vec<usize> = (0..n).collect();
    let mut gas = Vec::new();
    for (round, who) in [&quorum, &quorum, &all].into_iter().enumerate() {
        let data = CheckpointData {
            proposer: validators.address(0),
            start: s.next_start,
            end: s.next_start + 1023,
            root_hash: B256::repeat_byte(0x5a),
            account_root_hash: B256::repeat_byte(0xac),
            bor_chain_id: BOR_CHAIN_ID,
            epoch: s.epoch() + u64::from(mirror) * round as u64,
        };
        let out = ok(s.submit(&data, validators.sigs(&data.encode(), who)));
        gas.push(out.gas_used);
    }
    (gas[1], gas[2])
}

struct BridgeGas {
    deposit_first: u64,
    deposit: u64,
    deposit_ether: u64,
    commit_map_token: u64,
    commit_deposit_erc20: u64,
    commit_deposit_native: u64,
    exit_erc20: u64,
    exit_native: u64,
    exit_erc721: u64,
}

fn bridge_gas(spec: &ChainSpec) -> BridgeGas {
    let mut child = Child::new();
    let mut root = Root::new_on(spec.clone(), &child);
    let depositor = root.depositor(900, 7);
    let holder = test_key(901);
    child
        .chain
        .fund(holder.address(), U256::from(10u128.pow(24)));
    let amount = U256::from(1_000_000u64);
    let btt = U256::from(10u64).pow(U256::from(21));
    let first = ok(root.deposit(&depositor, holder.address(), root.token, amount));
    let second = ok(root.deposit(&depositor, holder.address(), root.token, amount));
    let nft = ok(root.deposit(&depositor, holder.address(), root.nft, U256::from(7)));
    let native = ok(root.deposit(&depositor, holder.address(), root.btt, btt));
    let manager = root.manager;
    let ether = ok(root.chain().send_value(
        &depositor,
        manager,
        bttc_engine::root::contracts::root::RootChainManager::depositEtherForCall {
            user: holder.address(),
        }
        .abi_encode()
        .into(),
        U256::from(1000),
    ));
    let sender = root.state_sender;
    let mut relayed: Vec<_> = root.mappings.iter().collect();
    relayed.extend([&first, &second, &nft, &native, &ether]);
    let commits = child.relay_outcomes(sender, &relayed);
    assert!(commits.iter().all(|c| c.success));

    let recipient = Address::repeat_byte(0x55);
    let (erc20, erc721) = (child.erc20, child.erc721);
    let tx = |to: Address, input: Vec<u8>, value: U256| TxRequest {
        from: &holder,
        to: Some(to),
        input: input.into(),
        value,
        typed: false,
    };
    let block = child.chain.mine(&[
        tx(
            erc20,
            ChildERC20::withdrawToCall {
                to: recipient,
                amount,
            }
            .abi_encode(),
            U256::ZERO,
        ),
        tx(
            NATIVE_TOKEN,
            NativeToken::withdrawToCall {
                to: recipient,
                amount: btt,
            }
            .abi_encode(),
            btt,
        ),
        tx(
            erc721,
            ChildERC721::withdrawToCall {
                to: recipient,
                tokenId: U256::from(7),
            }
            .abi_encode(),
            U256::ZERO,
        ),
    ]);
    assert!(block.executed.iter().all(|e| e.success));
    child.chain.mine(&[]);
    let (header, tree) = root.checkpoint(&child.chain, child.chain.number);
    // The first checkpoint starts at block 0.
    let exit = |i: usize, token: Address| exit_payload(header, 0, &tree, &block, i, token);
    let mut exit_gas = Vec::new();
    for (i, token) in [(0, erc20), (1, NATIVE_TOKEN), (2, erc721)] {
        let input = bttc_engine::root::contracts::root::RootChainManager::exitCall {
            inputData: exit(i, token).encode().into(),
        };
        exit_gas.push(ok(root.chain().send(&depositor, manager, input)).gas_used);
    }
    BridgeGas {
        deposit_first: first.gas_used,
        deposit: second.gas_used,
        deposit_ether: ether.gas_used,
        commit_map_token: commits[0].gas_used,
        commit_deposit_erc20: commits[5].gas_used,
        commit_deposit_native: commits[7].gas_used,
        exit_erc20: exit_gas[0],
        exit_native: exit_gas[1],
        exit_erc721: exit_gas[2],
    }
}

fn main() {
    let out_path = {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == "--out")
            .and_then(|i| args.get(i + 1).cloned())
    };
    let mut report = serde_json::Map::new();
    for spec in rule_sets() {
        println!("root-chain rules: {}", spec.name);
        let mut checkpoints = Vec::new();
        for n in [7usize, 21, 100] {
            let (quorum, all) = checkpoint_gas(&spec, n, false);
            let (mirror_quorum, mirror_all) = checkpoint_gas(&spec, n, true);
            println!(
                "  submitCheckpoint n={n:<3} quorum={:<3} sigs: {quorum:>9} gas | all {n} sigs: {all:>9} gas | mirror: {mirror_quorum:>9} / {mirror_all:>9}",
                n * 2 / 3 + 1
            );
            checkpoints.push(json!({
                "validators": n, "quorum": n * 2 / 3 + 1,
                "staking_chain_quorum_sigs": quorum, "staking_chain_all_sigs": all,
                "mirror_quorum_sigs": mirror_quorum, "mirror_all_sigs": mirror_all,
            }));
        }
        let b = bridge_gas(&spec);
        println!(
            "  depositFor ERC-20: {} gas (first deposit, fresh storage: {}), depositEtherFor: {}",
            b.deposit, b.deposit_first, b.deposit_ether
        );
        println!(
            "  exit ERC-20: {} gas, native BTT: {}, ERC-721: {}",
            b.exit_erc20, b.exit_native, b.exit_erc721
        );
        println!(
            "  commitState (BTTC rules, execution gas): MAP_TOKEN {}, DEPOSIT ERC-20 {}, DEPOSIT native BTT {}",
            b.commit_map_token, b.commit_deposit_erc20, b.commit_deposit_native
        );
        report.insert(
            spec.name.to_owned(),
            json!({
                "submitCheckpoint": checkpoints,
                "depositFor_erc20": b.deposit, "depositFor_erc20_first_ever": b.deposit_first,
                "depositEtherFor": b.deposit_ether,
                "exit_erc20": b.exit_erc20, "exit_native_btt": b.exit_native, "exit_erc721": b.exit_erc721,
                "commitState_map_token": b.commit_map_token,
                "commitState_deposit_erc20": b.commit_deposit_erc20,
                "commitState_deposit_native": b.commit_deposit_native,
            }),
        );
    }
    if let Some(path) = out_path {
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(report)).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
        println!("wrote {path}");
    }
}
