//! Bridge fixtures: a root chain (staking contracts with 7 validators, state sender,
//! RootChainManager and predicates, test tokens) and a BTTC chain (StateReceiver, native token,
//! ChildChainManager and child tokens), joined as Delivery joins them.

use super::{
    EvmChain, Executed,
    staking::{BOR_CHAIN_ID, RICH, Staking, Validators},
    test_key,
};
use crate::{
    chain::spec::ChainSpec,
    merkle::checkpoint::CheckpointTree,
    root::{
        checkpoint::CheckpointData,
        contracts::{
            NATIVE_TOKEN, STATE_RECEIVER, SYSTEM_ADDRESS,
            child::{ChildChainManager, ChildERC20, ChildERC721, NativeToken, StateReceiver},
            root::{
                ERC20Predicate, ERC721Predicate, EtherPredicate, RootChain, RootChainManager,
                StateSender, TestRootERC20, TestRootERC721,
            },
        },
        state_sync::StateRecord,
    },
};
use alloy_primitives::{Address, B256, Bytes, U256, address, b256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{SolCall, SolConstructor, SolEvent};

/// TRON in BTTC's root-chain numbering.
pub const TRON: u64 = 1;
/// The stand-in address of TRX on TRON.
pub const TRON_ETHER: Address = address!("ff00000000000000000000000000000000000001");
pub const WITHDRAW_TO: B256 =
    b256!("67b714876402c93362735688659e2283b4a37fb21bab24bc759ca759ae851fd8");
pub const STATE_SYNCED: B256 =
    b256!("103fed9db65eac19c4d870f49ab7520fe03b99f1838e5996caf47e9e43308392");

/// The revert reason of a refused transaction (panics if it succeeded).
pub fn reason(out: &Executed) -> String {
    assert!(!out.success, "expected a refusal");
    out.revert_reason().unwrap_or_default()
}

/// A transaction that must have succeeded.
pub fn ok(out: Executed) -> Executed {
    assert!(out.success, "refused: {:?}", out.revert_reason());
    out
}

/// The BTTC chain: genesis system contracts, then the bridge's child contracts deployed.
pub struct Child {
    pub chain: EvmChain,
    pub deployer: PrivateKeySigner,
    pub manager: Address,
    pub erc20: Address,
    pub erc721: Address,
    pub wrapped_coin: Address,
    /// Delivery's global record id of the last committed record.
    pub last_state_id: u64,
}

impl Default for Child {
    fn default() -> Self {
        Self::new()
    }
}

impl Child {
    pub fn new() -> Self {
        let mut chain = EvmChain::new(ChainSpec::bttc_mainnet());
        chain.insert_code(
            STATE_RECEIVER,
            StateReceiver::DEPLOYED_BYTECODE.clone(),
            U256::ZERO,
        );
        chain.insert_code(
            NATIVE_TOKEN,
            NativeToken::DEPLOYED_BYTECODE.clone(),
            U256::from(RICH),
        );
        let deployer = test_key(500);
        chain.fund(deployer.address(), U256::from(RICH));
        let manager = chain.deploy(&deployer, &ChildChainManager::BYTECODE, &[]);
        let erc20 = chain.deploy(
            &deployer,
            &ChildERC20::BYTECODE,
            &ChildERC20::constructorCall {
                name_: "Child Token".into(),
                symbol_: "CT".into(),
                decimals_: 18,
                childChainManager_: manager,
            }
            .abi_encode(),
        );
        let erc721 = chain.deploy(
            &deployer,
            &ChildERC721::BYTECODE,
            &ChildERC721::constructorCall {
                name_: "Child NFT".into(),
                symbol_: "CN".into(),
                childChainManager_: manager,
            }
            .abi_encode(),
        );
        let wrapped_coin = chain.deploy(
            &deployer,
            &ChildERC20::BYTECODE,
            &ChildERC20::constructorCall {
                name_: "TRX on BTTC".into(),
                symbol_: "TRX_t".into(),
                decimals_: 6,
                childChainManager_: manager,
            }
            .abi_encode(),
        );
        let init = NativeToken::initializeCall {
            childChainManager_: manager,
        }
        .abi_encode();
        let out = chain.system_calls(&[(SYSTEM_ADDRESS, NATIVE_TOKEN, init.into())]);
        assert!(out[0].success);
        Self {
            chain,
            deployer,
            manager,
            erc20,
            erc721,
            wrapped_coin,
            last_state_id: 0,
        }
    }

    /// Delivery's part: every `StateSynced` of `executed` becomes the next global record,
    /// committed by the system address. Returns whether each receiver accepted it.
    pub fn relay(&mut self, sender: Address, executed: &[&Executed]) -> Vec<bool> {
        self.relay_outcomes(sender, executed)
            .iter()
            .map(|o| {
                assert!(o.success, "commitState itself must not fail");
                StateReceiver::commitStateCall::abi_decode_returns(&o.output).unwrap()
            })
            .collect()
    }

    /// As `relay`, returning each `commitState` system call's outcome (gas included).
    pub fn relay_outcomes(
        &mut self,
        sender: Address,
        executed: &[&Executed],
    ) -> Vec<crate::exec::SystemCallOutcome> {
        let mut calls = Vec::new();
        for e in executed {
            for (log_index, log) in e.logs.iter().enumerate() {
                if log.address != sender || log.topics()[0] != STATE_SYNCED {
                    continue;
                }
                let synced = StateSender::StateSynced::decode_log(log).unwrap();
                self.last_state_id += 1;
                let record = StateRecord {
                    id: self.last_state_id,
                    contract: synced.contractAddress,
                    data: synced.data.data.clone(),
                    tx_hash: keccak256(log_index.to_be_bytes()),
                    log_index: log_index as u64,
                    chain_id: BOR_CHAIN_ID.to_string(),
                };
                let input = StateReceiver::commitStateCall {
                    _0: U256::from(self.chain.timestamp),
                    recordBytes: record.encode().into(),
                };
                calls.push((SYSTEM_ADDRESS, STATE_RECEIVER, input.abi_encode().into()));
            }
        }
        self.chain.system_calls(&calls)
    }
}

/// The root chain: staking contracts with 7 validators, the state sender and the bridge.
pub struct Root {
    pub staking: Staking,
    pub validators: Validators,
    pub state_sender: Address,
    pub manager: Address,
    pub erc20_predicate: Address,
    pub erc721_predicate: Address,
    pub ether_predicate: Address,
    pub token: Address,
    pub nft: Address,
    pub btt: Address,
    /// The mapping transactions, whose `StateSynced` the child chain must see first.
    pub mappings: Vec<Executed>,
}

impl Root {
    pub fn new(child: &Child) -> Self {
        Self::new_on(ChainSpec::dev(), child)
    }

    /// As `new`, on a root chain with `spec`'s rules.
    pub fn new_on(spec: ChainSpec, child: &Child) -> Self {
        let validators = Validators::new(7, 10);
        let (mut staking, _) = Staking::with_validators_on(spec, &validators);
        let owner = staking.owner.clone();
        let chain = &mut staking.chain;
        let state_sender = chain.deploy(&owner, &StateSender::BYTECODE, &[]);
        let manager = chain.deploy(
            &owner,
            &RootChainManager::BYTECODE,
            &RootChainManager::constructorCall {
                chainId: TRON,
                etherAddress: TRON_ETHER,
            }
            .abi_encode(),
        );
        let predicate = |chain: &mut EvmChain, code: &Bytes| {
            chain.deploy(
                &owner,
                code,
                &alloy_sol_types::SolValue::abi_encode(&manager),
            )
        };
        let erc20_predicate = predicate(chain, &ERC20Predicate::BYTECODE);
        let erc721_predicate = predicate(chain, &ERC721Predicate::BYTECODE);
        let ether_predicate = predicate(chain, &EtherPredicate::BYTECODE);
        let token = chain.deploy(&owner, &TestRootERC20::BYTECODE, &[]);
        let btt = chain.deploy(&owner, &TestRootERC20::BYTECODE, &[]);
        let nft = chain.deploy(&owner, &TestRootERC721::BYTECODE, &[]);
        let root_chain = staking.root_chain;
        let chain = &mut staking.chain;
        ok(chain.send(
            &owner,
            manager,
            RootChainManager::setStateSenderCall {
                stateSender_: state_sender,
            },
        ));
        ok(chain.send(
            &owner,
            manager,
            RootChainManager::setCheckpointManagerCall {
                checkpointManager_: root_chain,
            },
        ));
        ok(chain.send(
            &owner,
            manager,
            RootChainManager::setChildChainManagerAddressCall {
                childChainManager: child.manager,
            },
        ));
        ok(chain.send(
            &owner,
            state_sender,
            StateSender::registerCall {
                sender: manager,
                receiver: child.manager,
            },
        ));
        for (ty, predicate) in [
            ("ERC20", erc20_predicate),
            ("ERC721", erc721_predicate),
            ("Ether", ether_predicate),
        ] {
            ok(chain.send(
                &owner,
                manager,
                RootChainManager::registerPredicateCall {
                    tokenType: keccak256(ty),
                    predicate,
                },
            ));
        }
        let mappings = [
            (token, child.erc20, "ERC20"),
            (nft, child.erc721, "ERC721"),
            (btt, NATIVE_TOKEN, "ERC20"),
            (TRON_ETHER, child.wrapped_coin, "Ether"),
        ]
        .into_iter()
        .map(|(root, child, ty)| {
            ok(chain.send(
                &owner,
                manager,
                RootChainManager::mapTokenCall {
                    rootToken: root,
                    childToken: child,
                    tokenType: keccak256(ty),
                },
            ))
        })
        .collect();
        Self {
            staking,
            validators,
            state_sender,
            manager,
            erc20_predicate,
            erc721_predicate,
            ether_predicate,
            token,
            nft,
            btt,
            mappings,
        }
    }

    pub fn chain(&mut self) -> &mut EvmChain {
        &mut self.staking.chain
    }

    /// A root account holding `token` and `btt`, NFT `nft_id`, and the predicates approved.
    pub fn depositor(&mut self, seed: u64, nft_id: u64) -> PrivateKeySigner {
        let key = test_key(seed);
        let (token, btt, nft) = (self.token, self.btt, self.nft);
        let (p20, p721) = (self.erc20_predicate, self.erc721_predicate);
        let chain = self.chain();
        chain.fund(key.address(), U256::from(RICH));
        for t in [token, btt] {
            ok(chain.send(
                &key,
                t,
                TestRootERC20::mintCall {
                    to: key.address(),
                    amount: U256::from(RICH),
                },
            ));
            ok(chain.send(
                &key,
                t,
                TestRootERC20::approveCall {
                    spender: p20,
                    value: U256::MAX,
                },
            ));
        }
        ok(chain.send(
            &key,
            nft,
            TestRootERC721::mintCall {
                to: key.address(),
                tokenId: U256::from(nft_id),
            },
        ));
        ok(chain.send(
            &key,
            nft,
            TestRootERC721::setApprovalForAllCall {
                operator: p721,
                approved: true,
            },
        ));
        key
    }

    pub fn deposit(
        &mut self,
        from: &PrivateKeySigner,
        user: Address,
        root_token: Address,
        value: U256,
    ) -> Executed {
        let manager = self.manager;
        self.chain().send(
            from,
            manager,
            RootChainManager::depositForCall {
                user,
                rootToken: root_token,
                depositData: alloy_sol_types::SolValue::abi_encode(&value).into(),
            },
        )
    }

    /// Checkpoints child blocks `start..=end` with 5 of the 7 validators' signatures.
    pub fn checkpoint(&mut self, child: &EvmChain, end: u64) -> (u64, CheckpointTree) {
        let start = self.staking.next_start;
        let tree = CheckpointTree::from_headers(&child.leaves[start as usize..=end as usize]);
        let data = CheckpointData {
            proposer: self.validators.address(0),
            start,
            end,
            root_hash: tree.root(),
            account_root_hash: B256::repeat_byte(0xac),
            bor_chain_id: BOR_CHAIN_ID,
            epoch: self.staking.epoch(),
        };
        let sigs = self.validators.sigs(&data.encode(), &[0, 1, 2, 3, 4]);
        let header = self
            .staking
            .chain
            .view(
                self.staking.root_chain,
                RootChain::currentHeaderBlockCall {},
            )
            .unwrap();
        ok(self.staking.submit(&data, sigs));
        (header.to::<u64>() + 10_000, tree)
    }
}

/// The index of the first `WithdrawTo` log of `token` in a receipt's logs.
pub fn withdraw_log_index(executed: &Executed, token: Address) -> u64 {
    executed
        .logs
        .iter()
        .position(|l| l.address == token && l.topics()[0] == WITHDRAW_TO)
        .expect("a WithdrawTo log") as u64
}

/// The exit of the `WithdrawTo` of `token` in transaction `tx_index` of `block`, proven
/// against checkpoint `header`, whose tree `tree` starts at block `start`.
pub fn exit_payload(
    header: u64,
    start: u64,
    tree: &CheckpointTree,
    block: &super::MinedBlock,
    tx_index: usize,
    token: Address,
) -> crate::root::exit::ExitPayload {
    crate::root::exit::ExitPayload {
        header_number: U256::from(header),
        block_proof: tree
            .proof((block.number - start) as usize)
            .expect("the block is in the checkpoint")
            .into(),
        block_number: block.number,
        block_time: block.timestamp,
        tx_root: block.tx_root,
        receipt_root: block.receipt_root,
        receipt: crate::root::exit::receipt_proof(&block.receipts, tx_index)
            .expect("the transaction is in the block"),
        log_index: withdraw_log_index(&block.executed[tx_index], token),
    }
}
