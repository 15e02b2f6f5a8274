//! The consumer runtime's cases, and the helpers they share. Each case takes
//! an owned store, since a running consumer keeps one.
//!
//! - `exactly_once`: handlers in units of work, killed at random points;
//! - `failures`: failing, panicking and hanging handlers
//!   under each failure policy;
//! - `lifecycle`: kills, backend faults, shutdown and its deadline, a second
//!   instance;
//! - `parking`: parked messages, their replay and idempotent handlers;
//! - `progress`: knowing when a consumer has caught up;
//! - `setup`: options, consumer groups, health;
//! - `standby`: a second instance under the same id.

mod background;
mod exactly_once;
mod failures;
mod lifecycle;
mod parking;
mod progress;
mod setup;
mod standby;

pub use background::*;
pub use exactly_once::*;
pub use failures::*;
pub use lifecycle::*;
pub use parking::*;
pub use progress::*;
pub use setup::*;
pub use standby::*;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use message_store::{Category, ExpectedVersion, Message, MessageStore, SubscribeOptions};
use message_store_consumer::{Consumer, ConsumerOptions, HandlerResult, RetryPolicy};

use crate::support::*;

type Seen = Arc<Mutex<Vec<Message>>>;

fn subscription(consumer_id: &str) -> SubscribeOptions {
    SubscribeOptions::new()
        .with_consumer_id(consumer_id)
        .with_poll_interval(Duration::from_millis(10))
}

fn quick_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy::new()
        .with_max_attempts(attempts)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// The standby lease of the cases' consumers: short, so that a restart
/// after a crash resumes soon, and long enough that a loaded test machine
/// (a tick a third of it late) never makes a consumer fence itself.
const LEASE: Duration = Duration::from_secs(1);

/// A consumer's options for the cases: quick retries and a short standby
/// lease ([`LEASE`]).
fn options(consumer_id: &str) -> ConsumerOptions {
    ConsumerOptions::new()
        .with_subscription(subscription(consumer_id))
        .with_retry(quick_retry(3))
        .with_backend_backoff(Duration::from_millis(50))
        .with_lease_duration(LEASE)
}

/// The options of a case that injects store faults into the consumer's own
/// loop: no standby lease, whose renewals would take the faults too (and
/// rightly fence the consumer; the fleet's cases cover that).
fn alone(consumer_id: &str) -> ConsumerOptions {
    options(consumer_id).with_standby(false)
}

/// A consumer that records every message it handles.
fn recording(category: &Category, options: ConsumerOptions, seen: &Seen) -> Consumer {
    let seen = seen.clone();
    Consumer::new(category.clone())
        .with_options(options)
        .on_any(move |message: Message| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(message);
                HandlerResult::Ok(())
            }
        })
}

async fn write_spread(
    store: &dyn MessageStore,
    category: &Category,
    streams: u64,
    per_stream: u64,
) {
    for round in 0..per_stream {
        for id in 0..streams {
            let n = round * 1000 + id;
            store
                .write(
                    &stream(category, &id.to_string()),
                    vec![numbered("Numbered", n)],
                    ExpectedVersion::Any,
                )
                .await
                .unwrap();
        }
    }
}

fn global(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.global_position).collect()
}

/// The data `numbered` writes, as a typed message.
#[derive(Debug, serde::Deserialize)]
struct Numbered {
    n: u64,
}

impl message_store::TypedMessage for Numbered {
    const MESSAGE_TYPE: &'static str = "Numbered";
}
