//! Bor's timing parameters (spec §4.1, §4.3) and the per-block rules derived from them.

/// Sprint, span and delay lengths of a Bor chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BorParams {
    /// Blocks per sprint: the in-turn producer changes once per sprint.
    pub sprint: u64,
    /// Blocks per span after the first (spans are proposed on the Delivery chain).
    pub span: u64,
    /// Last block of span 0, which the genesis validators produce.
    pub first_span_end: u64,
    /// Seconds between a block and its parent, in turn.
    pub period_secs: u64,
    /// Seconds between the first block of a sprint and its parent, in turn.
    pub producer_delay_secs: u64,
    /// Extra seconds a backup waits per rank behind the in-turn producer.
    pub backup_multiplier_secs: u64,
    /// Most producers a span selects.
    pub producer_count: usize,
}

/// Seconds a header's time may lie ahead of the importer's clock (bor
/// `allowFutureBlockTimeSeconds`).
pub const ALLOWED_FUTURE_SECS: u64 = 3;

impl BorParams {
    /// Deployed BTTC (spec §4.1, §4.4): sprint 64, span 6,400, first span 0–255, 2 s blocks,
    /// 6 s at a sprint's start, 2 s more per backup rank, up to 11 producers.
    pub const MAINNET: Self = Self {
        sprint: 64,
        span: 6_400,
        first_span_end: 255,
        period_secs: 2,
        producer_delay_secs: 6,
        backup_multiplier_secs: 2,
        producer_count: 11,
    };

    /// Whether `number` opens a sprint (where spans and state syncs are committed).
    pub fn is_sprint_start(&self, number: u64) -> bool {
        number.is_multiple_of(self.sprint)
    }

    /// Whether `number` ends a sprint: its extra data names the next sprint's producers.
    pub fn is_sprint_end(&self, number: u64) -> bool {
        number > 0 && (number + 1).is_multiple_of(self.sprint)
    }

    /// bor `CalcProducerDelay`: the least number of seconds between block `number` and its
    /// parent for a producer `succession` ranks behind the in-turn one.
    pub fn producer_delay(&self, number: u64, succession: usize) -> u64 {
        let base = if self.is_sprint_start(number) {
            self.producer_delay_secs
        } else {
            self.period_secs
        };
        base + succession as u64 * self.backup_multiplier_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_delays_for_every_rank() {
        let p = BorParams::MAINNET;
        // In turn: 2 s, 6 s at a sprint's first block; each backup rank adds 2 s.
        for succession in 0..7 {
            let extra = 2 * succession as u64;
            assert_eq!(p.producer_delay(65, succession), 2 + extra);
            assert_eq!(p.producer_delay(64, succession), 6 + extra);
            assert_eq!(p.producer_delay(127, succession), 2 + extra);
        }
        assert!(p.is_sprint_start(0) && p.is_sprint_start(128) && !p.is_sprint_start(129));
        assert!(p.is_sprint_end(63) && p.is_sprint_end(6_399) && !p.is_sprint_end(64));
        assert!(!p.is_sprint_end(0));
    }
}
