//! State-sync records as the BTTC chain hands them to `StateReceiver.commitState` (spec §2.3):
//! `RLP([id, contract, data, txHash, logIndex, chainId])`, with Delivery's global id.

use alloy_primitives::{Address, B256, Bytes};
use alloy_rlp::Encodable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    /// Delivery's global, gap-free record id.
    pub id: u64,
    /// The receiver on the BTTC chain.
    pub contract: Address,
    pub data: Bytes,
    /// The root-chain transaction and log that emitted `StateSynced`.
    pub tx_hash: B256,
    pub log_index: u64,
    /// The BTTC chain id as a decimal string ("199").
    pub chain_id: String,
}

impl StateRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        self.id.encode(&mut payload);
        self.contract.encode(&mut payload);
        self.data.encode(&mut payload);
        self.tx_hash.encode(&mut payload);
        self.log_index.encode(&mut payload);
        self.chain_id.encode(&mut payload);
        super::rlp_list(&payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_an_rlp_list_of_six_items() {
        let record = StateRecord {
            id: 1,
            contract: Address::repeat_byte(0x22),
            data: Bytes::from_static(b"hi"),
            tx_hash: B256::repeat_byte(0x33),
            log_index: 0,
            chain_id: "199".into(),
        };
        let mut want = vec![0xf8, 1 + 21 + 3 + 33 + 1 + 4];
        want.push(0x01);
        want.push(0x94);
        want.extend([0x22; 20]);
        want.extend([0x82, b'h', b'i']);
        want.push(0xa0);
        want.extend([0x33; 32]);
        want.push(0x80);
        want.extend([0x83, b'1', b'9', b'9']);
        assert_eq!(record.encode(), want);
    }
}
