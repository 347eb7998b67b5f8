//! Compact binary codecs for stored values; every decoder checks lengths and never panics.

use alloy_consensus::{Eip658Value, Receipt, TxEnvelope};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{B256, Bytes, KECCAK256_EMPTY, Log, LogData, U256};
use alloy_trie::Nibbles;
use bttc_engine::primitives::{
    Account, ByteReader, DecodeError, RecoveredTx, StoredReceipt, TX_ENCODED_LEN_MAX,
};

/// Most transactions one stored block body may hold (bounds the decoder's allocation).
pub const BLOCK_TXS_MAX: usize = 1 << 20;
/// Most logs one stored receipt may hold.
pub const RECEIPT_LOGS_MAX: usize = 1 << 20;

/// Decoding errors of stored values (the engine's codec error).
pub type CodecError = DecodeError;

fn corrupt(what: &'static str, why: impl Into<String>) -> CodecError {
    DecodeError::new(what, why)
}

/// Big-endian bytes of `value` without leading zeros.
fn trimmed(value: &U256) -> Vec<u8> {
    let bytes = value.to_be_bytes::<32>();
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(32);
    bytes[start..].to_vec()
}

fn untrimmed(bytes: &[u8], what: &'static str) -> Result<U256, CodecError> {
    if bytes.len() > 32 {
        return Err(corrupt(what, "integer longer than 32 bytes"));
    }
    Ok(U256::from_be_slice(bytes))
}

/// Account: `flags(1) nonce(8) balance_len(1) balance [code_hash(32) if flags & 1]`.
pub fn encode_account(account: &Account) -> Vec<u8> {
    let balance = trimmed(&account.balance);
    let mut out = Vec::with_capacity(10 + balance.len() + 32);
    out.push(u8::from(account.has_code()));
    out.extend_from_slice(&account.nonce.to_be_bytes());
    out.push(balance.len() as u8);
    out.extend_from_slice(&balance);
    if account.has_code() {
        out.extend_from_slice(account.code_hash.as_slice());
    }
    out
}

pub fn decode_account(bytes: &[u8]) -> Result<Account, CodecError> {
    let mut r = ByteReader::new(bytes, "account");
    let flags = r.u8()?;
    let nonce = r.u64()?;
    let len = r.u8()? as usize;
    let balance = untrimmed(r.take(len)?, "account")?;
    let code_hash = if flags & 1 == 1 {
        r.b256()?
    } else {
        KECCAK256_EMPTY
    };
    r.finish()?;
    Ok(Account {
        nonce,
        balance,
        code_hash,
    })
}

/// Storage value: big-endian without leading zeros (zero values are never stored).
pub fn encode_storage_value(value: &U256) -> Vec<u8> {
    trimmed(value)
}

pub fn decode_storage_value(bytes: &[u8]) -> Result<U256, CodecError> {
    untrimmed(bytes, "storage value")
}

/// Block body: `count(4)` then per transaction `sender(20) len(4) eip2718_bytes`.
pub fn encode_body(txs: &[RecoveredTx]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + txs.iter().map(|t| 24 + t.encoded_len).sum::<usize>());
    out.extend_from_slice(&(txs.len() as u32).to_be_bytes());
    for tx in txs {
        out.extend_from_slice(tx.sender.as_slice());
        out.extend_from_slice(&(tx.encoded_len as u32).to_be_bytes());
        tx.envelope.encode_2718(&mut out);
    }
    out
}

pub fn decode_body(bytes: &[u8]) -> Result<Vec<RecoveredTx>, CodecError> {
    let mut r = ByteReader::new(bytes, "block body");
    let count = r.u32()? as usize;
    if count > BLOCK_TXS_MAX {
        return Err(corrupt("block body", format!("{count} transactions")));
    }
    let mut txs = Vec::with_capacity(count.min(bytes.len() / 24));
    for _ in 0..count {
        let sender = r.address()?;
        let len = r.u32()? as usize;
        if len > TX_ENCODED_LEN_MAX {
            return Err(corrupt("block body", format!("transaction of {len} bytes")));
        }
        let raw = r.take(len)?;
        let envelope = TxEnvelope::decode_2718_exact(raw)
            .map_err(|e| corrupt("block body", format!("transaction does not decode: {e}")))?;
        txs.push(RecoveredTx::new_unchecked(envelope, sender));
    }
    r.finish()?;
    Ok(txs)
}

