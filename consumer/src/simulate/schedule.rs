//! What can happen to a consumer between two messages, as a list of
//! steps, and a seeded generator of such lists. A schedule is plain data:
//! a property-testing library can generate and shrink it (see the
//! [module's docs](super)).

/// One thing that happens to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// The next message is delivered and handled.
    Next,
    /// The message handled last is delivered again: its acknowledgement
    /// was lost, or its handler ran past a timeout after its effects.
    Again,
    /// The next message's handler runs, its attempt is reported as failed
    /// after its effects, and it runs again (a retry).
    Retry,
    /// The process crashes between handling and recording: a new instance
    /// (the consumer built again) resumes at the last recorded position.
    Crash,
    /// The bucket moves to another instance after the position of the
    /// last handled message was recorded: the new instance resumes there.
    Move,
    /// An operator restarts the consumer from an older position: this many
    /// messages back from the next one (the consumer is built again).
    Rewind(usize),
}

/// Steps to apply in order; after the last one the remaining messages are
/// delivered in order, so every schedule ends with everything handled.
pub type Schedule = Vec<Step>;

/// A reproducible generator of schedules (SplitMix64).
#[derive(Debug, Clone)]
pub(crate) struct Seeded(u64);

impl Seeded {
    pub(crate) fn new(seed: u64) -> Self {
        Seeded(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// A schedule over `messages` messages: mostly deliveries, with about
    /// one fault in four steps.
    pub(crate) fn schedule(&mut self, messages: usize) -> Schedule {
        let length = messages + messages / 2 + 1;
        (0..length)
            .map(|_| match self.below(16) {
                0 => Step::Again,
                1 => Step::Retry,
                2 => Step::Crash,
                3 => Step::Move,
                4 => Step::Rewind(usize::try_from(self.below(4) + 1).unwrap_or(1)),
                _ => Step::Next,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_every_time() {
        let first = Seeded::new(7).schedule(20);
        assert_eq!(first, Seeded::new(7).schedule(20));
        assert_ne!(first, Seeded::new(8).schedule(20));
        assert!(first.iter().any(|step| *step != Step::Next), "{first:?}");
    }
}
