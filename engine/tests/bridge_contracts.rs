//! The bridge end to end on revm through the engine's executor: a root chain (staking
//! contracts, state sender, RootChainManager and predicates) and a BTTC chain (StateReceiver,
//! ChildChainManager, child tokens, the native token), joined the way Delivery joins them:
//! root `StateSynced` logs become `commitState` records, child blocks become checkpoints, and
//! exits carry receipt and checkpoint proofs built in Rust (spec §1.2, §2, §3).

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolEvent};
use bttc_engine::{
    chain::spec::ChainSpec,
    root::{
        contracts::{
            NATIVE_TOKEN, STATE_RECEIVER, SYSTEM_ADDRESS,
            child::{
                BorValidatorSet, ChildChainManager, ChildERC20, ChildERC721, NativeToken,
                StateReceiver,
            },
            root::{ERC20Predicate, RootChainManager, StateSender, TestRootERC20, TestRootERC721},
        },
        exit::ExitPayload,
        testing::{
            EvmChain, Executed, MinedBlock, TxRequest,
            bridge::{Child, Root, STATE_SYNCED, TRON, TRON_ETHER, exit_payload, ok, reason},
            test_key,
        },
    },
};

/// A 32-byte big-endian word.
fn word(value: u64) -> [u8; 32] {
    U256::from(value).to_be_bytes()
}

fn address_word(a: Address) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[12..].copy_from_slice(a.as_slice());
    w
}

#[test]
fn deposits_sync_the_spec_encoding_and_mint_on_the_child_chain() {
    let mut child = Child::new();
    let mut root = Root::new(&child);
    let user = test_key(700);
    let child_user = Address::repeat_byte(0x77);
    let depositor = root.depositor(700, 42);
    let _ = user;
    let amount = U256::from(1_234_567u64);
    let out = ok(root.deposit(&depositor, child_user, root.token, amount));

    // StateSynced(id, childChainManager, abi.encode(DEPOSIT, abi.encode(user, rootToken,
    // uint64 chainId, abi.encode(amount)))), word by word as spec §2.1 writes it.
    let synced = out
        .logs
        .iter()
        .find(|l| l.topics()[0] == STATE_SYNCED)
        .expect("StateSynced");
    assert_eq!(synced.address, root.state_sender);
    assert_eq!(
        synced.topics()[1],
        B256::from(word(5u64)),
        "4 mappings, then this deposit"
    );
    assert_eq!(synced.topics()[2], B256::from(address_word(child.manager)));
    let event = StateSender::StateSynced::decode_log(synced).unwrap();
    let mut inner = Vec::new();
    inner.extend(address_word(child_user));
    inner.extend(address_word(root.token));
    inner.extend(word(TRON));
    inner.extend(word(0x80u64));
    inner.extend(word(32u64));
    inner.extend(amount.to_be_bytes::<32>());
    let mut want = Vec::new();
    want.extend(keccak256("DEPOSIT").0);
    want.extend(word(0x40u64));
    want.extend(word(inner.len() as u64));
    want.extend(&inner);
    assert_eq!(event.data.data.as_ref(), want.as_slice());
    // The predicate holds the tokens.
    let held = root
        .staking
        .chain
        .view(
            root.token,
            TestRootERC20::balanceOfCall(root.erc20_predicate),
        )
        .unwrap();
    assert_eq!(held, amount);

    // The same for the other token types, then Delivery relays everything in order.
    let out721 = ok(root.deposit(&depositor, child_user, root.nft, U256::from(42)));
    let btt_amount = U256::from(10u64).pow(U256::from(20));
    let out_btt = ok(root.deposit(&depositor, child_user, root.btt, btt_amount));
    let manager = root.manager;
    let coin = U256::from(5_000u64);
    let out_coin = ok(root.chain().send_value(
        &depositor,
        manager,
        RootChainManager::depositEtherForCall { user: child_user }
            .abi_encode()
            .into(),
        coin,
    ));
    assert_eq!(root.staking.chain.balance(root.ether_predicate), coin);
    let sender = root.state_sender;
    let mut relayed: Vec<&Executed> = root.mappings.iter().collect();
    relayed.extend([&out, &out721, &out_btt, &out_coin]);
    let accepted = child.relay(sender, &relayed);
    assert_eq!(accepted, vec![true; 8]);
    let c = &child.chain;
    assert_eq!(
        c.view(child.erc20, ChildERC20::balanceOfCall(child_user))
            .unwrap(),
        amount
    );
    assert_eq!(
        c.view(
            child.erc721,
            ChildERC721::ownerOfCall {
                tokenId: U256::from(42)
            }
        )
        .unwrap(),
        child_user
    );
    assert_eq!(
        c.balance(child_user),
        btt_amount,
        "native BTT paid out of 0x…1010"
    );
    assert_eq!(
        c.view(child.wrapped_coin, ChildERC20::balanceOfCall(child_user))
            .unwrap(),
        coin
    );
    assert_eq!(
        c.view(STATE_RECEIVER, StateReceiver::lastStateIdCall {})
            .unwrap(),
        U256::from(8)
    );
}