/// Receipts of a block: `count(4)` then per receipt `type(1) status(1) cumulative_gas(8)
/// logs(4)` and per log `address(20) topics(1) topic*32 data_len(4) data`.
pub fn encode_receipts(receipts: &[StoredReceipt]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(receipts.len() as u32).to_be_bytes());
    for r in receipts {
        out.push(r.tx_type);
        out.push(u8::from(r.receipt.status.coerce_status()));
        out.extend_from_slice(&r.receipt.cumulative_gas_used.to_be_bytes());
        out.extend_from_slice(&(r.receipt.logs.len() as u32).to_be_bytes());
        for log in &r.receipt.logs {
            out.extend_from_slice(log.address.as_slice());
            out.push(log.topics().len() as u8);
            for t in log.topics() {
                out.extend_from_slice(t.as_slice());
            }
            out.extend_from_slice(&(log.data.data.len() as u32).to_be_bytes());
            out.extend_from_slice(&log.data.data);
        }
    }
    out
}

pub fn decode_receipts(bytes: &[u8]) -> Result<Vec<StoredReceipt>, CodecError> {
    let what = "receipts";
    let mut r = ByteReader::new(bytes, what);
    let count = r.u32()? as usize;
    if count > BLOCK_TXS_MAX {
        return Err(corrupt(what, format!("{count} receipts")));
    }
    let mut out = Vec::with_capacity(count.min(bytes.len() / 14));
    for _ in 0..count {
        let tx_type = r.u8()?;
        let status = match r.u8()? {
            0 => false,
            1 => true,
            s => return Err(corrupt(what, format!("status byte {s}"))),
        };
        let cumulative_gas_used = r.u64()?;
        let log_count = r.u32()? as usize;
        if log_count > RECEIPT_LOGS_MAX {
            return Err(corrupt(what, format!("{log_count} logs")));
        }
        let mut logs = Vec::with_capacity(log_count.min(r.remaining() / 25));
        for _ in 0..log_count {
            let address = r.address()?;
            let topic_count = r.u8()? as usize;
            if topic_count > 4 {
                return Err(corrupt(what, format!("log with {topic_count} topics")));
            }
            let topics = (0..topic_count)
                .map(|_| r.b256())
                .collect::<Result<Vec<_>, _>>()?;
            let len = r.u32()? as usize;
            let data = Bytes::copy_from_slice(r.take(len)?);
            logs.push(Log {
                address,
                data: LogData::new_unchecked(topics, data),
            });
        }
        out.push(StoredReceipt {
            tx_type,
            receipt: Receipt {
                status: Eip658Value::Eip658(status),
                cumulative_gas_used,
                logs,
            },
        });
    }
    r.finish()?;
    Ok(out)
}

/// Transaction location: `block(8) index(4)`.
pub fn encode_tx_location(block: u64, index: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&block.to_be_bytes());
    out[8..].copy_from_slice(&index.to_be_bytes());
    out
}

pub fn decode_tx_location(bytes: &[u8]) -> Result<(u64, u32), CodecError> {
    let mut r = ByteReader::new(bytes, "transaction location");
    let (block, index) = (r.u64()?, r.u32()?);
    r.finish()?;
    Ok((block, index))
}

/// Trie node key: `0 ‖ path` for the account trie, `1 ‖ owner ‖ path`, with the path packed two
/// nibbles a byte and followed by its nibble count, so that odd and even paths never collide.
pub fn trie_key(owner: Option<B256>, path: &Nibbles) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + 32 + 33);
    match owner {
        None => key.push(0),
        Some(o) => {
            key.push(1);
            key.extend_from_slice(o.as_slice());
        }
    }
    key.extend_from_slice(&path.pack());
    key.push(path.len() as u8);
    key
}

/// The chain tables' keys and values.
mod chain {
    use super::*;
    use crate::table::{Decode, Encode, EncodesAs};
    use alloy_consensus::Header;
    use alloy_primitives::Address;

