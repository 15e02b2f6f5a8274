//! Spans for store calls, named after OpenTelemetry's messaging semantic
//! conventions, so that every backend traces the same way.
//!
//! A backend wraps each call: `trace::call(trace::write(BACKEND, stream,
//! &messages), trace::uncounted, async { .. })`, which also reports the
//! call's metrics ([`meter`](super::meter)). The span carries:
//!
//! - `messaging.system` ([`SYSTEM`]), `message_store.backend`;
//! - `messaging.operation.name` (the trait method) and
//!   `messaging.operation.type` (`send` for writes, `receive` for reads);
//! - `messaging.destination.name` (the stream or category);
//! - `messaging.batch.message_count` (messages written, or returned);
//! - for a write, the first message's Eventide correlation and causation
//!   (`message_store.correlation_stream_name`,
//!   `message_store.causation_message_stream_name` and `_position`);
//! - on failure `error.type` (the [`ErrorKind`](crate::ErrorKind)) and
//!   `otel.status_code = "ERROR"`.
//!
//! `otel.name` gives OpenTelemetry's span name, `{operation type}
//! {destination}`. Writes are INFO spans; reads are DEBUG, since a
//! caught-up subscription reads every poll interval and must not flood an
//! exporter at INFO.

use std::future::Future;

use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::error::Result;
use crate::message::NewMessage;
use crate::metadata::Metadata;

/// The `messaging.system` of every span: the message store's schema.
pub const SYSTEM: &str = "message_db";

/// True when no tracing subscriber was ever set and metrics are not
/// [enabled](super::meter::enable): a call's span and metrics would go
/// nowhere. A backend whose calls take about a microsecond (the memory
/// store's writes) skips the wrapping then; measured, it cost those
/// writes a sixth of their rate.
pub fn quiet() -> bool {
    !tracing::dispatcher::has_been_set() && !super::meter::enabled()
}

/// A store call about to run: its span, and what its metrics need.
#[derive(Debug)]
pub struct Call<'a> {
    span: Span,
    backend: &'static str,
    operation: &'static str,
    /// For a write that commits by itself: its category and message count.
    sent: Option<(&'a str, usize)>,
}

impl Call<'_> {
    /// The call's span.
    pub fn span(&self) -> &Span {
        &self.span
    }
}

/// A plain write of `messages` to `stream`: its span, and on success the
/// messages count as sent ([`meter::SENT`](super::meter::SENT)).
pub fn write<'a>(backend: &'static str, stream: &'a str, messages: &[NewMessage]) -> Call<'a> {
    let mut call = unit_write(backend, stream, messages);
    call.sent = Some((crate::stream_name::category_of(stream), messages.len()));
    call
}

/// A write in a unit of work: as [`write()`], but its messages count as sent
/// only when the unit commits (the unit reports them, [`meter::sent`](super::meter::sent)).
pub fn unit_write<'a>(backend: &'static str, stream: &'a str, messages: &[NewMessage]) -> Call<'a> {
    let span = tracing::info_span!(
        "message_store.write",
        otel.name = %format_args!("send {stream}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = SYSTEM,
        messaging.operation.name = "write",
        messaging.operation.type = "send",
        messaging.destination.name = stream,
        messaging.batch.message_count = messages.len(),
        message_store.backend = backend,
        message_store.correlation_stream_name = Empty,
        message_store.causation_message_stream_name = Empty,
        message_store.causation_message_position = Empty,
        error.type = Empty,
    );
    if let Some(first) = messages.first().filter(|_| !span.is_disabled()) {
        record_metadata(&span, &first.metadata);
    }
    Call {
        span,
        backend,
        operation: "write",
        sent: None,
    }
}

/// A read (`operation`: the trait method) of `destination`.
pub fn read(backend: &'static str, operation: &'static str, destination: &str) -> Call<'static> {
    let span = tracing::debug_span!(
        "message_store.read",
        otel.name = %format_args!("receive {destination}"),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = SYSTEM,
        messaging.operation.name = operation,
        messaging.operation.type = "receive",
        messaging.destination.name = destination,
        messaging.batch.message_count = Empty,
        message_store.backend = backend,
        error.type = Empty,
    );
    Call {
        span,
        backend,
        operation,
        sent: None,
    }
}

