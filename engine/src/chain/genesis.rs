//! Genesis: the dev accounts derived from a fixed mnemonic, and the genesis block's state.

use crate::{
    chain::spec::ChainSpec,
    exec::{AccountChange, StateChanges},
    primitives::Account,
};
use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH, Header};
use alloy_primitives::{Address, B256, Bytes, KECCAK256_EMPTY, U256};
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

/// The well-known development mnemonic (the same accounts as anvil and Hardhat).
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";
pub const DEV_ACCOUNT_COUNT: usize = 10;
/// Each dev account starts with one million ether.
pub const DEV_ACCOUNT_BALANCE: U256 = U256::from_limbs([0x1bce_cced_a100_0000, 0xd3c2, 0, 0]);
/// Fixed genesis time, so that the dev genesis hash never changes.
pub const DEV_GENESIS_TIMESTAMP: u64 = 1_700_000_000;

#[derive(Debug, thiserror::Error)]
#[error("deriving dev account {index} from the mnemonic failed: {source}")]
pub struct DevAccountError {
    pub index: usize,
    pub source: alloy_signer_local::LocalSignerError,
}

/// The first `count` accounts of [`DEV_MNEMONIC`] (path m/44'/60'/0'/0/i).
pub fn dev_signers(count: usize) -> Result<Vec<PrivateKeySigner>, DevAccountError> {
    (0..count)
        .map(|index| {
            MnemonicBuilder::<English>::default()
                .phrase(DEV_MNEMONIC)
                .index(index as u32)
                .and_then(|b| b.build())
                .map_err(|source| DevAccountError { index, source })
        })
        .collect()
}

/// Genesis state: funded accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    pub alloc: Vec<(Address, U256)>,
    pub timestamp: u64,
}

impl Genesis {
    pub fn dev(accounts: &[Address]) -> Self {
        Self {
            alloc: accounts.iter().map(|a| (*a, DEV_ACCOUNT_BALANCE)).collect(),
            timestamp: DEV_GENESIS_TIMESTAMP,
        }
    }

    /// The genesis allocation as state changes over an empty state.
    pub fn changes(&self) -> StateChanges {
        let mut changes = StateChanges::default();
        for (address, balance) in &self.alloc {
            changes.accounts.insert(
                *address,
                AccountChange {
                    account: Some(Account {
                        nonce: 0,
                        balance: *balance,
                        code_hash: KECCAK256_EMPTY,
                    }),
                    ..Default::default()
                },
            );
        }
        changes
    }

    /// The genesis header for `spec`, given the root of [`Genesis::changes`].
    pub fn header(&self, spec: &ChainSpec, state_root: B256) -> Header {
        let mut header = Header {
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            state_root,
            transactions_root: EMPTY_ROOT_HASH,
            receipts_root: EMPTY_ROOT_HASH,
            gas_limit: spec.gas_limit,
            timestamp: self.timestamp,
            extra_data: Bytes::from_static(b"bttc genesis"),
            ..Default::default()
        };
        crate::chain::builder::set_fork_fields(spec, &mut header, spec.genesis_base_fee);
        header
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_accounts_are_the_well_known_ones() {
        let signers = dev_signers(2).unwrap();
        assert_eq!(
            signers[0].address(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(
            signers[1].address(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
                .parse::<Address>()
                .unwrap()
        );
        assert_eq!(DEV_ACCOUNT_BALANCE, U256::from(10).pow(U256::from(24)));
    }
}
