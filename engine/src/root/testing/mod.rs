//! A small chain on the engine's own executor, for contract tests and gas figures: signed
//! legacy transactions mined one block per call, system calls, views, and each block's
//! transaction and receipt roots and encoded receipts, from which exit proofs are built.

use crate::{
    chain::spec::ChainSpec,
    crypto::recover_tx_sender,
    exec::{BlockEnv, CallRequest, MemState, SequentialBlock, SystemCallOutcome, call},
    merkle::checkpoint::HeaderLeaf,
    primitives::{Account, RecoveredTx, receipts_root},
};
use alloy_consensus::{SignableTransaction, Transaction, TxEip2930, TxEnvelope, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Log, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;

pub mod bridge;
pub mod staking;

/// Gas limit of every test transaction.
pub const TX_GAS_LIMIT: u64 = 15_000_000;

/// One transaction to mine.
#[derive(Clone)]
pub struct TxRequest<'a> {
    pub from: &'a PrivateKeySigner,
    /// `None` creates a contract from `input`.
    pub to: Option<Address>,
    pub input: Bytes,
    pub value: U256,
    /// Sign as an EIP-2930 transaction (type 1, Berlin's typed receipts) instead of legacy.
    pub typed: bool,
}

/// What a mined transaction did.
#[derive(Debug, Clone)]
pub struct Executed {
    pub success: bool,
    pub gas_used: u64,
    /// Return data, or revert data.
    pub output: Bytes,
    pub logs: Vec<Log>,
    /// The created contract, for a successful creation.
    pub created: Option<Address>,
}

impl Executed {
    /// The `Error(string)` reason of a revert, if it carries one.
    pub fn revert_reason(&self) -> Option<String> {
        if self.success {
            return None;
        }
        error_string(&self.output)
    }
}

/// A mined block: what a checkpoint leaf and an exit proof need.
#[derive(Debug, Clone)]
pub struct MinedBlock {
    pub number: u64,
    pub timestamp: u64,
    pub tx_root: B256,
    pub receipt_root: B256,
    /// EIP-2718 encodings of the receipts, in order: the receipt trie's values.
    pub receipts: Vec<Vec<u8>>,
    pub executed: Vec<Executed>,
}

/// An in-memory chain with a clock of 2 s per block.
pub struct EvmChain {
    pub spec: ChainSpec,
    pub state: MemState,
    /// The last mined block (0 = genesis).
    pub number: u64,
    pub timestamp: u64,
    pub fee_recipient: Address,
    /// The checkpoint leaf of every block from genesis on (index = block number).
    pub leaves: Vec<HeaderLeaf>,
}

impl EvmChain {
    pub fn new(spec: ChainSpec) -> Self {
        let timestamp = 1_700_000_000;
        Self {
            spec,
            state: MemState::default(),
            number: 0,
            timestamp,
            fee_recipient: Address::with_last_byte(0xcb),
            leaves: vec![HeaderLeaf {
                number: 0,
                time: timestamp,
                tx_root: alloy_trie::EMPTY_ROOT_HASH,
                receipt_root: alloy_trie::EMPTY_ROOT_HASH,
            }],
        }
    }

    fn push_block(&mut self, env: &BlockEnv, tx_root: B256, receipt_root: B256) {
        self.number = env.number;
        self.timestamp = env.timestamp;
        self.leaves.push(HeaderLeaf {
            number: env.number,
            time: env.timestamp,
            tx_root,
            receipt_root,
        });
    }

    /// Adds `wei` to `address`.
    pub fn fund(&mut self, address: Address, wei: U256) {
        let account = self.state.accounts.entry(address).or_insert(Account {
            nonce: 0,
            balance: U256::ZERO,
            code_hash: alloy_primitives::KECCAK256_EMPTY,
        });
        account.balance += wei;
    }

