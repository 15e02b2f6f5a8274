//! Metrics, through the [`metrics`] facade: the application installs a
//! recorder (a Prometheus exporter, OpenTelemetry's, a test's), then calls
//! [`enable`], and from then on the backends and the consumer runtime
//! report to it. Until [`enable`] nothing is reported, so a store with no
//! recorder pays nothing for metrics (building a write's labels cost the
//! memory store about a seventh of its append rate). A consumer registers
//! its metrics when it starts: start consumers after [`enable`].
//!
//! Names follow OpenTelemetry's messaging semantic conventions where they
//! have one (dots become underscores in Prometheus); the rest are under
//! `message_store.`. Labels: `messaging.system`, `message_store.backend`,
//! `messaging.destination.name` (a category, never a stream, to keep the
//! number of series small), `messaging.consumer.group.name` (the consumer
//! id) and `error.type`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};

use crate::backend::trace::SYSTEM;
use crate::error::Error;

/// Messages written (committed), per category.
pub const SENT: &str = "messaging.client.sent.messages";
/// Messages a consumer handled, per consumer and category.
pub const CONSUMED: &str = "messaging.client.consumed.messages";
/// How long handling one message took, every attempt included (seconds).
pub const PROCESS_DURATION: &str = "messaging.process.duration";
/// Handler attempts that failed and were tried again.
pub const RETRIES: &str = "message_store.consumer.retries";
/// Messages a consumer parked.
pub const PARKED: &str = "message_store.consumer.parked";
/// Store calls that failed for a reason of the backend's (transient, an
/// unknown outcome, a backend error), per backend and operation.
pub const BACKEND_FAILURES: &str = "message_store.backend.failures";
/// Times the PostgreSQL listener connection was re-established.
pub const LISTENER_RECONNECTS: &str = "message_store.listener.reconnects";
/// Fleet lease changes (`kind`: claim, takeover, release, loss), per consumer.
pub const LEASE_CHANGES: &str = "message_store.fleet.lease_changes";
/// How many messages a consumer would still handle (a gauge), sampled by
/// the consumer itself; a fleet's buckets (consumer-group members) each
/// report theirs, labelled `message_store.consumer.bucket`.
pub const LAG: &str = "message_store.consumer.lag";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns reporting on, and registers the unit and description of every
/// metric above with the installed recorder. Call it once, after
/// installing the recorder and before starting consumers.
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
    describe_counter!(
        SENT,
        Unit::Count,
        "Messages written (committed), per category"
    );
    describe_counter!(CONSUMED, Unit::Count, "Messages a consumer handled");
    describe_histogram!(
        PROCESS_DURATION,
        Unit::Seconds,
        "Time to handle one message, every attempt included"
    );
    describe_counter!(RETRIES, Unit::Count, "Failed handler attempts tried again");
    describe_counter!(PARKED, Unit::Count, "Messages a consumer parked");
    describe_counter!(
        BACKEND_FAILURES,
        Unit::Count,
        "Store calls that failed for a reason of the backend's"
    );
    describe_counter!(
        LISTENER_RECONNECTS,
        Unit::Count,
        "Times the LISTEN connection was re-established"
    );
    describe_counter!(LEASE_CHANGES, Unit::Count, "Fleet lease changes, by kind");
    describe_gauge!(
        LAG,
        Unit::Count,
        "Messages a consumer (or fleet bucket) would still handle"
    );
}

/// True once [`enable`] was called.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Counts `count` messages written to `category` by `backend`.
pub fn sent(backend: &'static str, category: &str, count: usize) {
    if !enabled() {
        return;
    }
    counter!(
        SENT,
        "messaging.system" => SYSTEM,
        "message_store.backend" => backend,
        "messaging.destination.name" => category.to_owned(),
    )
    .increment(count as u64);
}

/// Counts a failed store call, if the failure is the backend's.
pub fn failed(backend: &'static str, operation: &'static str, error: &Error) {
    let backend_failure = enabled()
        && matches!(
            error,
            Error::Transient { .. }
                | Error::OutcomeUnknown { .. }
                | Error::CommitOutcomeUnknown { .. }
                | Error::Backend { .. }
        );
    if backend_failure {
        counter!(
            BACKEND_FAILURES,
            "messaging.system" => SYSTEM,
            "message_store.backend" => backend,
            "messaging.operation.name" => operation,
            "error.type" => format!("{:?}", error.kind()),
        )
        .increment(1);
    }
}

