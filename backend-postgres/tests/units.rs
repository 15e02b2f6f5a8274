//! Units of work on PostgreSQL beyond the shared suite: the caller's own
//! transaction (`PostgresStore::within`), a unit's connection for the
//! caller's queries, a server default of REPEATABLE READ, and a unit whose
//! connection is killed. Each case runs on both schemas, as the
//! functions-only `message_store` role.

mod support;

use message_store::{
    Category, Error, ExpectedVersion, MessageStore, NewMessage, StreamName, UnitOfWork,
    UnitOptions, UnitState,
};
use message_store_postgres::sqlx::{self, ConnectOptions, Connection, PgConnection};
use message_store_postgres::{connection, PostgresError, PostgresStore};
use serde_json::json;
use support::Variant;
use uuid::Uuid;

const VARIANTS: [Variant; 2] = [Variant::Ours, Variant::Genuine];

fn unique_stream(entity: &str) -> StreamName {
    Category::new(format!("{entity}{}", Uuid::new_v4().simple()))
        .unwrap()
        .stream("1")
        .unwrap()
}

fn message() -> NewMessage {
    NewMessage::new("Placed", json!({"n": 1}))
}

/// A table of the application's own, in the variant's database, that the
/// `message_store` role may write: created by the admin role.
async fn orders_table(variant: Variant) -> String {
    let table = format!("orders_{}", Uuid::new_v4().simple());
    let database = support::options(variant).await.unwrap();
    let admin = support::admin_options()
        .unwrap()
        .database(database.get_database().unwrap());
    let mut admin = admin.connect().await.unwrap();
    for sql in [
        format!("CREATE TABLE public.{table} (id int PRIMARY KEY)"),
        format!("GRANT ALL ON public.{table} TO message_store"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.unwrap();
    }
    admin.close().await.ok();
    table
}

async fn orders(store: &PostgresStore, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM public.{table}"))
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn insert_order(conn: &mut PgConnection, table: &str) {
    sqlx::query(&format!("INSERT INTO public.{table} VALUES (7)"))
        .execute(conn)
        .await
        .unwrap();
}

async fn stored(store: &PostgresStore, stream: &StreamName) -> Option<u64> {
    store.stream_version(stream).await.unwrap()
}

/// Messages written on the caller's transaction, next to a row of the
/// caller's own, vanish with it when the caller rolls back and appear
/// with it when the caller commits.
#[tokio::test]
async fn messages_written_within_the_callers_transaction_follow_it() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let table = orders_table(variant).await;
        let stream = unique_stream("order");
        for commit in [false, true] {
            let mut tx = store.pool().begin().await.unwrap();
            insert_order(&mut tx, &table).await;
            let mut within = store.within(&mut tx).unwrap();
            let position = within
                .write(&stream, vec![message()], ExpectedVersion::NoStream)
                .await
                .unwrap();
            assert_eq!(position, 0);
            assert_eq!(within.stream_version(&stream).await.unwrap(), Some(0));
            assert_eq!(
                stored(&store, &stream).await,
                None,
                "{variant:?}: seen early"
            );
            if commit {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
            let expected = commit.then_some(0);
            assert_eq!(stored(&store, &stream).await, expected, "{variant:?}");
            assert_eq!(
                orders(&store, &table).await,
                i64::from(commit),
                "{variant:?}"
            );
        }
    }
}

/// `within` refuses a connection with no transaction open, with an error
/// that says what to pass.
#[tokio::test]
async fn within_refuses_a_connection_outside_a_transaction() {
    let Some(store) = support::store(Variant::Ours).await else {
        return;
    };
    let mut conn = store.pool().acquire().await.unwrap();
    let error = store.within(&mut conn).unwrap_err();
    let source = support::backend_source(&error);
    assert!(source.contains("inside a transaction"), "{source}");
    match &error {
        Error::Backend { source } => assert!(matches!(
            source.downcast_ref::<PostgresError>(),
            Some(PostgresError::NotInTransaction)
        )),
        other => panic!("{other:?}"),
    }
}

/// A failed write through `within` aborts the caller's transaction: later
/// calls, on the same value or a new one, are refused with
/// `UnitEnded { Aborted }`, and the caller's rollback leaves nothing.
#[tokio::test]
async fn a_failed_write_within_the_callers_transaction_ends_it() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let stream = unique_stream("order");
        let mut tx = store.pool().begin().await.unwrap();
        let mut within = store.within(&mut tx).unwrap();
        within
            .write(&stream, vec![message()], ExpectedVersion::NoStream)
            .await
            .unwrap();
        let wrong = within
            .write(&stream, vec![message()], ExpectedVersion::Exact(5))
            .await
            .unwrap_err();
        assert!(wrong.is_wrong_expected_version(), "{variant:?}: {wrong}");
        let again = within
            .write(&stream, vec![message()], ExpectedVersion::Any)
            .await;
        assert!(
            matches!(
                again,
                Err(Error::UnitEnded {
                    state: UnitState::Aborted
                })
            ),
            "{variant:?}: {again:?}"
        );
        let mut fresh = store.within(&mut tx).unwrap();
        let read = fresh.stream_version(&stream).await;
        assert!(
            matches!(
                read,
                Err(Error::UnitEnded {
                    state: UnitState::Aborted
                })
            ),
            "{variant:?}: a call on the aborted transaction gave {read:?}"
        );
        tx.rollback().await.unwrap();
        assert_eq!(stored(&store, &stream).await, None);
    }
}

