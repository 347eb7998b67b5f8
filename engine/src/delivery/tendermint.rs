//! Tendermint consensus for one height at a time, as a pure state machine.
//!
//! Follows Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic,
//! 2018); comments name its lines (L22 is line 22). Inputs are messages, expired timeouts and
//! the value to propose; outputs are messages to broadcast, timeouts to schedule, decisions and
//! evidence. No clock, no network, no signatures here: the driver signs what it broadcasts and
//! checks signatures before handing messages in.

use super::validators::ValidatorSet;
use crate::planted::{Bug, planted};
use alloy_primitives::{Address, B256};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::primitives::DeliveryHeight;

pub type Round = u32;
/// Identifier of a proposed value (the block hash).
pub type ValueId = B256;

/// Highest round a message may name; beyond it the message is refused (bounds memory).
pub const ROUND_MAX: Round = 1_000;
/// Distinct votes kept per validator, round and kind. One is honest; a second is evidence and
/// still counts, as in the paper, where every received message counts toward a quorum (this
/// keeps equivocation from splitting what honest validators see). More are dropped.
pub const VALUES_PER_VOTER_MAX: usize = 2;
/// Distinct proposals kept per round (the proposer's equivocation), likewise.
pub const PROPOSALS_PER_ROUND_MAX: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Propose,
    Prevote,
    Precommit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteKind {
    Prevote,
    Precommit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Proposal {
    pub height: DeliveryHeight,
    pub round: Round,
    pub value: ValueId,
    /// The round in which the proposer saw the value get a prevote quorum (-1 in the paper).
    pub valid_round: Option<Round>,
    pub proposer: Address,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vote {
    pub kind: VoteKind,
    pub height: DeliveryHeight,
    pub round: Round,
    /// `None` is a vote for nil.
    pub value: Option<ValueId>,
    pub validator: Address,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Proposal(Proposal),
    Vote(Vote),
}

/// A timeout the driver must fire back (as [`Input::Timeout`]) after `duration_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout {
    pub step: Step,
    pub height: DeliveryHeight,
    pub round: Round,
}

/// Timeouts grow linearly with the round so that a slow network eventually keeps up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeoutConfig {
    pub propose_ms: u64,
    pub prevote_ms: u64,
    pub precommit_ms: u64,
    pub delta_ms: u64,
}

impl Default for TimeoutConfig {
    /// Tendermint's defaults (spec §6.4: propose 3 s), with prevote/precommit at 1 s.
    fn default() -> Self {
        Self {
            propose_ms: 3_000,
            prevote_ms: 1_000,
            precommit_ms: 1_000,
            delta_ms: 500,
        }
    }
}

impl TimeoutConfig {
    pub fn duration_ms(&self, step: Step, round: Round) -> u64 {
        let base = match step {
            Step::Propose => self.propose_ms,
            Step::Prevote => self.prevote_ms,
            Step::Precommit => self.precommit_ms,
        };
        base + self.delta_ms * u64::from(round)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Message(Message),
    Timeout(Timeout),
    /// The value this validator proposes, answering [`Output::RequestValue`].
    ProposeValue {
        height: DeliveryHeight,
        round: Round,
        value: ValueId,
    },
}

/// A decided height with the precommits that prove it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub height: DeliveryHeight,
    pub round: Round,
    pub value: ValueId,
    pub precommits: Vec<Vote>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Broadcast(Message),
    ScheduleTimeout {
        timeout: Timeout,
        duration_ms: u64,
    },
    /// This validator proposes at (height, round): the driver answers with a value.
    RequestValue {
        height: DeliveryHeight,
        round: Round,
    },
    Decide(Decision),
    /// A validator signed two different votes for the same height, round and kind.
    Evidence {
        first: Vote,
        second: Vote,
    },
}

