//! Staking fixtures: validator keys that sign as Delivery does, and the root-chain staking
//! contracts (token, stake manager, root chain) deployed and wired on an `EvmChain`.

use crate::{
    chain::spec::ChainSpec,
    delivery::{
        side_tx::{SideTxResult, SideTxVote, collect_yes_signatures, sign_side_tx},
        signing::key_address,
    },
    root::{
        checkpoint::CheckpointData,
        contracts::root::{RootChain, StakeManager, TestRootERC20},
        testing::{EvmChain, Executed, test_key},
    },
};
use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolConstructor, SolEvent};
use secp256k1::{SECP256K1, SecretKey};

pub const BOR_CHAIN_ID: u64 = 199;
/// Enough root tokens for any number of mainnet-sized stakes.
pub const RICH: u128 = 10u128.pow(36);

/// Delivery validators' signing keys (their "signer" keys, separate from owners).
pub struct Validators {
    pub keys: Vec<SecretKey>,
}

impl Validators {
    pub fn new(n: usize, seed: u64) -> Self {
        let keys = (0..n as u64)
            .map(|i| {
                let k = test_key(seed * 1_000_000 + i);
                SecretKey::from_byte_array(k.to_bytes().0).unwrap()
            })
            .collect();
        Self { keys }
    }

    pub fn address(&self, i: usize) -> Address {
        key_address(&self.keys[i])
    }

    /// The 64-byte public key `stakeFor` takes.
    pub fn pubkey(&self, i: usize) -> Bytes {
        let full = self.keys[i].public_key(SECP256K1).serialize_uncompressed();
        Bytes::copy_from_slice(&full[1..])
    }

    /// The `uint256[3][]` argument from the validators `who` voting Yes on `data`, built the
    /// way Delivery's bridge builds it (recovered, sorted by signer, v + 27).
    pub fn sigs(&self, data: &[u8], who: &[usize]) -> Vec<[U256; 3]> {
        let votes: Vec<SideTxVote> = who
            .iter()
            .map(|&i| SideTxVote {
                tx_hash: B256::ZERO,
                validator: self.address(i),
                result: SideTxResult::Yes,
                signature: sign_side_tx(&self.keys[i], SideTxResult::Yes, data),
            })
            .collect();
        collect_yes_signatures(&votes, data)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// Indices sorted by signer address.
    pub fn by_address(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.keys.len()).collect();
        order.sort_by_key(|&i| self.address(i));
        order
    }
}

/// The root-chain staking contracts on one chain.
pub struct Staking {
    pub chain: EvmChain,
    pub owner: PrivateKeySigner,
    pub token: Address,
    pub stake_manager: Address,
    pub nft: Address,
    pub root_chain: Address,
    pub mirror: bool,
    /// The next checkpoint's first block.
    pub next_start: u64,
}

impl Staking {
    /// Deploys a staking token, a stake manager (`mirror` or the staking chain's) and a root
    /// chain for BTTC chain id 199, funded and wired.
    pub fn deploy(mirror: bool) -> Self {
        Self::deploy_on(ChainSpec::dev(), mirror)
    }

    /// As `deploy`, on a chain with `spec`'s rules.
    pub fn deploy_on(spec: ChainSpec, mirror: bool) -> Self {
        let mut chain = EvmChain::new(spec);
        let owner = test_key(1);
        chain.fund(owner.address(), U256::from(RICH));
        let token = chain.deploy(&owner, &TestRootERC20::BYTECODE, &[]);
        let args = StakeManager::constructorCall {
            token_: token,
            mirror_: mirror,
            rewardChainId_: U256::from(if mirror { 2 } else { 1 }),
        }
        .abi_encode();
        let stake_manager = chain.deploy(&owner, &StakeManager::BYTECODE, &args);
        let args = RootChain::constructorCall {
            stakeManager_: stake_manager,
            chainId: U256::from(BOR_CHAIN_ID),
            firstChildBlock_: U256::ZERO,
        }
        .abi_encode();
        let root_chain = chain.deploy(&owner, &RootChain::BYTECODE, &args);
        let set = chain.send(
            &owner,
            stake_manager,
            StakeManager::setRootChainCall {
                rootChain_: root_chain,
            },
        );
        assert!(set.success);
        let nft = chain
            .view(stake_manager, StakeManager::NFTContractCall {})
            .unwrap();
        Self {
            chain,
            owner,
            token,
            stake_manager,
            nft,
            root_chain,
            mirror,
            next_start: 0,
        }
    }

