//! Executor tests: fee accounting, BTTC's transfer logs, and state roots of built blocks.

use super::{
    BlockEnv, BlockExecutor, MemState, SequentialExecutor,
    bttc_logs::{LOG_FEE_TRANSFER_TOPIC, LOG_TRANSFER_TOPIC, NATIVE_TOKEN_ADDRESS},
};
use crate::{
    chain::spec::ChainSpec,
    crypto::recover_tx_sender,
    primitives::{Account, RecoveredTx},
};
use alloy_consensus::{SignableTransaction, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, Log, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;

const GWEI: u128 = 1_000_000_000;

fn key(seed: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&B256::with_last_byte(seed)).unwrap()
}

fn legacy(
    spec: &ChainSpec,
    from: &PrivateKeySigner,
    nonce: u64,
    to: Address,
    value: u64,
    gas: u64,
    price: u128,
) -> RecoveredTx {
    let tx = TxLegacy {
        chain_id: Some(spec.chain_id),
        nonce,
        gas_price: price,
        gas_limit: gas,
        to: TxKind::Call(to),
        value: U256::from(value),
        input: Bytes::new(),
    };
    let signature = from.sign_hash_sync(&tx.signature_hash()).unwrap();
    let envelope = TxEnvelope::from(tx.into_signed(signature));
    let sender = recover_tx_sender(&envelope).unwrap();
    RecoveredTx::new_unchecked(envelope, sender)
}

fn funded(addresses: &[Address]) -> MemState {
    let mut state = MemState::default();
    for a in addresses {
        state.accounts.insert(
            *a,
            Account {
                nonce: 0,
                balance: U256::from(10u128.pow(24)),
                code_hash: KECCAK256_EMPTY,
            },
        );
    }
    state
}

fn env(spec: &ChainSpec, fee_recipient: Address, base_fee: u64) -> BlockEnv {
    BlockEnv {
        number: 1,
        timestamp: 1_700_000_002,
        fee_recipient,
        gas_limit: spec.gas_limit,
        base_fee,
        difficulty: U256::from(1),
        prevrandao: B256::ZERO,
        excess_blob_gas: 0,
    }
}

fn words(log: &Log) -> Vec<U256> {
    log.data.data.chunks(32).map(U256::from_be_slice).collect()
}

#[test]
fn dev_fees_burn_the_base_fee_and_pay_the_tip() {
    let spec = ChainSpec::dev();
    let (alice, bob, miner) = (
        key(1),
        Address::with_last_byte(0xb0),
        Address::with_last_byte(0xcc),
    );
    let state = funded(&[alice.address()]);
    let base_fee = 7;
    let tx = legacy(&spec, &alice, 0, bob, 1000, 21_000, 2 * GWEI);
    let outcome = SequentialExecutor { spec: spec.clone() }
        .execute_block(&state, &env(&spec, miner, base_fee), &[tx])
        .unwrap();
    assert_eq!(outcome.gas_used, 21_000);
    let r = &outcome.receipts[0].receipt;
    assert!(r.status.coerce_status() && r.logs.is_empty());
    let balance = |a: &Address| outcome.changes.accounts[a].account.unwrap().balance;
    assert_eq!(balance(&bob), U256::from(1000));
    assert_eq!(balance(&miner), U256::from(21_000 * (2 * GWEI - 7)));
    assert_eq!(
        balance(&alice.address()),
        U256::from(10u128.pow(24) - 1000 - 21_000 * 2 * GWEI)
    );
}

