//! Captures metrics for the metrics case: a process-wide debugging
//! recorder (spawned consumer tasks report too), read back as totals (a gauge: its last value) by
//! metric name and `messaging.destination.name` label.

use std::sync::{Mutex, OnceLock, PoisonError};

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

fn snapshotter() -> Option<&'static Snapshotter> {
    static SNAPSHOTTER: OnceLock<Option<Snapshotter>> = OnceLock::new();
    SNAPSHOTTER
        .get_or_init(|| {
            let recorder = DebuggingRecorder::new();
            let snapshotter = recorder.snapshotter();
            // Another global recorder (a test's own) keeps the metrics case
            // from seeing anything, and it fails saying so.
            let installed = recorder.install().ok().map(|()| snapshotter);
            message_store::backend::meter::enable();
            installed
        })
        .as_ref()
}

/// Installs the recorder (once per process); false when another one was.
pub fn start() -> bool {
    snapshotter().is_some()
}

/// One metric as captured: its value, and its labels.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The metric's name.
    pub name: String,
    /// Its labels, as (key, value).
    pub labels: Vec<(String, String)>,
    /// A counter's total.
    pub counter: Option<u64>,
    /// How many values a histogram took.
    pub samples: usize,
    /// A gauge's last value other than 0 (see [`of`]).
    pub gauge: Option<f64>,
}

impl Captured {
    /// The label's value, if the metric has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every metric whose `messaging.destination.name` is `destination`, as
/// totals since the recorder was installed. (A snapshot takes the values
/// it reads, every test's, so they are kept here for all; it also resets
/// gauges, so a gauge's 0 is not seen.)
pub fn of(destination: &str) -> Vec<Captured> {
    static TOTALS: Mutex<Vec<Captured>> = Mutex::new(Vec::new());
    let Some(snapshotter) = snapshotter() else {
        return Vec::new();
    };
    let mut totals = TOTALS.lock().unwrap_or_else(PoisonError::into_inner);
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let labels: Vec<(String, String)> = key
            .key()
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        let name = key.key().name().to_owned();
        let index = match totals
            .iter()
            .position(|m| m.name == name && m.labels == labels)
        {
            Some(index) => index,
            None => {
                totals.push(Captured {
                    name,
                    labels,
                    counter: None,
                    samples: 0,
                    gauge: None,
                });
                totals.len() - 1
            }
        };
        let total = &mut totals[index];
        match value {
            DebugValue::Counter(count) => *total.counter.get_or_insert(0) += count,
            DebugValue::Histogram(values) => total.samples += values.len(),
            // The debugging recorder's snapshot resets a gauge to 0, so a
            // 0 reads as "not set since the last snapshot" and keeps the
            // value before (a gauge set to 0 is not seen here).
            DebugValue::Gauge(value) if value.into_inner() != 0.0 => {
                total.gauge = Some(value.into_inner());
            }
            DebugValue::Gauge(_) => {}
        }
    }
    totals
        .iter()
        .filter(|m| m.label("messaging.destination.name") == Some(destination))
        .cloned()
        .collect()
}