#[test]
fn deposits_are_limited_per_root_block() {
    let child = Child::new();
    let mut root = Root::new(&child);
    let depositor = root.depositor(701, 1);
    let manager = root.manager;
    let token = root.token;
    let input: Bytes = RootChainManager::depositForCall {
        user: depositor.address(),
        rootToken: token,
        depositData: alloy_sol_types::SolValue::abi_encode(&U256::from(1)).into(),
    }
    .abi_encode()
    .into();
    let tx = TxRequest {
        from: &depositor,
        to: Some(manager),
        input: input.clone(),
        value: U256::ZERO,
        typed: false,
    };
    let block: MinedBlock = root.chain().mine(&vec![tx.clone(); 11]);
    let results: Vec<bool> = block.executed.iter().map(|e| e.success).collect();
    assert_eq!(results, [vec![true; 10], vec![false]].concat());
    assert_eq!(
        block.executed[10].revert_reason().as_deref(),
        Some("RootChainManager: too many deposits in this block")
    );
    // The next block takes deposits again; unmapped tokens are refused.
    let next = root.chain().mine(&[tx]);
    assert!(next.executed[0].success);
    let stranger = Address::repeat_byte(0x99);
    let out = root.deposit(&depositor, depositor.address(), stranger, U256::from(1));
    assert_eq!(reason(&out), "RootChainManager: TOKEN_NOT_MAPPED");
    let out = root.deposit(&depositor, depositor.address(), TRON_ETHER, U256::from(1));
    assert_eq!(reason(&out), "RootChainManager: INVALID_ROOT_TOKEN");
}

