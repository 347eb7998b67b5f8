//! Bor blocks: whose turn it is and when, what a producer builds and seals, and what an
//! importer checks and re-executes. Both sides run the same builder, so a block a producer
//! seals is exactly what an honest importer computes.

use super::{
    extra::{Vanity, validator_bytes},
    seal::{EXTRA_SEAL, seal},
    snapshot::Snapshot,
    span::{Span, commits_next_span},
    verify::{BorError, check_sprint_end_validators, verify_header},
};
use crate::{
    chain::{
        builder::{BlockTemplate, BuildError, BuiltBlock, SystemCall, TxSource, build_block},
        spec::ChainSpec,
    },
    exec::{BlockEnv, CallRequest, ExecError, ExecMode, StateReader, call},
    merkle::trie::TrieReader,
    primitives::{DeliveryHeight, RecoveredTx},
    root::contracts::{BOR_VALIDATOR_SET, child::BorValidatorSet},
};
use alloy_consensus::{Header, proofs};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::SolCall;
use std::sync::Arc;

/// Gas a view of the validator contract may use.
const VIEW_GAS: u64 = 30_000_000;

/// Why a Bor block could not be built or was refused.
#[derive(Debug, thiserror::Error)]
pub enum BorBlockError {
    #[error("the chain spec has no Bor parameters")]
    NotBor,
    #[error(transparent)]
    Header(#[from] BorError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("reading the validator contract: {0}")]
    Contract(#[source] ExecError),
    #[error("the validator contract's answer does not decode")]
    ContractAnswer,
    #[error("the vanity does not name a Delivery height")]
    Vanity,
    #[error("the block pins Delivery height {pinned}; it was checked against height {given}")]
    PinnedHeight {
        pinned: DeliveryHeight,
        given: DeliveryHeight,
    },
    #[error("block {number} must commit span {span}, which Delivery has not decided")]
    SpanMissing { number: u64, span: u64 },
    #[error("{field}: the header says {claimed}, execution gives {computed}")]
    Root {
        field: &'static str,
        claimed: B256,
        computed: B256,
    },
    #[error("gas used: the header says {claimed}, execution gives {computed}")]
    GasUsed { claimed: u64, computed: u64 },
    #[error("the logs bloom differs from execution's")]
    Bloom,
    #[error("{included} of the block's {listed} transactions execute")]
    Transactions { included: usize, listed: usize },
    #[error(transparent)]
    Snapshot(#[from] super::snapshot::SnapshotError),
    #[error("the header differs from the one execution builds: {0}")]
    Fields(&'static str),
}

/// A producer's place in the current sprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// Ranks behind the in-turn producer (0 = in turn).
    pub succession: usize,
    pub difficulty: u64,
    /// The earliest time (seconds) its block may carry.
    pub earliest_secs: u64,
}

/// When `signer` may seal the block after `parent`, or `None` if it is not a producer.
pub fn turn(
    spec: &ChainSpec,
    snapshot: &Snapshot,
    parent: &Header,
    signer: &Address,
) -> Option<Turn> {
    let params = spec.bor.as_ref()?;
    let succession = snapshot.succession(signer)?;
    Some(Turn {
        succession,
        difficulty: (snapshot.set.len() - succession) as u64,
        earliest_secs: parent.timestamp + params.producer_delay(parent.number + 1, succession),
    })
}

/// What the Delivery chain says about block `number`, read at the block's pinned height.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFacts {
    pub height: DeliveryHeight,
    /// The span after the last one committed on the BTTC chain, if Delivery has decided it.
    pub next_span: Option<Span>,
}

/// The system calls block `number` makes: at the first block of the last sprint of the
/// current span, `commitSpan` of the next span (bor `checkAndCommitSpan`).
pub fn system_calls(
    spec: &ChainSpec,
    current_span: &Span,
    number: u64,
    facts: &DeliveryFacts,
) -> Result<Vec<SystemCall>, BorBlockError> {
    let params = spec.bor.as_ref().ok_or(BorBlockError::NotBor)?;
    if !params.is_sprint_start(number) || !commits_next_span(params, current_span, number) {
        return Ok(Vec::new());
    }
    let next = facts
        .next_span
        .as_ref()
        .filter(|s| s.id == current_span.id + 1)
        .ok_or(BorBlockError::SpanMissing {
            number,
            span: current_span.id + 1,
        })?;
    Ok(vec![SystemCall {
        to: BOR_VALIDATOR_SET,
        input: next.commit_input(),
    }])
}

/// `getBorValidators(number + 1)` on `state`, as (signer, power): what the sprint-end block
/// `number` lists.
pub fn contract_validators<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    parent: &Header,
    number: u64,
) -> Result<Vec<(Address, u64)>, BorBlockError> {
    let env = BlockEnv {
        number,
        timestamp: parent.timestamp,
        fee_recipient: Address::ZERO,
        gas_limit: VIEW_GAS,
        base_fee: 0,
        difficulty: U256::ZERO,
        prevrandao: B256::ZERO,
        excess_blob_gas: 0,
    };
    let request = CallRequest {
        to: Some(BOR_VALIDATOR_SET),
        gas: Some(VIEW_GAS),
        input: BorValidatorSet::getBorValidatorsCall {
            number: U256::from(number + 1),
        }
        .abi_encode()
        .into(),
        ..Default::default()
    };
    let out = call(spec, state, &env, &request).map_err(BorBlockError::Contract)?;
    if !out.success {
        return Err(BorBlockError::ContractAnswer);
    }
    let answer = BorValidatorSet::getBorValidatorsCall::abi_decode_returns(&out.output)
        .map_err(|_| BorBlockError::ContractAnswer)?;
    if answer._0.len() != answer._1.len() {
        return Err(BorBlockError::ContractAnswer);
    }
    answer
        ._0
        .into_iter()
        .zip(answer._1)
        .map(|(a, p)| {
            u64::try_from(p)
                .map(|p| (a, p))
                .map_err(|_| BorBlockError::ContractAnswer)
        })
        .collect()
}

/// Everything a producer decided besides the pool's transactions.
pub struct Production<'a> {
    pub parent: Header,
    pub parent_hash: B256,
    pub turn: Turn,
    pub timestamp: u64,
    pub vanity: Vanity,
    pub system_calls: Vec<SystemCall>,
    pub key: &'a secp256k1::SecretKey,
    pub signer: Address,
}

