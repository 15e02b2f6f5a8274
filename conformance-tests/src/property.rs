//! Model-based property tests: random operation sequences applied to a
//! backend and to the reference [`Model`], compared
//! result by result, error variant by error variant.

use std::fmt;

use message_store::{
    BatchSize, Category, CategoryRead, ConsumerGroup, ExpectedVersion, Message, MessageStore,
    Metadata, NewMessage, StreamName, StreamRead,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use serde_json::json;
use uuid::Uuid;

use crate::model::{Model, ModelExpected, ModelMessage, ModelWrite};

const CATEGORIES: [&str; 3] = ["a", "a:cmd", "b"];
const IDS: [&str; 6] = ["1", "2", "1+x", "2-y", "", "+3"];
const TYPES: [&str; 3] = ["Opened", "Deposited", "Closed"];
const CORRELATIONS: [&str; 3] = ["x-1", "x:y-2", "y"];
const CORRELATION_FILTERS: [&str; 3] = ["x", "x:y", "y"];

/// A stream of the test's namespace: a category index and an id index
/// (`None`: the category-shaped stream named like the category).
#[derive(Clone, Copy)]
pub struct StreamRef {
    category: usize,
    id: Option<usize>,
}

impl StreamRef {
    fn name(self) -> String {
        match self.id {
            Some(id) => format!("{}-{}", CATEGORIES[self.category], IDS[id]),
            None => CATEGORIES[self.category].to_owned(),
        }
    }
}

impl fmt::Debug for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

/// Where a message's id comes from.
#[derive(Debug, Clone, Copy)]
pub enum IdSpec {
    /// A new random id.
    Fresh,
    /// The id of the k-th stored message (wrapping); fresh if none.
    Stored(usize),
    /// The id of the previous message in the same batch; fresh for the first.
    Previous,
}

/// One message of a write.
#[derive(Debug, Clone)]
pub struct MessageSpec {
    message_type: &'static str,
    id: IdSpec,
    correlation: Option<&'static str>,
    value: u8,
}

/// The expected version of a write.
#[derive(Debug, Clone, Copy)]
pub enum ExpectedSpec {
    /// `Any`.
    Any,
    /// `NoStream`.
    NoStream,
    /// `Exact(n)`.
    Exact(u64),
    /// The stream's current version (succeeds unless something else fails).
    Current,
}

/// Where a category read starts.
#[derive(Debug, Clone, Copy)]
pub enum FromSpec {
    /// Position 1.
    Start,
    /// Position 0 (reads like 1).
    Zero,
    /// The global position of the k-th message (wrapping).
    Message(usize),
    /// One past the k-th message.
    After(usize),
    /// Past everything.
    Head,
}

/// One operation.
#[derive(Debug, Clone)]
pub enum Op {
    /// A write.
    Write {
        /// The stream.
        stream: StreamRef,
        /// The batch.
        messages: Vec<MessageSpec>,
        /// The expectation.
        expected: ExpectedSpec,
    },
    /// A stream read.
    ReadStream {
        /// The stream.
        stream: StreamRef,
        /// The first position.
        from: u64,
        /// The batch size (`None`: unlimited).
        limit: Option<u64>,
    },
    /// A category read.
    ReadCategory {
        /// The category.
        category: &'static str,
        /// Where to start.
        from: FromSpec,
        /// The batch size (`None`: unlimited).
        limit: Option<u64>,
        /// The correlation filter.
        correlation: Option<&'static str>,
        /// The consumer group (member, size).
        group: Option<(u32, u32)>,
    },
    /// The last message, optionally of a type.
    LastMessage {
        /// The stream.
        stream: StreamRef,
        /// The type filter.
        message_type: Option<&'static str>,
    },
    /// The stream version.
    StreamVersion {
        /// The stream.
        stream: StreamRef,
    },
}

fn stream_ref() -> impl Strategy<Value = StreamRef> {
    (
        0..CATEGORIES.len(),
        prop::option::weighted(0.9, 0..IDS.len()),
    )
        .prop_map(|(category, id)| StreamRef { category, id })
}

fn message_spec() -> impl Strategy<Value = MessageSpec> {
    let id = prop_oneof![8 => Just(IdSpec::Fresh), 1 => any::<usize>().prop_map(IdSpec::Stored), 1 => Just(IdSpec::Previous)];
    (
        prop::sample::select(&TYPES[..]),
        id,
        prop::option::of(prop::sample::select(&CORRELATIONS[..])),
        any::<u8>(),
    )
        .prop_map(|(message_type, id, correlation, value)| MessageSpec {
            message_type,
            id,
            correlation,
            value,
        })
}

fn limit() -> impl Strategy<Value = Option<u64>> {
    prop::option::weighted(0.8, 0..5u64)
}

fn op() -> impl Strategy<Value = Op> {
    let expected = prop_oneof![
        1 => Just(ExpectedSpec::Any),
        1 => Just(ExpectedSpec::NoStream),
        1 => (0..4u64).prop_map(ExpectedSpec::Exact),
        2 => Just(ExpectedSpec::Current),
    ];
    let from = prop_oneof![
        1 => Just(FromSpec::Start),
        1 => Just(FromSpec::Zero),
        2 => any::<usize>().prop_map(FromSpec::Message),
        1 => any::<usize>().prop_map(FromSpec::After),
        1 => Just(FromSpec::Head),
    ];
    let group = prop::option::weighted(0.3, (1..5u32).prop_flat_map(|size| (0..size, Just(size))));
    prop_oneof![
        6 => (stream_ref(), prop::collection::vec(message_spec(), 1..4), expected)
            .prop_map(|(stream, messages, expected)| Op::Write { stream, messages, expected }),
        2 => (stream_ref(), 0..4u64, limit()).prop_map(|(stream, from, limit)| Op::ReadStream { stream, from, limit }),
        3 => (prop::sample::select(&CATEGORIES[..]), from, limit(), prop::option::weighted(0.3, prop::sample::select(&CORRELATION_FILTERS[..])), group)
            .prop_map(|(category, from, limit, correlation, group)| Op::ReadCategory { category, from, limit, correlation, group }),
        1 => (stream_ref(), prop::option::of(prop::sample::select(&TYPES[..])))
            .prop_map(|(stream, message_type)| Op::LastMessage { stream, message_type }),
        1 => stream_ref().prop_map(|stream| Op::StreamVersion { stream }),
    ]
}

/// Sequences of up to 40 operations.
pub fn operations() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..40)
}