#[test]
fn exits_with_real_proofs_release_tokens_once_and_tampered_proofs_are_refused() {
    let mut child = Child::new();
    let mut root = Root::new(&child);
    let depositor = root.depositor(702, 7);
    let holder = test_key(703);
    child
        .chain
        .fund(holder.address(), U256::from(10u128.pow(24)));
    let amount = U256::from(1_000_000u64);
    let btt_amount = U256::from(10u64).pow(U256::from(21));
    let deposits = [
        ok(root.deposit(&depositor, holder.address(), root.token, amount)),
        ok(root.deposit(&depositor, holder.address(), root.nft, U256::from(7))),
        ok(root.deposit(&depositor, holder.address(), root.btt, btt_amount)),
    ];
    let manager = root.manager;
    let coin = U256::from(5_000u64);
    let coin_deposit = ok(root.chain().send_value(
        &depositor,
        manager,
        RootChainManager::depositEtherForCall {
            user: holder.address(),
        }
        .abi_encode()
        .into(),
        coin,
    ));
    let sender = root.state_sender;
    let mut relayed: Vec<&Executed> = root.mappings.iter().collect();
    relayed.extend(deposits.iter());
    relayed.push(&coin_deposit);
    assert_eq!(child.relay(sender, &relayed), vec![true; 8]);

    // One child block with a plain transfer and four withdrawals to a root-chain recipient;
    // the ERC-721 one is a typed (EIP-2930) transaction, so its receipt is typed too.
    let recipient = Address::repeat_byte(0x55);
    let other = test_key(704);
    child
        .chain
        .fund(other.address(), U256::from(10u128.pow(24)));
    let (erc20, erc721) = (child.erc20, child.erc721);
    let tx = |to: Address, input: Vec<u8>, value: U256| TxRequest {
        from: &holder,
        to: Some(to),
        input: input.into(),
        value,
        typed: to == erc721,
    };
    let half = amount / U256::from(2);
    let quarter_btt = btt_amount / U256::from(4);
    let block = child.chain.mine(&[
        TxRequest {
            from: &other,
            to: Some(Address::repeat_byte(0x66)),
            input: Bytes::new(),
            value: U256::from(1),
            typed: false,
        },
        tx(
            erc20,
            ChildERC20::withdrawToCall {
                to: recipient,
                amount: half,
            }
            .abi_encode(),
            U256::ZERO,
        ),
        tx(
            NATIVE_TOKEN,
            NativeToken::withdrawToCall {
                to: recipient,
                amount: quarter_btt,
            }
            .abi_encode(),
            quarter_btt,
        ),
        tx(
            erc721,
            ChildERC721::withdrawToCall {
                to: recipient,
                tokenId: U256::from(7),
            }
            .abi_encode(),
            U256::ZERO,
        ),
        tx(
            child.wrapped_coin,
            ChildERC20::withdrawToCall {
                to: recipient,
                amount: coin,
            }
            .abi_encode(),
            U256::ZERO,
        ),
    ]);
    assert!(block.executed.iter().all(|e| e.success));
    assert_eq!(block.receipts[3][0], 0x01, "a typed receipt");
    assert_eq!(
        child
            .chain
            .view(erc20, ChildERC20::balanceOfCall(holder.address()))
            .unwrap(),
        amount - half
    );
    child.chain.mine(&[]);
    let first_end = child.chain.number;
    let (header, tree) = root.checkpoint(&child.chain, first_end);
    assert_eq!(header, 10_000);
    // A second checkpoint, so that a wrong header number names a real one.
    child.chain.mine(&[]);
    child.chain.mine(&[]);
    let (second, _) = root.checkpoint(&child.chain, child.chain.number);
    assert_eq!(second, 20_000);

    // The first checkpoint starts at block 0.
    let exit =
        |tx_index: usize, token: Address| exit_payload(header, 0, &tree, &block, tx_index, token);
    let erc20_exit = exit(1, erc20);
    let native_exit = exit(2, NATIVE_TOKEN);
    let nft_exit = exit(3, erc721);
    let coin_exit = exit(4, child.wrapped_coin);
    // BTTC's own logs come first in the native withdrawal's receipt (LogTransfer of the value).
    assert!(native_exit.log_index > 0);

    let submit = |root: &mut Root, payload: &ExitPayload| {
        root.chain().send(
            &depositor,
            manager,
            RootChainManager::exitCall {
                inputData: payload.encode().into(),
            },
        )
    };
    let processed = |root: &Root, payload: &ExitPayload| {
        root.staking
            .chain
            .view(
                manager,
                RootChainManager::processedExitsCall(payload.exit_hash()),
            )
            .unwrap()
    };
    let recipient_tokens = |root: &Root| {
        root.staking
            .chain
            .view(root.token, TestRootERC20::balanceOfCall(recipient))
            .unwrap()
    };

    // Tampered proofs, each refused without effect.
    let mut bad_receipt = erc20_exit.clone();
    let last = bad_receipt.receipt.receipt.len() - 1;
    let mut bytes = bad_receipt.receipt.receipt.to_vec();
    bytes[last] ^= 1;
    bad_receipt.receipt.receipt = bytes.into();
    assert_eq!(
        reason(&submit(&mut root, &bad_receipt)),
        "RootChainManager: INVALID_PROOF"
    );
    let mut bad_mask = erc20_exit.clone();
    bad_mask.receipt.key = native_exit.receipt.key.clone();
    assert_eq!(
        reason(&submit(&mut root, &bad_mask)),
        "RootChainManager: INVALID_PROOF"
    );
    let mut bad_block_proof = erc20_exit.clone();
    let mut proof = bad_block_proof.block_proof.to_vec();
    proof[5] ^= 0x40;
    bad_block_proof.block_proof = proof.into();
    assert_eq!(
        reason(&submit(&mut root, &bad_block_proof)),
        "RootChainManager: INVALID_HEADER"
    );
    let mut bad_header = erc20_exit.clone();
    bad_header.header_number = U256::from(second);
    assert_eq!(
        reason(&submit(&mut root, &bad_header)),
        "RootChainManager: INVALID_HEADER"
    );
    let mut bad_time = erc20_exit.clone();
    bad_time.block_time += 1;
    assert_eq!(
        reason(&submit(&mut root, &bad_time)),
        "RootChainManager: INVALID_HEADER"
    );
    let mut wide_mask = erc20_exit.clone();
    wide_mask.receipt.key = Bytes::from_static(&[0x01, 0x02, 0x03, 0x04, 0x05]);
    assert_eq!(
        reason(&submit(&mut root, &wide_mask)),
        "RootChainManager: INVALID_BRANCH_MASK"
    );
    assert_eq!(recipient_tokens(&root), U256::ZERO);
    assert!(!processed(&root, &erc20_exit));

    // The genuine exits release the tokens to the recipient named on the child chain.
    let out = ok(submit(&mut root, &erc20_exit));
    let exited = out
        .logs
        .iter()
        .find_map(|l| ERC20Predicate::ExitedERC20::decode_log(l).ok())
        .unwrap();
    assert_eq!(
        (exited.exitor, exited.rootToken, exited.amount),
        (recipient, root.token, half)
    );
    assert_eq!(recipient_tokens(&root), half);
    assert!(
        processed(&root, &erc20_exit),
        "the contract's exit hash is the one computed in Rust"
    );
    ok(submit(&mut root, &native_exit));
    assert_eq!(
        root.staking
            .chain
            .view(root.btt, TestRootERC20::balanceOfCall(recipient))
            .unwrap(),
        quarter_btt
    );
    ok(submit(&mut root, &nft_exit));
    assert_eq!(
        root.staking
            .chain
            .view(
                root.nft,
                TestRootERC721::ownerOfCall {
                    tokenId: U256::from(7)
                }
            )
            .unwrap(),
        recipient
    );
    // The root chain's own coin comes out of the ether predicate.
    ok(submit(&mut root, &coin_exit));
    assert_eq!(root.staking.chain.balance(recipient), coin);
    assert_eq!(root.staking.chain.balance(root.ether_predicate), U256::ZERO);

    // Replays are refused.
    for payload in [&erc20_exit, &native_exit, &nft_exit, &coin_exit] {
        assert_eq!(
            reason(&submit(&mut root, payload)),
            "RootChainManager: EXIT_ALREADY_PROCESSED"
        );
    }
    // So are replays that spell the same exit differently: the branch mask hex-prefixed as a
    // leaf path (0x20 ‖ key, the same nibbles) and the log index with a leading zero byte.
    let genuine = erc20_exit.encode();
    assert_eq!(
        replace_item(&genuine, 8, &rlp_string(&erc20_exit.receipt.branch_mask())),
        genuine
    );
    let leaf_mask = [&[0x20u8][..], &erc20_exit.receipt.key].concat();
    let respelled = replace_item(&genuine, 8, &rlp_string(&leaf_mask));
    let respelled = replace_item(&respelled, 9, &rlp_string(&[0, erc20_exit.log_index as u8]));
    assert_ne!(respelled, genuine);
    let out = root.chain().send(
        &depositor,
        manager,
        RootChainManager::exitCall {
            inputData: respelled.into(),
        },
    );
    assert_eq!(reason(&out), "RootChainManager: EXIT_ALREADY_PROCESSED");
    assert_eq!(recipient_tokens(&root), half);
}

