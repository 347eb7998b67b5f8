//! Our contracts' ABIs against BTTC's: every function BTTC's tools call and every event they
//! read must have the same selector or topic. BTTC's are computed from the signatures in the
//! spec (`../shared/spec/bttc-protocol.md`); where the spec gives a topic hash, it is checked too.

use alloy_primitives::{B256, b256, keccak256};
use serde_json::Value;
use std::{collections::BTreeSet, path::Path};

/// (contract, BTTC function signature).
const FUNCTIONS: &[(&str, &str)] = &[
    ("StateSender", "syncState(address,bytes)"),
    ("StateSender", "register(address,address)"),
    ("StateSender", "counter()"),
    ("StateSender", "registrations(address)"),
    ("StateReceiver", "commitState(uint256,bytes)"),
    ("StateReceiver", "lastStateId()"),
];

/// (contract, BTTC event signature, topic0 as the spec gives it, if it does).
const EVENTS: &[(&str, &str, Option<B256>)] = &[(
    "StateSender",
    "StateSynced(uint256,address,bytes)",
    Some(b256!(
        "103fed9db65eac19c4d870f49ab7520fe03b99f1838e5996caf47e9e43308392"
    )),
)];

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
    for (contract, signature, topic) in EVENTS {
        let ours = signatures(contract, "event");
        let bttc = keccak256(signature);
        if let Some(topic) = topic {
            assert_eq!(bttc, *topic, "the spec's topic of {signature}");
        }
        assert!(
            ours.iter().any(|s| keccak256(s) == bttc),
            "{contract} lacks event {signature}; ours: {ours:?}"
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