    impl Encode for Account {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_account(self)
        }
    }

    impl Decode for Account {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            decode_account(bytes)
        }
    }

    impl Encode for Header {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            alloy_rlp::encode(self)
        }
    }

    impl Decode for Header {
        fn decode(mut bytes: &[u8]) -> Result<Self, CodecError> {
            <Header as alloy_rlp::Decodable>::decode(&mut bytes)
                .map_err(|e| corrupt("header", e.to_string()))
        }
    }

    /// A block's transactions with their senders.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Body(pub Vec<RecoveredTx>);

    impl Encode for Body {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_body(&self.0)
        }
    }

    impl Decode for Body {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            decode_body(bytes).map(Body)
        }
    }

    /// A block's transactions as the writer holds them.
    pub struct BodyRef<'a>(pub &'a [RecoveredTx]);

    impl Encode for BodyRef<'_> {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_body(self.0)
        }
    }

    impl EncodesAs<Body> for BodyRef<'_> {}

    /// A block's receipts.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BlockReceipts(pub Vec<StoredReceipt>);

    impl Encode for BlockReceipts {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_receipts(&self.0)
        }
    }

    impl Decode for BlockReceipts {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            decode_receipts(bytes).map(BlockReceipts)
        }
    }

    /// A block's receipts as the writer holds them.
    pub struct ReceiptsRef<'a>(pub &'a [StoredReceipt]);

    impl Encode for ReceiptsRef<'_> {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_receipts(self.0)
        }
    }

    impl EncodesAs<BlockReceipts> for ReceiptsRef<'_> {}

    /// Where a committed transaction is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct TxLocation {
        pub block: u64,
        pub index: u32,
    }

    impl Encode for TxLocation {
        type Encoded = [u8; 12];

        fn encode(&self) -> [u8; 12] {
            encode_tx_location(self.block, self.index)
        }
    }

    impl Decode for TxLocation {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            decode_tx_location(bytes).map(|(block, index)| TxLocation { block, index })
        }
    }

    /// `address(20) ‖ slot(32)`: an account's slots sort together.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct StorageKey {
        pub address: Address,
        pub slot: U256,
    }

    impl StorageKey {
        /// The smallest key of `address`'s slots.
        pub fn first_of(address: Address) -> Self {
            Self {
                address,
                slot: U256::ZERO,
            }
        }
    }

    impl Encode for StorageKey {
        type Encoded = [u8; 52];

        fn encode(&self) -> [u8; 52] {
            let mut key = [0u8; 52];
            key[..20].copy_from_slice(self.address.as_slice());
            key[20..].copy_from_slice(&self.slot.to_be_bytes::<32>());
            key
        }
    }

    impl Decode for StorageKey {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let mut r = ByteReader::new(bytes, "storage key");
            let address = r.address()?;
            let slot = U256::from_be_bytes(r.b256()?.0);
            r.finish()?;
            Ok(Self { address, slot })
        }
    }

    /// A non-zero storage value.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct StorageValue(pub U256);

    impl Encode for StorageValue {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            encode_storage_value(&self.0)
        }
    }

    impl Decode for StorageValue {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            decode_storage_value(bytes).map(StorageValue)
        }
    }

    /// A trie node's place: the account trie or one account's storage trie, and the path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TrieKey {
        pub owner: Option<B256>,
        pub path: Nibbles,
    }

    impl Encode for TrieKey {
        type Encoded = Vec<u8>;

        fn encode(&self) -> Vec<u8> {
            trie_key(self.owner, &self.path)
        }
    }

    impl Decode for TrieKey {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let what = "trie key";
            let mut r = ByteReader::new(bytes, what);
            let owner = match r.u8()? {
                0 => None,
                1 => Some(r.b256()?),
                b => return Err(corrupt(what, format!("owner tag {b}"))),
            };
            let rest = r.take(r.remaining())?;
            let (&len, packed) = rest
                .split_last()
                .ok_or_else(|| corrupt(what, "no path length"))?;
            let len = usize::from(len);
            if packed.len() != len.div_ceil(2) || len > 64 {
                return Err(corrupt(
                    what,
                    format!("{} bytes for {len} nibbles", packed.len()),
                ));
            }
            let nibbles: Vec<u8> = packed
                .iter()
                .flat_map(|b| [b >> 4, b & 0x0f])
                .take(len)
                .collect();
            Ok(Self {
                owner,
                path: Nibbles::from_nibbles_unchecked(nibbles),
            })
        }
    }

    /// Keys of the chain's `Meta` table.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ChainMetaKey {
        /// The last committed block's number.
        Tip,
        /// The name of the chain the database was made for.
        Chain,
    }

    impl Encode for ChainMetaKey {
        type Encoded = &'static [u8];

        fn encode(&self) -> &'static [u8] {
            match self {
                ChainMetaKey::Tip => b"tip",
                ChainMetaKey::Chain => b"chain",
            }
        }
    }

    impl Decode for ChainMetaKey {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            match bytes {
                b"tip" => Ok(ChainMetaKey::Tip),
                b"chain" => Ok(ChainMetaKey::Chain),
                _ => Err(corrupt("meta key", format!("unknown key {bytes:?}"))),
            }
        }
    }
}

