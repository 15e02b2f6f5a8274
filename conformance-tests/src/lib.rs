//! # message-store-conformance
//!
//! One suite, generic over [`MessageStore`](message_store::MessageStore), that
//! every backend runs: named behavioural cases (Message DB's semantics, as
//! measured), concurrency and subscription cases, and model-based property
//! tests against a pure reference model.
//!
//! A backend wires it in with one macro call in an integration test, giving an
//! expression that evaluates to a future of a fresh store:
//!
//! ```text
//! message_store_conformance::conformance_suite!(async { message_store_memory::MemoryStore::new() });
//! ```
//!
//! [`guide`] takes a backend author through it step by step: what to
//! implement, how to run the suite, how to read a failure.

pub mod cases;
pub mod faults;
#[doc = include_str!("guide.md")]
pub mod guide {}
pub mod meters;
pub mod model;
pub mod property;
pub mod spans;
pub mod support;

#[doc(hidden)]
pub use message_store as __message_store;

/// Stamps one `#[tokio::test]` per conformance case, plus the model-based
/// property test, for a store built by `$factory` (an expression evaluating to
/// a future of a value that implements `MessageStore`). Optionally
/// `property_cases = N` sets the default number of property-test cases
/// (`PROPTEST_CASES` overrides it; 256 if omitted).
///
/// This macro is the single registry of cases: a case not listed here does not run.
///
/// A factory that may have nothing to test against (no database configured)
/// is given as `optional: $factory`, evaluating to a future of an `Option`;
/// `None` makes each test return early (the factory says why).
#[macro_export]
macro_rules! conformance_suite {
    (optional: $factory:expr $(, property_cases = $cases:expr)?) => {
        $crate::__suite!($factory, $crate::support::optional $(, $cases)?);
    };
    ($factory:expr $(, property_cases = $cases:expr)?) => {
        $crate::__suite!($factory, $crate::support::present $(, $cases)?);
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($factory:expr, $get:path) => {
        $crate::__suite!($factory, $get, 256);
    };
    ($factory:expr, $get:path, $cases:expr) => {
        $crate::__stamp_cases!($factory, $get;
            // writes
            first_write_is_position_zero_and_each_write_adds_one,
            wrong_expected_version_reports_expected_and_actual,
            expected_version_on_absent_stream_reports_no_stream,
            no_stream_expectation_succeeds_only_on_an_empty_stream,
            batch_with_exact_version_chains_positions,
            failed_batch_writes_nothing,
            duplicate_id_in_another_stream_is_refused,
            duplicate_id_late_in_a_batch_writes_nothing_of_it,
            duplicate_id_within_a_batch_is_refused,
            wrong_expected_version_is_reported_before_duplicate_id,
            caller_supplied_id_is_kept,
            global_positions_strictly_increase_across_failures,
            stream_positions_are_gapless,
            category_shaped_stream_name_is_writable,
            messages_of_one_write_share_one_time,
            empty_batch_is_refused,
            nul_in_json_is_refused_and_nothing_written,
            empty_message_type_is_allowed,
            data_of_every_json_shape_round_trips,
            numbers_read_back_as_jsonb_returns_them,
            metadata_round_trips,
            names_up_to_the_length_limit_are_written_and_longer_ones_refused,
            json_nested_past_the_depth_limit_is_refused,
            // reads
            read_stream_from_position_is_inclusive_and_ordered,
            read_stream_defaults_to_position_zero_and_1000_messages,
            read_stream_batch_sizes,
            read_stream_on_a_category_name_is_refused,
            read_stream_of_an_absent_stream_is_empty,
            read_stream_matches_the_exact_name,
            read_category_returns_all_streams_in_global_order,
            read_category_from_global_position_is_inclusive,
            read_category_includes_exact_name_and_excludes_typed_categories,
            read_category_batch_sizes,
            read_category_of_an_unknown_category_is_empty,
            paging_a_category_visits_every_message_once,
            paged_reads_match_one_unlimited_read,
            last_message_is_the_highest_position,
            last_message_of_a_type,
            absent_stream_has_no_last_message_and_no_version,
            last_message_of_a_category_name_reads_that_literal_stream,
            stream_version_is_the_last_position,
            category_head_is_the_last_global_position,
            conveniences_take_string_names_with_the_same_errors,
            // filters
            consumer_group_assigns_streams_as_message_db_does,
            consumer_group_members_partition_the_category,
            consumer_group_validation_names_the_rule,
            correlation_keeps_only_the_correlated_category,
            correlation_with_a_dash_is_refused,
            correlation_and_consumer_group_combine,
            // concurrency
            racing_writers_get_one_winner_per_version,
            concurrent_batches_are_not_interleaved,
            concurrent_writers_each_get_their_own_outcome,
            category_reader_never_sees_positions_go_backwards,
            // subscriptions
            subscription_delivers_the_category_in_global_order,
            subscription_resumes_at_the_committed_position,
            uncommitted_messages_are_redelivered,
            committed_position_is_an_eventide_position_record,
            subscription_start_positions,
            consumer_group_subscriptions_partition_the_category,
            consumer_group_subscription_needs_a_consumer_id,
            caught_up_subscription_sees_a_new_write,
            subscription_with_correlation_filters,
            typed_messages_round_trip,
            subscription_started_at_the_end_delivers_only_new_messages,
            two_consumers_on_one_position_stream_are_refused,
            commit_past_the_last_delivered_message_is_refused,
            // units of work
            unit_commits_writes_to_several_streams_at_once,
            dropped_or_rolled_back_unit_leaves_nothing,
            failed_third_write_leaves_nothing,
            duplicate_id_in_a_unit_aborts_it,
            a_unit_is_refused_after_it_ends,
            input_refused_before_it_is_sent_leaves_the_unit_open,
            a_unit_sees_its_own_writes_and_nobody_else_does,
            a_commit_wakes_subscriptions,
            a_plain_write_waits_for_a_unit_holding_its_category,
            units_racing_on_one_stream_get_one_winner_per_version,
            second_unit_on_a_stream_waits_and_then_loses,
            a_lock_timeout_ends_the_wait_with_a_conflict,
            units_writing_in_opposite_orders_end_in_one_conflict,
            units_that_lock_their_categories_first_never_deadlock,
            in_unit_runs_a_unit_again_after_a_conflict,
        );

        $crate::__stamp_owned_cases!($factory, $get;
            a_decorated_store_passes_wake_ups_on,
            a_subscription_reads_the_next_page_before_it_is_asked,
            a_polling_subscription_rereads_after_an_empty_read_ahead,
            an_idle_subscription_reads_only_when_woken_while_wake_ups_are_live,
            a_quiet_category_is_polled_less_and_less_with_an_idle_backoff,
            store_calls_and_handled_messages_are_traced,
            store_calls_and_handled_messages_are_metered,
            the_lag_gauge_follows_a_consumer_and_each_fleet_bucket,
            consumer_killed_before_recording_loses_nothing,
            a_crash_never_leaves_a_position_past_an_unfinished_handler,
            a_hanging_position_write_does_not_hold_handling_up,
            records_wait_out_the_gap_but_not_the_end_of_a_catch_up,
            exactly_once_handlers_apply_each_message_once_across_kills,
            a_stale_exactly_once_consumer_commits_nothing,
            exactly_once_consumer_resolves_failed_and_lost_commits,
            failing_handler_is_retried_and_order_is_kept,
            panicking_handler_is_retried_not_fatal,
            poison_message_is_parked_and_can_be_replayed,
            replay_is_applied_once_by_an_idempotent_handler,
            purged_parked_messages_are_never_replayed,
            consumer_stops_on_a_failing_message_and_redelivers_it,
            consumer_survives_backend_failures,
            lost_reply_to_a_position_write_is_not_a_second_consumer,
            shutdown_records_the_position,
            consumer_group_members_split_the_category,
            start_group_runs_each_member_on_its_share,
            invalid_consumer_options_are_refused,
            consumer_health_reports_progress_and_lag,
            lag_of_consumer_group_members_reaches_zero,
            lag_counts_only_the_messages_a_correlation_consumer_handles,
            second_consumer_with_the_same_id_is_refused_or_stopped,
            second_consumer_with_the_same_id_stands_by,
            a_standby_waits_while_the_first_drains,
            a_restart_under_the_same_instance_id_resumes_at_once,
            caught_up_resolves_once_everything_there_is_was_handled,
            run_until_caught_up_handles_what_is_there_and_stops,
            caught_up_fails_when_the_consumer_stops_first,
            handler_timeout_is_a_failure_under_the_policy,
            handler_timeout_stops_a_stopping_consumer,
            shutdown_drops_a_stuck_handler_at_its_deadline,
            shutdown_gives_up_on_a_position_write_that_never_returns,
            // fleets
            fleet_of_four_shares_a_category,
            rolling_deploy_hands_buckets_over,
            a_one_bucket_fleet_keeps_a_standby,
            fleet_options_are_checked,
            crashed_fleet_instance_loses_nothing,
            exactly_once_fleet_applies_each_message_once_across_a_crash,
            paused_fleet_instance_late_commit_is_refused,
            cut_off_fleet_instance_stops_before_the_takeover,
        );

        #[test]
        fn operations_match_the_reference_model() {
            let runtime = $crate::property::runtime();
            let Some(store) = $get(runtime.block_on($factory)) else { return };
            $crate::property::operations_match_the_reference_model(
                &runtime,
                &store,
                $crate::property::cases($cases),
            );
        }
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_cases {
    ($factory:expr, $get:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $get($factory.await) else { return };
                $crate::cases::$case(&store).await;
            }
        )*
    };
}

/// Implementation detail of [`conformance_suite!`]: cases that need an owned
/// store (a running consumer keeps one) get it as `Arc<dyn MessageStore>`.
#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_owned_cases {
    ($factory:expr, $get:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $get($factory.await) else { return };
                let store: ::std::sync::Arc<dyn $crate::__message_store::MessageStore> = ::std::sync::Arc::new(store);
                $crate::cases::$case(store).await;
            }
        )*
    };
}
