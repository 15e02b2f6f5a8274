//! The redelivery simulator catches a handler that is not idempotent and
//! passes one that is, reproducibly, and names what broke.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use message_store::{Category, Message, NewMessage, StreamName};
use message_store_consumer::simulate::{Redelivery, Simulated, Step};
use message_store_consumer::{Consumer, HandlerResult};

/// Balance per account, and the last stream position applied to it.
type Balances = Arc<Mutex<HashMap<String, (i64, Option<u64>)>>>;

fn deposits() -> Vec<(StreamName, NewMessage)> {
    (0..12)
        .map(|n| {
            let stream = StreamName::new(format!("account-{}", n % 3)).unwrap();
            let deposit = NewMessage::new("Deposited", serde_json::json!({ "amount": n + 1 }));
            (stream, deposit)
        })
        .collect()
}

fn amount(message: &Message) -> i64 {
    message.data["amount"].as_i64().unwrap()
}

/// How each projection applies a deposit.
#[derive(Clone, Copy)]
enum Projection {
    /// Adds every deposit it is given.
    Naive,
    /// Skips what it has applied already, by stream position kept with the balance.
    Idempotent,
    /// Remembers applied ids in the consumer instance only: lost on restart.
    CachedInInstance,
}

#[async_trait::async_trait]
impl Simulated for Projection {
    type State = Balances;
    type Outcome = Vec<(String, i64)>;

    async fn state(&self) -> Balances {
        Balances::default()
    }

    fn consumer(&self, balances: &Balances) -> Consumer {
        let (balances, projection) = (balances.clone(), *self);
        let seen: Arc<Mutex<HashSet<uuid::Uuid>>> = Arc::default();
        Consumer::new(Category::new("account").unwrap()).on_any(move |message: Message| {
            let (balances, seen) = (balances.clone(), seen.clone());
            async move {
                let mut balances = balances.lock().unwrap();
                let entry = balances
                    .entry(message.stream_name.as_str().to_owned())
                    .or_insert((0, None));
                let apply = match projection {
                    Projection::Naive => true,
                    Projection::Idempotent => entry.1 < Some(message.position),
                    Projection::CachedInInstance => seen.lock().unwrap().insert(message.id),
                };
                if apply {
                    entry.0 += amount(&message);
                    entry.1 = Some(message.position);
                }
                HandlerResult::Ok(())
            }
        })
    }

    async fn outcome(&self, balances: &Balances) -> Vec<(String, i64)> {
        let mut all: Vec<_> = balances
            .lock()
            .unwrap()
            .iter()
            .map(|(stream, (balance, _))| (stream.clone(), *balance))
            .collect();
        all.sort();
        all
    }
}

#[tokio::test]
async fn a_naive_projection_is_caught_and_an_idempotent_one_passes() {
    let redelivery = Redelivery::new(deposits()).with_seed(1).with_schedules(50);
    let naive = redelivery.check(&Projection::Naive).await.unwrap();
    assert!(!naive.passed(), "{naive}");
    assert_eq!(
        naive.clean,
        vec![
            ("account-0".to_owned(), 1 + 4 + 7 + 10),
            ("account-1".to_owned(), 2 + 5 + 8 + 11),
            ("account-2".to_owned(), 3 + 6 + 9 + 12),
        ]
    );
    let idempotent = redelivery.check(&Projection::Idempotent).await.unwrap();
    assert!(idempotent.passed(), "{idempotent}");
    assert_eq!(idempotent.clean, naive.clean);
}

#[tokio::test]
async fn a_cache_kept_in_the_instance_is_caught_by_a_restart_only() {
    let redelivery = Redelivery::new(deposits());
    let app = Projection::CachedInInstance;
    let clean = redelivery.run(&[], &app).await.unwrap();
    let twice = [Step::Next, Step::Next, Step::Again, Step::Retry];
    assert_eq!(redelivery.run(&twice, &app).await.unwrap(), clean);
    // The new instance has an empty cache and resumes at the start.
    let crash = [Step::Next, Step::Next, Step::Crash];
    assert_ne!(redelivery.run(&crash, &app).await.unwrap(), clean);
    let report = redelivery.check(&app).await.unwrap();
    assert!(!report.passed(), "{report}");
}

#[tokio::test]
async fn a_seed_reproduces_its_report() {
    let redelivery = Redelivery::new(deposits()).with_seed(99).with_schedules(20);
    let first = redelivery.check(&Projection::Naive).await.unwrap();
    let second = redelivery.check(&Projection::Naive).await.unwrap();
    assert_eq!(first, second);
    let failure = &first.failures[0];
    assert_eq!(failure.schedule, redelivery.schedule(failure.index));
    let again = redelivery
        .run(&failure.schedule, &Projection::Naive)
        .await
        .unwrap();
    assert_eq!(again, failure.outcome);
}

