//! The genesis of a Bor chain: funded accounts, the validator contract at 0x…1000 with the
//! chain's sprint, and span 0 committed, as BTTC's genesis template renders them.

use super::{
    block::BorTip, host::ChainMeta, params::BorParams, snapshot::Snapshot, span::Span,
    span::SpanValidator,
};
use crate::delivery::validators::SetUpdateError;
use crate::{
    chain::{builder::BuildError, genesis::Genesis, spec::ChainSpec},
    exec::{AccountChange, BlockEnv, MemState, SequentialBlock, StateChanges},
    root::contracts::{BOR_VALIDATOR_SET, SYSTEM_ADDRESS, child::BorValidatorSet},
};
use alloy_primitives::{Address, B256, U256};

/// Storage slot of `BorValidatorSet`'s sprint (its fifth state variable).
pub const SPRINT_SLOT: U256 = U256::from_limbs([4, 0, 0, 0]);

/// A Bor chain's genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BorGenesis {
    pub base: Genesis,
    pub params: BorParams,
    pub chain_id: u64,
    /// The Delivery genesis validators: span 0's validators and producers.
    pub validators: Vec<SpanValidator>,
}

impl BorGenesis {
    pub fn first_span(&self) -> Span {
        Span::first(&self.params, &self.validators, self.chain_id)
    }

    /// What a node keeps with the genesis block `hash`: the snapshot of span 0's producers,
    /// span 0, and a total difficulty of zero.
    pub fn meta(&self, hash: B256) -> Result<ChainMeta, SetUpdateError> {
        let first = self.first_span();
        Ok(ChainMeta {
            tip: BorTip {
                snapshot: Snapshot::genesis(hash, &first.producer_powers())?,
                current_span: first,
            },
            total_difficulty: 0,
        })
    }

    /// The genesis state as changes over an empty state: the funded accounts, the validator
    /// contract, and what committing span 0 wrote into it.
    pub fn changes(&self, spec: &ChainSpec) -> Result<StateChanges, BuildError> {
        let mut state = MemState::default();
        state.apply(&self.base.changes());
        state.insert_contract(
            BOR_VALIDATOR_SET,
            BorValidatorSet::DEPLOYED_BYTECODE.clone(),
            U256::ZERO,
        );
        state.storage.insert(
            (BOR_VALIDATOR_SET, SPRINT_SLOT),
            U256::from(self.params.sprint),
        );
        let env = BlockEnv {
            number: 0,
            timestamp: self.base.timestamp,
            fee_recipient: Address::ZERO,
            gas_limit: spec.gas_limit,
            base_fee: 0,
            difficulty: U256::ZERO,
            prevrandao: B256::ZERO,
            excess_blob_gas: 0,
        };
        let mut block = SequentialBlock::new(spec, &state, env);
        let outcome = block.system_call(
            SYSTEM_ADDRESS,
            BOR_VALIDATOR_SET,
            self.first_span().commit_input(),
        )?;
        if !outcome.success {
            return Err(BuildError::SystemCall {
                to: BOR_VALIDATOR_SET,
                output: outcome.output,
            });
        }
        let committed = block.finish().changes;
        state.apply(&committed);
        Ok(state_as_changes(&state))
    }
}

/// A whole in-memory state as the changes that create it from nothing.
fn state_as_changes(state: &MemState) -> StateChanges {
    let mut changes = StateChanges::default();
    for (address, account) in &state.accounts {
        changes.accounts.insert(
            *address,
            AccountChange {
                account: Some(*account),
                ..Default::default()
            },
        );
    }
    for ((address, slot), value) in &state.storage {
        if let Some(change) = changes.accounts.get_mut(address) {
            change.storage.insert(*slot, *value);
        }
    }
    changes.codes = state
        .codes
        .iter()
        .map(|(hash, code)| (*hash, code.clone()))
        .collect();
    changes
}