#[test]
fn bttc_rules_log_every_transfer_and_the_fee() {
    let spec = ChainSpec::bttc_mainnet();
    let (alice, signer) = (key(2), Address::with_last_byte(0x51));
    let target = Address::with_last_byte(0x77);
    let contract = Address::with_last_byte(0xc0);
    // Contract: CALL(0xffff gas, target, value 1, no data); LOG0(0, 0); STOP.
    let mut code = vec![0x60, 0, 0x60, 0, 0x60, 0, 0x60, 0, 0x60, 1, 0x73];
    code.extend_from_slice(target.as_slice());
    code.extend_from_slice(&[0x61, 0xff, 0xff, 0xf1, 0x50, 0x60, 0, 0x60, 0, 0xa0, 0x00]);
    let mut state = funded(&[alice.address()]);
    state.insert_contract(contract, Bytes::from(code), U256::from(10));

    let price = spec.min_gas_price;
    let tx = legacy(&spec, &alice, 0, contract, 5, 100_000, price);
    let outcome = SequentialExecutor { spec: spec.clone() }
        .execute_block(&state, &env(&spec, signer, 0), &[tx])
        .unwrap();
    let receipt = &outcome.receipts[0].receipt;
    assert!(receipt.status.coerce_status());
    let logs = &receipt.logs;
    assert_eq!(logs.len(), 4, "{logs:#?}");
    let alice_start = U256::from(10u128.pow(24));
    let gas_cost = U256::from(100_000u128 * price);

    // 1. The top-level value transfer, with balances after gas was bought.
    assert_eq!(logs[0].address, NATIVE_TOKEN_ADDRESS);
    assert_eq!(
        logs[0].topics(),
        &[
            LOG_TRANSFER_TOPIC,
            NATIVE_TOKEN_ADDRESS.into_word(),
            alice.address().into_word(),
            contract.into_word()
        ]
    );
    let a = alice_start - gas_cost;
    assert_eq!(
        words(&logs[0]),
        vec![
            U256::from(5),
            a,
            U256::from(10),
            a - U256::from(5),
            U256::from(15)
        ]
    );
    // 2. The internal transfer, before the contract's own log.
    assert_eq!(
        logs[1].topics()[2..],
        [contract.into_word(), target.into_word()]
    );
    assert_eq!(
        words(&logs[1]),
        vec![
            U256::from(1),
            U256::from(15),
            U256::ZERO,
            U256::from(14),
            U256::from(1)
        ]
    );
    // 3. The contract's LOG0.
    assert_eq!((logs[2].address, logs[2].topics().len()), (contract, 0));
    // 4. The fee, from the balances before the transaction.
    let fee = U256::from(outcome.gas_used) * U256::from(price);
    assert_eq!(
        logs[3].topics(),
        &[
            LOG_FEE_TRANSFER_TOPIC,
            NATIVE_TOKEN_ADDRESS.into_word(),
            alice.address().into_word(),
            signer.into_word()
        ]
    );
    assert_eq!(
        words(&logs[3]),
        vec![fee, alice_start, U256::ZERO, alice_start - fee, fee]
    );
    // The whole fee goes to the signer (no base fee before London).
    assert_eq!(
        outcome.changes.accounts[&signer].account.unwrap().balance,
        fee
    );
}

#[test]
fn bttc_rules_drop_the_transfer_log_of_a_failed_call() {
    let spec = ChainSpec::bttc_mainnet();
    let alice = key(3);
    let reverter = Address::with_last_byte(0xde);
    // Contract that always reverts: REVERT(0, 0).
    let code = Bytes::from_static(&[0x60, 0, 0x60, 0, 0xfd]);
    let mut state = funded(&[alice.address()]);
    state.insert_contract(reverter, code, U256::ZERO);
    let tx = legacy(&spec, &alice, 0, reverter, 5, 50_000, spec.min_gas_price);
    let outcome = SequentialExecutor { spec: spec.clone() }
        .execute_block(&state, &env(&spec, Address::with_last_byte(0x51), 0), &[tx])
        .unwrap();
    let receipt = &outcome.receipts[0].receipt;
    assert!(!receipt.status.coerce_status());
    // Only the fee log: the reverted frame's transfer is undone with it.
    assert_eq!(receipt.logs.len(), 1);
    assert_eq!(receipt.logs[0].topics()[0], LOG_FEE_TRANSFER_TOPIC);
}
