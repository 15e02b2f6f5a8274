//! A fleet's options: the bucket count, the lease duration and the
//! instance's id.

use std::time::Duration;

use message_store::{Error, Result};

/// The default bucket count: the most instances that have work at once.
pub const DEFAULT_BUCKETS: u32 = 8;
/// The default lease duration.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);

/// How a fleet is split and how long a silent instance keeps its buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetOptions {
    buckets: u32,
    lease_duration: Duration,
    instance_id: Option<String>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            buckets: DEFAULT_BUCKETS,
            lease_duration: DEFAULT_LEASE_DURATION,
            instance_id: None,
        }
    }
}

impl FleetOptions {
    /// [`DEFAULT_BUCKETS`] buckets, a lease of [`DEFAULT_LEASE_DURATION`],
    /// a fresh instance id.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of buckets, 1 to 32767 (Message DB's largest consumer
    /// group). Every instance of a fleet must use the same. One bucket:
    /// one instance works, the others stand by.
    pub fn with_buckets(mut self, buckets: u32) -> Self {
        self.buckets = buckets;
        self
    }

    /// How long an instance's buckets stay its own after its last heartbeat
    /// (at least 30 ms; it heartbeats every third of it).
    pub fn with_lease_duration(mut self, lease: Duration) -> Self {
        self.lease_duration = lease;
        self
    }

    /// This instance's id in the fleet (default: a fresh UUID). Two live
    /// instances must not share one.
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// The bucket count.
    pub fn buckets(&self) -> u32 {
        self.buckets
    }

    /// The lease duration.
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// The instance id, if one was set.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_id.as_deref()
    }

    /// How often an instance renews: a third of the lease duration.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease_duration / 3
    }

    /// Checks the options: the bucket count and the lease duration in
    /// range, an instance id that is not empty.
    pub fn validate(&self) -> Result<()> {
        if !(1..=32767).contains(&self.buckets) {
            return Err(invalid("buckets", "must be from 1 to 32767"));
        }
        if self.lease_duration < Duration::from_millis(30) {
            return Err(invalid("lease_duration", "must be at least 30 ms"));
        }
        if self.instance_id.as_deref().is_some_and(str::is_empty) {
            return Err(invalid("instance_id", "must not be empty"));
        }
        Ok(())
    }
}

fn invalid(option: &'static str, problem: &str) -> Error {
    Error::InvalidOption {
        option,
        problem: problem.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_options_name_themselves() {
        let cases = [
            ("buckets", FleetOptions::new().with_buckets(0)),
            ("buckets", FleetOptions::new().with_buckets(32768)),
            (
                "lease_duration",
                FleetOptions::new().with_lease_duration(Duration::from_millis(29)),
            ),
            ("instance_id", FleetOptions::new().with_instance_id("")),
        ];
        for (name, options) in cases {
            match options.validate() {
                Err(Error::InvalidOption { option, .. }) => assert_eq!(option, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(FleetOptions::new().with_buckets(32767).validate().is_ok());
    }
}