/// The RLP string holding `bytes`.
fn rlp_string(bytes: &[u8]) -> Vec<u8> {
    alloy_rlp::encode(Bytes::copy_from_slice(bytes))
}

/// `list` (an RLP list) with item `index` replaced by the encoded item `item`.
fn replace_item(list: &[u8], index: usize, item: &[u8]) -> Vec<u8> {
    let mut rest = list;
    let header = alloy_rlp::Header::decode(&mut rest).unwrap();
    assert!(header.list);
    let mut items = Vec::new();
    while !rest.is_empty() {
        let start = rest;
        let h = alloy_rlp::Header::decode(&mut rest).unwrap();
        rest = &rest[h.payload_length..];
        items.push(&start[..start.len() - rest.len()]);
    }
    items[index] = item;
    let payload = items.concat();
    let mut out = Vec::new();
    alloy_rlp::Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut out);
    out.extend(payload);
    out
}

#[test]
fn child_chain_manager_keys_mappings_by_root_chain_and_takes_messages_from_the_state_receiver_only()
{
    let mut child = Child::new();
    let root_token = Address::repeat_byte(0x44);
    let message = |kind: &str, body: Vec<u8>| -> Bytes {
        alloy_sol_types::SolValue::abi_encode_params(&(keccak256(kind), Bytes::from(body))).into()
    };
    let map = |chain_id: u64, child_token: Address| {
        message(
            "MAP_TOKEN",
            alloy_sol_types::SolValue::abi_encode_params(&(
                root_token,
                child_token,
                chain_id,
                keccak256("ERC20"),
            )),
        )
    };
    // Same root token address on TRON (1) and Ethereum (2): two child tokens.
    let manager = child.manager;
    let on_state = |data: Bytes| {
        ChildChainManager::onStateReceiveCall {
            _0: U256::ZERO,
            data,
        }
        .abi_encode()
    };
    let user = Address::repeat_byte(0x12);
    // DEPOSIT: (user, rootToken, uint64 chainId, depositData), spec §2.3.
    let deposit = |chain_id: u64, amount: u64| {
        message(
            "DEPOSIT",
            alloy_sol_types::SolValue::abi_encode_params(&(
                user,
                root_token,
                chain_id,
                Bytes::from(alloy_sol_types::SolValue::abi_encode(&U256::from(amount))),
            )),
        )
    };
    let out = child.chain.system_calls(&[
        (
            STATE_RECEIVER,
            manager,
            on_state(map(1, child.erc20)).into(),
        ),
        (
            STATE_RECEIVER,
            manager,
            on_state(map(2, child.wrapped_coin)).into(),
        ),
        (STATE_RECEIVER, manager, on_state(deposit(2, 300)).into()),
        (STATE_RECEIVER, manager, on_state(deposit(1, 100)).into()),
        (STATE_RECEIVER, manager, on_state(deposit(3, 1)).into()),
        (
            Address::repeat_byte(0x13),
            manager,
            on_state(deposit(1, 5)).into(),
        ),
        (
            STATE_RECEIVER,
            manager,
            on_state(message("OTHER", vec![])).into(),
        ),
        // A child token already mapped from TRON cannot also be mapped from BSC: its
        // withdrawals would be exitable on both root chains.
        (
            STATE_RECEIVER,
            manager,
            on_state(map(3, child.erc20)).into(),
        ),
    ]);
    let results: Vec<bool> = out.iter().map(|o| o.success).collect();
    assert_eq!(
        results,
        [true, true, true, true, false, false, false, false]
    );
    let why = |i: usize| bttc_engine::root::testing::error_string(&out[i].output).unwrap();
    assert_eq!(why(4), "ChildChainManager: TOKEN_NOT_MAPPED");
    assert_eq!(why(5), "ChildChainManager: INVALID_SENDER");
    assert_eq!(why(6), "ChildChainManager: INVALID_SYNC_TYPE");
    assert_eq!(
        why(7),
        "ChildChainManager: child token mapped from another root token"
    );
    let c = &child.chain;
    assert_eq!(
        c.view(child.erc20, ChildERC20::balanceOfCall(user))
            .unwrap(),
        U256::from(100)
    );
    assert_eq!(
        c.view(child.wrapped_coin, ChildERC20::balanceOfCall(user))
            .unwrap(),
        U256::from(300)
    );
    let key =
        |chain_id: u64| U256::from_be_slice(root_token.as_slice()) | (U256::from(chain_id) << 160);
    assert_eq!(
        c.view(manager, ChildChainManager::rootToChildTokenCall(key(1)))
            .unwrap(),
        child.erc20
    );
    assert_eq!(
        c.view(manager, ChildChainManager::rootToChildTokenCall(key(2)))
            .unwrap(),
        child.wrapped_coin
    );
    assert_eq!(
        c.view(
            manager,
            ChildChainManager::childToRootTokenCall(child.erc20)
        )
        .unwrap(),
        root_token
    );
    // Only the manager mints child tokens.
    let deployer = child.deployer.clone();
    let out = child.chain.send(
        &deployer,
        child.erc20,
        ChildERC20::depositCall {
            user,
            depositData: alloy_sol_types::SolValue::abi_encode(&U256::from(1)).into(),
        },
    );
    assert_eq!(reason(&out), "ChildERC20: INSUFFICIENT_PERMISSIONS");
}

