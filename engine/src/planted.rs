//! Bugs planted on purpose, so that a test can show the simulation finds what each one breaks.
//! Only a build with the `planted-bugs` feature (the planted-bug tests) can switch one on; in
//! every other build [`planted`] is the constant `false` and no code path changes.

/// A deliberate fault in the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Algorithm 1's lock checks at L22 and L28 always pass.
    IgnoreLocks,
    /// A quorum is ⌊2n/3⌋ votes instead of ⌊2n/3⌋ + 1.
    QuorumTwoThirds,
    /// Proposals are taken from any validator, not only the round's proposer.
    AnyProposer,
    /// A restarted validator forgets its signed-vote record.
    ForgetSignedRecord,
}

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
}

/// Switches `bug` on (or every bug off) for the calling thread.
#[cfg(feature = "planted-bugs")]
pub fn plant(bug: Option<Bug>) {
    ACTIVE.with(|a| a.set(bug));
}

/// Whether `bug` is switched on for the calling thread; always `false` without the feature.
#[inline(always)]
pub fn planted(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        ACTIVE.with(|a| a.get()) == Some(bug)
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
