//! Figures: median of several runs, printed as a table and as one
//! machine-readable line each.

use std::time::Duration;

/// One measured figure.
#[derive(Debug, Clone)]
pub struct Figure {
    pub workload: String,
    pub backend: String,
    pub unit: &'static str,
    pub runs: Vec<f64>,
    /// The same workload's ceiling (pgbench) or reference (genuine Message DB), measured in this run.
    pub reference: Option<(String, f64)>,
    /// The target, as text, for the table.
    pub target: &'static str,
    /// True when a smaller value is better (latencies, durations).
    pub lower_is_better: bool,
}

impl Figure {
    pub fn new(
        workload: impl Into<String>,
        backend: impl Into<String>,
        unit: &'static str,
        runs: Vec<f64>,
    ) -> Self {
        Figure {
            workload: workload.into(),
            backend: backend.into(),
            unit,
            runs,
            reference: None,
            target: "",
            lower_is_better: false,
        }
    }

    pub fn reference(mut self, name: impl Into<String>, value: f64) -> Self {
        self.reference = Some((name.into(), value));
        self
    }

    pub fn target(mut self, target: &'static str) -> Self {
        self.target = target;
        self
    }

    pub fn lower_is_better(mut self) -> Self {
        self.lower_is_better = true;
        self
    }

    pub fn median(&self) -> f64 {
        median(&self.runs)
    }

    /// Ours over the reference for "higher is better", reference over ours otherwise,
    /// so a ratio above 1 always means we are better.
    pub fn ratio(&self) -> Option<f64> {
        let (_, reference) = self.reference.as_ref()?;
        let ours = self.median();
        if self.lower_is_better {
            (ours > 0.0).then(|| reference / ours)
        } else {
            (*reference > 0.0).then(|| ours / reference)
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// The quantile of `values` at `permille` (500 = median, 990 = p99, 1000 = max).
pub fn quantile(values: &[f64], permille: usize) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let last = sorted.len() - 1;
    sorted[((last * permille + 500) / 1000).min(last)]
}

/// Items per second for `count` items in `elapsed`.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// Runs `f` `runs` times and returns each run's figure.
pub async fn repeat<F, Fut>(runs: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let mut values = Vec::with_capacity(runs);
    for _ in 0..runs {
        values.push(f().await);
    }
    values
}

fn format_value(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Prints the table and one `BENCH {json}` line per figure.
pub fn print(figures: &[Figure]) {
    println!();
    println!(
        "{:<52} {:<14} {:>12} {:>12} {:>12}  {:<10} {:>12} {:>7}  target",
        "workload", "backend", "median", "min", "max", "unit", "reference", "ratio"
    );
    for figure in figures {
        let min = figure.runs.iter().copied().fold(f64::INFINITY, f64::min);
        let max = figure
            .runs
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let reference = figure
            .reference
            .as_ref()
            .map_or(String::new(), |(_, value)| format_value(*value));
        let ratio = figure.ratio().map_or(String::new(), |r| format!("{r:.2}x"));
        println!(
            "{:<52} {:<14} {:>12} {:>12} {:>12}  {:<10} {:>12} {:>7}  {}",
            figure.workload,
            figure.backend,
            format_value(figure.median()),
            format_value(min),
            format_value(max),
            figure.unit,
            reference,
            ratio,
            figure.target
        );
    }
    println!();
    for figure in figures {
        let line = serde_json::json!({
            "workload": figure.workload,
            "backend": figure.backend,
            "unit": figure.unit,
            "median": figure.median(),
            "runs": figure.runs,
            "reference": figure.reference.as_ref().map(|(name, value)| serde_json::json!({"name": name, "value": value})),
            "ratio": figure.ratio(),
            "target": figure.target,
        });
        println!("BENCH {line}");
    }
}