    /// Puts runtime `code` at `address`, as a genesis allocation does (no constructor runs).
    pub fn insert_code(&mut self, address: Address, code: Bytes, balance: U256) {
        self.state.insert_contract(address, code, balance);
    }

    fn next_env(&self) -> BlockEnv {
        BlockEnv {
            number: self.number + 1,
            timestamp: self.timestamp + 2,
            fee_recipient: self.fee_recipient,
            gas_limit: u64::MAX / 2,
            base_fee: self.spec.genesis_base_fee,
            difficulty: U256::from(1),
            prevrandao: B256::ZERO,
            excess_blob_gas: 0,
        }
    }

    fn gas_price(&self) -> u128 {
        self.spec
            .min_gas_price
            .max(u128::from(self.spec.genesis_base_fee))
    }

    fn nonce(&self, address: Address) -> u64 {
        self.state.accounts.get(&address).map_or(0, |a| a.nonce)
    }

    /// Mines one block holding `txs`, in order (nonces are taken from the state).
    pub fn mine(&mut self, txs: &[TxRequest<'_>]) -> MinedBlock {
        let env = self.next_env();
        let mut nonces = std::collections::HashMap::new();
        let recovered: Vec<RecoveredTx> = txs
            .iter()
            .map(|t| {
                let from = t.from.address();
                let nonce = nonces.entry(from).or_insert_with(|| self.nonce(from));
                let legacy = TxLegacy {
                    chain_id: Some(self.spec.chain_id),
                    nonce: *nonce,
                    gas_price: self.gas_price(),
                    gas_limit: TX_GAS_LIMIT,
                    to: t.to.map_or(TxKind::Create, TxKind::Call),
                    value: t.value,
                    input: t.input.clone(),
                };
                *nonce += 1;
                let sign = |hash: B256| {
                    t.from
                        .sign_hash_sync(&hash)
                        .expect("signing with a local key")
                };
                let envelope = if t.typed {
                    let tx = TxEip2930 {
                        chain_id: self.spec.chain_id,
                        nonce: legacy.nonce,
                        gas_price: legacy.gas_price,
                        gas_limit: legacy.gas_limit,
                        to: legacy.to,
                        value: legacy.value,
                        input: legacy.input,
                        access_list: Default::default(),
                    };
                    let signature = sign(tx.signature_hash());
                    TxEnvelope::from(tx.into_signed(signature))
                } else {
                    let signature = sign(legacy.signature_hash());
                    TxEnvelope::from(legacy.into_signed(signature))
                };
                let sender = recover_tx_sender(&envelope).expect("own signature");
                RecoveredTx::new_unchecked(envelope, sender)
            })
            .collect();
        let mut block = SequentialBlock::new(&self.spec, &self.state, env);
        let mut executed = Vec::with_capacity(txs.len());
        for tx in &recovered {
            let out = block.execute(tx).expect("a valid test transaction");
            executed.push(Executed {
                success: out.success,
                gas_used: out.gas_used,
                output: out.output,
                logs: Vec::new(),
                created: None,
            });
        }
        let outcome = block.finish();
        self.state.apply(&outcome.changes);
        for ((e, r), tx) in executed.iter_mut().zip(&outcome.receipts).zip(&recovered) {
            e.logs = r.receipt.logs.clone();
            if e.success && tx.envelope.kind() == TxKind::Create {
                e.created = Some(tx.sender.create(tx.envelope.nonce()));
            }
        }
        let envelopes: Vec<TxEnvelope> = recovered.iter().map(|t| t.envelope.clone()).collect();
        let tx_root = alloy_consensus::proofs::calculate_transaction_root(&envelopes);
        let receipt_root = receipts_root(&outcome.receipts);
        self.push_block(&env, tx_root, receipt_root);
        MinedBlock {
            number: env.number,
            timestamp: env.timestamp,
            tx_root,
            receipt_root,
            receipts: outcome
                .receipts
                .iter()
                .map(|r| {
                    let ty = alloy_consensus::TxType::try_from(r.tx_type)
                        .unwrap_or(alloy_consensus::TxType::Legacy);
                    alloy_consensus::ReceiptEnvelope::from_typed(ty, r.receipt.clone())
                        .encoded_2718()
                })
                .collect(),
            executed,
        }
    }

    /// Mines one transaction calling `to`.
    pub fn send<C: SolCall>(&mut self, from: &PrivateKeySigner, to: Address, c: C) -> Executed {
        self.send_value(from, to, c.abi_encode().into(), U256::ZERO)
    }

    /// Mines one transaction calling `to` with raw `input` and `value`.
    pub fn send_value(
        &mut self,
        from: &PrivateKeySigner,
        to: Address,
        input: Bytes,
        value: U256,
    ) -> Executed {
        let mut block = self.mine(&[TxRequest {
            from,
            to: Some(to),
            input,
            value,
            typed: false,
        }]);
        block.executed.pop().expect("one transaction")
    }

    /// Deploys `creation_code` followed by the ABI-encoded constructor arguments.
    pub fn deploy(
        &mut self,
        from: &PrivateKeySigner,
        creation_code: &[u8],
        args: &[u8],
    ) -> Address {
        let mut input = creation_code.to_vec();
        input.extend_from_slice(args);
        let mut block = self.mine(&[TxRequest {
            from,
            to: None,
            input: input.into(),
            value: U256::ZERO,
            typed: false,
        }]);
        let out = block.executed.pop().expect("one transaction");
        out.created
            .unwrap_or_else(|| panic!("deployment failed: {:?}", out.revert_reason()))
    }

    /// Runs system calls in one block of their own (Bor's `commitState`/`commitSpan` path).
    pub fn system_calls(&mut self, calls: &[(Address, Address, Bytes)]) -> Vec<SystemCallOutcome> {
        let env = self.next_env();
        let mut block = SequentialBlock::new(&self.spec, &self.state, env);
        let outcomes = calls
            .iter()
            .map(|(from, to, input)| {
                block
                    .system_call(*from, *to, input.clone())
                    .expect("a system call runs")
            })
            .collect();
        let outcome = block.finish();
        self.state.apply(&outcome.changes);
        // System calls make no receipts: the block's roots are those of an empty block.
        self.push_block(
            &env,
            alloy_trie::EMPTY_ROOT_HASH,
            alloy_trie::EMPTY_ROOT_HASH,
        );
        outcomes
    }

    /// Calls a view on the latest state.
    pub fn view<C: SolCall>(&self, to: Address, c: C) -> Result<C::Return, String> {
        let out = call(
            &self.spec,
            &self.state,
            &self.next_env(),
            &CallRequest {
                to: Some(to),
                gas: Some(TX_GAS_LIMIT),
                input: c.abi_encode().into(),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        if !out.success {
            return Err(
                error_string(&out.output).unwrap_or_else(|| format!("reverted: {}", out.output))
            );
        }
        C::abi_decode_returns(&out.output).map_err(|e| e.to_string())
    }

    pub fn balance(&self, address: Address) -> U256 {
        self.state
            .accounts
            .get(&address)
            .map_or(U256::ZERO, |a| a.balance)
    }
}

/// The message of an `Error(string)` revert.
pub fn error_string(output: &[u8]) -> Option<String> {
    use alloy_sol_types::SolError;
    alloy_sol_types::Revert::abi_decode(output)
        .ok()
        .map(|r| r.reason)
}

/// A deterministic test key.
pub fn test_key(seed: u64) -> PrivateKeySigner {
    let mut bytes = keccak256(seed.to_be_bytes());
    // A keccak output is a valid secp256k1 scalar with overwhelming probability; nudge otherwise.
    while PrivateKeySigner::from_bytes(&bytes).is_err() {
        bytes = keccak256(bytes);
    }
    PrivateKeySigner::from_bytes(&bytes).expect("a valid scalar")
}