/// Counts a re-established listener connection.
pub fn listener_reconnected(backend: &'static str) {
    if !enabled() {
        return;
    }
    counter!(LISTENER_RECONNECTS, "message_store.backend" => backend).increment(1);
}

/// The metrics of one consumer (registered once, so that handling a
/// message costs no label building).
#[derive(Clone)]
pub struct ConsumerMeters {
    consumed: metrics::Counter,
    duration: metrics::Histogram,
    retries: metrics::Counter,
    parked: metrics::Counter,
    labels: Vec<metrics::Label>,
}

impl Default for ConsumerMeters {
    /// Metrics that report nothing.
    fn default() -> Self {
        ConsumerMeters {
            consumed: metrics::Counter::noop(),
            duration: metrics::Histogram::noop(),
            retries: metrics::Counter::noop(),
            parked: metrics::Counter::noop(),
            labels: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ConsumerMeters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerMeters")
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl ConsumerMeters {
    /// The metrics of the consumer `consumer` (its id, if any) of
    /// `category`: registered now if reporting is [enabled](enable), else
    /// reporting nothing.
    pub fn new(consumer: Option<&str>, category: &str) -> ConsumerMeters {
        if !enabled() {
            return ConsumerMeters::default();
        }
        let labels = vec![
            metrics::Label::new("messaging.system", SYSTEM),
            metrics::Label::new("messaging.destination.name", category.to_owned()),
            metrics::Label::new(
                "messaging.consumer.group.name",
                consumer.unwrap_or("").to_owned(),
            ),
        ];
        ConsumerMeters {
            consumed: counter!(CONSUMED, labels.iter()),
            duration: histogram!(PROCESS_DURATION, labels.iter()),
            retries: counter!(RETRIES, labels.iter()),
            parked: counter!(PARKED, labels.iter()),
            labels,
        }
    }

    /// True when these report (reporting was [enabled](enable) when they
    /// were registered): a consumer times its handlers only then.
    pub fn is_reporting(&self) -> bool {
        !self.labels.is_empty()
    }

    /// Counts a message handled (or parked) in `took`, after `failures`
    /// failed attempts.
    pub fn handled(&self, took: Duration, failures: u64, parked: bool) {
        self.consumed.increment(1);
        self.duration.record(took.as_secs_f64());
        self.retries
            .increment(failures.saturating_sub(u64::from(parked)));
        if parked {
            self.parked.increment(1);
        }
    }

    /// The lag gauge of this consumer, or of its consumer-group member
    /// `bucket`; `None` while reporting was off when these were registered.
    pub fn lag(&self, bucket: Option<u32>) -> Option<LagGauge> {
        if self.labels.is_empty() {
            return None;
        }
        let mut labels = self.labels.clone();
        if let Some(bucket) = bucket {
            labels.push(metrics::Label::new(
                "message_store.consumer.bucket",
                bucket.to_string(),
            ));
        }
        Some(LagGauge(gauge!(LAG, labels.iter())))
    }

    /// Counts a fleet lease change of `kind` (claim, takeover, release, loss).
    pub fn lease_changed(&self, kind: &'static str) {
        if self.labels.is_empty() {
            return; // registered while reporting was off
        }
        let mut labels = self.labels.clone();
        labels.push(metrics::Label::new("kind", kind));
        counter!(LEASE_CHANGES, labels.iter()).increment(1);
    }
}

/// A consumer's [`LAG`] gauge.
#[derive(Clone)]
pub struct LagGauge(metrics::Gauge);

impl std::fmt::Debug for LagGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LagGauge")
    }
}

impl LagGauge {
    /// Reports `messages` as the consumer's lag now.
    pub fn set(&self, messages: u64) {
        #[allow(clippy::cast_precision_loss)] // exact below 2^53 messages
        self.0.set(messages as f64);
    }
}
