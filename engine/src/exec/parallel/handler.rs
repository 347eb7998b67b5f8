//! revm's mainnet handler with the fee left unpaid: a parallel transaction records what the fee
//! recipient is owed instead of reading and writing that account, which every transaction
//! would otherwise share.

use alloy_primitives::U256;
use revm::{
    context_interface::{
        Block, Cfg, ContextTr, Database, JournalTr, Transaction,
        result::{EVMError, HaltReason, InvalidTransaction},
    },
    handler::{EthFrame, EvmTr, FrameResult, Handler},
    inspector::{Inspector, InspectorEvmTr, InspectorHandler},
    interpreter::interpreter::EthInterpreter,
    primitives::hardfork::SpecId,
    state::EvmState,
};
use std::{cell::Cell, marker::PhantomData};

pub(crate) struct DeferredFee<EVM> {
    /// What the last transaction owes the fee recipient.
    pub(crate) fee: Cell<U256>,
    _evm: PhantomData<fn() -> EVM>,
}

impl<EVM> Default for DeferredFee<EVM> {
    fn default() -> Self {
        Self {
            fee: Cell::new(U256::ZERO),
            _evm: PhantomData,
        }
    }
}

impl<EVM> Handler for DeferredFee<EVM>
where
    EVM: EvmTr<
            Context: ContextTr<Journal: JournalTr<State = EvmState>>,
            Frame = EthFrame<EthInterpreter>,
        >,
{
    type Evm = EVM;
    type Error = EVMError<<<EVM::Context as ContextTr>::Db as Database>::Error, InvalidTransaction>;
    type HaltReason = HaltReason;

    /// revm's `reward_beneficiary`, with the amount kept instead of paid.
    fn reward_beneficiary(
        &self,
        evm: &mut Self::Evm,
        exec_result: &mut FrameResult,
    ) -> Result<(), Self::Error> {
        let ctx = evm.ctx();
        let basefee = ctx.block().basefee() as u128;
        let price = ctx.tx().effective_gas_price(basefee);
        let recipient_price = if ctx.cfg().spec().into().is_enabled_in(SpecId::LONDON) {
            price.saturating_sub(basefee)
        } else {
            price
        };
        let gas = exec_result.gas();
        let used = gas.used().saturating_sub(gas.reservoir());
        self.fee.set(U256::from(recipient_price * used as u128));
        Ok(())
    }
}

impl<EVM> InspectorHandler for DeferredFee<EVM>
where
    EVM: InspectorEvmTr<
            Context: ContextTr<Journal: JournalTr<State = EvmState>>,
            Frame = EthFrame<EthInterpreter>,
            Inspector: Inspector<<EVM as EvmTr>::Context, EthInterpreter>,
        >,
{
    type IT = EthInterpreter;
}
