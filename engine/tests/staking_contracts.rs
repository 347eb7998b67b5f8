//! StakeManager, StakingNFT and RootChain on revm through the engine's executor: the staking
//! lifecycle with its refusals, checkpoint signature checks (spec §1.5, §1.6) and the
//! mirror's staking sync (spec §5.2).

use alloy_primitives::{Address, Bytes, U256, b256};
use alloy_sol_types::{SolEvent, SolValue};
use bttc_engine::root::contracts::root::{RootChain, StakeManager, StakingNFT, TestRootERC20};
use bttc_engine::root::testing::staking::{Staking, Validators};

/// secp256k1's group order.
const N: U256 = U256::from_be_slice(&[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

fn reason(out: &bttc_engine::root::testing::Executed) -> String {
    assert!(!out.success, "expected a refusal");
    out.revert_reason().unwrap_or_default()
}

#[test]
fn staking_lifecycle_with_refusals() {
    let validators = Validators::new(9, 1);
    let (mut s, owners) = Staking::with_validators(&Validators {
        keys: validators.keys[..7].to_vec(),
    });
    let sm = s.stake_manager;
    assert_eq!(
        s.chain
            .view(sm, StakeManager::currentValidatorSetSizeCall {})
            .unwrap(),
        U256::from(7)
    );
    // Validator ids are NFT ids from 1, held by the owners; signers derive from the keys.
    for (i, owner) in owners.iter().enumerate() {
        let id = U256::from(i + 1);
        assert_eq!(
            s.chain
                .view(s.nft, StakingNFT::ownerOfCall { tokenId: id })
                .unwrap(),
            owner.address()
        );
        assert_eq!(
            s.chain
                .view(
                    sm,
                    StakeManager::signerToValidatorCall(validators.address(i))
                )
                .unwrap(),
            id
        );
    }

    // Refusals at staking time, each with its reason and no effect.
    let extra = s.funded_account(200);
    assert_eq!(
        reason(&s.stake(&extra, &validators, 7)),
        "StakeManager: no more slots"
    );
    let raised = s.chain.send(
        &s.owner.clone(),
        sm,
        StakeManager::updateValidatorThresholdCall {
            threshold: U256::from(8),
        },
    );
    assert!(raised.success);
    let min = s.chain.view(sm, StakeManager::minDepositCall {}).unwrap();
    let fee = s
        .chain
        .view(sm, StakeManager::minHeimdallFeeCall {})
        .unwrap();
    let stake_for = |amount: U256, pubkey: Bytes, user: Address| StakeManager::stakeForCall {
        user,
        amount,
        heimdallFee: fee,
        _3: false,
        signerPubkey: pubkey,
    };
    let out = s.chain.send(
        &extra,
        sm,
        stake_for(min - U256::from(1), validators.pubkey(7), extra.address()),
    );
    assert_eq!(reason(&out), "StakeManager: stake below the minimum");
    let out = s.chain.send(
        &extra,
        sm,
        stake_for(min, validators.pubkey(7).slice(1..), extra.address()),
    );
    assert_eq!(reason(&out), "StakeManager: public key must be 64 bytes");
    let out = s.chain.send(
        &extra,
        sm,
        stake_for(min, validators.pubkey(0), extra.address()),
    );
    assert_eq!(reason(&out), "StakeManager: signer in use");
    let out = s.chain.send(
        &extra,
        sm,
        stake_for(min, validators.pubkey(7), owners[0].address()),
    );
    assert_eq!(reason(&out), "StakeManager: one validator per address");
    let balance_before = s
        .chain
        .view(s.token, TestRootERC20::balanceOfCall(extra.address()))
        .unwrap();
    // The eighth validator joins: its Staked event carries nonce 1 and the public key.
    let out = s.stake(&extra, &validators, 7);
    assert!(out.success);
    let staked = out
        .logs
        .iter()
        .find_map(|l| StakeManager::Staked::decode_log(l).ok())
        .unwrap();
    assert_eq!(
        (
            staked.signer,
            staked.validatorId,
            staked.nonce,
            staked.activationEpoch
        ),
        (
            validators.address(7),
            U256::from(8),
            U256::from(1),
            U256::from(1)
        )
    );
    assert_eq!(staked.signerPubkey, validators.pubkey(7));
    assert_eq!(
        s.chain
            .view(s.token, TestRootERC20::balanceOfCall(extra.address()))
            .unwrap(),
        balance_before - min - fee
    );
    let eight: Vec<usize> = (0..8).collect();

    // A signer update is rate-limited (100 epochs); only the owner may act for a validator.
    let update = |i: usize| StakeManager::updateSignerCall {
        validatorId: U256::from(1),
        signerPubkey: validators.pubkey(i),
    };
    assert_eq!(
        reason(&s.chain.send(&owners[0], sm, update(8))),
        "StakeManager: signer update too soon"
    );
    let out = s.chain.send(
        &owners[1],
        sm,
        StakeManager::unstakeCall {
            validatorId: U256::from(1),
        },
    );
    assert_eq!(reason(&out), "StakeManager: not the validator's owner");

    // Each accepted checkpoint is one epoch.
    while s.epoch() < 100 {
        s.checkpoint(&validators, &eight[..6]);
    }
    let out = s.chain.send(&owners[0], sm, update(8));
    assert!(out.success, "{:?}", out.revert_reason());
    let change = out
        .logs
        .iter()
        .find_map(|l| StakeManager::SignerChange::decode_log(l).ok())
        .unwrap();
    assert_eq!(
        (
            change.validatorId,
            change.nonce,
            change.oldSigner,
            change.newSigner
        ),
        (
            U256::from(1),
            U256::from(2),
            validators.address(0),
            validators.address(8)
        )
    );
    assert_eq!(
        reason(&s.chain.send(&owners[0], sm, update(0))),
        "StakeManager: signer update too soon"
    );
    // The old key no longer counts, the new one does (8 validators: 6 needed).
    let data = s.next_checkpoint(validators.address(1), 2);
    let out = s.submit(&data, validators.sigs(&data.encode(), &[0, 1, 2, 3, 4, 5]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    let out = s.submit(&data, validators.sigs(&data.encode(), &[8, 1, 2, 3, 4, 5]));
    assert!(out.success);

    // Rewards are accounted, not paid: restaking them is refused.
    let out = s.chain.send(
        &owners[1],
        sm,
        StakeManager::restakeCall {
            validatorId: U256::from(2),
            amount: min,
            stakeRewards: true,
        },
    );
    assert_eq!(
        reason(&out),
        "StakeManager: staking rewards is not supported"
    );
    // Restaking raises the stake (nonce 2 of validator 2).
    let out = s.chain.send(
        &owners[1],
        sm,
        StakeManager::restakeCall {
            validatorId: U256::from(2),
            amount: min,
            stakeRewards: false,
        },
    );
    assert!(out.success);
    let update = out
        .logs
        .iter()
        .find_map(|l| StakeManager::StakeUpdate::decode_log(l).ok())
        .unwrap();
    assert_eq!(
        (update.nonce, update.newAmount),
        (U256::from(2), min * U256::from(2))
    );

    // Unstake validator 7 (index 6): it leaves at the next epoch and claims 80 epochs later.
    let id = U256::from(7);
    let out = s.chain.send(
        &owners[6],
        sm,
        StakeManager::unstakeCall { validatorId: id },
    );
    assert!(out.success);
    let init = out
        .logs
        .iter()
        .find_map(|l| StakeManager::UnstakeInit::decode_log(l).ok())
        .unwrap();
    let exit_epoch = s.epoch() + 1;
    assert_eq!(
        (init.nonce, init.deactivationEpoch),
        (U256::from(2), U256::from(exit_epoch))
    );
    let out = s.chain.send(
        &owners[6],
        sm,
        StakeManager::unstakeCall { validatorId: id },
    );
    assert_eq!(reason(&out), "StakeManager: already unstaking");
    let claim = StakeManager::unstakeClaimCall { validatorId: id };
    assert_eq!(
        reason(&s.chain.send(&owners[6], sm, claim.clone())),
        "StakeManager: withdrawal delay not over"
    );
    s.checkpoint(&validators, &[8, 1, 2, 3, 4, 5]);
    assert_eq!(
        s.chain
            .view(sm, StakeManager::currentValidatorSetSizeCall {})
            .unwrap(),
        U256::from(7)
    );
    // From its exit epoch on, its signature does not count: 7 validators, 5 needed.
    let data = s.next_checkpoint(validators.address(1), 2);
    let out = s.submit(&data, validators.sigs(&data.encode(), &[6, 1, 2, 3, 4]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    while s.epoch() < exit_epoch + 79 {
        s.checkpoint(&validators, &[8, 1, 2, 3, 4]);
    }
    assert_eq!(
        reason(&s.chain.send(&owners[6], sm, claim.clone())),
        "StakeManager: withdrawal delay not over"
    );
    s.checkpoint(&validators, &[8, 1, 2, 3, 4]);
    let before = s
        .chain
        .view(s.token, TestRootERC20::balanceOfCall(owners[6].address()))
        .unwrap();
    let out = s.chain.send(&owners[6], sm, claim.clone());
    assert!(out.success, "{:?}", out.revert_reason());
    let unstaked = out
        .logs
        .iter()
        .find_map(|l| StakeManager::Unstaked::decode_log(l).ok())
        .unwrap();
    assert_eq!(
        unstaked.amount, min,
        "the stake comes back (no reward paid to it)"
    );
    assert_eq!(
        s.chain
            .view(s.token, TestRootERC20::balanceOfCall(owners[6].address()))
            .unwrap(),
        before + min
    );
    assert_eq!(
        s.chain
            .view(s.nft, StakingNFT::ownerOfCall { tokenId: id })
            .unwrap_err(),
        "ERC721: no such token"
    );
    assert_eq!(
        reason(&s.chain.send(&owners[6], sm, claim)),
        "ERC721: no such token"
    );

    // The validator NFT moves control of a validator: never to an address that already holds
    // one, and once moved, only the new holder acts for it.
    let two = U256::from(2);
    let transfer = |to: Address| StakingNFT::transferFromCall {
        from: owners[1].address(),
        to,
        tokenId: two,
    };
    let out = s
        .chain
        .send(&owners[1], s.nft, transfer(owners[2].address()));
    assert_eq!(reason(&out), "StakingNFT: one validator per address");
    let heir = bttc_engine::root::testing::test_key(250);
    s.chain.fund(heir.address(), U256::from(10u128.pow(24)));
    assert!(
        s.chain
            .send(&owners[1], s.nft, transfer(heir.address()))
            .success
    );
    assert_eq!(
        s.chain
            .view(
                sm,
                StakeManager::getValidatorIdCall {
                    user: heir.address()
                }
            )
            .unwrap(),
        two
    );
    let unstake = StakeManager::unstakeCall { validatorId: two };
    assert_eq!(
        reason(&s.chain.send(&owners[1], sm, unstake.clone())),
        "StakeManager: not the validator's owner"
    );
    assert!(s.chain.send(&heir, sm, unstake).success);
}

/// The signature of validator `i` with `s` replaced by `n - s` (and `v` flipped): it
/// recovers to the same signer, but BTTC refuses high-s signatures.
fn high_s(sig: [U256; 3]) -> [U256; 3] {
    let v = sig[2].to::<u64>();
    [
        sig[0],
        N - sig[1],
        U256::from(if v == 27 { 28 } else { 27 }),
    ]
}

#[test]
fn checkpoints_need_two_thirds_plus_one_sorted_distinct_validator_signatures() {
    for n in [4usize, 7, 10] {
        let validators = Validators::new(n, 2);
        let (mut s, _) = Staking::with_validators(&validators);
        let quorum = n * 2 / 3 + 1;
        let order = validators.by_address();
        let data = s.next_checkpoint(validators.address(order[0]), 256);
        let encoded = data.encode();
        let sigs = |who: &[usize]| validators.sigs(&encoded, who);
        let refused = |s: &mut Staking, sigs: Vec<[U256; 3]>, why: &str| {
            let out = s.submit(&data, sigs);
            assert_eq!(reason(&out), why, "n = {n}");
        };
        // Fewer than the quorum.
        refused(&mut s, sigs(&order[..quorum - 1]), "2/3+1 non-majority!");
        // Every validator signs, but the first two are out of order: the count stops at the
        // first lower signer (it does not skip it), so only one signature counts.
        let mut unsorted = sigs(&order);
        unsorted.swap(0, 1);
        refused(&mut s, unsorted, "2/3+1 non-majority!");
        // A duplicate fills the last place: duplicates are skipped, not counted.
        let mut duplicated = sigs(&order[..quorum - 1]);
        duplicated.push(*duplicated.last().unwrap());
        refused(&mut s, duplicated, "2/3+1 non-majority!");
        // One of the quorum in its high-s form.
        let mut malleable = sigs(&order[..quorum]);
        malleable[quorum - 1] = high_s(malleable[quorum - 1]);
        refused(&mut s, malleable, "2/3+1 non-majority!");
        // A foreign signer in place of a validator.
        let stranger = Validators::new(1, 99);
        let mut foreign = sigs(&order[..quorum - 1]);
        let mut all: Vec<(Address, [U256; 3])> = foreign
            .drain(..)
            .zip(order.iter())
            .map(|(sig, &i)| (validators.address(i), sig))
            .collect();
        all.push((stranger.address(0), stranger.sigs(&encoded, &[0])[0]));
        all.sort_by_key(|(a, _)| *a);
        refused(
            &mut s,
            all.into_iter().map(|(_, sig)| sig).collect(),
            "2/3+1 non-majority!",
        );
        // A signature that recovers no key at all is an error, not a skip (spec §1.4).
        let mut garbage = sigs(&order[..quorum]);
        garbage[0] = [U256::ZERO, U256::from(1), U256::from(27)];
        refused(&mut s, garbage, "Error in ecrecover");
        // Wrong BTTC chain id, and a range that does not start after the last checkpoint.
        let mut wrong_chain = data;
        wrong_chain.bor_chain_id = 198;
        let out = s.submit(&wrong_chain, validators.sigs(&wrong_chain.encode(), &order));
        assert_eq!(reason(&out), "RootChain: wrong BTTC chain id");
        let mut gap = data;
        gap.start += 1;
        let out = s.submit(&gap, validators.sigs(&gap.encode(), &order));
        assert_eq!(reason(&out), "INCORRECT_HEADER_DATA");
        // Six words (the TRON contract's decode would ignore a missing epoch; ours wants seven).
        let out = s.submit_raw(encoded[..192].to_vec().into(), sigs(&order));
        assert_eq!(reason(&out), "RootChain: checkpoint data must be 7 words");
        assert_eq!(s.epoch(), 1, "nothing refused changed the epoch");

        // Exactly the quorum, sorted, with a stranger's signature in its sorted place and a
        // duplicate at the end (both skipped): accepted.
        let mut with_stranger: Vec<(Address, [U256; 3])> = order[..quorum]
            .iter()
            .map(|&i| validators.address(i))
            .zip(sigs(&order[..quorum]))
            .collect();
        with_stranger.push((stranger.address(0), stranger.sigs(&encoded, &[0])[0]));
        with_stranger.sort_by_key(|(a, _)| *a);
        let mut exact: Vec<[U256; 3]> = with_stranger.into_iter().map(|(_, sig)| sig).collect();
        exact.push(*sigs(&order[..quorum]).last().unwrap());
        let out = s.submit(&data, exact);
        assert!(out.success, "n = {n}: {:?}", out.revert_reason());
        assert_eq!(
            out.logs[out.logs.len() - 1].topics()[0],
            b256!("ba5de06d22af2685c6c7765f60067f7d2b08c2d29f53cdf14d67f6d1c9bfb527")
        );
        let header = out
            .logs
            .iter()
            .find_map(|l| RootChain::NewHeaderBlock::decode_log(l).ok())
            .unwrap();
        assert_eq!(
            (
                header.proposer,
                header.headerBlockId,
                header.start,
                header.end,
                header.root
            ),
            (
                data.proposer,
                U256::from(10_000),
                U256::ZERO,
                U256::from(255),
                data.root_hash
            )
        );
        assert!(header.reward > U256::ZERO);
        let rc = s.root_chain;
        assert_eq!(
            s.chain
                .view(rc, RootChain::currentHeaderBlockCall {})
                .unwrap(),
            U256::from(10_000)
        );
        assert_eq!(
            s.chain
                .view(rc, RootChain::getLastChildBlockCall {})
                .unwrap(),
            U256::from(255)
        );
        let stored = s
            .chain
            .view(rc, RootChain::headerBlocksCall(U256::from(10_000)))
            .unwrap();
        assert_eq!(
            (stored.root, stored.start, stored.end, stored.proposer),
            (data.root_hash, U256::ZERO, U256::from(255), data.proposer)
        );
        assert_eq!(s.epoch(), 2);
        assert_eq!(
            s.chain
                .view(s.stake_manager, StakeManager::accountStateRootCall {})
                .unwrap(),
            data.account_root_hash
        );
        // The same data again is not contiguous any more; the next range is.
        let out = s.submit(&data, sigs(&order));
        assert_eq!(reason(&out), "INCORRECT_HEADER_DATA");
        let next = s.next_checkpoint(validators.address(order[1]), 1024);
        let out = s.submit(&next, validators.sigs(&next.encode(), &order[n - quorum..]));
        assert!(out.success);
        assert_eq!(
            s.chain
                .view(rc, RootChain::currentHeaderBlockCall {})
                .unwrap(),
            U256::from(20_000)
        );
        assert_eq!(
            s.chain
                .view(rc, RootChain::getLastChildBlockCall {})
                .unwrap(),
            U256::from(1279)
        );
    }
}

#[test]
fn mirror_applies_signed_staking_syncs_and_refuses_replays_and_minorities() {
    let validators = Validators::new(9, 3);
    let mut m = Staking::deploy(true);
    let sm = m.stake_manager;
    let owner = m.owner.clone();
    let genesis = StakeManager::initMirrorCall {
        ids: (1..=7).map(U256::from).collect(),
        signers: (0..7).map(|i| validators.address(i)).collect(),
        nonces: vec![U256::from(1); 7],
    };
    assert!(m.chain.send(&owner, sm, genesis.clone()).success);
    assert_eq!(
        reason(&m.chain.send(&owner, sm, genesis)),
        "StakeManager: bad genesis"
    );
    // Staking itself happens only on the staking chain.
    let stranger = m.funded_account(300);
    assert_eq!(
        reason(&m.stake(&stranger, &validators, 8)),
        "StakeManager: this chain mirrors the staking chain"
    );

    let one = U256::from(10u64.pow(18));
    let join = |nonce: u64, id: u64, signer: Address, activation: u64| {
        Bytes::from(
            (
                U256::from(id),
                U256::from(nonce),
                one,
                U256::from(activation),
                U256::ZERO,
                signer,
            )
                .abi_encode_params(),
        )
    };
    // Validator 8 joins at epoch 3, signed by 5 of 7.
    let data = join(1, 8, validators.address(7), 3);
    let call = |data: &Bytes, who: &[usize]| StakeManager::validatorJoinCall {
        data: data.clone(),
        sigs: validators.sigs(data, who),
    };
    assert_eq!(
        reason(&m.chain.send(&owner, sm, call(&data, &[0, 1, 2, 3]))),
        "2/3+1 non-majority!"
    );
    let out = m.chain.send(&owner, sm, call(&data, &[0, 1, 2, 3, 4]));
    assert!(out.success, "{:?}", out.revert_reason());
    assert_eq!(
        m.chain
            .view(sm, StakeManager::validatorNonceCall(U256::from(8)))
            .unwrap(),
        U256::from(1)
    );
    assert_eq!(
        reason(&m.chain.send(&owner, sm, call(&data, &[0, 1, 2, 3, 4]))),
        "StakeManager: invalid nonce"
    );
    let skipped = join(3, 9, validators.address(8), 3);
    assert_eq!(
        reason(&m.chain.send(&owner, sm, call(&skipped, &[0, 1, 2, 3, 4]))),
        "StakeManager: invalid nonce"
    );

    // Until epoch 3 the set has 7: a checkpoint of epoch 2 needs 5; validator 8 does not count.
    let cp = m.next_checkpoint(validators.address(0), 2);
    let mut cp2 = cp;
    cp2.epoch = 2;
    let out = m.submit(&cp2, validators.sigs(&cp2.encode(), &[7, 0, 1, 2, 3]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    let out = m.submit(&cp2, validators.sigs(&cp2.encode(), &[0, 1, 2, 3, 4]));
    assert!(out.success, "{:?}", out.revert_reason());
    assert_eq!(m.epoch(), 2, "a mirror takes the epoch from the checkpoint");
    // At epoch 3 the set has 8 (6 needed), and validator 8's signature counts.
    let mut cp3 = m.next_checkpoint(validators.address(0), 2);
    cp3.epoch = 3;
    let out = m.submit(&cp3, validators.sigs(&cp3.encode(), &[0, 1, 2, 3, 4]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    let out = m.submit(&cp3, validators.sigs(&cp3.encode(), &[7, 0, 1, 2, 3, 4]));
    assert!(out.success, "{:?}", out.revert_reason());

    // Signer update of validator 8 (nonce 2), then its exit (nonce 3) effective at epoch 5.
    let update =
        Bytes::from((U256::from(8), U256::from(2), validators.address(8)).abi_encode_params());
    let signer_update = |who: &[usize]| StakeManager::signerUpdateCall {
        data: update.clone(),
        sigs: validators.sigs(&update, who),
    };
    assert_eq!(
        reason(&m.chain.send(&owner, sm, signer_update(&[0, 1, 2, 3, 4]))),
        "2/3+1 non-majority!"
    );
    assert!(
        m.chain
            .send(&owner, sm, signer_update(&[7, 0, 1, 2, 3, 4]))
            .success
    );
    assert_eq!(
        reason(&m.chain.send(&owner, sm, signer_update(&[8, 0, 1, 2, 3, 4]))),
        "StakeManager: invalid nonce"
    );
    assert_eq!(
        m.chain
            .view(
                sm,
                StakeManager::signerToValidatorCall(validators.address(8))
            )
            .unwrap(),
        U256::from(8)
    );
    // Validator 8's old key no longer counts at epoch 4 (8 validators, 6 needed); its new one does.
    let mut cp4 = m.next_checkpoint(validators.address(0), 2);
    cp4.epoch = 4;
    let out = m.submit(&cp4, validators.sigs(&cp4.encode(), &[7, 0, 1, 2, 3, 4]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    let out = m.submit(&cp4, validators.sigs(&cp4.encode(), &[8, 0, 1, 2, 3, 4]));
    assert!(out.success, "{:?}", out.revert_reason());
    let exit = Bytes::from((U256::from(8), U256::from(3), U256::from(5)).abi_encode_params());
    // Signed sync data cannot be replayed as another kind of sync: an exit's three words as a
    // signer update, a signer update as an exit, a join as an exit.
    let exit_sigs = validators.sigs(&exit, &[8, 0, 1, 2, 3, 4]);
    let out = m.chain.send(
        &owner,
        sm,
        StakeManager::signerUpdateCall {
            data: exit.clone(),
            sigs: exit_sigs.clone(),
        },
    );
    assert_eq!(reason(&out), "StakeManager: not a signer address");
    let next_update =
        Bytes::from((U256::from(8), U256::from(3), validators.address(7)).abi_encode_params());
    let out = m.chain.send(
        &owner,
        sm,
        StakeManager::validatorExitCall {
            data: next_update.clone(),
            sigs: validators.sigs(&next_update, &[8, 0, 1, 2, 3, 4]),
        },
    );
    assert_eq!(reason(&out), "StakeManager: not an epoch");
    let out = m.chain.send(
        &owner,
        sm,
        StakeManager::validatorExitCall {
            data: data.clone(),
            sigs: validators.sigs(&data, &[8, 0, 1, 2, 3, 4]),
        },
    );
    assert_eq!(reason(&out), "StakeManager: exit data must be 3 words");
    let out = m.chain.send(
        &owner,
        sm,
        StakeManager::validatorExitCall {
            data: exit.clone(),
            sigs: validators.sigs(&exit, &[8, 0, 1, 2, 3, 4]),
        },
    );
    assert!(out.success, "{:?}", out.revert_reason());
    // At epoch 5 the set is back to 7.
    let mut cp5 = m.next_checkpoint(validators.address(0), 2);
    cp5.epoch = 5;
    let out = m.submit(&cp5, validators.sigs(&cp5.encode(), &[8, 0, 1, 2, 3]));
    assert_eq!(reason(&out), "2/3+1 non-majority!");
    let out = m.submit(&cp5, validators.sigs(&cp5.encode(), &[0, 1, 2, 3, 4]));
    assert!(out.success, "{:?}", out.revert_reason());
    assert_eq!(m.epoch(), 5);
}