pub use chain::{
    BlockReceipts, Body, BodyRef, ChainMetaKey, ReceiptsRef, StorageKey, StorageValue, TrieKey,
    TxLocation,
};

/// Fixed-width keys and plain values: integers big-endian (so keys sort by number), hashes and
/// addresses as their bytes, byte strings as they are.
mod plain {
    use super::CodecError;
    use crate::table::{Decode, Encode};
    use alloy_primitives::{Address, B256, Bytes};
    use bttc_engine::primitives::{ByteReader, DeliveryHeight};

    impl Encode for u64 {
        type Encoded = [u8; 8];

        fn encode(&self) -> [u8; 8] {
            self.to_be_bytes()
        }
    }

    impl Decode for u64 {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let mut r = ByteReader::new(bytes, "integer");
            let n = r.u64()?;
            r.finish()?;
            Ok(n)
        }
    }

    impl Encode for DeliveryHeight {
        type Encoded = [u8; 8];

        fn encode(&self) -> [u8; 8] {
            self.to_be_bytes()
        }
    }

    impl Decode for DeliveryHeight {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            u64::decode(bytes).map(DeliveryHeight)
        }
    }

    impl Encode for B256 {
        type Encoded = [u8; 32];

        fn encode(&self) -> [u8; 32] {
            self.0
        }
    }

    impl Decode for B256 {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let mut r = ByteReader::new(bytes, "hash");
            let h = r.b256()?;
            r.finish()?;
            Ok(h)
        }
    }

    impl Encode for Address {
        type Encoded = [u8; 20];

        fn encode(&self) -> [u8; 20] {
            self.0.0
        }
    }

    impl Decode for Address {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            let mut r = ByteReader::new(bytes, "address");
            let a = r.address()?;
            r.finish()?;
            Ok(a)
        }
    }

    impl Encode for Bytes {
        type Encoded = Bytes;

        fn encode(&self) -> Bytes {
            self.clone()
        }
    }

    impl Decode for Bytes {
        fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
            Ok(Bytes::copy_from_slice(bytes))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::Address;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn account_round_trips(nonce: u64, balance: [u8; 32], code: Option<[u8; 32]>) {
            let account = Account {
                nonce,
                balance: U256::from_be_bytes(balance),
                code_hash: code.map_or(KECCAK256_EMPTY, B256::from),
            };
            prop_assert_eq!(decode_account(&encode_account(&account)).unwrap(), account);
        }

        #[test]
        fn trie_keys_round_trip(owner: Option<[u8; 32]>, path in prop::collection::vec(0u8..16, 0..64)) {
            use crate::table::{Decode, Encode};
            let key = TrieKey { owner: owner.map(B256::from), path: Nibbles::from_nibbles_unchecked(path) };
            prop_assert_eq!(TrieKey::decode(key.encode().as_ref()).unwrap(), key);
        }

        #[test]
        fn decoders_never_panic(bytes: Vec<u8>) {
            use crate::table::Decode;
            let _ = TrieKey::decode(&bytes);
            let _ = StorageKey::decode(&bytes);
            let _ = ChainMetaKey::decode(&bytes);
            let _ = <alloy_consensus::Header as Decode>::decode(&bytes);
            let _ = decode_account(&bytes);
            let _ = decode_body(&bytes);
            let _ = decode_receipts(&bytes);
            let _ = decode_tx_location(&bytes);
            let _ = decode_storage_value(&bytes);
        }

        #[test]
        fn receipts_round_trip(
            entries in prop::collection::vec((any::<u8>(), any::<bool>(), any::<u64>(), prop::collection::vec((any::<[u8; 20]>(), 0usize..5, prop::collection::vec(any::<u8>(), 0..70)), 0..4)), 0..5)
        ) {
            let receipts: Vec<StoredReceipt> = entries.into_iter().map(|(ty, ok, gas, logs)| StoredReceipt {
                tx_type: ty,
                receipt: Receipt {
                    status: Eip658Value::Eip658(ok),
                    cumulative_gas_used: gas,
                    logs: logs.into_iter().map(|(a, n, d)| Log {
                        address: Address::from(a),
                        data: LogData::new_unchecked((0..n.min(4)).map(|i| B256::with_last_byte(i as u8)).collect(), d.into()),
                    }).collect(),
                },
            }).collect();
            prop_assert_eq!(decode_receipts(&encode_receipts(&receipts)).unwrap(), receipts);
        }
    }
}
