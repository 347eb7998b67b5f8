//! Typed bindings (alloy `sol!`) of our contracts in `engine/contracts`, generated from the
//! committed artifacts (ABI, creation and runtime code), and the BTTC chain's system addresses.

use alloy_primitives::{Address, address};

/// The caller of Bor's system calls (`commitState`, `commitSpan`).
pub const SYSTEM_ADDRESS: Address = address!("fffffffffffffffffffffffffffffffffffffffe");
/// `BorValidatorSet` in the BTTC chain's genesis.
pub const BOR_VALIDATOR_SET: Address = address!("0000000000000000000000000000000000001000");
/// `StateReceiver` in the BTTC chain's genesis.
pub const STATE_RECEIVER: Address = address!("0000000000000000000000000000000000001001");
/// The native token (BTT) in the BTTC chain's genesis.
pub const NATIVE_TOKEN: Address = address!("0000000000000000000000000000000000001010");

/// Root-chain contracts (compiled for `paris`).
pub mod root {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        StakeManager,
        "contracts/artifacts/StakeManager.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        StakingNFT,
        "contracts/artifacts/StakingNFT.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        RootChain,
        "contracts/artifacts/RootChain.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        StateSender,
        "contracts/artifacts/StateSender.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        RootChainManager,
        "contracts/artifacts/RootChainManager.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ERC20Predicate,
        "contracts/artifacts/ERC20Predicate.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ERC721Predicate,
        "contracts/artifacts/ERC721Predicate.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        EtherPredicate,
        "contracts/artifacts/EtherPredicate.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        TestRootERC20,
        "contracts/artifacts/TestRootERC20.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        TestRootERC721,
        "contracts/artifacts/TestRootERC721.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ProofHarness,
        "contracts/artifacts/ProofHarness.json"
    );
}

/// BTTC-chain contracts (compiled for `berlin`).
pub mod child {
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        BorValidatorSet,
        "contracts/artifacts/BorValidatorSet.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        StateReceiver,
        "contracts/artifacts/StateReceiver.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ChildChainManager,
        "contracts/artifacts/ChildChainManager.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ChildERC20,
        "contracts/artifacts/ChildERC20.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        ChildERC721,
        "contracts/artifacts/ChildERC721.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        NativeToken,
        "contracts/artifacts/NativeToken.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        RecordingReceiver,
        "contracts/artifacts/RecordingReceiver.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        SwapPool,
        "contracts/artifacts/SwapPool.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        Probe,
        "contracts/artifacts/Probe.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        Child,
        "contracts/artifacts/Child.json"
    );
    alloy_sol_types::sol!(
        #[sol(all_derives)]
        PlainToken,
        "contracts/artifacts/PlainToken.json"
    );
}
