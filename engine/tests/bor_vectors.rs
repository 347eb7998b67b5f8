//! Bor vectors against our `BorValidatorSet` in revm: the sprint-end validator bytes a
//! producer writes equal `getBorValidators(n + 1)`, and the `commitSpan` data our span rules
//! make is accepted, for BTTC's sprint and for a devnet's shorter one.

use alloy_primitives::{Address, B256, U256};
use bttc_engine::{
    chain::{
        bor::{BorParams, Span, SpanValidator, span::commits_next_span, validator_bytes},
        spec::ChainSpec,
    },
    root::{
        contracts::{BOR_VALIDATOR_SET, SYSTEM_ADDRESS, child::BorValidatorSet},
        testing::{EvmChain, error_string},
    },
};

fn validators(n: u64) -> Vec<SpanValidator> {
    (1..=n)
        .map(|id| SpanValidator {
            id,
            power: 1,
            signer: Address::with_last_byte(200 - id as u8),
        })
        .collect()
}

fn chain_with_set() -> EvmChain {
    let mut chain = EvmChain::new(ChainSpec::bttc_mainnet());
    chain.insert_code(
        BOR_VALIDATOR_SET,
        BorValidatorSet::DEPLOYED_BYTECODE.clone(),
        U256::ZERO,
    );
    chain
}

fn commit(chain: &mut EvmChain, span: &Span) -> Result<(), String> {
    let out = chain.system_calls(&[(SYSTEM_ADDRESS, BOR_VALIDATOR_SET, span.commit_input())]);
    if out[0].success {
        Ok(())
    } else {
        Err(error_string(&out[0].output).unwrap_or_default())
    }
}

/// The list a sprint-end header of block `number` carries, read from the contract.
fn contract_validators(chain: &EvmChain, number: u64) -> Vec<(Address, u64)> {
    let answer = chain
        .view(
            BOR_VALIDATOR_SET,
            BorValidatorSet::getBorValidatorsCall {
                number: U256::from(number + 1),
            },
        )
        .unwrap();
    answer
        ._0
        .into_iter()
        .zip(answer._1)
        .map(|(a, p)| (a, p.to::<u64>()))
        .collect()
}

fn run_spans(params: BorParams, set_sprint: bool) {
    let mut chain = chain_with_set();
    if set_sprint {
        // Storage slot 4: the sprint a devnet genesis writes.
        chain.state.storage.insert(
            (BOR_VALIDATOR_SET, U256::from(4)),
            U256::from(params.sprint),
        );
    }
    let sprint = chain
        .view(BOR_VALIDATOR_SET, BorValidatorSet::SPRINTCall {})
        .unwrap();
    assert_eq!(sprint, U256::from(params.sprint));

    let genesis = validators(7);
    let first = Span::first(&params, &genesis, 199);
    commit(&mut chain, &first).unwrap();
    assert_eq!(
        chain
            .view(BOR_VALIDATOR_SET, BorValidatorSet::FIRST_END_BLOCKCall {})
            .unwrap(),
        U256::from(params.first_span_end)
    );

    // Three more spans, each made from a different set (a validator leaves, one joins),
    // committed at the block where Bor commits them.
    let mut spans = vec![first];
    let mut members = genesis.clone();
    for k in 0..3u8 {
        members.remove(0);
        members.push(SpanValidator {
            id: 10 + u64::from(k),
            power: 1,
            signer: Address::with_last_byte(10 + k),
        });
        let last = spans.last().unwrap();
        let commit_at = (last.start_block..=last.end_block)
            .find(|n| params.is_sprint_start(*n) && commits_next_span(&params, last, *n))
            .expect("a commit block inside the span");
        assert_eq!(commit_at, last.end_block + 1 - params.sprint);
        let next = last.next(&params, &members, B256::repeat_byte(k)).unwrap();
        Span::check_follows(
            last,
            &params,
            next.id,
            next.start_block,
            next.end_block,
            next.chain_id,
        )
        .unwrap();
        commit(&mut chain, &next).unwrap();
        spans.push(next);
    }

    // Every sprint-end block's validator bytes: what the producer writes from the span it
    // knows equals what the contract answers for the next block.
    let last_block = spans.last().unwrap().end_block;
    let mut checked = 0;
    for number in (params.sprint - 1..last_block).step_by(params.sprint as usize) {
        assert!(params.is_sprint_end(number));
        let next_span = spans.iter().find(|s| s.contains(number + 1)).unwrap();
        let ours = validator_bytes(&next_span.producer_powers());
        assert_eq!(
            ours,
            validator_bytes(&contract_validators(&chain, number)),
            "sprint end {number}"
        );
        checked += 1;
    }
    assert!(checked >= 4);

    // A span that does not follow, or does not last a multiple of the sprint, is refused.
    let last = spans.last().unwrap();
    let mut gap = last.next(&params, &members, B256::ZERO).unwrap();
    gap.start_block += 1;
    assert_eq!(
        commit(&mut chain, &gap),
        Err("span must start after the last one".into())
    );
    let mut odd = last.next(&params, &members, B256::ZERO).unwrap();
    odd.end_block -= 1;
    assert_eq!(
        commit(&mut chain, &odd),
        Err("span length must be a multiple of the sprint".into())
    );
}

#[test]
fn mainnet_spans_and_sprint_end_validators_match_the_contract() {
    run_spans(BorParams::MAINNET, false);
}

#[test]
fn devnet_spans_with_a_genesis_sprint_match_the_contract() {
    let params = BorParams {
        sprint: 8,
        span: 32,
        first_span_end: 31,
        ..BorParams::MAINNET
    };
    run_spans(params, true);
}
