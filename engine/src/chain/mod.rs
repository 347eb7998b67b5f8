//! The BTTC chain: chain specs, genesis, mempool, and block building.

pub mod bor;
pub mod builder;
pub mod genesis;
pub mod import;
pub mod mempool;
pub mod producer;
pub mod spec;

use crate::{
    exec::StateError,
    primitives::{BlockNumber, RecoveredTx, StoredReceipt},
};
use alloy_consensus::Header;
use alloy_primitives::{B256, Bloom};

/// Read access to stored blocks; implemented by the database, used by RPC and the producer.
pub trait BlockReader {
    /// Number of the last committed block.
    fn tip(&self) -> Result<Option<BlockNumber>, StateError>;
    fn header(&self, number: BlockNumber) -> Result<Option<Header>, StateError>;
    fn canonical_hash(&self, number: BlockNumber) -> Result<Option<B256>, StateError>;
    fn block_number(&self, hash: &B256) -> Result<Option<BlockNumber>, StateError>;
    fn body(&self, number: BlockNumber) -> Result<Option<Vec<RecoveredTx>>, StateError>;
    fn receipts(&self, number: BlockNumber) -> Result<Option<Vec<StoredReceipt>>, StateError>;
    /// Block number and index of a committed transaction.
    fn tx_location(&self, hash: &B256) -> Result<Option<(BlockNumber, u32)>, StateError>;
    /// The logs blooms of the stored blocks in `from..=to`, in order, to `visit` until it
    /// returns false: log queries scan these before reading any block. Stores override this
    /// with a sequential scan that decodes nothing but the bloom.
    fn visit_blooms(
        &self,
        from: BlockNumber,
        to: BlockNumber,
        visit: &mut dyn FnMut(BlockNumber, &Bloom) -> bool,
    ) -> Result<(), StateError> {
        for number in from..=to {
            let Some(header) = self.header(number)? else {
                break;
            };
            if !visit(number, &header.logs_bloom) {
                break;
            }
        }
        Ok(())
    }
}

/// The logs bloom of an RLP-encoded header, read in place: the seventh field, after two
/// hashes, an address and three more hashes. `None` if the bytes are not such a header.
pub fn header_rlp_bloom(rlp: &[u8]) -> Option<&[u8; 256]> {
    let mut rest = rlp;
    let list = alloy_rlp::Header::decode(&mut rest).ok()?;
    if !list.list || rest.len() < list.payload_length {
        return None;
    }
    for _ in 0..6 {
        let field = alloy_rlp::Header::decode(&mut rest).ok()?;
        if field.list || rest.len() < field.payload_length {
            return None;
        }
        rest = &rest[field.payload_length..];
    }
    let bloom = alloy_rlp::Header::decode(&mut rest).ok()?;
    if bloom.list || bloom.payload_length != 256 {
        return None;
    }
    rest.get(..256)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bloom_is_read_in_place_from_a_header() {
        let mut header = Header {
            number: 7,
            gas_limit: 30_000_000,
            base_fee_per_gas: Some(7),
            extra_data: alloy_primitives::Bytes::from_static(b"bttc"),
            ..Default::default()
        };
        header
            .logs_bloom
            .accrue(alloy_primitives::BloomInput::Raw(b"topic"));
        let rlp = alloy_rlp::encode(&header);
        assert_eq!(header_rlp_bloom(&rlp), Some(&header.logs_bloom.0.0));
        assert_eq!(header_rlp_bloom(&rlp[..100]), None);
        assert_eq!(header_rlp_bloom(&[0xc0]), None);
    }
}