/// `RLP([[id, power, signer], ...])`.
fn validator_bytes(validators: &[(u64, u64, Address)]) -> Bytes {
    use alloy_rlp::{Encodable, Header};
    let mut items = Vec::new();
    for (id, power, signer) in validators {
        let mut payload = Vec::new();
        id.encode(&mut payload);
        power.encode(&mut payload);
        signer.encode(&mut payload);
        Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut items);
        items.extend(payload);
    }
    let mut out = Vec::new();
    Header {
        list: true,
        payload_length: items.len(),
    }
    .encode(&mut out);
    out.extend(items);
    out.into()
}

#[test]
fn bor_validator_set_commits_spans_from_the_system_address_and_answers_producers_by_block() {
    let mut chain = EvmChain::new(ChainSpec::bttc_mainnet());
    let set = bttc_engine::root::contracts::BOR_VALIDATOR_SET;
    chain.insert_code(set, BorValidatorSet::DEPLOYED_BYTECODE.clone(), U256::ZERO);
    let a = |b: u8| Address::repeat_byte(b);
    let initial = validator_bytes(&[(1, 1, a(1)), (2, 1, a(2)), (3, 1, a(3))]);
    let next_validators =
        validator_bytes(&[(1, 1, a(1)), (2, 1, a(2)), (3, 1, a(3)), (4, 1, a(4))]);
    let producers = validator_bytes(&[(2, 1, a(2)), (4, 2, a(4))]);
    let commit =
        |span: u64, start: u64, end: u64, validators: &Bytes, producers: &Bytes| -> Bytes {
            BorValidatorSet::commitSpanCall {
                newSpan: U256::from(span),
                startBlock: U256::from(start),
                endBlock: U256::from(end),
                validatorBytes: validators.clone(),
                producerBytes: producers.clone(),
            }
            .abi_encode()
            .into()
        };
    let out = chain.system_calls(&[
        (
            Address::repeat_byte(9),
            set,
            commit(0, 0, 255, &initial, &initial),
        ),
        (SYSTEM_ADDRESS, set, commit(0, 0, 255, &initial, &initial)),
        (
            SYSTEM_ADDRESS,
            set,
            commit(2, 256, 6655, &next_validators, &producers),
        ),
        (
            SYSTEM_ADDRESS,
            set,
            commit(1, 300, 6699, &next_validators, &producers),
        ),
        (
            SYSTEM_ADDRESS,
            set,
            commit(1, 256, 6656, &next_validators, &producers),
        ),
        (
            SYSTEM_ADDRESS,
            set,
            commit(1, 256, 6655, &next_validators, &producers),
        ),
    ]);
    let results: Vec<bool> = out.iter().map(|o| o.success).collect();
    assert_eq!(results, [false, true, false, false, false, true]);
    let why = |i: usize| bttc_engine::root::testing::error_string(&out[i].output).unwrap();
    assert_eq!(why(0), "not the system address");
    assert_eq!(why(2), "Invalid span id");
    assert_eq!(why(3), "span must start after the last one");
    assert_eq!(why(4), "span length must be a multiple of the sprint");
    let at = |n: u64| {
        chain
            .view(
                set,
                BorValidatorSet::getBorValidatorsCall {
                    number: U256::from(n),
                },
            )
            .unwrap()
    };
    let initial_set = at(255);
    assert_eq!(initial_set._0, vec![a(1), a(2), a(3)]);
    let span1 = at(256);
    assert_eq!(
        (span1._0, span1._1),
        (vec![a(2), a(4)], vec![U256::from(1), U256::from(2)])
    );
    // Past the last span, its producers stay in charge until the next span is committed.
    assert_eq!(at(100_000)._0, vec![a(2), a(4)]);
    assert_eq!(
        chain
            .view(set, BorValidatorSet::currentSpanNumberCall {})
            .unwrap(),
        U256::from(1)
    );
    assert_eq!(
        chain
            .view(
                set,
                BorValidatorSet::getSpanByBlockCall {
                    number: U256::from(6655)
                }
            )
            .unwrap(),
        U256::from(1)
    );
    assert_eq!(
        chain
            .view(
                set,
                BorValidatorSet::getSpanValidatorsCall {
                    span: U256::from(1)
                }
            )
            .unwrap()
            ._0
            .len(),
        4
    );
}
