//! Shared setup for the benches: signed transactions, funded in-memory state, the test token.

#![allow(dead_code)]

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use bttc_engine::{
    chain::spec::ChainSpec,
    exec::{BlockEnv, MemState},
    primitives::{Account, RecoveredTx},
};
use rayon::prelude::*;

/// The node binary's allocator, so that benches measure what the node runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub const GWEI: u128 = 1_000_000_000;

pub fn signers(count: usize) -> Vec<PrivateKeySigner> {
    (0..count)
        .map(|i| PrivateKeySigner::from_bytes(&keccak256((i as u64 + 1).to_be_bytes())).unwrap())
        .collect()
}

/// `per_sender` transactions from each signer, nonces 0.., interleaved by nonce.
pub fn signed_txs(
    spec: &ChainSpec,
    signers: &[PrivateKeySigner],
    per_sender: usize,
    make: impl Fn(usize, usize) -> (TxKind, U256, Bytes, u64) + Sync,
) -> Vec<RecoveredTx> {
    let jobs: Vec<(usize, usize)> = (0..per_sender)
        .flat_map(|n| (0..signers.len()).map(move |s| (s, n)))
        .collect();
    jobs.par_iter()
        .map(|&(s, n)| {
            let (to, value, input, gas_limit) = make(s, n);
            let tx = TxEip1559 {
                chain_id: spec.chain_id,
                nonce: n as u64,
                gas_limit,
                max_fee_per_gas: 2 * GWEI,
                max_priority_fee_per_gas: GWEI,
                to,
                value,
                input,
                ..Default::default()
            };
            let signature = signers[s].sign_hash_sync(&tx.signature_hash()).unwrap();
            RecoveredTx::new_unchecked(
                TxEnvelope::from(tx.into_signed(signature)),
                signers[s].address(),
            )
        })
        .collect()
}

pub fn funded_state(signers: &[PrivateKeySigner]) -> MemState {
    let mut state = MemState::default();
    for s in signers {
        state.accounts.insert(
            s.address(),
            Account {
                nonce: 0,
                balance: U256::from(10u128.pow(24)),
                code_hash: KECCAK256_EMPTY,
            },
        );
    }
    state
}

pub fn block_env(spec: &ChainSpec) -> BlockEnv {
    BlockEnv {
        number: 1,
        timestamp: 1_700_000_002,
        fee_recipient: Address::with_last_byte(0xcc),
        gas_limit: spec.gas_limit,
        base_fee: 7,
        difficulty: U256::ZERO,
        prevrandao: B256::ZERO,
        excess_blob_gas: 0,
    }
}

/// The committed test token (tests/contracts/TestToken.sol, compiled by solc-js).
pub fn token_runtime_code() -> Bytes {
    let artifact: serde_json::Value = serde_json::from_str(include_str!(
        "../../tests/contracts/artifacts/TestToken.json"
    ))
    .unwrap();
    artifact["deployedBytecode"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

pub const TOKEN: Address = Address::new([0x70; 20]);

/// Storage slot of `balanceOf[holder]` (mapping at slot 1).
pub fn balance_slot(holder: Address) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(holder.as_slice());
    preimage[63] = 1;
    U256::from_be_bytes(keccak256(preimage).0)
}

/// Installs the token at [`TOKEN`] with a balance for each holder.
pub fn install_token(state: &mut MemState, holders: &[Address]) {
    state.insert_contract(TOKEN, token_runtime_code(), U256::ZERO);
    for h in holders {
        state
            .storage
            .insert((TOKEN, balance_slot(*h)), U256::from(10u128.pow(24)));
    }
}

/// Calldata of `transfer(to, amount)`.
pub fn transfer_calldata(to: Address, amount: u64) -> Bytes {
    let mut data = keccak256("transfer(address,uint256)")[..4].to_vec();
    data.extend_from_slice(to.into_word().as_slice());
    data.extend_from_slice(&U256::from(amount).to_be_bytes::<32>());
    data.into()
}
