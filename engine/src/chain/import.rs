//! Importing a chain made elsewhere: a geth-style genesis file (alloc, chain config with fork
//! blocks, London base fee) and RLP blocks, each executed and checked against its header
//! (parent link, transactions root, gas used, receipts root, logs bloom, state root and hash).
//! Consensus seals are not checked.

use crate::{
    chain::{
        builder::BuiltBlock,
        spec::{ChainSpec, FeeRules, SpecId},
    },
    crypto::recover_tx_sender,
    exec::{
        AccountChange, BlockEnv, BlockExecutor, ConfiguredExecutor, ExecError, ExecMode,
        StateChanges, StateError, StateReader,
    },
    merkle::{
        state_root::update_state_root,
        trie::{TrieError, TrieReader},
    },
    primitives::{Account, RecoveredTx, block_logs_bloom, receipts_root},
};
use alloy_consensus::{Block, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH, Header, TxEnvelope};
use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, keccak256};
use rayon::prelude::*;

/// Wei per ether.
const ETHER: u128 = 1_000_000_000_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("fork {name} activates at {at}: forks after genesis are not supported")]
    ForkAfterGenesis { name: &'static str, at: String },
    #[error("block {number}: {what} is {found}, expected {expected}")]
    Mismatch {
        number: u64,
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("block {number}: transaction {index} has no valid signature: {source}")]
    Signature {
        number: u64,
        index: usize,
        source: crate::crypto::RecoverError,
    },
    #[error("block {number}: execution failed: {source}")]
    Exec { number: u64, source: ExecError },
    #[error("block {number}: reading state failed: {source}")]
    State { number: u64, source: StateError },
    #[error("block {number}: state root: {source}")]
    Trie { number: u64, source: TrieError },
}

