//! Our contracts' ABIs against BTTC's: every function BTTC's tools call and every event they
//! read must have the same selector or topic. BTTC's are computed from the signatures in the
//! spec (`../shared/spec/bttc-protocol.md`); where the spec gives a topic hash, it is checked too.

use alloy_primitives::{B256, b256, keccak256};
use serde_json::Value;
use std::{collections::BTreeSet, path::Path};

/// (contract, BTTC function signature): what BTTC's bridge, Delivery and tools call.
const FUNCTIONS: &[(&str, &str)] = &[
    ("StateSender", "syncState(address,bytes)"),
    ("StateSender", "register(address,address)"),
    ("StateSender", "counter()"),
    ("StateSender", "registrations(address)"),
    ("StateReceiver", "commitState(uint256,bytes)"),
    ("StateReceiver", "lastStateId()"),
    // Staking chain (spec §5.1) and checkpoint checks (§1.6).
    (
        "StakeManager",
        "stakeFor(address,uint256,uint256,bool,bytes)",
    ),
    ("StakeManager", "unstake(uint256)"),
    ("StakeManager", "unstakeClaim(uint256)"),
    ("StakeManager", "restake(uint256,uint256,bool)"),
    ("StakeManager", "updateSigner(uint256,bytes)"),
    ("StakeManager", "topUpForFee(address,uint256)"),
    (
        "StakeManager",
        "checkSignatures(uint256,bytes32,bytes32,address,uint256[3][])",
    ),
    (
        "StakeManager",
        "checkSignatures(uint256,uint256,bytes32,bytes32,address,uint256[3][])",
    ),
    ("StakeManager", "currentEpoch()"),
    ("StakeManager", "epoch()"),
    ("StakeManager", "withdrawalDelay()"),
    ("StakeManager", "WITHDRAWAL_DELAY()"),
    ("StakeManager", "validatorThreshold()"),
    ("StakeManager", "minDeposit()"),
    ("StakeManager", "minHeimdallFee()"),
    ("StakeManager", "signerUpdateLimit()"),
    ("StakeManager", "checkPointBlockInterval()"),
    ("StakeManager", "proposerBonus()"),
    ("StakeManager", "NFTContract()"),
    ("StakeManager", "signerToValidator(address)"),
    ("StakeManager", "currentValidatorSetSize()"),
    ("StakeManager", "getValidatorId(address)"),
    ("StakeManager", "accountStateRoot()"),
    ("StakeManager", "CHAIN_CHECKPOINT_REWARD(uint256)"),
    ("StakeManager", "updateValidatorThreshold(uint256)"),
    ("StakeManager", "updateSignerUpdateLimit(uint256)"),
    ("StakeManager", "updateDynastyValue(uint256)"),
    ("StakeManager", "updateMinAmounts(uint256,uint256)"),
    // StakingInfo's nonce, read by Delivery's staking-sync side handlers (§5.2).
    ("StakeManager", "validatorNonce(uint256)"),
    // Staking sync on the mirrors (§5.2).
    ("StakeManager", "validatorJoin(bytes,uint256[3][])"),
    ("StakeManager", "signerUpdate(bytes,uint256[3][])"),
    ("StakeManager", "validatorExit(bytes,uint256[3][])"),
    ("StakingNFT", "ownerOf(uint256)"),
    ("StakingNFT", "balanceOf(address)"),
    ("StakingNFT", "tokenOfOwnerByIndex(address,uint256)"),
    ("StakingNFT", "transferFrom(address,address,uint256)"),
    // Checkpoints (§1.1, §1.5).
    ("RootChain", "submitCheckpoint(bytes,uint256[3][])"),
    ("RootChain", "submitHeaderBlock(bytes,bytes)"),
    ("RootChain", "currentHeaderBlock()"),
    ("RootChain", "getLastChildBlock()"),
    ("RootChain", "headerBlocks(uint256)"),
    ("RootChain", "CHAINID()"),
    // The bridge (§2.1, §3.2).
    ("RootChainManager", "depositFor(address,address,bytes)"),
    ("RootChainManager", "depositEtherFor(address)"),
    ("RootChainManager", "exit(bytes)"),
    ("RootChainManager", "mapToken(address,address,bytes32)"),
    ("RootChainManager", "registerPredicate(bytes32,address)"),
    ("RootChainManager", "rootToChildToken(address)"),
    ("RootChainManager", "childToRootToken(address)"),
    ("RootChainManager", "tokenToType(address)"),
    ("RootChainManager", "typeToPredicate(bytes32)"),
    ("RootChainManager", "processedExits(bytes32)"),
    ("RootChainManager", "setStateSender(address)"),
    ("RootChainManager", "setCheckpointManager(address)"),
    ("RootChainManager", "setChildChainManagerAddress(address)"),
    ("RootChainManager", "DEPOSIT()"),
    ("RootChainManager", "MAP_TOKEN()"),
    ("RootChainManager", "ETHER_ADDRESS()"),
    (
        "ERC20Predicate",
        "lockTokens(address,address,address,bytes)",
    ),
    ("ERC20Predicate", "exitTokens(address,address,bytes)"),
    ("ERC20Predicate", "TOKEN_TYPE()"),
    (
        "ERC721Predicate",
        "lockTokens(address,address,address,bytes)",
    ),
    ("ERC721Predicate", "exitTokens(address,address,bytes)"),
    (
        "ERC721Predicate",
        "onERC721Received(address,address,uint256,bytes)",
    ),
    (
        "EtherPredicate",
        "lockTokens(address,address,address,bytes)",
    ),
    ("EtherPredicate", "exitTokens(address,address,bytes)"),
    // BTTC chain system contracts (§2.3, §3.1, §4.4).
    (
        "BorValidatorSet",
        "commitSpan(uint256,uint256,uint256,bytes,bytes)",
    ),
    ("BorValidatorSet", "getBorValidators(uint256)"),
    ("BorValidatorSet", "getInitialValidators()"),
    ("BorValidatorSet", "getValidators()"),
    ("BorValidatorSet", "currentSpanNumber()"),
    ("BorValidatorSet", "getSpan(uint256)"),
    ("BorValidatorSet", "getCurrentSpan()"),
    ("BorValidatorSet", "getSpanByBlock(uint256)"),
    ("BorValidatorSet", "spans(uint256)"),
    ("BorValidatorSet", "FIRST_END_BLOCK()"),
    ("ChildChainManager", "onStateReceive(uint256,bytes)"),
    ("ChildChainManager", "childToRootToken(address)"),
    ("ChildERC20", "withdrawTo(address,uint256)"),
    ("ChildERC20", "withdraw(uint256)"),
    ("ChildERC20", "deposit(address,bytes)"),
    ("ChildERC20", "balanceOf(address)"),
    ("ChildERC20", "transfer(address,uint256)"),
    ("ChildERC721", "withdrawTo(address,uint256)"),
    ("ChildERC721", "deposit(address,bytes)"),
    ("NativeToken", "withdrawTo(address,uint256)"),
    ("NativeToken", "withdraw(uint256)"),
    ("NativeToken", "deposit(address,bytes)"),
    ("NativeToken", "balanceOf(address)"),
];

