//! BTTC's synthetic receipt logs (spec §4.5): `LogTransfer` for every value transfer, in the
//! log order of the frame that makes it, and `LogFeeTransfer` after every transaction with a fee.

use alloy_primitives::{Address, B256, Bytes, Log, LogData, U256, address, b256, keccak256};
use revm::{
    Inspector,
    context_interface::{ContextTr, JournalTr},
    interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, CreateScheme},
    state::EvmState,
};

/// The native-token contract the logs are attributed to.
pub const NATIVE_TOKEN_ADDRESS: Address = address!("0000000000000000000000000000000000001010");
pub const LOG_TRANSFER_TOPIC: B256 =
    b256!("e6497e3ee548a3372136af2fcb0696db31fc6cf20260707645068bd3fe97f3c4");
pub const LOG_FEE_TRANSFER_TOPIC: B256 =
    b256!("4dfe1bbbcf077ddc3e01291eea2d5c70c2b422b415d95645b9adcfd678cb1d63");

/// A transfer log: topics `[sig, pad(token), pad(from), pad(to)]`, data
/// `(amount, fromBefore, toBefore, fromAfter, toAfter)`.
pub fn transfer_log(topic: B256, from: Address, to: Address, amounts: [U256; 5]) -> Log {
    let mut data = Vec::with_capacity(5 * 32);
    for a in amounts {
        data.extend_from_slice(&a.to_be_bytes::<32>());
    }
    Log {
        address: NATIVE_TOKEN_ADDRESS,
        data: LogData::new_unchecked(
            vec![
                topic,
                NATIVE_TOKEN_ADDRESS.into_word(),
                from.into_word(),
                to.into_word(),
            ],
            Bytes::from(data),
        ),
    }
}

/// A transfer seen at a frame's start, logged only if the frame succeeds.
struct PendingTransfer {
    /// Index in the journal's logs when the frame began: the log goes there, before the
    /// frame's own logs, as Bor's `Transfer` adds it inside the call's snapshot.
    log_index: usize,
    log: Option<Log>,
}

/// Inspector that inserts `LogTransfer` logs into the journal as frames succeed, and, when
/// asked, records the addresses and slots a call touches (`eth_createAccessList`).
#[derive(Default)]
pub(crate) struct TransferLogger {
    frames: Vec<PendingTransfer>,
    pub(crate) accesses: Option<AccessRecorder>,
}

/// Addresses and storage slots touched, as geth's access-list tracer sees them: slots of any
/// contract; addresses reached by BALANCE, EXTCODE*, CALL* and SELFDESTRUCT, except `excluded`
/// (the sender, the recipient and the precompiles).
#[derive(Debug, Default)]
pub(crate) struct AccessRecorder {
    pub(crate) excluded: std::collections::BTreeSet<Address>,
    pub(crate) touched: std::collections::BTreeMap<Address, std::collections::BTreeSet<B256>>,
}

impl AccessRecorder {
    fn record(&mut self, interp: &revm::interpreter::Interpreter) {
        use revm::interpreter::interpreter_types::{InputsTr, Jumps};
        let opcode = interp.bytecode.opcode();
        let word = |n: usize| interp.stack.peek(n).ok();
        let address_at = |n: usize| word(n).map(|w| Address::from_word(B256::from(w)));
        match opcode {
            // SLOAD, SSTORE
            0x54 | 0x55 => {
                if let Some(slot) = word(0) {
                    self.touched
                        .entry(interp.input.target_address())
                        .or_default()
                        .insert(B256::from(slot));
                }
            }
            // BALANCE, EXTCODESIZE, EXTCODECOPY, EXTCODEHASH, SELFDESTRUCT
            0x31 | 0x3b | 0x3c | 0x3f | 0xff => self.address(address_at(0)),
            // CALL, CALLCODE, DELEGATECALL, STATICCALL
            0xf1 | 0xf2 | 0xf4 | 0xfa => self.address(address_at(1)),
            _ => {}
        }
    }

    fn address(&mut self, address: Option<Address>) {
        if let Some(address) = address
            && !self.excluded.contains(&address)
        {
            self.touched.entry(address).or_default();
        }
    }
}

fn balance_of<CTX: ContextTr<Journal: JournalTr<State = EvmState>>>(
    ctx: &CTX,
    address: &Address,
) -> U256 {
    ctx.journal_ref()
        .evm_state()
        .get(address)
        .map_or(U256::ZERO, |a| a.info.balance)
}

impl TransferLogger {
    fn begin<CTX: ContextTr<Journal: JournalTr<State = EvmState>>>(
        &mut self,
        ctx: &CTX,
        transfer: Option<(Address, Address, U256)>,
    ) {
        let log = transfer
            .filter(|(_, _, amount)| !amount.is_zero())
            .map(|(from, to, amount)| {
                let from_before = balance_of(ctx, &from);
                let to_before = balance_of(ctx, &to);
                let (from_after, to_after) = if from == to {
                    (from_before, to_before)
                } else {
                    (
                        from_before.saturating_sub(amount),
                        to_before.saturating_add(amount),
                    )
                };
                transfer_log(
                    LOG_TRANSFER_TOPIC,
                    from,
                    to,
                    [amount, from_before, to_before, from_after, to_after],
                )
            });
        self.frames.push(PendingTransfer {
            log_index: ctx.journal_ref().logs().len(),
            log,
        });
    }

    fn end<CTX: ContextTr<Journal: JournalTr<State = EvmState>>>(
        &mut self,
        ctx: &mut CTX,
        ok: bool,
    ) {
        let frame = self.frames.pop().expect("frame begun");
        if let (true, Some(log)) = (ok, frame.log) {
            let mut logs = ctx.journal_mut().take_logs();
            logs.insert(frame.log_index.min(logs.len()), log);
            for log in logs {
                ctx.journal_mut().log(log);
            }
        }
    }
}

impl<CTX: ContextTr<Journal: JournalTr<State = EvmState>>> Inspector<CTX> for TransferLogger {
    fn step(&mut self, interp: &mut revm::interpreter::Interpreter, _ctx: &mut CTX) {
        if let Some(accesses) = &mut self.accesses {
            accesses.record(interp);
        }
    }

    fn call(&mut self, ctx: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        let transfer = inputs
            .transfer_value()
            .map(|amount| (inputs.transfer_from(), inputs.transfer_to(), amount));
        self.begin(ctx, transfer);
        None
    }

    fn call_end(&mut self, ctx: &mut CTX, _inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.end(ctx, outcome.result.is_ok());
    }

    fn create(&mut self, ctx: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        let caller = inputs.caller();
        let nonce = ctx
            .journal_ref()
            .evm_state()
            .get(&caller)
            .map_or(0, |a| a.info.nonce);
        // Computed here rather than by `created_address`, which caches its first answer.
        let created = match inputs.scheme() {
            CreateScheme::Create => caller.create(nonce),
            CreateScheme::Create2 { salt } => {
                caller.create2(salt.to_be_bytes::<32>(), keccak256(inputs.init_code()))
            }
            CreateScheme::Custom { address } => address,
        };
        self.begin(ctx, Some((caller, created, inputs.value())));
        None
    }

    fn create_end(&mut self, ctx: &mut CTX, _inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        self.end(ctx, outcome.result.is_ok());
    }
}