/// The chain rules a geth genesis file describes. Every fork it enables must be active from
/// genesis on (one rule set per chain, as everywhere in this node).
pub fn spec_from_genesis(genesis: &alloy_genesis::Genesis) -> Result<ChainSpec, ImportError> {
    let c = &genesis.config;
    // revm has no rule set of its own for Constantinople (Petersburg is it without EIP-1283)
    // nor for the difficulty-bomb forks, which change nothing execution sees.
    let blocks: [(&'static str, Option<u64>, SpecId); 13] = [
        ("homestead", c.homestead_block, SpecId::HOMESTEAD),
        ("eip150", c.eip150_block, SpecId::TANGERINE),
        ("eip155", c.eip155_block, SpecId::SPURIOUS_DRAGON),
        ("eip158", c.eip158_block, SpecId::SPURIOUS_DRAGON),
        ("byzantium", c.byzantium_block, SpecId::BYZANTIUM),
        ("constantinople", c.constantinople_block, SpecId::PETERSBURG),
        ("petersburg", c.petersburg_block, SpecId::PETERSBURG),
        ("istanbul", c.istanbul_block, SpecId::ISTANBUL),
        ("muirGlacier", c.muir_glacier_block, SpecId::ISTANBUL),
        ("berlin", c.berlin_block, SpecId::BERLIN),
        ("london", c.london_block, SpecId::LONDON),
        ("arrowGlacier", c.arrow_glacier_block, SpecId::LONDON),
        ("grayGlacier", c.gray_glacier_block, SpecId::LONDON),
    ];
    let times: [(&'static str, Option<u64>, SpecId); 4] = [
        ("shanghai", c.shanghai_time, SpecId::SHANGHAI),
        ("cancun", c.cancun_time, SpecId::CANCUN),
        ("prague", c.prague_time, SpecId::PRAGUE),
        ("osaka", c.osaka_time, SpecId::OSAKA),
    ];
    let mut spec_id = SpecId::FRONTIER;
    for (name, at, id) in blocks {
        match at {
            Some(0) => spec_id = id,
            Some(n) => {
                return Err(ImportError::ForkAfterGenesis {
                    name,
                    at: format!("block {n}"),
                });
            }
            None => {}
        }
    }
    let merged = match c.terminal_total_difficulty {
        None => false,
        Some(ttd) if ttd <= genesis.difficulty || c.terminal_total_difficulty_passed => true,
        Some(ttd) => {
            return Err(ImportError::ForkAfterGenesis {
                name: "merge",
                at: format!("total difficulty {ttd}"),
            });
        }
    };
    if merged {
        spec_id = SpecId::MERGE;
    }
    for (name, at, id) in times {
        match at {
            Some(t) if t <= genesis.timestamp => spec_id = id,
            Some(t) => {
                return Err(ImportError::ForkAfterGenesis {
                    name,
                    at: format!("time {t}"),
                });
            }
            None => {}
        }
    }
    // Proof-of-work rewards (ethash chains before the merge).
    let block_reward = (c.ethash.is_some() && !merged).then(|| {
        if spec_id.is_enabled_in(SpecId::PETERSBURG) {
            2 * ETHER
        } else if spec_id.is_enabled_in(SpecId::BYZANTIUM) {
            3 * ETHER
        } else {
            5 * ETHER
        }
    });
    let london = spec_id.is_enabled_in(SpecId::LONDON);
    Ok(ChainSpec {
        name: "imported",
        chain_id: c.chain_id,
        spec_id,
        gas_limit: genesis.gas_limit,
        min_gas_price: 0,
        genesis_base_fee: if london {
            genesis
                .base_fee_per_gas
                .map_or(alloy_eips::eip1559::INITIAL_BASE_FEE, |f| f as u64)
        } else {
            0
        },
        fee_rules: FeeRules::Ethereum,
        block_reward,
        bor: None,
    })
}

/// The genesis allocation as state changes over an empty state, and its code.
pub fn genesis_changes(genesis: &alloy_genesis::Genesis) -> StateChanges {
    let mut changes = StateChanges::default();
    for (address, account) in &genesis.alloc {
        let code_hash = match &account.code {
            Some(code) if !code.is_empty() => {
                let hash = keccak256(code);
                changes.codes.insert(hash, code.clone());
                hash
            }
            _ => KECCAK256_EMPTY,
        };
        let storage = account
            .storage
            .iter()
            .flatten()
            .filter(|(_, v)| !v.is_zero())
            .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
            .collect();
        changes.accounts.insert(
            *address,
            AccountChange {
                account: Some(Account {
                    nonce: account.nonce.unwrap_or_default(),
                    balance: account.balance,
                    code_hash,
                }),
                storage_wiped: false,
                storage,
            },
        );
    }
    changes
}

/// The genesis header, given the state root of [`genesis_changes`].
pub fn genesis_header(
    spec: &ChainSpec,
    genesis: &alloy_genesis::Genesis,
    state_root: B256,
) -> Header {
    let mut header = Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty: genesis.difficulty,
        number: genesis.number.unwrap_or_default(),
        gas_limit: genesis.gas_limit,
        gas_used: 0,
        timestamp: genesis.timestamp,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: genesis.nonce.into(),
        ..Default::default()
    };
    crate::chain::builder::set_fork_fields(spec, &mut header, spec.genesis_base_fee);
    // A PoW genesis keeps its own difficulty (set_fork_fields writes 1 for pre-merge rules).
    header.difficulty = genesis.difficulty;
    if spec.spec_id.is_enabled_in(SpecId::CANCUN) {
        header.excess_blob_gas = Some(genesis.excess_blob_gas.unwrap_or_default());
        header.blob_gas_used = Some(genesis.blob_gas_used.unwrap_or_default());
    }
    header
}

fn check<T: PartialEq + std::fmt::Debug>(
    number: u64,
    what: &'static str,
    found: T,
    expected: T,
) -> Result<(), ImportError> {
    if found == expected {
        return Ok(());
    }
    Err(ImportError::Mismatch {
        number,
        what,
        found: format!("{found:?}"),
        expected: format!("{expected:?}"),
    })
}

/// Executes `block` on the state after `parent` with `exec` and checks it against its header.
/// Nothing is `rejected` in an imported block: an invalid transaction fails the whole block.
pub fn import_block<S: StateReader + TrieReader>(
    spec: &ChainSpec,
    state: &S,
    parent: &Header,
    parent_hash: B256,
    block: Block<TxEnvelope>,
    exec: ExecMode,
) -> Result<BuiltBlock, ImportError> {
    let header = block.header;
    let number = header.number;
    check(number, "number", number, parent.number + 1)?;
    check(number, "parent hash", header.parent_hash, parent_hash)?;
    if spec.is_london() {
        let expected = spec.next_base_fee(
            parent.gas_used,
            parent.gas_limit,
            parent.base_fee_per_gas.unwrap_or_default(),
        );
        check(number, "base fee", header.base_fee_per_gas, Some(expected))?;
    }
    check(
        number,
        "transactions root",
        alloy_consensus::proofs::calculate_transaction_root(&block.body.transactions),
        header.transactions_root,
    )?;
    check(
        number,
        "ommers hash",
        alloy_consensus::proofs::calculate_ommers_root(&block.body.ommers),
        header.ommers_hash,
    )?;
    let txs: Vec<RecoveredTx> = block
        .body
        .transactions
        .into_par_iter()
        .enumerate()
        .map(|(index, envelope)| {
            let sender = recover_tx_sender(&envelope).map_err(|source| ImportError::Signature {
                number,
                index,
                source,
            })?;
            Ok(RecoveredTx::new_unchecked(envelope, sender))
        })
        .collect::<Result<_, ImportError>>()?;
    let env = BlockEnv {
        number,
        timestamp: header.timestamp,
        fee_recipient: header.beneficiary,
        gas_limit: header.gas_limit,
        base_fee: header.base_fee_per_gas.unwrap_or_default(),
        difficulty: header.difficulty,
        prevrandao: header.mix_hash,
        excess_blob_gas: header.excess_blob_gas.unwrap_or_default(),
    };
    let executor = ConfiguredExecutor {
        spec: spec.clone(),
        mode: exec,
    };
    let mut outcome = executor
        .execute_block(state, &env, &txs)
        .map_err(|source| ImportError::Exec { number, source })?;
    check_ommers(number, &block.body.ommers)?;
    if let Some(reward) = spec.block_reward {
        pay_rewards(
            state,
            &mut outcome.changes,
            &header,
            &block.body.ommers,
            reward,
        )
        .map_err(|source| ImportError::State { number, source })?;
    }
    check(number, "gas used", outcome.gas_used, header.gas_used)?;
    check(
        number,
        "receipts root",
        receipts_root(&outcome.receipts),
        header.receipts_root,
    )?;
    check(
        number,
        "logs bloom",
        block_logs_bloom(&outcome.receipts),
        header.logs_bloom,
    )?;
    let root_update = update_state_root(state, &outcome.changes)
        .map_err(|source| ImportError::Trie { number, source })?;
    check(number, "state root", root_update.root, header.state_root)?;
    let hash = header.hash_slow();
    Ok(BuiltBlock {
        header,
        hash,
        txs,
        receipts: outcome.receipts,
        changes: outcome.changes,
        root_update,
        rejected: Vec::new(),
    })
}

/// At most two uncles, each one to six blocks older than the block (Ethereum's rules; the
/// rewards below depend on it).
fn check_ommers(number: u64, ommers: &[Header]) -> Result<(), ImportError> {
    check(
        number,
        "uncle count at most 2",
        ommers.len().min(3),
        ommers.len().min(2),
    )?;
    for ommer in ommers {
        if ommer.number >= number || number - ommer.number > 6 {
            return Err(ImportError::Mismatch {
                number,
                what: "uncle number",
                found: ommer.number.to_string(),
                expected: format!("{} to {}", number.saturating_sub(6), number - 1),
            });
        }
    }
    Ok(())
}

/// Ethash rewards: the miner gets `reward` plus `reward / 32` per uncle; each uncle's miner
/// gets `reward × (8 + uncle.number − number) / 8`.
fn pay_rewards<S: StateReader>(
    state: &S,
    changes: &mut StateChanges,
    header: &Header,
    ommers: &[Header],
    reward: u128,
) -> Result<(), StateError> {
    let reward = U256::from(reward);
    let mut credits: Vec<(Address, U256)> = Vec::with_capacity(1 + ommers.len());
    let mut miner = reward;
    for ommer in ommers {
        miner += reward / U256::from(32);
        let share = reward * U256::from(8 + ommer.number).saturating_sub(U256::from(header.number))
            / U256::from(8);
        credits.push((ommer.beneficiary, share));
    }
    credits.push((header.beneficiary, miner));
    for (address, amount) in credits {
        let change = match changes.accounts.entry(address) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert(AccountChange {
                account: state.account(&address)?,
                ..Default::default()
            }),
        };
        let account = change.account.get_or_insert(Account {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: KECCAK256_EMPTY,
        });
        account.balance += amount;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uncle(number: u64) -> Header {
        Header {
            number,
            ..Default::default()
        }
    }

    #[test]
    fn uncles_must_be_one_to_six_blocks_older_and_at_most_two() {
        assert!(check_ommers(10, &[uncle(9), uncle(4)]).is_ok());
        assert!(check_ommers(10, &[uncle(3)]).is_err(), "seven blocks older");
        assert!(check_ommers(10, &[uncle(10)]).is_err(), "not older");
        assert!(
            check_ommers(10, &[uncle(u64::MAX)]).is_err(),
            "from the future"
        );
        assert!(
            check_ommers(10, &[uncle(9), uncle(8), uncle(7)]).is_err(),
            "three"
        );
    }

    #[test]
    fn rewards_follow_ethash() {
        // The miner gets 2 ETH + 1/32 per uncle; an uncle one block older gets 7/8 of 2 ETH.
        let state = crate::exec::MemState::default();
        let mut changes = StateChanges::default();
        let header = Header {
            number: 10,
            beneficiary: Address::repeat_byte(1),
            ..Default::default()
        };
        let ommer = Header {
            number: 9,
            beneficiary: Address::repeat_byte(2),
            ..Default::default()
        };
        pay_rewards(&state, &mut changes, &header, &[ommer], 2 * ETHER).unwrap();
        let balance = |b: u8| {
            changes.accounts[&Address::repeat_byte(b)]
                .account
                .unwrap()
                .balance
        };
        assert_eq!(balance(1), U256::from(2 * ETHER + 2 * ETHER / 32));
        assert_eq!(balance(2), U256::from(2 * ETHER * 7 / 8));
    }
}
