//! Blocks in the format of the mainnet-block data set (`<n>/block.json`, `pre_state.json`,
//! `block_hashes.json`, each as the JSON text; callers read and decompress the files): the
//! block as `eth_getBlockByNumber` returns it with full transactions, the state its
//! transactions read (accounts with revm's analysed code), and the ancestor hashes BLOCKHASH
//! needs. Parsed into what an executor takes, with the header values execution must reproduce.

use super::{BlockEnv, MemState};
use crate::{
    chain::spec::{ChainSpec, FeeRules, SpecId},
    primitives::{Account, RecoveredTx},
};
use alloy_consensus::TxEnvelope;
use alloy_primitives::{Address, B256, Bloom, Bytes, KECCAK256_EMPTY, U256, keccak256};
use serde::Deserialize;
use serde_json::Value;
use std::{collections::HashMap, str::FromStr};

/// Why a block directory's content cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReplayError(pub String);

/// First block of each mainnet hardfork activated by height.
const FORKS_BY_NUMBER: &[(u64, SpecId)] = &[
    (0, SpecId::FRONTIER),
    (1_150_000, SpecId::HOMESTEAD),
    (2_463_000, SpecId::TANGERINE),
    (2_675_000, SpecId::SPURIOUS_DRAGON),
    (4_370_000, SpecId::BYZANTIUM),
    (7_280_000, SpecId::PETERSBURG),
    (9_069_000, SpecId::ISTANBUL),
    (12_244_000, SpecId::BERLIN),
    (12_965_000, SpecId::LONDON),
    (15_537_394, SpecId::MERGE),
];
const SHANGHAI_TIME: u64 = 1_681_338_455;
const CANCUN_TIME: u64 = 1_710_338_135;
const PRAGUE_TIME: u64 = 1_746_612_311;
/// From Byzantium on, receipts carry a status (and the receipts root can be checked without
/// intermediate state roots).
pub const BYZANTIUM_BLOCK: u64 = 4_370_000;

/// The Ethereum mainnet hardfork of a block.
pub fn mainnet_spec_id(number: u64, timestamp: u64) -> SpecId {
    if timestamp >= PRAGUE_TIME {
        return SpecId::PRAGUE;
    }
    if timestamp >= CANCUN_TIME {
        return SpecId::CANCUN;
    }
    if timestamp >= SHANGHAI_TIME {
        return SpecId::SHANGHAI;
    }
    FORKS_BY_NUMBER
        .iter()
        .rev()
        .find(|(first, _)| number >= *first)
        .map(|(_, spec)| *spec)
        .expect("block 0 is Frontier")
}

/// A mainnet block ready to execute.
#[derive(Debug, Clone)]
pub struct ReplayBlock {
    pub number: u64,
    pub spec: ChainSpec,
    pub env: BlockEnv,
    /// Senders as the data set's `from` gives them.
    pub txs: Vec<RecoveredTx>,
    /// The hash the data set gives each transaction.
    pub tx_hashes: Vec<B256>,
    pub state: MemState,
    pub gas_used: u64,
    pub logs_bloom: Bloom,
    pub receipts_root: B256,
}

#[derive(Deserialize)]
struct PreAccount {
    basic: PreBasic,
    code: Option<PreCode>,
    storage: HashMap<String, String>,
    code_hash: Option<B256>,
}

#[derive(Deserialize)]
struct PreBasic {
    balance: String,
    nonce: u64,
}

/// revm's analysed bytecode: the contract is the first `original_len` bytes of `bytecode`
/// (the rest is analysis padding); the jump table is ignored.
#[derive(Deserialize)]
struct PreCode {
    bytecode: Bytes,
    original_len: usize,
}

fn error(message: impl Into<String>) -> ReplayError {
    ReplayError(message.into())
}

fn parse_u256(s: &str) -> Result<U256, ReplayError> {
    U256::from_str(s).map_err(|e| error(format!("bad quantity {s:?}: {e}")))
}

fn field<'a>(block: &'a Value, name: &str) -> Result<&'a Value, ReplayError> {
    block
        .get(name)
        .filter(|v| !v.is_null())
        .ok_or_else(|| error(format!("block has no {name}")))
}

fn field_str<'a>(block: &'a Value, name: &str) -> Result<&'a str, ReplayError> {
    field(block, name)?
        .as_str()
        .ok_or_else(|| error(format!("block field {name} is not a string")))
}

fn field_u64(block: &Value, name: &str) -> Result<u64, ReplayError> {
    let s = field_str(block, name)?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|e| error(format!("{name} {s:?}: {e}")))
}