/// A unit's connection runs the caller's queries in the unit's
/// transaction: it sees the unit's uncommitted write, and the caller's row
/// commits or rolls back with the unit.
#[tokio::test]
async fn a_units_connection_runs_queries_in_its_transaction() {
    for variant in VARIANTS {
        let Some(store) = support::store(variant).await else {
            return;
        };
        let table = orders_table(variant).await;
        let stream = unique_stream("order");
        for commit in [false, true] {
            let mut unit = store.begin(UnitOptions::new()).await.unwrap();
            unit.write(&stream, vec![message()], ExpectedVersion::Any)
                .await
                .unwrap();
            let conn = connection(unit.unit()).expect("a PostgreSQL unit's connection");
            let own: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM message_store.messages WHERE stream_name = $1",
            )
            .bind(stream.as_str())
            .fetch_one(&mut *conn)
            .await
            .unwrap();
            assert_eq!(own, 1, "{variant:?}: the connection sees the unit's write");
            insert_order(conn, &table).await;
            if commit {
                unit.commit().await.unwrap();
                assert!(
                    connection(unit.unit()).is_none(),
                    "an ended unit's connection"
                );
            } else {
                drop(unit);
            }
            assert_eq!(
                orders(&store, &table).await,
                i64::from(commit),
                "{variant:?}"
            );
            assert_eq!(stored(&store, &stream).await, commit.then_some(0));
        }
    }
}

/// With the server's default isolation set to REPEATABLE READ, a unit that
/// read a stream's version before another writer committed to it still
/// gets `WrongExpectedVersion` (its transaction is READ COMMITTED), not a
/// unique violation from the stream's index.
#[tokio::test]
async fn units_ignore_a_repeatable_read_default() {
    for variant in VARIANTS {
        let Some(options) = support::options(variant).await else {
            return;
        };
        let options = options.options([("default_transaction_isolation", "repeatable\\ read")]);
        let store = PostgresStore::connect_with(options, PostgresStore::pool_options())
            .await
            .unwrap();
        let default: String =
            sqlx::query_scalar("SELECT current_setting('default_transaction_isolation')")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(default, "repeatable read");
        let stream = unique_stream("order");
        let mut unit = store.begin(UnitOptions::new()).await.unwrap();
        assert_eq!(unit.stream_version(&stream).await.unwrap(), None);
        store
            .write(&stream, vec![message()], ExpectedVersion::NoStream)
            .await
            .unwrap();
        let error = unit
            .write(&stream, vec![message()], ExpectedVersion::NoStream)
            .await
            .unwrap_err();
        assert!(
            matches!(
                &error,
                Error::WrongExpectedVersion {
                    actual: Some(0),
                    ..
                }
            ),
            "{variant:?}: {error:?}"
        );
    }
}

/// A unit whose connection the server kills loses its writes: the next
/// call fails as transient (run the unit again), the unit is aborted, and
/// nothing of it is stored.
#[tokio::test]
async fn a_unit_whose_connection_is_killed_stores_nothing() {
    for variant in VARIANTS {
        let Some((store, tag)) = support::tagged_store(variant).await else {
            return;
        };
        let stream = unique_stream("order");
        let mut unit = store.begin(UnitOptions::new()).await.unwrap();
        unit.write(&stream, vec![message()], ExpectedVersion::Any)
            .await
            .unwrap();
        assert_eq!(support::kill(&tag, "%write_message%").await, 1);
        let error = unit
            .write(&stream, vec![message()], ExpectedVersion::Any)
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{variant:?}: {error:?}");
        assert_eq!(unit.state(), UnitState::Aborted);
        assert!(matches!(
            unit.commit().await,
            Err(Error::UnitEnded {
                state: UnitState::Aborted
            })
        ));
        assert_eq!(stored(&store, &stream).await, None);
    }
}