/// The extra data of the block after `parent`, its seal still zero: the vanity, and at a
/// sprint's end the validator contract's next producers.
fn unsealed_extra<S: StateReader>(
    spec: &ChainSpec,
    state: &S,
    parent: &Header,
    vanity: &Vanity,
) -> Result<Bytes, BorBlockError> {
    let params = spec.bor.as_ref().ok_or(BorBlockError::NotBor)?;
    let number = parent.number + 1;
    let mut extra = vanity.encode().to_vec();
    if params.is_sprint_end(number) {
        extra.extend(validator_bytes(&contract_validators(
            spec, state, parent, number,
        )?));
    }
    extra.extend_from_slice(&[0; EXTRA_SEAL]);
    Ok(Bytes::from(extra))
}

/// Builds the next block from `candidates` on `state` (the parent's) and seals it.
pub fn produce<S: StateReader + TrieReader>(
    spec: &ChainSpec,
    state: &S,
    candidates: &mut dyn TxSource,
    production: Production<'_>,
    exec: ExecMode,
) -> Result<BuiltBlock, BorBlockError> {
    let extra_data = unsealed_extra(spec, state, &production.parent, &production.vanity)?;
    let template = BlockTemplate {
        parent: production.parent,
        parent_hash: production.parent_hash,
        timestamp: production.timestamp,
        beneficiary: Address::ZERO,
        fee_recipient: production.signer,
        extra_data,
        difficulty: Some(U256::from(production.turn.difficulty)),
        system_calls: production.system_calls,
    };
    let mut built = build_block(spec, state, candidates, &template, exec)?;
    let extra = built.header.extra_data.clone();
    let (vanity, rest) = extra.split_at(super::seal::EXTRA_VANITY);
    let middle = &rest[..rest.len() - EXTRA_SEAL];
    seal(
        &mut built.header,
        vanity.try_into().expect("32 bytes of vanity"),
        middle,
        production.key,
    );
    built.hash = built.header.hash_slow();
    Ok(built)
}

/// A block's transactions in order, for re-execution: nothing is skipped silently (a skipped
/// transaction leaves the block short, which the transaction count catches).
struct Listed {
    txs: std::vec::IntoIter<Arc<RecoveredTx>>,
}

impl TxSource for Listed {
    fn next_tx(&mut self) -> Option<Arc<RecoveredTx>> {
        self.txs.next()
    }
    fn skip_sender(&mut self, _: &Address) {}
}