const WITHDRAW_TO: B256 = b256!("67b714876402c93362735688659e2283b4a37fb21bab24bc759ca759ae851fd8");

/// (contract, BTTC event signature, topic0 as the spec gives it, if it does). Where the spec
/// says which parameters are indexed, the signature marks them, and ours must match: topics
/// and data are read by position.
const EVENTS: &[(&str, &str, Option<B256>)] = &[
    (
        "StateSender",
        "StateSynced(uint256 indexed,address indexed,bytes)",
        Some(b256!(
            "103fed9db65eac19c4d870f49ab7520fe03b99f1838e5996caf47e9e43308392"
        )),
    ),
    (
        "RootChain",
        "NewHeaderBlock(address indexed,uint256 indexed,uint256 indexed,uint256,uint256,bytes32)",
        Some(b256!(
            "ba5de06d22af2685c6c7765f60067f7d2b08c2d29f53cdf14d67f6d1c9bfb527"
        )),
    ),
    (
        "StakeManager",
        "Staked(address indexed,uint256 indexed,uint256,uint256 indexed,uint256,uint256,bytes)",
        None,
    ),
    (
        "StakeManager",
        "Unstaked(address,uint256,uint256,uint256)",
        None,
    ),
    (
        "StakeManager",
        "UnstakeInit(address indexed,uint256 indexed,uint256,uint256,uint256 indexed)",
        None,
    ),
    (
        "StakeManager",
        "SignerChange(uint256 indexed,uint256,address indexed,address indexed,bytes)",
        None,
    ),
    ("StakeManager", "Restaked(uint256,uint256,uint256)", None),
    ("StakeManager", "StakeUpdate(uint256,uint256,uint256)", None),
    ("StakeManager", "TopUpFee(address,uint256)", None),
    ("StakingNFT", "Transfer(address,address,uint256)", None),
    (
        "RootChainManager",
        "TokenMapped(address,address,bytes32)",
        None,
    ),
    (
        "RootChainManager",
        "PredicateRegistered(bytes32,address)",
        None,
    ),
    (
        "ERC20Predicate",
        "LockedERC20(address,address,address,uint256)",
        None,
    ),
    (
        "ERC20Predicate",
        "ExitedERC20(address,address,uint256)",
        None,
    ),
    (
        "ERC721Predicate",
        "LockedERC721(address,address,address,uint256)",
        None,
    ),
    (
        "ERC721Predicate",
        "ExitedERC721(address,address,uint256)",
        None,
    ),
    (
        "EtherPredicate",
        "LockedEther(address,address,uint256)",
        None,
    ),
    ("EtherPredicate", "ExitedEther(address,uint256)", None),
    ("ChildChainManager", "TokenMapped(address,address)", None),
    (
        "ChildERC20",
        "WithdrawTo(address indexed,address indexed,uint256)",
        Some(WITHDRAW_TO),
    ),
    ("ChildERC20", "Transfer(address,address,uint256)", None),
    (
        "ChildERC721",
        "WithdrawTo(address indexed,address indexed,uint256)",
        Some(WITHDRAW_TO),
    ),
    (
        "NativeToken",
        "WithdrawTo(address indexed,address indexed,uint256)",
        Some(WITHDRAW_TO),
    ),
];

