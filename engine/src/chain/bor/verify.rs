//! Header verification under Bor's rules (spec §4.2–4.3): the checks a header passes before
//! its block is executed, given its parent and the snapshot as of the parent.

use super::{
    extra::{self, ExtraError, validator_bytes},
    params::{ALLOWED_FUTURE_SECS, BorParams},
    seal::seal_author,
    snapshot::Snapshot,
};
use alloy_consensus::{EMPTY_OMMER_ROOT_HASH, Header};
use alloy_primitives::{Address, B64, B256, U256};

/// Why a header breaks Bor's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BorError {
    #[error("block {number} on a parent numbered {parent}")]
    NotChild { number: u64, parent: u64 },
    #[error("the snapshot is of block {snapshot}, not the parent {parent}")]
    SnapshotAt { snapshot: u64, parent: u64 },
    #[error(transparent)]
    Extra(#[from] ExtraError),
    #[error("the seal does not recover a signer")]
    BadSeal,
    #[error("signer {0} is not a producer of this sprint")]
    UnknownSigner(Address),
    #[error("difficulty {found}; signer at succession {succession} seals with {expected}")]
    Difficulty {
        found: U256,
        expected: u64,
        succession: usize,
    },
    #[error("time {time} is before the parent's {parent} plus the producer delay of {delay} s")]
    TooEarly { time: u64, parent: u64, delay: u64 },
    #[error("time {time} lies more than 3 s after now ({now})")]
    Future { time: u64, now: u64 },
    #[error("the {0} field must be zero or empty under Bor")]
    NonZero(&'static str),
    #[error("the sprint-end validators differ from the validator contract's")]
    SprintEndValidators,
    #[error("the parent's sprint-end validators differ from the snapshot's set")]
    SnapshotValidators,
}

/// Checks `header` against its `parent` and the snapshot as of the parent, at `now_secs`
/// (`None` while syncing old blocks: the future-time bound is for fresh blocks). Returns the
/// signer. The sprint-end validator list is checked against the contract separately
/// ([`check_sprint_end_validators`]) because it needs the parent's state.
pub fn verify_header(
    params: &BorParams,
    snapshot: &Snapshot,
    parent: &Header,
    header: &Header,
    now_secs: Option<u64>,
) -> Result<Address, BorError> {
    if header.number != parent.number + 1 {
        return Err(BorError::NotChild {
            number: header.number,
            parent: parent.number,
        });
    }
    if snapshot.number != parent.number {
        return Err(BorError::SnapshotAt {
            snapshot: snapshot.number,
            parent: parent.number,
        });
    }
    let (_, middle, _) = extra::split(&header.extra_data)?;
    if params.is_sprint_end(header.number) {
        extra::parse_validator_bytes(middle)?;
    } else if !middle.is_empty() {
        return Err(ExtraError::UnexpectedValidators(middle.len()).into());
    }
    if header.beneficiary != Address::ZERO {
        return Err(BorError::NonZero("coinbase"));
    }
    if header.nonce != B64::ZERO {
        return Err(BorError::NonZero("nonce"));
    }
    if header.mix_hash != B256::ZERO {
        return Err(BorError::NonZero("mix digest"));
    }
    if header.ommers_hash != EMPTY_OMMER_ROOT_HASH {
        return Err(BorError::NonZero("uncles"));
    }
    if let Some(now) = now_secs
        && header.timestamp > now + ALLOWED_FUTURE_SECS
    {
        return Err(BorError::Future {
            time: header.timestamp,
            now,
        });
    }
    if params.is_sprint_start(header.number) && header.number > 0 && parent.number > 0 {
        let (_, parent_middle, _) = extra::split(&parent.extra_data)?;
        if parent_middle != validator_bytes(&snapshot.members()).as_slice() {
            return Err(BorError::SnapshotValidators);
        }
    }
    let signer = seal_author(header).ok_or(BorError::BadSeal)?;
    let succession = snapshot
        .succession(&signer)
        .ok_or(BorError::UnknownSigner(signer))?;
    let expected = (snapshot.set.len() - succession) as u64;
    if header.difficulty != U256::from(expected) {
        return Err(BorError::Difficulty {
            found: header.difficulty,
            expected,
            succession,
        });
    }
    let delay = params.producer_delay(header.number, succession);
    if header.timestamp < parent.timestamp + delay {
        return Err(BorError::TooEarly {
            time: header.timestamp,
            parent: parent.timestamp,
            delay,
        });
    }
    Ok(signer)
}

/// At a sprint's end, the header must list `getBorValidators(number + 1)` as the validator
/// contract answers it on the parent's state.
pub fn check_sprint_end_validators(
    params: &BorParams,
    header: &Header,
    contract_validators: &[(Address, u64)],
) -> Result<(), BorError> {
    if !params.is_sprint_end(header.number) {
        return Ok(());
    }
    let (_, middle, _) = extra::split(&header.extra_data)?;
    if middle != validator_bytes(contract_validators).as_slice() {
        return Err(BorError::SprintEndValidators);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::bor::{Vanity, seal::seal};
    use crate::delivery::signing::key_address;

    fn key(b: u8) -> secp256k1::SecretKey {
        secp256k1::SecretKey::from_byte_array([b; 32]).unwrap()
    }

    struct Net {
        params: BorParams,
        keys: Vec<secp256k1::SecretKey>,
        snapshot: Snapshot,
        parent: Header,
    }

    fn net() -> Net {
        let params = BorParams {
            sprint: 4,
            ..BorParams::MAINNET
        };
        let keys: Vec<_> = (1..=4).map(key).collect();
        let members: Vec<_> = keys.iter().map(|k| (key_address(k), 1)).collect();
        let parent = Header {
            number: 5,
            timestamp: 1_000,
            extra_data: {
                let mut e = Vanity::default().encode().to_vec();
                e.extend_from_slice(&[0; 65]);
                e.into()
            },
            ..Default::default()
        };
        let mut snapshot = Snapshot::genesis(B256::ZERO, &members).unwrap();
        snapshot.number = 5;
        Net {
            params,
            keys,
            snapshot,
            parent,
        }
    }

    impl Net {
        fn key_of(&self, address: Address) -> &secp256k1::SecretKey {
            self.keys
                .iter()
                .find(|k| key_address(k) == address)
                .unwrap()
        }

        /// Block 6 sealed by the producer at `rank` with the right difficulty and time.
        fn block(&self, rank: usize) -> Header {
            let signer = self.snapshot.succession_order()[rank];
            let mut header = Header {
                number: 6,
                timestamp: self.parent.timestamp + self.params.producer_delay(6, rank),
                difficulty: U256::from(4 - rank),
                ommers_hash: EMPTY_OMMER_ROOT_HASH,
                ..Default::default()
            };
            seal(
                &mut header,
                Vanity::default().encode(),
                &[],
                self.key_of(signer),
            );
            header
        }

        fn verify(&self, header: &Header) -> Result<Address, BorError> {
            verify_header(
                &self.params,
                &self.snapshot,
                &self.parent,
                header,
                Some(1_010),
            )
        }
    }

    fn reseal(net: &Net, header: &mut Header, signer: Address) {
        seal(header, Vanity::default().encode(), &[], net.key_of(signer));
    }

    #[test]
    fn every_rank_seals_with_its_difficulty_after_its_delay() {
        let net = net();
        for rank in 0..4 {
            let header = net.block(rank);
            let signer = net.snapshot.succession_order()[rank];
            assert_eq!(net.verify(&header), Ok(signer), "rank {rank}");

            let mut early = header.clone();
            early.timestamp -= 1;
            reseal(&net, &mut early, signer);
            assert_eq!(
                net.verify(&early),
                Err(BorError::TooEarly {
                    time: early.timestamp,
                    parent: 1_000,
                    delay: 2 + 2 * rank as u64
                })
            );

            let mut wrong = header.clone();
            wrong.difficulty = U256::from(4);
            reseal(&net, &mut wrong, signer);
            if rank != 0 {
                assert!(matches!(
                    net.verify(&wrong),
                    Err(BorError::Difficulty { expected, .. }) if expected == 4 - rank as u64
                ));
            }
        }
    }

    #[test]
    fn bad_headers_are_refused_with_their_reason() {
        let net = net();
        let good = net.block(0);
        let signer = net.snapshot.proposer();

        let mut tampered = good.clone();
        tampered.gas_used = 7;
        assert!(matches!(
            net.verify(&tampered),
            Err(BorError::UnknownSigner(_) | BorError::BadSeal)
        ));

        let mut stranger = good.clone();
        seal(&mut stranger, Vanity::default().encode(), &[], &key(9));
        assert_eq!(
            net.verify(&stranger),
            Err(BorError::UnknownSigner(key_address(&key(9))))
        );

        let mut future = good.clone();
        future.timestamp = 1_014;
        reseal(&net, &mut future, signer);
        assert_eq!(
            net.verify(&future),
            Err(BorError::Future {
                time: 1_014,
                now: 1_010
            })
        );

        let mut coinbase = good.clone();
        coinbase.beneficiary = Address::repeat_byte(1);
        reseal(&net, &mut coinbase, signer);
        assert_eq!(net.verify(&coinbase), Err(BorError::NonZero("coinbase")));

        let mut validators = good.clone();
        seal(
            &mut validators,
            Vanity::default().encode(),
            &validator_bytes(&net.snapshot.members()),
            net.key_of(signer),
        );
        assert_eq!(
            net.verify(&validators),
            Err(BorError::Extra(ExtraError::UnexpectedValidators(160)))
        );

        let mut short = good.clone();
        short.extra_data = short.extra_data.slice(..90);
        assert_eq!(
            net.verify(&short),
            Err(BorError::Extra(ExtraError::TooShort(90)))
        );

        let mut orphan = good.clone();
        orphan.number = 7;
        assert!(matches!(
            net.verify(&orphan),
            Err(BorError::NotChild { .. })
        ));
    }

    #[test]
    fn a_sprint_end_header_must_list_the_contract_validators() {
        let net = net();
        let params = net.params;
        let members = net.snapshot.members();
        let mut header = Header {
            number: 7,
            ..Default::default()
        };
        seal(
            &mut header,
            Vanity::default().encode(),
            &validator_bytes(&members),
            &key(1),
        );
        assert_eq!(
            check_sprint_end_validators(&params, &header, &members),
            Ok(())
        );
        assert_eq!(
            check_sprint_end_validators(&params, &header, &members[1..]),
            Err(BorError::SprintEndValidators)
        );
        // Not a sprint end: nothing to compare.
        header.number = 6;
        assert_eq!(check_sprint_end_validators(&params, &header, &[]), Ok(()));
    }
}