/// A unit of work's `operation` (`begin`, `commit`, `rollback`).
pub fn unit(backend: &'static str, operation: &'static str) -> Call<'static> {
    let span = tracing::debug_span!(
        "message_store.unit",
        otel.name = operation,
        otel.status_code = Empty,
        messaging.system = SYSTEM,
        messaging.operation.name = operation,
        messaging.operation.type = "settle",
        message_store.backend = backend,
        error.type = Empty,
    );
    Call {
        span,
        backend,
        operation,
        sent: None,
    }
}

/// The span of a consumer handling `message` (INFO): its stream,
/// positions, id and type, the consumer (`messaging.consumer.group.name`),
/// its correlation and causation; `message_store.attempts` is for the
/// runtime to record once it is handled.
pub fn process(consumer: Option<&str>, message: &crate::Message) -> Span {
    let category = message.stream_name.category();
    let span = tracing::info_span!(
        "message_store.process",
        otel.name = %format_args!("process {category}"),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = SYSTEM,
        messaging.operation.name = "handle",
        messaging.operation.type = "process",
        messaging.destination.name = message.stream_name.as_str(),
        messaging.consumer.group.name = consumer,
        messaging.message.id = %message.id,
        message_store.message_type = message.message_type.as_str(),
        message_store.position = message.position,
        message_store.global_position = message.global_position,
        message_store.attempts = Empty,
        message_store.correlation_stream_name = Empty,
        message_store.causation_message_stream_name = Empty,
        message_store.causation_message_position = Empty,
        error.type = Empty,
    );
    if !span.is_disabled() {
        record_metadata(&span, &message.metadata);
    }
    span
}

/// Records a message's Eventide correlation and causation on `span`.
pub fn record_metadata(span: &Span, metadata: &Metadata) {
    if let Some(correlation) = &metadata.correlation_stream_name {
        span.record(
            "message_store.correlation_stream_name",
            correlation.as_str(),
        );
    }
    if let Some(causation) = &metadata.causation_message_stream_name {
        span.record(
            "message_store.causation_message_stream_name",
            causation.as_str(),
        );
    }
    if let Some(position) = metadata.causation_message_position {
        span.record("message_store.causation_message_position", position);
    }
}

/// Records a failure on `span`: its kind as `error.type`, and the status.
pub fn record_error(span: &Span, error: &crate::Error) {
    span.record("error.type", tracing::field::debug(error.kind()));
    span.record("otel.status_code", "ERROR");
}

/// Runs `future` as `call`: in its span, recording its failure (also as a
/// backend failure, [`meter::failed`](super::meter::failed)), or how many
/// messages its result holds (`count`; `None` leaves the field as it is)
/// and, for a plain write, the messages sent.
pub async fn call<T>(
    call: Call<'_>,
    count: impl FnOnce(&T) -> Option<usize>,
    future: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Call {
        span,
        backend,
        operation,
        sent,
    } = call;
    let result = if span.is_disabled() {
        // No subscriber wants it: not even the cost of entering it per poll.
        future.await
    } else {
        future.instrument(span.clone()).await
    };
    match &result {
        Ok(value) => {
            if let Some(count) = count(value).filter(|_| !span.is_disabled()) {
                span.record("messaging.batch.message_count", count);
            }
            if let Some((category, messages)) = sent {
                super::meter::sent(backend, category, messages);
            }
        }
        Err(error) => {
            record_error(&span, error);
            super::meter::failed(backend, operation, error);
        }
    }
    result
}

/// For [`call`]: a result that is not a count of messages.
pub fn uncounted<T>(_: &T) -> Option<usize> {
    None
}

/// For [`call`]: a page of messages.
#[allow(clippy::ptr_arg)] // `call` hands over the result as it is: a `&Vec`
pub fn counted<T>(page: &Vec<T>) -> Option<usize> {
    Some(page.len())
}

/// For [`call`]: a message that may be there.
pub fn present<T>(message: &Option<T>) -> Option<usize> {
    Some(usize::from(message.is_some()))
}