fn abi(contract: &str) -> Vec<Value> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("contracts/artifacts/{contract}.json"));
    let artifact: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    artifact["abi"].as_array().unwrap().clone()
}

/// The canonical type of an ABI parameter (tuples spelled out).
fn canonical(param: &Value) -> String {
    let ty = param["type"].as_str().unwrap();
    match ty.strip_prefix("tuple") {
        Some(suffix) => {
            let inner: Vec<String> = param["components"]
                .as_array()
                .unwrap()
                .iter()
                .map(canonical)
                .collect();
            format!("({}){suffix}", inner.join(","))
        }
        None => ty.to_owned(),
    }
}

fn signatures(contract: &str, kind: &str) -> BTreeSet<String> {
    abi(contract)
        .iter()
        .filter(|e| e["type"] == kind)
        .map(|e| {
            let inputs: Vec<String> = e["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(canonical)
                .collect();
            format!("{}({})", e["name"].as_str().unwrap(), inputs.join(","))
        })
        .collect()
}

#[test]
fn selectors_and_topics_match_bttc() {
    for (contract, signature) in FUNCTIONS {
        let ours = signatures(contract, "function");
        let selector = &keccak256(signature)[..4];
        let found = ours.iter().any(|s| &keccak256(s)[..4] == selector);
        assert!(
            found,
            "{contract} lacks {signature} (selector 0x{}); ours: {ours:?}",
            hex(selector)
        );
    }
    for (contract, marked, topic) in EVENTS {
        let signature = marked.replace(" indexed", "");
        let bttc = keccak256(&signature);
        if let Some(topic) = topic {
            assert_eq!(bttc, *topic, "the spec's topic of {signature}");
        }
        let event = abi(contract)
            .into_iter()
            .find(|e| e["type"] == "event" && keccak256(event_signature(e)) == bttc)
            .unwrap_or_else(|| panic!("{contract} lacks event {signature}"));
        if marked.contains(" indexed") {
            let params = &marked[marked.find('(').unwrap() + 1..marked.len() - 1];
            let want: Vec<bool> = params.split(',').map(|p| p.ends_with(" indexed")).collect();
            let ours: Vec<bool> = event["inputs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["indexed"] == true)
                .collect();
            assert_eq!(ours, want, "{contract}.{signature}: indexed parameters");
        }
    }
}

fn event_signature(event: &Value) -> String {
    let inputs: Vec<String> = event["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(canonical)
        .collect();
    format!("{}({})", event["name"].as_str().unwrap(), inputs.join(","))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every compiled contract has typed bindings in `root::contracts`.
#[test]
fn every_artifact_has_bindings() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts/artifacts");
    let bindings = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/root/contracts.rs"),
    )
    .unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 18, "artifacts: {names:?}");
    for name in names {
        assert!(
            bindings.contains(&format!("\"contracts/artifacts/{name}.json\"")),
            "{name} has no sol! binding in src/root/contracts.rs"
        );
    }
}
