//! The options' validation and back-off.

use super::*;

#[test]
fn backoff_doubles_up_to_the_cap() {
    let retry =
        RetryPolicy::new().with_backoff(Duration::from_millis(10), Duration::from_millis(50));
    let delays: Vec<_> = (1..=5).map(|a| retry.delay_after(a).as_millis()).collect();
    assert_eq!(delays, [10, 20, 40, 50, 50]);
    assert_eq!(retry.delay_after(1000), Duration::from_millis(50));
}

#[test]
fn invalid_options_are_refused_by_validate() {
    let subscription = SubscribeOptions::new().with_consumer_id("c");
    let base = ConsumerOptions::new().with_subscription(subscription.clone());
    assert!(base.validate().is_ok());
    let cases = [
        (
            "max_attempts",
            base.clone()
                .with_retry(RetryPolicy::new().with_max_attempts(0)),
        ),
        (
            "backoff",
            base.clone().with_retry(
                RetryPolicy::new().with_backoff(Duration::from_secs(2), Duration::from_secs(1)),
            ),
        ),
        (
            "position_update_interval",
            base.clone().with_position_update_interval(0),
        ),
        (
            "handler_timeout",
            base.clone().with_handler_timeout(Duration::ZERO),
        ),
        (
            "shutdown_deadline",
            base.clone().with_shutdown_deadline(Duration::ZERO),
        ),
        (
            "lag_interval",
            base.clone().with_lag_interval(Duration::ZERO),
        ),
        ("lag_exact_up_to", base.clone().with_lag_exact_up_to(0)),
        (
            "consumer_id",
            ConsumerOptions::new().with_failure_policy(FailurePolicy::Park),
        ),
        (
            "batch_size",
            base.clone()
                .with_subscription(subscription.clone().with_batch_size(0)),
        ),
        (
            "batch_size",
            base.clone().with_subscription(
                subscription
                    .clone()
                    .with_batch_size(message_store::BatchSize::Unlimited),
            ),
        ),
        (
            "poll_interval",
            base.clone()
                .with_subscription(subscription.clone().with_poll_interval(Duration::ZERO)),
        ),
        (
            "consumer_id",
            base.clone()
                .with_subscription(SubscribeOptions::new().with_consumer_id("")),
        ),
    ];
    for (name, options) in cases {
        match options.validate() {
            Err(Error::InvalidOption { option, .. }) => assert_eq!(option, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    let correlated = base.with_subscription(subscription.with_correlation("a-1"));
    assert!(matches!(
        correlated.validate(),
        Err(Error::InvalidCorrelation { .. })
    ));
}
