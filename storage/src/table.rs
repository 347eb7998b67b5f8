//! Typed MDBX tables, after reth's: every table names its key and value types, whose codecs
//! live in this crate (no byte key is assembled anywhere else), and read-only and read-write
//! transactions are different types: only a [`DbTxMut`] can write.

use crate::StorageError;
use bttc_engine::primitives::DecodeError;
use libmdbx::{Database, RO, RW, Transaction, TransactionKind, WriteFlags, WriteMap};
use std::borrow::Cow;

/// How a key or value is stored. Fixed-width keys encode onto the stack.
pub trait Encode {
    type Encoded: AsRef<[u8]>;

    fn encode(&self) -> Self::Encoded;
}

/// A borrowed form of a value type that encodes to exactly the same bytes, so that a writer
/// need not copy what it already holds into the owned value first.
pub trait EncodesAs<V>: Encode {}

/// How a stored key or value is read back; a short or malformed input is an error.
pub trait Decode: Sized {
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// A table: its name in the environment and its key and value types. Keys sort as their
/// encodings do, so integer keys are big-endian.
pub trait Table {
    const NAME: &'static str;
    type Key: Encode + Decode;
    type Value: Encode + Decode;
}

/// Declares table types: `tables! { /// doc \n Name: Key => Value; ... }`, and `ALL`, the
/// names of them all.
macro_rules! tables {
    ($($(#[$doc:meta])* $name:ident: $key:ty => $value:ty;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl $crate::table::Table for $name {
                const NAME: &'static str = stringify!($name);
                type Key = $key;
                type Value = $value;
            }
        )*

        /// Every table of the environment.
        pub const ALL: &[&str] = &[$(stringify!($name)),*];
    };
}
pub(crate) use tables;

/// A transaction of kind `K` ([`RO`] or [`RW`]).
pub struct Tx<'db, K: TransactionKind> {
    pub(crate) txn: Transaction<'db, K, WriteMap>,
}

/// A read-only transaction: a consistent snapshot that never waits for writers.
pub type DbTx<'db> = Tx<'db, RO>;
/// The read-write transaction (one at a time per environment).
pub type DbTxMut<'db> = Tx<'db, RW>;

pub(crate) fn begin_read(db: &Database<WriteMap>) -> Result<DbTx<'_>, StorageError> {
    Ok(Tx {
        txn: db.begin_ro_txn()?,
    })
}

pub(crate) fn begin_write(db: &Database<WriteMap>) -> Result<DbTxMut<'_>, StorageError> {
    Ok(Tx {
        txn: db.begin_rw_txn()?,
    })
}

/// A raw entry lent by the memory map (read-only) or copied (read-write).
type RawEntry<'t> = (Cow<'t, [u8]>, Cow<'t, [u8]>);
/// A decoded entry of table `T`.
pub type Entry<T> = (<T as Table>::Key, <T as Table>::Value);

fn decode<T: Table, V: Decode>(bytes: &[u8]) -> Result<V, StorageError> {
    V::decode(bytes).map_err(|source| StorageError::Codec {
        table: T::NAME,
        source,
    })
}