    /// A funded account holding root tokens, with the stake manager approved.
    pub fn funded_account(&mut self, seed: u64) -> PrivateKeySigner {
        let key = test_key(seed);
        self.chain.fund(key.address(), U256::from(RICH));
        let minted = self.chain.send(
            &key,
            self.token,
            TestRootERC20::mintCall {
                to: key.address(),
                amount: U256::from(RICH),
            },
        );
        assert!(minted.success);
        let approved = self.chain.send(
            &key,
            self.token,
            TestRootERC20::approveCall {
                spender: self.stake_manager,
                value: U256::MAX,
            },
        );
        assert!(approved.success);
        key
    }

    /// `owner` stakes the minimum for validator `i` of `validators`.
    pub fn stake(
        &mut self,
        owner: &PrivateKeySigner,
        validators: &Validators,
        i: usize,
    ) -> Executed {
        let min = self
            .chain
            .view(self.stake_manager, StakeManager::minDepositCall {})
            .unwrap();
        let fee = self
            .chain
            .view(self.stake_manager, StakeManager::minHeimdallFeeCall {})
            .unwrap();
        self.chain.send(
            owner,
            self.stake_manager,
            StakeManager::stakeForCall {
                user: owner.address(),
                amount: min,
                heimdallFee: fee,
                _3: false,
                signerPubkey: validators.pubkey(i),
            },
        )
    }

    /// A staking chain with all of `validators` staked (owners seeded from 100).
    pub fn with_validators(validators: &Validators) -> (Self, Vec<PrivateKeySigner>) {
        Self::with_validators_on(ChainSpec::dev(), validators)
    }

    /// As `with_validators`, on a chain with `spec`'s rules.
    pub fn with_validators_on(
        spec: ChainSpec,
        validators: &Validators,
    ) -> (Self, Vec<PrivateKeySigner>) {
        let mut staking = Self::deploy_on(spec, false);
        let n = validators.keys.len();
        if n > 7 {
            let raised = staking.chain.send(
                &staking.owner.clone(),
                staking.stake_manager,
                StakeManager::updateValidatorThresholdCall {
                    threshold: U256::from(n),
                },
            );
            assert!(raised.success);
        }
        let owners: Vec<PrivateKeySigner> = (0..n)
            .map(|i| staking.funded_account(100 + i as u64))
            .collect();
        for (i, owner) in owners.iter().enumerate() {
            let out = staking.stake(owner, validators, i);
            assert!(out.success, "stake {i}: {:?}", out.revert_reason());
        }
        (staking, owners)
    }

    pub fn epoch(&self) -> u64 {
        self.chain
            .view(self.stake_manager, StakeManager::currentEpochCall {})
            .unwrap()
            .to()
    }

    /// The next contiguous checkpoint's data, covering `len` blocks.
    pub fn next_checkpoint(&self, proposer: Address, len: u64) -> CheckpointData {
        CheckpointData {
            proposer,
            start: self.next_start,
            end: self.next_start + len - 1,
            root_hash: B256::repeat_byte(0x5a),
            account_root_hash: B256::repeat_byte(0xac),
            bor_chain_id: BOR_CHAIN_ID,
            epoch: self.epoch(),
        }
    }

    pub fn submit(&mut self, data: &CheckpointData, sigs: Vec<[U256; 3]>) -> Executed {
        self.submit_raw(data.encode().to_vec().into(), sigs)
    }

    pub fn submit_raw(&mut self, data: Bytes, sigs: Vec<[U256; 3]>) -> Executed {
        let from = self.owner.clone();
        let out = self.chain.send(
            &from,
            self.root_chain,
            RootChain::submitCheckpointCall { data, sigs },
        );
        if out.success {
            let event = out
                .logs
                .iter()
                .find_map(|l| RootChain::NewHeaderBlock::decode_log(l).ok())
                .expect("NewHeaderBlock");
            self.next_start = event.end.to::<u64>() + 1;
        }
        out
    }

    /// Submits a 2-block checkpoint signed by `who`; it must be accepted.
    pub fn checkpoint(&mut self, validators: &Validators, who: &[usize]) {
        let data = self.next_checkpoint(validators.address(who[0]), 2);
        let out = self.submit(&data, validators.sigs(&data.encode(), who));
        assert!(out.success, "checkpoint refused: {:?}", out.revert_reason());
    }
}
