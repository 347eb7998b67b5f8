//! Chain specs: which EVM rules, chain id, gas limit and fee handling a chain uses (DESIGN.md §4).

pub use revm::primitives::hardfork::SpecId;

use super::bor::BorParams;

/// Who receives transaction fees, and whether BTTC's extra receipt logs are emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeRules {
    /// Ethereum: the priority fee goes to the header's beneficiary, the base fee is burnt.
    Ethereum,
    /// BTTC (Bor): the whole fee goes to the block signer and every value transfer and fee
    /// payment adds a `LogTransfer` / `LogFeeTransfer` receipt log (spec §4.2, §4.5).
    Bttc,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    pub name: &'static str,
    pub chain_id: u64,
    /// EVM rules for every block of this chain.
    pub spec_id: SpecId,
    pub gas_limit: u64,
    /// The lowest gas price (legacy) or fee cap (EIP-1559) the mempool accepts.
    pub min_gas_price: u128,
    /// Base fee of the genesis block when London rules are active.
    pub genesis_base_fee: u64,
    pub fee_rules: FeeRules,
    /// Proof-of-work block reward paid to the beneficiary (and uncle rewards), for imported
    /// pre-merge chains; `None` for chains without block rewards.
    pub block_reward: Option<u128>,
    /// Bor consensus (sealed headers, rotating producers, spans); `None` for a chain of one
    /// unsealed producer (`bttc node --dev`) or an imported chain.
    pub bor: Option<BorParams>,
}

/// Gas limit of dev blocks: room for ~10,000 ERC-20 transfers per 2 s block.
pub const DEV_GAS_LIMIT: u64 = 1_000_000_000;
/// Chain id of `bttc node --dev`.
pub const DEV_CHAIN_ID: u64 = 1337;
/// Chain id of a devnet's BTTC chain (BTTC's testnet id, DESIGN.md §10.8).
pub const DEVNET_CHAIN_ID: u64 = 1029;
/// A devnet's Bor timing: BTTC's delays with sprints of 8 blocks and spans of 32, so that a
/// producer turn lasts 16 s and a span about a minute.
pub const DEVNET_BOR: BorParams = BorParams {
    sprint: 8,
    span: 32,
    first_span_end: 31,
    ..BorParams::MAINNET
};
/// One gwei, in wei.
pub const GWEI: u128 = 1_000_000_000;

impl ChainSpec {
    /// `bttc node --dev`: the newest finished hardfork revm supports, Ethereum fee rules.
    pub fn dev() -> Self {
        Self {
            name: "dev",
            chain_id: DEV_CHAIN_ID,
            spec_id: SpecId::OSAKA,
            gas_limit: DEV_GAS_LIMIT,
            min_gas_price: GWEI,
            genesis_base_fee: GWEI as u64,
            fee_rules: FeeRules::Ethereum,
            block_reward: None,
            bor: None,
        }
    }

    /// A devnet's BTTC chain: the dev EVM rules and fees (the signer takes the priority fee,
    /// the base fee is burnt) under Bor consensus with [`DEVNET_BOR`] timing.
    pub fn devnet() -> Self {
        Self {
            name: "devnet",
            chain_id: DEVNET_CHAIN_ID,
            bor: Some(DEVNET_BOR),
            ..Self::dev()
        }
    }

    /// BTTC mainnet rules (spec §4.1): Berlin, chain id 199, 20M gas, 300,000 gwei minimum price,
    /// fees to the block signer with BTTC's transfer logs.
    pub fn bttc_mainnet() -> Self {
        Self {
            name: "bttc-mainnet",
            chain_id: 199,
            spec_id: SpecId::BERLIN,
            gas_limit: 20_000_000,
            min_gas_price: 300_000 * GWEI,
            genesis_base_fee: 0,
            fee_rules: FeeRules::Bttc,
            block_reward: None,
            bor: Some(BorParams::MAINNET),
        }
    }

    /// Looks a profile up by its command-line name.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "dev" => Some(Self::dev()),
            "bttc-mainnet" => Some(Self::bttc_mainnet()),
            _ => None,
        }
    }

    /// Whether EIP-1559 base fees (London) apply.
    pub fn is_london(&self) -> bool {
        self.spec_id.is_enabled_in(SpecId::LONDON)
    }

    /// Base fee of the block after `parent` (EIP-1559; elasticity 2, change denominator 8).
    pub fn next_base_fee(
        &self,
        parent_gas_used: u64,
        parent_gas_limit: u64,
        parent_base_fee: u64,
    ) -> u64 {
        if !self.is_london() {
            return 0;
        }
        alloy_eips::eip1559::calc_next_block_base_fee(
            parent_gas_used,
            parent_gas_limit,
            parent_base_fee,
            alloy_eips::eip1559::BaseFeeParams::ethereum(),
        )
    }
}