impl<K: TransactionKind> Tx<'_, K> {
    pub fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>, StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        let bytes: Option<Cow<'_, [u8]>> = self.txn.get(&table, key.encode())?;
        bytes.map(|b| decode::<T, T::Value>(&b)).transpose()
    }

    /// The stored bytes of `key`'s value, lent to `read` (from the memory map in a read-only
    /// transaction): for reading a value in place.
    pub fn get_with<T: Table, R>(
        &self,
        key: &T::Key,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        let bytes: Option<Cow<'_, [u8]>> = self.txn.get(&table, key.encode())?;
        Ok(bytes.map(|b| read(&b)))
    }

    /// Like [`Tx::walk`], with each value's stored bytes lent instead of decoded.
    pub fn walk_raw<T: Table>(
        &self,
        from: Option<&T::Key>,
        mut visit: impl FnMut(T::Key, &[u8]) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        let mut cursor = self.txn.cursor(&table)?;
        let start = from.map(Encode::encode);
        let mut entry: Option<RawEntry<'_>> = match &start {
            Some(key) => cursor.set_range(key.as_ref())?,
            None => cursor.first()?,
        };
        while let Some((key, value)) = entry {
            if !visit(decode::<T, T::Key>(&key)?, &value)? {
                break;
            }
            entry = cursor.next()?;
        }
        Ok(())
    }

    /// Entries from `from` on (from the first when `None`), in key order, until `visit`
    /// returns `false`.
    pub fn walk<T: Table>(
        &self,
        from: Option<&T::Key>,
        mut visit: impl FnMut(T::Key, T::Value) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        self.walk_raw::<T>(from, |key, value| visit(key, decode::<T, T::Value>(value)?))
    }

    /// Entries from the last one back, in descending key order, until `visit` returns `false`.
    pub fn walk_back<T: Table>(
        &self,
        mut visit: impl FnMut(T::Key, T::Value) -> Result<bool, StorageError>,
    ) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        let mut cursor = self.txn.cursor(&table)?;
        let mut entry: Option<RawEntry<'_>> = cursor.last()?;
        while let Some((key, value)) = entry {
            if !visit(decode::<T, T::Key>(&key)?, decode::<T, T::Value>(&value)?)? {
                break;
            }
            entry = cursor.prev()?;
        }
        Ok(())
    }

    /// The entry with the greatest key.
    pub fn last<T: Table>(&self) -> Result<Option<Entry<T>>, StorageError> {
        let mut last = None;
        self.walk_back::<T>(|k, v| {
            last = Some((k, v));
            Ok(false)
        })?;
        Ok(last)
    }

    /// The snapshot's transaction id (a newer one sees newer commits).
    pub fn id(&self) -> u64 {
        self.txn.id()
    }
}

impl Tx<'_, RW> {
    pub fn put<T: Table>(&self, key: &T::Key, value: &T::Value) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        self.txn
            .put(&table, key.encode(), value.encode(), WriteFlags::UPSERT)?;
        Ok(())
    }

    /// Appends `value` in its borrowed form (see [`EncodesAs`]).
    pub fn append_as<T: Table, V: EncodesAs<T::Value>>(
        &self,
        key: &T::Key,
        value: &V,
    ) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        self.txn
            .put(&table, key.encode(), value.encode(), WriteFlags::APPEND)?;
        Ok(())
    }

    /// Puts an entry whose key sorts after every key of the table (cheaper than `put`).
    pub fn append<T: Table>(&self, key: &T::Key, value: &T::Value) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        self.txn
            .put(&table, key.encode(), value.encode(), WriteFlags::APPEND)?;
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn delete<T: Table>(&self, key: &T::Key) -> Result<bool, StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        Ok(self.txn.del(&table, key.encode(), None)?)
    }

    pub fn clear<T: Table>(&self) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        self.txn.clear_table(&table)?;
        Ok(())
    }

    /// Removes the entries from `from` on (from the first when `None`) while `matches` holds
    /// for their key.
    pub fn delete_while<T: Table>(
        &self,
        from: Option<&T::Key>,
        mut matches: impl FnMut(&T::Key) -> bool,
    ) -> Result<(), StorageError> {
        let table = self.txn.open_table(Some(T::NAME))?;
        let mut cursor = self.txn.cursor(&table)?;
        let start = from.map(Encode::encode);
        let mut entry: Option<(Cow<'_, [u8]>, ())> = match &start {
            Some(key) => cursor.set_range(key.as_ref())?,
            None => cursor.first()?,
        };
        while let Some((key, ())) = entry {
            if !matches(&decode::<T, T::Key>(&key)?) {
                break;
            }
            cursor.del(WriteFlags::empty())?;
            entry = cursor.get_current()?;
        }
        Ok(())
    }

    pub fn commit(self) -> Result<(), StorageError> {
        self.txn.commit()?;
        Ok(())
    }
}