#[tokio::test]
async fn a_handler_that_always_fails_is_reported() {
    struct Failing;
    #[async_trait::async_trait]
    impl Simulated for Failing {
        type State = ();
        type Outcome = ();
        async fn state(&self) {}
        fn consumer(&self, _: &()) -> Consumer {
            Consumer::new(Category::new("account").unwrap())
                .on_any(|_m: Message| async { HandlerResult::Err("always".into()) })
        }
        async fn outcome(&self, _: &()) {}
    }
    let error = Redelivery::new(deposits())
        .check(&Failing)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("always"), "{error}");
}

/// Schedules generated and shrunk by proptest: a failing one shrinks to
/// the one fault that breaks the naive projection.
#[test]
fn proptest_shrinks_a_failing_schedule_to_its_fault() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestError, TestRunner};

    let step = prop_oneof![
        4 => Just(Step::Next),
        1 => Just(Step::Again),
        1 => Just(Step::Retry),
        1 => Just(Step::Crash),
        1 => Just(Step::Move),
        1 => (1usize..4).prop_map(Step::Rewind),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let redelivery = Redelivery::new(deposits());
    let clean = runtime
        .block_on(redelivery.run(&[], &Projection::Naive))
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&proptest::collection::vec(step, 0..40), |schedule| {
        let outcome = runtime
            .block_on(redelivery.run(&schedule, &Projection::Naive))
            .unwrap();
        prop_assert_eq!(&outcome, &clean);
        Ok(())
    });
    let Err(TestError::Fail(_, shrunk)) = result else {
        panic!("the naive projection passed every schedule: {result:?}");
    };
    assert!(shrunk.len() <= 2, "shrunk to {shrunk:?}");
    assert!(
        shrunk.iter().any(|step| *step != Step::Next),
        "shrunk to {shrunk:?}"
    );
}

/// Records the global positions it is given, recording its position every
/// third message; `fails_on` fails for good.
struct Recording {
    fails_on: Option<u64>,
}

#[async_trait::async_trait]
impl Simulated for Recording {
    type State = Arc<Mutex<Vec<u64>>>;
    type Outcome = Vec<u64>;

    async fn state(&self) -> Self::State {
        Arc::default()
    }

    fn consumer(&self, delivered: &Self::State) -> Consumer {
        let (delivered, fails_on) = (delivered.clone(), self.fails_on);
        let options = message_store_consumer::ConsumerOptions::new()
            .with_position_update_interval(3)
            .with_failure_policy(message_store_consumer::FailurePolicy::Park);
        Consumer::new(Category::new("account").unwrap())
            .with_options(options)
            .on_any(move |message: Message| {
                let delivered = delivered.clone();
                async move {
                    if Some(message.global_position) == fails_on {
                        return HandlerResult::Err("poison".into());
                    }
                    delivered.lock().unwrap().push(message.global_position);
                    HandlerResult::Ok(())
                }
            })
    }

    async fn outcome(&self, delivered: &Self::State) -> Vec<u64> {
        delivered.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn a_new_instance_resumes_at_the_recorded_position() {
    use Step::*;
    let redelivery = Redelivery::new(deposits());
    let app = Recording { fails_on: None };
    // Recorded after the 3rd: a crash after the 5th resumes at the 3rd.
    let crashed = redelivery
        .run(&[Next, Next, Next, Next, Next, Crash, Next], &app)
        .await
        .unwrap();
    assert_eq!(&crashed[..7], &[1, 2, 3, 4, 5, 3, 4]);
    // A handover records the last handled (the 5th) and resumes there; an
    // `Again` after a restart has nothing to repeat.
    let moved = redelivery
        .run(&[Next, Next, Next, Next, Next, Move, Again, Next], &app)
        .await
        .unwrap();
    assert_eq!(&moved[..7], &[1, 2, 3, 4, 5, 5, 6]);
    // Rewinding two from the 4th message (the next) restarts at the 2nd.
    let rewound = redelivery
        .run(&[Next, Next, Next, Rewind(2), Next], &app)
        .await
        .unwrap();
    assert_eq!(&rewound[..4], &[1, 2, 3, 2]);
    assert_eq!(rewound.len(), 3 + 11, "then every message from the 2nd on");
}

#[tokio::test]
async fn a_parked_message_is_skipped_as_the_runtime_parks_it() {
    let redelivery = Redelivery::new(deposits());
    let clean = redelivery
        .run(&[], &Recording { fails_on: Some(4) })
        .await
        .unwrap();
    assert_eq!(clean.len(), 11);
    assert!(!clean.contains(&4));
}