/// Why a message was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("sender {0} is not a validator")]
    NotValidator(Address),
    #[error("proposal for round {round} from {from}, whose proposer is {expected}")]
    WrongProposer {
        round: Round,
        from: Address,
        expected: Address,
    },
    #[error("round {0} is beyond the bound {ROUND_MAX}")]
    RoundTooHigh(Round),
    #[error("message for height {got:?}, this machine is at {current:?}")]
    OtherHeight {
        got: DeliveryHeight,
        current: DeliveryHeight,
    },
}

/// Messages of one round.
#[derive(Debug, Default, Clone)]
struct RoundState {
    proposals: Vec<Proposal>,
    prevotes: BTreeMap<Address, Vec<Option<ValueId>>>,
    precommits: BTreeMap<Address, Vec<Option<ValueId>>>,
    prevote_timeout_scheduled: bool,
    precommit_timeout_scheduled: bool,
    /// L36 "for the first time".
    valid_value_updated: bool,
}

/// One validator's consensus state for the current height.
#[derive(Debug, Clone)]
pub struct Tendermint {
    me: Address,
    validators: ValidatorSet,
    timeouts: TimeoutConfig,
    height: DeliveryHeight,
    round: Round,
    step: Step,
    locked: Option<(ValueId, Round)>,
    valid: Option<(ValueId, Round)>,
    rounds: BTreeMap<Round, RoundState>,
    /// Precommits as received, for decisions' proofs (keyed by round, then validator).
    decided: bool,
    outputs: Vec<Output>,
    evidence_seen: BTreeSet<(Address, VoteKind, Round)>,
}

impl Tendermint {
    /// The state machine at `height`; call [`Tendermint::start`] to begin round 0.
    pub fn new(
        me: Address,
        validators: ValidatorSet,
        height: DeliveryHeight,
        timeouts: TimeoutConfig,
    ) -> Self {
        Self {
            me,
            validators,
            timeouts,
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            rounds: BTreeMap::new(),
            decided: false,
            outputs: Vec::new(),
            evidence_seen: BTreeSet::new(),
        }
    }

    pub fn height(&self) -> DeliveryHeight {
        self.height
    }

    pub fn round(&self) -> Round {
        self.round
    }

    pub fn step(&self) -> Step {
        self.step
    }

    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// L10: begin round 0 of the height.
    pub fn start(&mut self) -> Vec<Output> {
        self.start_round(0);
        self.settle();
        std::mem::take(&mut self.outputs)
    }

    /// Brings the machine up to what this validator had already signed at this height (its
    /// signed-vote record) after a restart whose log replay may have stopped short: its own
    /// messages count as received, it moves to the latest round it signed in and to the step
    /// it had reached there, and it takes the lock and valid value of its latest non-nil
    /// precommit when that is later than its own. It never moves backwards, so everything it
    /// signs from here on follows what it signed before, as an honest validator that missed
    /// some messages would.
    pub fn restore_own(&mut self, own: &[Message]) -> Vec<Output> {
        let mut latest_round = None;
        let mut latest_lock: Option<(ValueId, Round)> = None;
        for message in own {
            let round = match message {
                Message::Proposal(p) if p.height == self.height && p.proposer == self.me => {
                    self.record_proposal(*p);
                    p.round
                }
                Message::Vote(v) if v.height == self.height && v.validator == self.me => {
                    self.record_vote(*v);
                    if v.kind == VoteKind::Precommit
                        && let Some(value) = v.value
                        && latest_lock.is_none_or(|(_, r)| r < v.round)
                    {
                        latest_lock = Some((value, v.round));
                    }
                    v.round
                }
                _ => continue,
            };
            latest_round = latest_round.max(Some(round));
        }
        if let Some((value, round)) = latest_lock {
            if self.locked.is_none_or(|(_, r)| r < round) {
                self.locked = Some((value, round));
            }
            if self.valid.is_none_or(|(_, r)| r < round) {
                self.valid = Some((value, round));
            }
        }
        if let Some(round) = latest_round.filter(|r| *r > self.round) {
            self.start_round(round);
        }
        let signed_here = |kind| {
            own.iter().any(|m| {
                matches!(m, Message::Vote(v) if v.kind == kind && v.round == self.round
                    && v.height == self.height && v.validator == self.me)
            })
        };
        if signed_here(VoteKind::Precommit) {
            self.step = Step::Precommit;
        } else if signed_here(VoteKind::Prevote) && self.step < Step::Prevote {
            self.step = Step::Prevote;
        }
        self.settle();
        std::mem::take(&mut self.outputs)
    }

