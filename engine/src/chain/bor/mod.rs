//! Bor, the BTTC chain's consensus (spec §4): timing parameters, the producer snapshot,
//! succession, difficulty and delays, the header's extra data and seal, spans, and header
//! verification. Everything here is a pure function of headers, the parent's state and time.

pub mod block;
pub mod extra;
pub mod genesis;
pub mod host;
pub mod params;
pub mod seal;
pub mod snapshot;
pub mod span;
pub mod sync;
pub mod verify;
pub mod wire;

pub use extra::{ExtraError, Vanity, parse_validator_bytes, validator_bytes};
pub use params::BorParams;
pub use seal::{EXTRA_SEAL, EXTRA_VANITY, author, seal, seal_author, seal_hash};
pub use snapshot::Snapshot;
pub use span::{Span, SpanValidator};
pub use verify::{BorError, check_sprint_end_validators, verify_header};
