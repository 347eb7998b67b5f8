//! Bor's header seal (spec §4.2): the seal hash, sealing, and the author recovered from a seal.

use crate::crypto::{recover_hash_signer, sign_hash_recoverable};
use alloy_consensus::Header;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use alloy_rlp::Encodable;

/// Bytes of vanity at the start of a sealed header's extra data.
pub const EXTRA_VANITY: usize = 32;
/// Bytes of the seal at the end of a sealed header's extra data.
pub const EXTRA_SEAL: usize = 65;

/// The hash a producer signs: the header's RLP with the seal cut from the extra data, over
/// the fifteen pre-London fields (bttc `encodeSigHeader`). `None` when the extra data is too
/// short to hold vanity and a seal.
pub fn seal_hash(header: &Header) -> Option<B256> {
    let extra = header.extra_data.len().checked_sub(EXTRA_SEAL)?;
    if extra < EXTRA_VANITY {
        return None;
    }
    let unsealed = &header.extra_data[..extra];
    let fields: [&dyn Encodable; 15] = [
        &header.parent_hash,
        &header.ommers_hash,
        &header.beneficiary,
        &header.state_root,
        &header.transactions_root,
        &header.receipts_root,
        &header.logs_bloom,
        &header.difficulty,
        &header.number,
        &header.gas_limit,
        &header.gas_used,
        &header.timestamp,
        &unsealed,
        &header.mix_hash,
        &header.nonce,
    ];
    let payload_length = fields.iter().map(|f| f.length()).sum();
    let mut out = Vec::with_capacity(payload_length + 4);
    alloy_rlp::Header {
        list: true,
        payload_length,
    }
    .encode(&mut out);
    for field in fields {
        field.encode(&mut out);
    }
    Some(keccak256(out))
}

/// The producer that sealed `header`, or `None` if it carries no valid seal.
pub fn seal_author(header: &Header) -> Option<Address> {
    let hash = seal_hash(header)?;
    let seal: &[u8; EXTRA_SEAL] = header.extra_data[header.extra_data.len() - EXTRA_SEAL..]
        .try_into()
        .ok()?;
    recover_hash_signer(&hash, seal)
}

/// Who made a block: the sealer of a Bor-sealed header, else its beneficiary.
pub fn author(header: &Header) -> Address {
    seal_author(header).unwrap_or(header.beneficiary)
}

/// Seals `header` with `key`: `extra = vanity ‖ rest ‖ seal`, the seal over [`seal_hash`].
pub fn seal(
    header: &mut Header,
    vanity: [u8; EXTRA_VANITY],
    rest: &[u8],
    key: &secp256k1::SecretKey,
) {
    let mut extra = Vec::with_capacity(EXTRA_VANITY + rest.len() + EXTRA_SEAL);
    extra.extend_from_slice(&vanity);
    extra.extend_from_slice(rest);
    extra.extend_from_slice(&[0; EXTRA_SEAL]);
    header.extra_data = Bytes::from(extra);
    let hash = seal_hash(header).expect("extra data holds vanity and seal");
    let signature = sign_hash_recoverable(key, &hash);
    let mut extra = header.extra_data.to_vec();
    let at = extra.len() - EXTRA_SEAL;
    extra[at..].copy_from_slice(&signature);
    header.extra_data = Bytes::from(extra);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::signing::key_address;

    fn key(byte: u8) -> secp256k1::SecretKey {
        secp256k1::SecretKey::from_byte_array([byte; 32]).unwrap()
    }

    #[test]
    fn the_author_is_the_sealer_and_any_change_to_the_header_changes_it() {
        let mut header = Header {
            number: 1_000,
            gas_limit: 20_000_000,
            timestamp: 1_700_000_000,
            difficulty: alloy_primitives::U256::from(7),
            ..Default::default()
        };
        let producer = key(0x11);
        seal(&mut header, [0xaa; EXTRA_VANITY], &[], &producer);
        assert_eq!(header.extra_data.len(), 97);
        assert_eq!(seal_author(&header), Some(key_address(&producer)));
        assert_eq!(author(&header), key_address(&producer));

        // The seal hash leaves out the seal itself, covers the rest of the extra data.
        let mut validators = header.clone();
        seal(
            &mut validators,
            [0xaa; EXTRA_VANITY],
            &[0x42; 40],
            &producer,
        );
        assert_eq!(seal_author(&validators), Some(key_address(&producer)));
        assert_ne!(seal_hash(&validators), seal_hash(&header));

        let mut tampered = header.clone();
        tampered.gas_used = 1;
        assert_ne!(seal_author(&tampered), Some(key_address(&producer)));
    }

    #[test]
    fn an_unsealed_header_is_authored_by_its_beneficiary() {
        let header = Header {
            beneficiary: Address::repeat_byte(0x77),
            extra_data: Bytes::from_static(b"bttc"),
            ..Default::default()
        };
        assert_eq!(seal_hash(&header), None);
        assert_eq!(author(&header), Address::repeat_byte(0x77));
    }
}
