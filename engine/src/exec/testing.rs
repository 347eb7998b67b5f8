//! Blocks for executor tests and benches: transactions with known senders (execution does not
//! check signatures, so they carry a fixed one), funded in-memory state, and the harness
//! contracts of `contracts/test-child/ExecHarness.sol` at fixed addresses.

use super::{BlockEnv, MemState};
use crate::{
    chain::spec::ChainSpec,
    primitives::{Account, RecoveredTx},
    root::contracts::child::{PlainToken, Probe, SwapPool},
};
use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, Signature, TxKind, U256, keccak256};
use alloy_sol_types::SolCall;

pub const POOL: Address = Address::new([0x50; 20]);
pub const PROBE: Address = Address::new([0x51; 20]);
pub const TOKEN: Address = Address::new([0x52; 20]);
/// Storage slots of `SwapPool`: the reserves, then the two balance mappings.
const POOL_RESERVE0: u64 = 0;
const POOL_RESERVE1: u64 = 1;
const POOL_BALANCE0: u64 = 2;
const POOL_BALANCE1: u64 = 3;
/// Fee cap and tip of the transactions made here.
pub const MAX_FEE: u128 = 2_000_000_000;
pub const TIP: u128 = 1_000_000_000;

/// The `n`th test account.
pub fn account(n: u64) -> Address {
    Address::from_word(keccak256(
        [b"exec-testing".as_slice(), &n.to_be_bytes()].concat(),
    ))
}

/// A transaction from `sender` with a fixed signature: EIP-1559 from London on, legacy before
/// (priced at [`MAX_FEE`]).
pub fn tx(
    spec: &ChainSpec,
    sender: Address,
    nonce: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
    gas_limit: u64,
) -> RecoveredTx {
    let signature = Signature::new(U256::from(1), U256::from(1), false);
    let envelope = if spec.is_london() {
        TxEnvelope::from(
            TxEip1559 {
                chain_id: spec.chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: MAX_FEE,
                max_priority_fee_per_gas: TIP,
                to,
                value,
                input,
                ..Default::default()
            }
            .into_signed(signature),
        )
    } else {
        TxEnvelope::from(
            TxLegacy {
                chain_id: Some(spec.chain_id),
                nonce,
                gas_price: MAX_FEE,
                gas_limit,
                to,
                value,
                input,
            }
            .into_signed(signature),
        )
    };
    RecoveredTx::new_unchecked(envelope, sender)
}

/// An environment for block 1 with `fee_recipient`.
pub fn block_env(spec: &ChainSpec, fee_recipient: Address) -> BlockEnv {
    BlockEnv {
        number: 1,
        timestamp: 1_700_000_002,
        fee_recipient,
        gas_limit: spec.gas_limit,
        base_fee: if spec.is_london() { 7 } else { 0 },
        difficulty: U256::ZERO,
        prevrandao: B256::ZERO,
        excess_blob_gas: 0,
    }
}

/// Gives each of `accounts` `balance` wei.
pub fn fund(state: &mut MemState, accounts: impl IntoIterator<Item = Address>, balance: U256) {
    for address in accounts {
        state.accounts.insert(
            address,
            Account {
                nonce: 0,
                balance,
                code_hash: KECCAK256_EMPTY,
            },
        );
    }
}

/// Slot of `mapping(address => ...)` at `slot` for `key`.
pub fn mapping_slot(key: Address, slot: u64) -> U256 {
    let mut preimage = [0u8; 64];
    preimage[12..32].copy_from_slice(key.as_slice());
    preimage[56..64].copy_from_slice(&slot.to_be_bytes());
    U256::from_be_bytes(keccak256(preimage).0)
}

/// Installs `SwapPool` at [`POOL`] with `reserve` of each asset and `balance` of each for every
/// one of `traders`.
pub fn install_pool(state: &mut MemState, traders: &[Address], reserve: u128, balance: u128) {
    state.insert_contract(POOL, SwapPool::DEPLOYED_BYTECODE.clone(), U256::ZERO);
    for (slot, value) in [(POOL_RESERVE0, reserve), (POOL_RESERVE1, reserve)] {
        state
            .storage
            .insert((POOL, U256::from(slot)), U256::from(value));
    }
    for trader in traders {
        for slot in [POOL_BALANCE0, POOL_BALANCE1] {
            state
                .storage
                .insert((POOL, mapping_slot(*trader, slot)), U256::from(balance));
        }
    }
}

pub fn install_probe(state: &mut MemState) {
    state.insert_contract(PROBE, Probe::DEPLOYED_BYTECODE.clone(), U256::ZERO);
}

pub fn swap_calldata(zero_for_one: bool, amount_in: u128) -> Bytes {
    SwapPool::swapCall {
        zeroForOne: zero_for_one,
        amountIn: U256::from(amount_in),
        minOut: U256::ZERO,
    }
    .abi_encode()
    .into()
}

/// Installs `PlainToken` at [`TOKEN`] with `balance` for each of `holders`.
pub fn install_token(state: &mut MemState, holders: &[Address], balance: u128) {
    state.insert_contract(TOKEN, PlainToken::DEPLOYED_BYTECODE.clone(), U256::ZERO);
    for holder in holders {
        state
            .storage
            .insert((TOKEN, mapping_slot(*holder, 0)), U256::from(balance));
    }
}

pub fn token_transfer_calldata(to: Address, amount: u128) -> Bytes {
    PlainToken::transferCall {
        to,
        value: U256::from(amount),
    }
    .abi_encode()
    .into()
}