    /// The value this validator is locked on and the round it locked in (L36).
    pub fn locked(&self) -> Option<(ValueId, Round)> {
        self.locked
    }

    /// The latest value this validator saw a prevote quorum for, and that round (L36).
    pub fn valid(&self) -> Option<(ValueId, Round)> {
        self.valid
    }

    /// Handles one input; returns what the driver must do. A refused message changes nothing.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Output>, Refusal> {
        match input {
            Input::Message(m) => self.receive(m)?,
            Input::Timeout(t) => self.on_timeout(t),
            Input::ProposeValue {
                height,
                round,
                value,
            } => {
                if height == self.height
                    && round == self.round
                    && self.step == Step::Propose
                    && self.validators.proposer_for_round(round) == self.me
                    && self
                        .rounds
                        .get(&round)
                        .is_none_or(|r| r.proposals.is_empty())
                {
                    // L16-L19: propose the valid value if there is one, else the new value.
                    let (value, valid_round) = match self.valid {
                        Some((v, r)) => (v, Some(r)),
                        None => (value, None),
                    };
                    let proposal = Proposal {
                        height,
                        round,
                        value,
                        valid_round,
                        proposer: self.me,
                    };
                    self.broadcast(Message::Proposal(proposal));
                }
            }
        }
        self.settle();
        Ok(std::mem::take(&mut self.outputs))
    }

    /// Whether a message may be taken at all (its height, round bound, sender, and for a
    /// proposal, that its sender proposes that round); changes nothing. Drivers call it before
    /// checking signatures, and [`Tendermint::handle`] before taking the message.
    pub fn check(&self, message: &Message) -> Result<(), Refusal> {
        let (height, round, from) = match message {
            Message::Proposal(p) => (p.height, p.round, p.proposer),
            Message::Vote(v) => (v.height, v.round, v.validator),
        };
        if height != self.height {
            return Err(Refusal::OtherHeight {
                got: height,
                current: self.height,
            });
        }
        if round > ROUND_MAX {
            return Err(Refusal::RoundTooHigh(round));
        }
        if !self.validators.contains(&from) {
            return Err(Refusal::NotValidator(from));
        }
        if let Message::Proposal(p) = message {
            let expected = self.validators.proposer_for_round(p.round);
            if p.proposer != expected && !planted(Bug::AnyProposer) {
                return Err(Refusal::WrongProposer {
                    round: p.round,
                    from: p.proposer,
                    expected,
                });
            }
        }
        Ok(())
    }

    fn receive(&mut self, message: Message) -> Result<(), Refusal> {
        self.check(&message)?;
        match message {
            Message::Proposal(p) => self.record_proposal(p),
            Message::Vote(v) => self.record_vote(v),
        }
        Ok(())
    }

    fn record_proposal(&mut self, proposal: Proposal) {
        let proposals = &mut self.rounds.entry(proposal.round).or_default().proposals;
        if proposals.len() < PROPOSALS_PER_ROUND_MAX
            && !proposals.iter().any(|p| p.value == proposal.value)
        {
            proposals.push(proposal);
        }
    }

    fn record_vote(&mut self, vote: Vote) {
        let round = self.rounds.entry(vote.round).or_default();
        let votes = match vote.kind {
            VoteKind::Prevote => &mut round.prevotes,
            VoteKind::Precommit => &mut round.precommits,
        };
        let values = votes.entry(vote.validator).or_default();
        if values.contains(&vote.value) {
            return;
        }
        let first = values.first().copied();
        if values.len() < VALUES_PER_VOTER_MAX {
            values.push(vote.value);
        }
        if let Some(first) = first
            && self
                .evidence_seen
                .insert((vote.validator, vote.kind, vote.round))
        {
            let first = Vote {
                value: first,
                ..vote
            };
            self.outputs.push(Output::Evidence {
                first,
                second: vote,
            });
        }
    }

    fn broadcast(&mut self, message: Message) {
        match &message {
            Message::Proposal(p) => self.record_proposal(*p),
            Message::Vote(v) => self.record_vote(*v),
        }
        self.outputs.push(Output::Broadcast(message));
    }

    fn vote(&mut self, kind: VoteKind, value: Option<ValueId>) {
        let vote = Vote {
            kind,
            height: self.height,
            round: self.round,
            value,
            validator: self.me,
        };
        self.broadcast(Message::Vote(vote));
    }

    fn schedule(&mut self, step: Step, round: Round) {
        let timeout = Timeout {
            step,
            height: self.height,
            round,
        };
        self.outputs.push(Output::ScheduleTimeout {
            timeout,
            duration_ms: self.timeouts.duration_ms(step, round),
        });
    }

    /// L11-L21.
    fn start_round(&mut self, round: Round) {
        self.round = round;
        self.step = Step::Propose;
        if self.validators.proposer_for_round(round) == self.me {
            match self.valid {
                Some((value, valid_round)) => {
                    let proposal = Proposal {
                        height: self.height,
                        round,
                        value,
                        valid_round: Some(valid_round),
                        proposer: self.me,
                    };
                    self.broadcast(Message::Proposal(proposal));
                }
                None => self.outputs.push(Output::RequestValue {
                    height: self.height,
                    round,
                }),
            }
        }
        // The paper schedules this only for non-proposers; a proposer whose value never
        // arrives must move on too.
        self.schedule(Step::Propose, round);
    }

    /// L57, L61, L65.
    fn on_timeout(&mut self, t: Timeout) {
        if t.height != self.height || t.round != self.round || self.decided {
            return;
        }
        match t.step {
            Step::Propose if self.step == Step::Propose => {
                self.vote(VoteKind::Prevote, None);
                self.step = Step::Prevote;
            }
            Step::Prevote if self.step == Step::Prevote => {
                self.vote(VoteKind::Precommit, None);
                self.step = Step::Precommit;
            }
            Step::Precommit => self.start_round(t.round + 1),
            _ => {}
        }
    }

    fn power(&self, voters: impl Iterator<Item = Address>) -> i64 {
        voters.map(|a| self.validators.power_of(&a)).sum()
    }

    /// Power of the votes of `kind` in `round` for exactly `value` (`None`: nil).
    fn votes_for(&self, round: Round, kind: VoteKind, value: Option<ValueId>) -> i64 {
        let Some(r) = self.rounds.get(&round) else {
            return 0;
        };
        let votes = match kind {
            VoteKind::Prevote => &r.prevotes,
            VoteKind::Precommit => &r.precommits,
        };
        self.power(
            votes
                .iter()
                .filter(|(_, v)| v.contains(&value))
                .map(|(a, _)| *a),
        )
    }

    fn votes_any(&self, round: Round, kind: VoteKind) -> i64 {
        let Some(r) = self.rounds.get(&round) else {
            return 0;
        };
        let votes = match kind {
            VoteKind::Prevote => &r.prevotes,
            VoteKind::Precommit => &r.precommits,
        };
        self.power(votes.keys().copied())
    }

    /// Applies every rule whose condition holds until none does.
    fn settle(&mut self) {
        while !self.decided && self.apply_one_rule() {}
    }

    /// Tries the rules in turn; returns whether one fired.
    fn apply_one_rule(&mut self) -> bool {
        let quorum = self.validators.quorum_power();
        let round = self.round;

        // L49: a precommit quorum for a proposed value decides, in any round.
        let decided = self.rounds.iter().find_map(|(r, state)| {
            state
                .proposals
                .iter()
                .find(|p| self.votes_for(*r, VoteKind::Precommit, Some(p.value)) >= quorum)
                .map(|p| (*r, p.value))
        });
        if let Some((r, value)) = decided {
            let precommits = self.rounds[&r]
                .precommits
                .iter()
                .filter(|(_, v)| v.contains(&Some(value)))
                .map(|(a, _)| Vote {
                    kind: VoteKind::Precommit,
                    height: self.height,
                    round: r,
                    value: Some(value),
                    validator: *a,
                })
                .collect();
            self.decided = true;
            self.outputs.push(Output::Decide(Decision {
                height: self.height,
                round: r,
                value,
                precommits,
            }));
            return true;
        }

        // L55: messages from more than a third of the power in a higher round: skip to it.
        let skip_to = self
            .rounds
            .iter()
            .filter(|(r, _)| **r > round)
            .find_map(|(r, s)| {
                let senders: BTreeSet<Address> = s
                    .prevotes
                    .keys()
                    .chain(s.precommits.keys())
                    .copied()
                    .chain(s.proposals.iter().map(|p| p.proposer))
                    .collect();
                (self.power(senders.into_iter()) >= self.validators.one_honest_power())
                    .then_some(*r)
            });
        if let Some(r) = skip_to {
            self.start_round(r);
            return true;
        }

        let state = self.rounds.get(&round).cloned().unwrap_or_default();
        // The first proposal that a rule accepts (a second one exists only if the proposer
        // equivocated).
        for p in state
            .proposals
            .iter()
            .filter(|_| self.step == Step::Propose)
        {
            match p.valid_round {
                // L22
                None => {
                    let ok =
                        planted(Bug::IgnoreLocks) || self.locked.is_none_or(|(v, _)| v == p.value);
                    self.vote(VoteKind::Prevote, ok.then_some(p.value));
                    self.step = Step::Prevote;
                    return true;
                }
                // L28
                Some(vr)
                    if vr < round
                        && self.votes_for(vr, VoteKind::Prevote, Some(p.value)) >= quorum =>
                {
                    let ok = planted(Bug::IgnoreLocks)
                        || self.locked.is_none_or(|(v, lr)| lr <= vr || v == p.value);
                    self.vote(VoteKind::Prevote, ok.then_some(p.value));
                    self.step = Step::Prevote;
                    return true;
                }
                _ => {}
            }
        }

        // L34
        if self.step == Step::Prevote
            && !state.prevote_timeout_scheduled
            && self.votes_any(round, VoteKind::Prevote) >= quorum
        {
            self.rounds
                .entry(round)
                .or_default()
                .prevote_timeout_scheduled = true;
            self.schedule(Step::Prevote, round);
            return true;
        }

        // L36
        if self.step >= Step::Prevote
            && !state.valid_value_updated
            && let Some(p) = state
                .proposals
                .iter()
                .find(|p| self.votes_for(round, VoteKind::Prevote, Some(p.value)) >= quorum)
                .copied()
        {
            self.rounds.entry(round).or_default().valid_value_updated = true;
            if self.step == Step::Prevote {
                self.locked = Some((p.value, round));
                self.vote(VoteKind::Precommit, Some(p.value));
                self.step = Step::Precommit;
            }
            self.valid = Some((p.value, round));
            return true;
        }

        // L44
        if self.step == Step::Prevote && self.votes_for(round, VoteKind::Prevote, None) >= quorum {
            self.vote(VoteKind::Precommit, None);
            self.step = Step::Precommit;
            return true;
        }

        // L47
        if !state.precommit_timeout_scheduled
            && self.votes_any(round, VoteKind::Precommit) >= quorum
        {
            self.rounds
                .entry(round)
                .or_default()
                .precommit_timeout_scheduled = true;
            self.schedule(Step::Precommit, round);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    //! Rule-by-rule tests of the state machine; line numbers are Algorithm 1's.
    use super::*;

    const H: DeliveryHeight = DeliveryHeight(1);

    fn addresses() -> Vec<Address> {
        (1..=4).map(Address::with_last_byte).collect()
    }

    /// A machine for validator `me` of four, started at round 0; returns it with its outputs.
    fn machine(me: usize) -> (Tendermint, Vec<Output>) {
        let set = ValidatorSet::equal(addresses());
        let mut t = Tendermint::new(addresses()[me], set, H, TimeoutConfig::default());
        let out = t.start();
        (t, out)
    }

    fn proposer_index(t: &Tendermint, round: Round) -> usize {
        let p = t.validators().proposer_for_round(round);
        addresses().iter().position(|a| *a == p).unwrap()
    }

    /// A validator of the four that proposes neither round `round` nor the next.
    fn non_proposer(round: Round) -> usize {
        let (t, _) = machine(0);
        (0..4)
            .find(|i| *i != proposer_index(&t, round) && *i != proposer_index(&t, round + 1))
            .unwrap()
    }

    fn proposal(t: &Tendermint, round: Round, value: u8, valid_round: Option<Round>) -> Input {
        Input::Message(Message::Proposal(Proposal {
            height: H,
            round,
            value: B256::repeat_byte(value),
            valid_round,
            proposer: t.validators().proposer_for_round(round),
        }))
    }

    fn vote(kind: VoteKind, round: Round, value: Option<u8>, from: usize) -> Input {
        Input::Message(Message::Vote(Vote {
            kind,
            height: H,
            round,
            value: value.map(B256::repeat_byte),
            validator: addresses()[from],
        }))
    }

    fn broadcast_votes(out: &[Output]) -> Vec<(VoteKind, Round, Option<ValueId>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Broadcast(Message::Vote(v)) => Some((v.kind, v.round, v.value)),
                _ => None,
            })
            .collect()
    }

    fn others(me: usize) -> impl Iterator<Item = usize> {
        (0..4).filter(move |i| *i != me)
    }

    #[test]
    fn l11_proposer_asks_for_a_value_and_proposes_it() {
        let (t, _) = machine(0);
        let p = proposer_index(&t, 0);
        let (mut t, out) = machine(p);
        assert!(out.contains(&Output::RequestValue {
            height: H,
            round: 0
        }));
        let out = t
            .handle(Input::ProposeValue {
                height: H,
                round: 0,
                value: B256::repeat_byte(7),
            })
            .unwrap();
        assert!(
            matches!(&out[0], Output::Broadcast(Message::Proposal(pr)) if pr.value == B256::repeat_byte(7))
        );
        // L22 on its own proposal: it prevotes for it.
        assert_eq!(
            broadcast_votes(&out),
            vec![(VoteKind::Prevote, 0, Some(B256::repeat_byte(7)))]
        );
        assert_eq!(t.step(), Step::Prevote);
    }

    #[test]
    fn l22_prevote_the_proposal_and_l36_lock_and_precommit_on_a_quorum() {
        let me = non_proposer(0);
        let (mut t, out) = machine(me);
        assert!(
            matches!(out.last(), Some(Output::ScheduleTimeout { timeout, .. }) if timeout.step == Step::Propose)
        );
        let out = t.handle(proposal(&t, 0, 1, None)).unwrap();
        assert_eq!(
            broadcast_votes(&out),
            vec![(VoteKind::Prevote, 0, Some(B256::repeat_byte(1)))]
        );
        let mut precommitted = Vec::new();
        for from in others(me).take(2) {
            precommitted.extend(broadcast_votes(
                &t.handle(vote(VoteKind::Prevote, 0, Some(1), from)).unwrap(),
            ));
        }
        assert_eq!(
            precommitted,
            vec![(VoteKind::Precommit, 0, Some(B256::repeat_byte(1)))]
        );
        assert_eq!(t.step(), Step::Precommit);
    }

    #[test]
    fn l44_nil_quorum_precommits_nil_and_l49_decides_on_a_precommit_quorum() {
        let me = non_proposer(0);
        let (mut t, _) = machine(me);
        t.handle(Input::Timeout(Timeout {
            step: Step::Propose,
            height: H,
            round: 0,
        }))
        .unwrap();
        assert_eq!(t.step(), Step::Prevote);
        let mut out = Vec::new();
        for from in others(me).take(2) {
            out.extend(t.handle(vote(VoteKind::Prevote, 0, None, from)).unwrap());
        }
        assert_eq!(broadcast_votes(&out), vec![(VoteKind::Precommit, 0, None)]);

        // A proposal with a precommit quorum decides, whatever this validator voted.
        t.handle(proposal(&t, 0, 3, None)).unwrap();
        let mut decided = None;
        for from in others(me) {
            for o in t
                .handle(vote(VoteKind::Precommit, 0, Some(3), from))
                .unwrap()
            {
                if let Output::Decide(d) = o {
                    decided = Some(d);
                }
            }
        }
        let d = decided.expect("decided");
        assert_eq!((d.height, d.round, d.value), (H, 0, B256::repeat_byte(3)));
        assert_eq!(d.precommits.len(), 3);
    }

    #[test]
    fn l57_l61_l65_timeouts_move_the_round_on() {
        let me = non_proposer(0);
        let (mut t, _) = machine(me);
        let out = t
            .handle(Input::Timeout(Timeout {
                step: Step::Propose,
                height: H,
                round: 0,
            }))
            .unwrap();
        assert_eq!(broadcast_votes(&out), vec![(VoteKind::Prevote, 0, None)]);
        for from in others(me).take(2) {
            t.handle(vote(VoteKind::Prevote, 0, Some(9), from)).unwrap();
        }
        // L34 scheduled a prevote timeout; without a proposal for 9 there is no lock.
        let out = t
            .handle(Input::Timeout(Timeout {
                step: Step::Prevote,
                height: H,
                round: 0,
            }))
            .unwrap();
        assert_eq!(broadcast_votes(&out), vec![(VoteKind::Precommit, 0, None)]);
        let out = t
            .handle(Input::Timeout(Timeout {
                step: Step::Precommit,
                height: H,
                round: 0,
            }))
            .unwrap();
        assert_eq!(t.round(), 1);
        let timeout = out.iter().find_map(|o| match o {
            Output::ScheduleTimeout {
                timeout,
                duration_ms,
            } if timeout.step == Step::Propose => Some(*duration_ms),
            _ => None,
        });
        assert_eq!(timeout, Some(3_500), "timeouts grow with the round");
        // A stale timeout changes nothing.
        assert!(
            t.handle(Input::Timeout(Timeout {
                step: Step::Propose,
                height: H,
                round: 0
            }))
            .unwrap()
            .is_empty()
        );
    }

    #[test]
    fn l55_skips_to_a_round_that_more_than_a_third_has_reached() {
        let me = non_proposer(0);
        let (mut t, _) = machine(me);
        let mut froms = others(me);
        t.handle(vote(VoteKind::Prevote, 5, None, froms.next().unwrap()))
            .unwrap();
        assert_eq!(t.round(), 0);
        t.handle(vote(VoteKind::Precommit, 5, None, froms.next().unwrap()))
            .unwrap();
        assert_eq!(t.round(), 5);
    }

    #[test]
    fn l28_a_locked_validator_follows_a_later_polka() {
        // Lock on 1 in round 0, then round 1 proposes 2 with a round-0 polka... which does not
        // exist: the locked validator prevotes nil. With a polka for 2 in round 1 it re-locks.
        let me = non_proposer(0);
        let (mut t, _) = machine(me);
        t.handle(proposal(&t, 0, 1, None)).unwrap();
        for from in others(me).take(2) {
            t.handle(vote(VoteKind::Prevote, 0, Some(1), from)).unwrap();
        }
        assert_eq!(t.step(), Step::Precommit);
        t.handle(Input::Timeout(Timeout {
            step: Step::Precommit,
            height: H,
            round: 0,
        }))
        .unwrap();
        let out = t.handle(proposal(&t, 1, 2, None)).unwrap();
        assert_eq!(
            broadcast_votes(&out),
            vec![(VoteKind::Prevote, 1, None)],
            "locked on 1"
        );
        let mut out = Vec::new();
        for from in others(me) {
            out.extend(t.handle(vote(VoteKind::Prevote, 1, Some(2), from)).unwrap());
        }
        assert_eq!(
            broadcast_votes(&out),
            vec![(VoteKind::Precommit, 1, Some(B256::repeat_byte(2)))]
        );
    }

    #[test]
    fn restore_own_takes_the_recorded_round_step_and_lock() {
        let me = non_proposer(2);
        let (mut t, _) = machine(me);
        let own = |kind, round| {
            Message::Vote(Vote {
                kind,
                height: H,
                round,
                value: Some(B256::repeat_byte(5)),
                validator: addresses()[me],
            })
        };
        let out = t.restore_own(&[own(VoteKind::Prevote, 2), own(VoteKind::Precommit, 2)]);
        assert!(broadcast_votes(&out).is_empty(), "nothing is signed again");
        assert_eq!((t.round(), t.step()), (2, Step::Precommit));
        assert_eq!(t.locked(), Some((B256::repeat_byte(5), 2)));
        assert_eq!(t.valid(), Some((B256::repeat_byte(5), 2)));
        // The lock holds: in round 3 a proposal of another value, with no later quorum, gets nil.
        t.handle(Input::Timeout(Timeout {
            step: Step::Precommit,
            height: H,
            round: 2,
        }))
        .unwrap();
        assert_eq!(t.round(), 3);
        let out = t.handle(proposal(&t, 3, 6, None)).unwrap();
        assert_eq!(broadcast_votes(&out), vec![(VoteKind::Prevote, 3, None)]);
        // Restoring an older record moves nothing back.
        t.restore_own(&[own(VoteKind::Prevote, 1)]);
        assert_eq!(t.round(), 3);
    }

    #[test]
    fn refusals_change_nothing_and_equivocation_is_evidence_once() {
        let me = non_proposer(0);
        let (mut t, _) = machine(me);
        let stranger = Input::Message(Message::Vote(Vote {
            kind: VoteKind::Prevote,
            height: H,
            round: 0,
            value: None,
            validator: Address::with_last_byte(99),
        }));
        assert!(matches!(t.handle(stranger), Err(Refusal::NotValidator(_))));
        let wrong = Input::Message(Message::Proposal(Proposal {
            height: H,
            round: 0,
            value: B256::ZERO,
            valid_round: None,
            proposer: addresses()[me],
        }));
        assert!(matches!(
            t.handle(wrong),
            Err(Refusal::WrongProposer { .. })
        ));
        assert!(matches!(
            t.handle(vote(VoteKind::Prevote, ROUND_MAX + 1, None, 0)),
            Err(Refusal::RoundTooHigh(_))
        ));
        let future = Input::Message(Message::Vote(Vote {
            kind: VoteKind::Prevote,
            height: DeliveryHeight(2),
            round: 0,
            value: None,
            validator: addresses()[0],
        }));
        assert!(matches!(t.handle(future), Err(Refusal::OtherHeight { .. })));
        assert_eq!((t.round(), t.step()), (0, Step::Propose));

        let other = others(me).next().unwrap();
        assert!(
            t.handle(vote(VoteKind::Prevote, 0, Some(1), other))
                .unwrap()
                .is_empty()
        );
        let out = t
            .handle(vote(VoteKind::Prevote, 0, Some(2), other))
            .unwrap();
        assert!(
            matches!(&out[..], [Output::Evidence { first, second }] if first.value != second.value)
        );
        assert!(
            t.handle(vote(VoteKind::Prevote, 0, Some(3), other))
                .unwrap()
                .is_empty(),
            "evidence once"
        );
    }
}
