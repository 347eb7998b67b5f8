//! A bounds-checked reader for the project's binary codecs: a short or malformed input is an
//! error naming what was being decoded, never a panic.

use alloy_primitives::{Address, B256};

/// A decoding failure: what was being decoded and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored {what} is corrupt: {why}")]
pub struct DecodeError {
    pub what: &'static str,
    pub why: String,
}

impl DecodeError {
    pub fn new(what: &'static str, why: impl Into<String>) -> Self {
        Self {
            what,
            why: why.into(),
        }
    }
}

/// Reads big-endian fields off the front of a byte slice.
pub struct ByteReader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> ByteReader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    /// An error about the value being decoded.
    pub fn error(&self, why: impl Into<String>) -> DecodeError {
        DecodeError::new(self.what, why)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < len {
            return Err(self.error(format!("needs {len} more bytes, has {}", self.buf.len())));
        }
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn height(&mut self) -> Result<super::DeliveryHeight, DecodeError> {
        Ok(super::DeliveryHeight(self.u64()?))
    }

    pub fn b256(&mut self) -> Result<B256, DecodeError> {
        Ok(B256::from_slice(self.take(32)?))
    }

    pub fn address(&mut self) -> Result<Address, DecodeError> {
        Ok(Address::from_slice(self.take(20)?))
    }

    /// A 0/1 flag byte.
    pub fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("flag byte {b}"))),
        }
    }

    /// Succeeds only when everything was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.buf.len())))
        }
    }
}