/// A fresh multi-threaded runtime for property tests (which are plain `#[test]`s).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The number of cases: `PROPTEST_CASES` if set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs random operation sequences against `store` and the model; panics with
/// the shrunk sequence on the first disagreement. Each case works in its own
/// namespace of categories, so one store serves every case.
pub fn operations_match_the_reference_model(
    runtime: &tokio::runtime::Runtime,
    store: &dyn MessageStore,
    cases: u32,
) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&operations(), |ops| runtime.block_on(run_case(store, &ops)));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, ops)) => {
            panic!("{store} disagrees with the reference model: {reason}\nminimal failing operations:\n{ops:#?}")
        }
        Err(TestError::Abort(reason)) => panic!("property test aborted: {reason}"),
    }
}

fn fail(message: String) -> TestCaseError {
    TestCaseError::fail(message)
}

struct Case<'a> {
    store: &'a dyn MessageStore,
    prefix: String,
    model: Model,
}

impl Case<'_> {
    fn stream(&self, stream: StreamRef) -> StreamName {
        StreamName::new(format!("{}{}", self.prefix, stream.name()))
            .expect("valid generated stream")
    }

    fn category(&self, category: &str) -> Category {
        Category::new(format!("{}{category}", self.prefix)).expect("valid generated category")
    }

    /// The model's view of a backend message, with the namespace prefix removed.
    fn project(&self, message: &Message) -> ModelMessage {
        ModelMessage {
            id: message.id,
            stream: message.stream_name.as_str()[self.prefix.len()..].to_owned(),
            message_type: message.message_type.clone(),
            position: message.position,
            global_position: message.global_position,
            data: message.data.to_value(),
            correlation: message.metadata.correlation_stream_name.clone(),
        }
    }

    async fn apply(&mut self, index: usize, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Write {
                stream,
                messages,
                expected,
            } => self.write(index, *stream, messages, *expected).await,
            Op::ReadStream {
                stream,
                from,
                limit,
            } => {
                let options = StreamRead::new()
                    .with_position(*from)
                    .with_batch_size(batch_size(*limit));
                let actual = self.store.read_stream(&self.stream(*stream), options).await;
                let actual = actual
                    .map(|ms| ms.iter().map(|m| self.project(m)).collect::<Vec<_>>())
                    .map_err(|e| e.kind());
                let expected = self.model.read_stream(&stream.name(), *from, *limit);
                compare(index, op, &actual, &expected)
            }
            Op::ReadCategory {
                category,
                from,
                limit,
                correlation,
                group,
            } => {
                let position = match *from {
                    FromSpec::Start => 1,
                    FromSpec::Zero => 0,
                    FromSpec::Message(k) => self.model.global_position_at(k).unwrap_or(1),
                    FromSpec::After(k) => self.model.global_position_at(k).map_or(1, |p| p + 1),
                    FromSpec::Head => self.model.head(),
                };
                let mut options = CategoryRead::new()
                    .with_position(position)
                    .with_batch_size(batch_size(*limit));
                if let Some(c) = correlation {
                    options = options.with_correlation(*c);
                }
                if let Some((member, size)) = group {
                    options = options.with_consumer_group(
                        ConsumerGroup::new(*member, *size).map_err(|e| fail(e.to_string()))?,
                    );
                }
                let actual = self
                    .store
                    .read_category(&self.category(category), options)
                    .await;
                let actual = actual
                    .map(|ms| ms.iter().map(|m| self.project(m)).collect::<Vec<_>>())
                    .map_err(|e| e.kind());
                let expected =
                    Ok(self
                        .model
                        .read_category(category, position, *limit, *correlation, *group));
                compare(index, op, &actual, &expected)
            }
            Op::LastMessage {
                stream,
                message_type,
            } => {
                let actual = self
                    .store
                    .read_last_message(&self.stream(*stream), *message_type)
                    .await;
                let actual = actual
                    .map(|m| m.map(|m| self.project(&m)))
                    .map_err(|e| e.kind());
                let expected = Ok(self.model.last_message(&stream.name(), *message_type));
                compare(index, op, &actual, &expected)
            }
            Op::StreamVersion { stream } => {
                let actual = self
                    .store
                    .stream_version(&self.stream(*stream))
                    .await
                    .map_err(|e| e.kind());
                compare(index, op, &actual, &Ok(self.model.version(&stream.name())))
            }
        }
    }

    async fn write(
        &mut self,
        index: usize,
        stream: StreamRef,
        specs: &[MessageSpec],
        expected: ExpectedSpec,
    ) -> Result<(), TestCaseError> {
        let mut batch: Vec<ModelWrite> = Vec::new();
        for spec in specs {
            let id = match spec.id {
                IdSpec::Fresh => Uuid::new_v4(),
                IdSpec::Stored(k) => self.model.id_at(k).unwrap_or_else(Uuid::new_v4),
                IdSpec::Previous => batch.last().map_or_else(Uuid::new_v4, |m| m.id),
            };
            batch.push(ModelWrite {
                id,
                message_type: spec.message_type.to_owned(),
                data: json!({ "value": spec.value }),
                correlation: spec.correlation.map(str::to_owned),
            });
        }
        let name = stream.name();
        let (expected_version, model_expected) = match expected {
            ExpectedSpec::Any => (ExpectedVersion::Any, ModelExpected::Any),
            ExpectedSpec::NoStream => (ExpectedVersion::NoStream, ModelExpected::NoStream),
            ExpectedSpec::Exact(v) => (ExpectedVersion::Exact(v), ModelExpected::Exact(v)),
            ExpectedSpec::Current => match self.model.version(&name) {
                Some(v) => (ExpectedVersion::Exact(v), ModelExpected::Exact(v)),
                None => (ExpectedVersion::NoStream, ModelExpected::NoStream),
            },
        };
        let messages: Vec<NewMessage> = batch
            .iter()
            .map(|m| {
                let metadata = match &m.correlation {
                    Some(c) => Metadata::new().with_correlation_stream_name(c.clone()),
                    None => Metadata::new(),
                };
                NewMessage::new(m.message_type.clone(), m.data.clone())
                    .with_id(m.id)
                    .with_metadata(metadata)
            })
            .collect();
        let actual = self
            .store
            .write(&self.stream(stream), messages, expected_version)
            .await
            .map_err(|e| e.kind());
        let head_before = self.model.head();
        let model_result = self.model.write(&name, &batch, model_expected);
        let op = Op::Write {
            stream,
            messages: specs.to_vec(),
            expected,
        };
        compare(index, &op, &actual, &model_result)?;
        if actual.is_ok() {
            // Learn the global positions the backend assigned to the new messages.
            let from = head_before;
            let category = self.category(&name[..name.find('-').unwrap_or(name.len())]);
            let read = self
                .store
                .read_category(
                    &category,
                    CategoryRead::new()
                        .with_position(from)
                        .with_batch_size(BatchSize::Unlimited),
                )
                .await
                .map_err(|e| fail(format!("reading back write #{index}: {e}")))?;
            let ids: Vec<Uuid> = read.iter().map(|m| m.id).collect();
            let written: Vec<Uuid> = batch.iter().map(|m| m.id).collect();
            if ids != written {
                return Err(fail(format!("operation #{index}: after the write, the category holds {ids:?} past the head, not the batch {written:?}")));
            }
            let gps: Vec<u64> = read.iter().map(|m| m.global_position).collect();
            self.model
                .learn_global_positions(&gps)
                .map_err(|e| fail(format!("operation #{index}: {e}")))?;
        }
        Ok(())
    }
}

fn batch_size(limit: Option<u64>) -> BatchSize {
    limit.map_or(BatchSize::Unlimited, BatchSize::Limit)
}

fn compare<T: PartialEq + fmt::Debug>(
    index: usize,
    op: &Op,
    actual: &T,
    expected: &T,
) -> Result<(), TestCaseError> {
    if actual == expected {
        Ok(())
    } else {
        Err(fail(format!(
            "operation #{index} {op:?}\n  backend: {actual:?}\n  model:   {expected:?}"
        )))
    }
}

async fn run_case(store: &dyn MessageStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut case = Case {
        store,
        prefix: format!("p{}", Uuid::new_v4().simple()),
        model: Model::default(),
    };
    for (index, op) in ops.iter().enumerate() {
        case.apply(index, op).await?;
    }
    Ok(())
}
