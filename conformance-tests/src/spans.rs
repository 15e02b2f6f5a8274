//! Captures the spans of store calls and handled messages for the tracing
//! cases: a process-wide subscriber (spawned consumer tasks must be seen
//! too) that keeps only spans whose `messaging.destination.name` starts
//! with [`TRACED`], so the rest of the suite adds nothing to it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The prefix of the categories whose spans are kept.
pub const TRACED: &str = "traced";

/// One captured span: its name and its fields as text.
#[derive(Debug, Clone, Default)]
pub struct CapturedSpan {
    /// The span's name.
    pub name: &'static str,
    /// Each recorded field, by name.
    pub fields: BTreeMap<String, String>,
}

impl CapturedSpan {
    /// The field's value, if it was recorded.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

type Spans = Arc<Mutex<Vec<CapturedSpan>>>;

/// Installs the capturing subscriber (once per process) and returns every
/// span kept so far.
pub fn captured() -> Vec<CapturedSpan> {
    spans()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

fn spans() -> &'static Spans {
    static SPANS: OnceLock<Spans> = OnceLock::new();
    SPANS.get_or_init(|| {
        let spans = Spans::default();
        let subscriber = tracing_subscriber::registry().with(Capture(spans.clone()));
        // Another global subscriber (a test's own) keeps these cases from
        // seeing anything, and they fail saying so.
        let _ = tracing::subscriber::set_global_default(subscriber);
        spans
    })
}

/// Starts capturing now, if it did not yet.
pub fn start() {
    spans();
}

struct Capture(Spans);

/// Where a kept span's record is.
struct Index(usize);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        let kept = fields
            .0
            .get("messaging.destination.name")
            .is_some_and(|d| d.starts_with(TRACED));
        if !kept {
            return;
        }
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans.push(CapturedSpan {
            name: attributes.metadata().name(),
            fields: fields.0,
        });
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(Index(spans.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let Some(span) = context.span(id) else { return };
        let Some(&Index(index)) = span.extensions().get::<Index>() else {
            return;
        };
        let mut fields = Fields::default();
        values.record(&mut fields);
        let mut spans = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        spans[index].fields.extend(fields.0);
    }
}

#[derive(Default)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}