fn field_u64_or_zero(block: &Value, name: &str) -> Result<u64, ReplayError> {
    match block.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(_) => field_u64(block, name),
    }
}

fn field_parsed<T: FromStr>(block: &Value, name: &str) -> Result<T, ReplayError>
where
    T::Err: std::fmt::Display,
{
    let s = field_str(block, name)?;
    s.parse::<T>()
        .map_err(|e| error(format!("{name} {s:?}: {e}")))
}

/// The state of `pre_state.json` and `block_hashes.json`.
pub fn parse_state(pre_state: &[u8], block_hashes: Option<&[u8]>) -> Result<MemState, ReplayError> {
    let pre: HashMap<Address, PreAccount> =
        serde_json::from_slice(pre_state).map_err(|e| error(format!("pre_state: {e}")))?;
    let mut state = MemState::default();
    for (address, acc) in pre {
        let code = match acc.code {
            Some(c) => {
                let len = c.original_len;
                if len > c.bytecode.len() {
                    return Err(error(format!(
                        "pre_state {address}: original_len {len} exceeds bytecode length {}",
                        c.bytecode.len()
                    )));
                }
                c.bytecode.slice(..len)
            }
            None => Bytes::new(),
        };
        let code_hash = if code.is_empty() {
            KECCAK256_EMPTY
        } else {
            keccak256(&code)
        };
        if let Some(given) = acc.code_hash
            && given != code_hash
        {
            return Err(error(format!(
                "pre_state {address}: code_hash {given} but keccak(code) = {code_hash}"
            )));
        }
        if !code.is_empty() {
            state.codes.insert(code_hash, code);
        }
        state.accounts.insert(
            address,
            Account {
                nonce: acc.basic.nonce,
                balance: parse_u256(&acc.basic.balance)?,
                code_hash,
            },
        );
        for (slot, value) in &acc.storage {
            state
                .storage
                .insert((address, parse_u256(slot)?), parse_u256(value)?);
        }
    }
    if let Some(hashes) = block_hashes {
        let hashes: HashMap<String, B256> =
            serde_json::from_slice(hashes).map_err(|e| error(format!("block_hashes: {e}")))?;
        for (number, hash) in hashes {
            let number = number
                .parse::<u64>()
                .map_err(|e| error(format!("block_hashes key {number:?}: {e}")))?;
            state.block_hashes.insert(number, hash);
        }
    }
    Ok(state)
}

/// The block of `block.json` over the state of [`parse_state`].
pub fn parse_block(block: &[u8], state: MemState) -> Result<ReplayBlock, ReplayError> {
    let block: Value =
        serde_json::from_slice(block).map_err(|e| error(format!("block.json: {e}")))?;
    let number = field_u64(&block, "number")?;
    let timestamp = field_u64(&block, "timestamp")?;
    let gas_limit = field_u64(&block, "gasLimit")?;
    let env = BlockEnv {
        number,
        timestamp,
        fee_recipient: field_parsed(&block, "miner")?,
        gas_limit,
        base_fee: field_u64_or_zero(&block, "baseFeePerGas")?,
        difficulty: field_parsed(&block, "difficulty")?,
        prevrandao: field_parsed(&block, "mixHash")?,
        excess_blob_gas: field_u64_or_zero(&block, "excessBlobGas")?,
    };
    let raw_txs = field(&block, "transactions")?
        .as_array()
        .ok_or_else(|| error("transactions is not an array"))?;
    let mut txs = Vec::with_capacity(raw_txs.len());
    let mut tx_hashes = Vec::with_capacity(raw_txs.len());
    for (i, raw) in raw_txs.iter().enumerate() {
        let rpc: alloy_rpc_types_eth::Transaction =
            serde_json::from_value(raw.clone()).map_err(|e| error(format!("tx {i}: {e}")))?;
        let (envelope, from): (TxEnvelope, Address) = rpc.inner.into_parts();
        tx_hashes.push(field_parsed(raw, "hash").map_err(|e| error(format!("tx {i}: {e}")))?);
        txs.push(RecoveredTx::new_unchecked(envelope, from));
    }
    Ok(ReplayBlock {
        number,
        spec: ChainSpec {
            name: "ethereum-mainnet",
            chain_id: 1,
            spec_id: mainnet_spec_id(number, timestamp),
            gas_limit,
            fee_rules: FeeRules::Ethereum,
            ..ChainSpec::dev()
        },
        env,
        txs,
        tx_hashes,
        state,
        gas_used: field_u64(&block, "gasUsed")?,
        logs_bloom: field_parsed(&block, "logsBloom")?,
        receipts_root: field_parsed(&block, "receiptsRoot")?,
    })
}
