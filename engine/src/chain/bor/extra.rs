//! A Bor header's extra data (spec §4.2): `vanity(32) ‖ [validator bytes at a sprint's end]
//! ‖ seal(65)`. Our vanity carries the pinned Delivery height (DESIGN.md §10.5).

use super::seal::{EXTRA_SEAL, EXTRA_VANITY};
use crate::primitives::DeliveryHeight;
use alloy_primitives::Address;

/// Bytes per validator in a sprint-end header: address(20) ‖ power (20, big-endian).
pub const VALIDATOR_BYTES: usize = 40;
/// Most validators a sprint-end header may list (bounds decoding; the contract holds 256).
pub const VALIDATORS_MAX: usize = 256;
/// The tag at the start of our vanity.
const VANITY_TAG: &[u8; 4] = b"bttc";

/// Why a header's extra data is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtraError {
    #[error("extra data of {0} bytes cannot hold a vanity and a seal")]
    TooShort(usize),
    #[error(
        "a block that does not end a sprint carries {0} bytes of validators; it must carry none"
    )]
    UnexpectedValidators(usize),
    #[error("validator bytes of {0} bytes: not a non-empty multiple of 40 within 256 validators")]
    ValidatorBytes(usize),
    #[error("validator {0} listed out of address order or twice")]
    Unsorted(Address),
    #[error("validator {0} has power {1}, out of range")]
    Power(Address, u128),
}

/// What a producer writes in its header's vanity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vanity {
    /// The Delivery height whose spans and state-sync records the producer used.
    pub delivery_height: DeliveryHeight,
}

impl Vanity {
    /// `"bttc" ‖ zeros ‖ Delivery height (8 bytes, big-endian)`.
    pub fn encode(&self) -> [u8; EXTRA_VANITY] {
        let mut out = [0; EXTRA_VANITY];
        out[..4].copy_from_slice(VANITY_TAG);
        out[EXTRA_VANITY - 8..].copy_from_slice(&self.delivery_height.0.to_be_bytes());
        out
    }

    /// Reads a vanity; `None` if it does not carry our tag (a foreign producer's header).
    pub fn decode(vanity: &[u8; EXTRA_VANITY]) -> Option<Self> {
        if &vanity[..4] != VANITY_TAG || vanity[4..EXTRA_VANITY - 8].iter().any(|&b| b != 0) {
            return None;
        }
        let height = u64::from_be_bytes(vanity[EXTRA_VANITY - 8..].try_into().ok()?);
        Some(Self {
            delivery_height: DeliveryHeight(height),
        })
    }
}

/// Extra data split into vanity, the bytes between vanity and seal, and the seal.
pub type ExtraParts<'a> = (&'a [u8; EXTRA_VANITY], &'a [u8], &'a [u8; EXTRA_SEAL]);

/// Splits extra data into its [`ExtraParts`].
pub fn split(extra: &[u8]) -> Result<ExtraParts<'_>, ExtraError> {
    if extra.len() < EXTRA_VANITY + EXTRA_SEAL {
        return Err(ExtraError::TooShort(extra.len()));
    }
    let (vanity, rest) = extra.split_at(EXTRA_VANITY);
    let (middle, seal) = rest.split_at(rest.len() - EXTRA_SEAL);
    Ok((
        vanity.try_into().expect("split at EXTRA_VANITY"),
        middle,
        seal.try_into().expect("split at EXTRA_SEAL"),
    ))
}

/// bor `HeaderBytes` of each validator, sorted by address: `address ‖ power (20 bytes)`.
pub fn validator_bytes(validators: &[(Address, u64)]) -> Vec<u8> {
    let mut sorted = validators.to_vec();
    sorted.sort_by_key(|(address, _)| *address);
    let mut out = Vec::with_capacity(sorted.len() * VALIDATOR_BYTES);
    for (address, power) in sorted {
        out.extend_from_slice(address.as_slice());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&power.to_be_bytes());
    }
    out
}

/// bor `ParseValidators`, strict: a non-empty list in ascending address order, each power a
/// positive value that fits an `i64` (Tendermint's powers are `int64`).
pub fn parse_validator_bytes(bytes: &[u8]) -> Result<Vec<(Address, u64)>, ExtraError> {
    if bytes.is_empty()
        || !bytes.len().is_multiple_of(VALIDATOR_BYTES)
        || bytes.len() / VALIDATOR_BYTES > VALIDATORS_MAX
    {
        return Err(ExtraError::ValidatorBytes(bytes.len()));
    }
    let mut out: Vec<(Address, u64)> = Vec::with_capacity(bytes.len() / VALIDATOR_BYTES);
    for chunk in bytes.chunks_exact(VALIDATOR_BYTES) {
        let address = Address::from_slice(&chunk[..20]);
        let power = u128::from_be_bytes(chunk[24..].try_into().expect("16 bytes"));
        if chunk[20..24] != [0; 4] || power == 0 || power > i64::MAX as u128 {
            let wide = if chunk[20..24] == [0; 4] {
                power
            } else {
                u128::MAX
            };
            return Err(ExtraError::Power(address, wide));
        }
        if out.last().is_some_and(|(last, _)| *last >= address) {
            return Err(ExtraError::Unsorted(address));
        }
        out.push((address, power as u64));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_bytes_are_sorted_and_read_back() {
        let a = Address::repeat_byte(0xaa);
        let b = Address::repeat_byte(0x11);
        let bytes = validator_bytes(&[(a, 1), (b, 300)]);
        assert_eq!(bytes.len(), 80);
        assert_eq!(&bytes[..20], b.as_slice());
        assert_eq!(&bytes[20..38], &[0; 18]);
        assert_eq!(&bytes[38..40], &[0x01, 0x2c]);
        assert_eq!(parse_validator_bytes(&bytes), Ok(vec![(b, 300), (a, 1)]));

        assert_eq!(
            parse_validator_bytes(&bytes[..79]),
            Err(ExtraError::ValidatorBytes(79))
        );
        assert_eq!(
            parse_validator_bytes(&[]),
            Err(ExtraError::ValidatorBytes(0))
        );
        let mut swapped = bytes[40..].to_vec();
        swapped.extend_from_slice(&bytes[..40]);
        assert_eq!(
            parse_validator_bytes(&swapped),
            Err(ExtraError::Unsorted(b))
        );
        let mut zero = bytes.clone();
        zero[78..80].copy_from_slice(&[0, 0]);
        assert_eq!(parse_validator_bytes(&zero), Err(ExtraError::Power(a, 0)));
        let mut huge = bytes.clone();
        huge[20] = 1;
        assert!(matches!(
            parse_validator_bytes(&huge),
            Err(ExtraError::Power(..))
        ));
    }

    #[test]
    fn the_vanity_carries_the_delivery_height() {
        let vanity = Vanity {
            delivery_height: DeliveryHeight(0x0102_0304),
        };
        let bytes = vanity.encode();
        assert_eq!(&bytes[..4], b"bttc");
        assert_eq!(&bytes[28..], &[1, 2, 3, 4]);
        assert_eq!(Vanity::decode(&bytes), Some(vanity));
        assert_eq!(Vanity::decode(&[0; 32]), None);
        let mut extra = bytes.to_vec();
        extra.extend_from_slice(&[7; 40]);
        extra.extend_from_slice(&[9; 65]);
        let (v, middle, seal) = split(&extra).unwrap();
        assert_eq!((v, middle.len(), seal[0]), (&bytes, 40, 9));
        assert_eq!(split(&extra[..96]), Err(ExtraError::TooShort(96)));
    }
}
