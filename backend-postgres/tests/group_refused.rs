//! Group commit when the database refuses a call for a reason the
//! group's check cannot foresee. A binary of its own: the trigger it
//! installs takes a lock on the messages table that would wait for other
//! tests' open transactions.

mod grouping;
mod support;

use grouping::*;
use message_store::ExpectedVersion;
use message_store_postgres::sqlx;
use support::Variant;
use uuid::Uuid;

/// A call the database refuses for a reason the group's check cannot
/// foresee (here a trigger) fails alone; the others of its group succeed.
#[tokio::test]
async fn a_call_the_database_refuses_fails_alone() {
    let variant = Variant::Ours;
    if support::options(variant).await.is_none() {
        return;
    }
    let poison = format!("Poison{}", Uuid::new_v4().simple());
    let mut admin = admin(variant).await;
    sqlx::raw_sql(&format!(
        "CREATE FUNCTION message_store.refuse_{poison}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.type = '{poison}' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER refuse_{poison} BEFORE INSERT ON message_store.messages
         FOR EACH ROW EXECUTE FUNCTION message_store.refuse_{poison}();"
    ))
    .execute(&mut admin)
    .await
    .unwrap();

    let category = unique_category("poisoned");
    let (store, holder, first) = first_write_waiting(variant, &category).await;
    let calls: Vec<Call> = (0..5)
        .map(|i| {
            let kind = if i == 2 { poison.as_str() } else { "W" };
            let stream = category.stream(&i.to_string()).unwrap();
            (stream, one(kind), ExpectedVersion::NoStream)
        })
        .collect();
    let mut outcomes = Vec::new();
    for outcome in write_as_a_group(&store, holder, first, calls).await {
        outcomes.push(match outcome {
            Ok(position) => format!("at {position}"),
            Err(error) => {
                assert!(
                    support::backend_source(&error).contains("refused by the test"),
                    "{error}"
                );
                "refused".to_owned()
            }
        });
    }
    sqlx::raw_sql(&format!(
        "DROP TRIGGER refuse_{poison} ON message_store.messages; DROP FUNCTION message_store.refuse_{poison}();"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    assert_eq!(outcomes, ["at 0", "at 0", "refused", "at 0", "at 0"]);
}