/// Checks a received block against its parent, the snapshot as of the parent and the
/// Delivery facts at its pinned height, executes it on `state` (the parent's), and returns it
/// ready to commit, with its signer.
#[allow(clippy::too_many_arguments)]
pub fn import<S: StateReader + TrieReader>(
    spec: &ChainSpec,
    state: &S,
    snapshot: &Snapshot,
    current_span: &Span,
    facts: &DeliveryFacts,
    parent: &Header,
    header: Header,
    txs: Vec<RecoveredTx>,
    now_secs: Option<u64>,
    exec: ExecMode,
) -> Result<(BuiltBlock, Address), BorBlockError> {
    let params = spec.bor.as_ref().ok_or(BorBlockError::NotBor)?;
    let signer = verify_header(params, snapshot, parent, &header, now_secs)?;
    let (vanity, _, _) = super::extra::split(&header.extra_data).map_err(BorError::from)?;
    let vanity = Vanity::decode(vanity).ok_or(BorBlockError::Vanity)?;
    if vanity.delivery_height != facts.height {
        return Err(BorBlockError::PinnedHeight {
            pinned: vanity.delivery_height,
            given: facts.height,
        });
    }
    if params.is_sprint_end(header.number) {
        let expected = contract_validators(spec, state, parent, header.number)?;
        check_sprint_end_validators(params, &header, &expected)?;
    }
    let envelopes: Vec<_> = txs.iter().map(|t| t.envelope.clone()).collect();
    let tx_root = proofs::calculate_transaction_root(&envelopes);
    if tx_root != header.transactions_root {
        return Err(BorBlockError::Root {
            field: "transactions root",
            claimed: header.transactions_root,
            computed: tx_root,
        });
    }
    let listed = txs.len();
    let template = BlockTemplate {
        parent: parent.clone(),
        parent_hash: header.parent_hash,
        timestamp: header.timestamp,
        beneficiary: Address::ZERO,
        fee_recipient: signer,
        extra_data: header.extra_data.clone(),
        difficulty: Some(header.difficulty),
        system_calls: system_calls(spec, current_span, header.number, facts)?,
    };
    let mut source = Listed {
        txs: txs
            .into_iter()
            .map(Arc::new)
            .collect::<Vec<_>>()
            .into_iter(),
    };
    let built = build_block(spec, state, &mut source, &template, exec)?;
    if built.txs.len() != listed {
        return Err(BorBlockError::Transactions {
            included: built.txs.len(),
            listed,
        });
    }
    let computed = &built.header;
    if computed.gas_used != header.gas_used {
        return Err(BorBlockError::GasUsed {
            claimed: header.gas_used,
            computed: computed.gas_used,
        });
    }
    for (field, claimed, got) in [
        (
            "receipts root",
            header.receipts_root,
            computed.receipts_root,
        ),
        ("state root", header.state_root, computed.state_root),
    ] {
        if claimed != got {
            return Err(BorBlockError::Root {
                field,
                claimed,
                computed: got,
            });
        }
    }
    if computed.logs_bloom != header.logs_bloom {
        return Err(BorBlockError::Bloom);
    }
    if *computed != header {
        return Err(BorBlockError::Fields(first_difference(computed, &header)));
    }
    Ok((built, signer))
}

/// The first header field (beyond those checked one by one) where two headers differ.
fn first_difference(a: &Header, b: &Header) -> &'static str {
    if a.gas_limit != b.gas_limit {
        "gas limit"
    } else if a.base_fee_per_gas != b.base_fee_per_gas {
        "base fee"
    } else if a.parent_hash != b.parent_hash {
        "parent hash"
    } else if a.withdrawals_root != b.withdrawals_root
        || a.blob_gas_used != b.blob_gas_used
        || a.excess_blob_gas != b.excess_blob_gas
        || a.parent_beacon_block_root != b.parent_beacon_block_root
        || a.requests_hash != b.requests_hash
    {
        "fork fields"
    } else {
        "other fields"
    }
}

/// What a node tracks about its chain's tip under Bor: the snapshot as of the tip and the
/// last span committed into the validator contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BorTip {
    pub snapshot: Snapshot,
    pub current_span: Span,
}

impl BorTip {
    /// Takes the next committed block: its sprint-end validators (if any) into the snapshot,
    /// and the span its `commitSpan` (if any) committed.
    pub fn advance(
        &mut self,
        spec: &ChainSpec,
        header: &Header,
        hash: B256,
        facts: &DeliveryFacts,
    ) -> Result<(), BorBlockError> {
        let params = spec.bor.as_ref().ok_or(BorBlockError::NotBor)?;
        let committed = !system_calls(spec, &self.current_span, header.number, facts)?.is_empty();
        self.snapshot.apply(params, header, hash)?;
        if committed && let Some(next) = &facts.next_span {
            self.current_span = next.clone();
        }
        Ok(())
    }
}
