//! The application's own state, an `orders` table, changed in the same
//! unit of work as the messages: on PostgreSQL a real table, through the
//! unit's connection; on the memory store (which has no tables) one stream
//! per row, written through the same unit, so it commits or rolls back
//! with the messages there too.

use message_store::{
    Error, ExpectedVersion, MessageStore, MessageStoreExt, NewMessage, Result, StreamName,
    UnitOfWork,
};
use message_store_postgres::{connection, sqlx, PostgresStore};
use serde_json::json;

/// Where the orders table lives.
pub enum Table {
    /// Rows as streams `orderRow-{id}`.
    Memory,
    /// The `outbox_orders` table, in the database's `public` schema.
    Postgres,
}

/// An order row.
#[derive(Debug, PartialEq, Eq)]
pub struct Row {
    pub total: u64,
    pub shipped: bool,
}

impl Table {
    /// Creates the PostgreSQL table if needed.
    pub async fn create(store: &PostgresStore) -> Result<Table> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS public.outbox_orders (
                 id text PRIMARY KEY, total bigint NOT NULL, shipped boolean NOT NULL)",
        )
        .execute(store.pool())
        .await
        .map_err(Error::backend)?;
        Ok(Table::Postgres)
    }

    /// Inserts an order row in `unit`.
    pub async fn insert(&self, unit: &mut dyn UnitOfWork, id: &str, total: u64) -> Result<()> {
        match self {
            Table::Postgres => {
                let conn = connection(unit).expect("a PostgreSQL unit's connection");
                sqlx::query("INSERT INTO public.outbox_orders VALUES ($1, $2, false)")
                    .bind(id)
                    .bind(i64::try_from(total).expect("a total that fits"))
                    .execute(conn)
                    .await
                    .map_err(Error::backend)?;
            }
            Table::Memory => {
                let row = NewMessage::new("Inserted", json!({ "total": total }));
                unit.write(&row_stream(id)?, vec![row], ExpectedVersion::NoStream)
                    .await?;
            }
        }
        Ok(())
    }

    /// Marks an order shipped in `unit`.
    pub async fn mark_shipped(&self, unit: &mut dyn UnitOfWork, id: &str) -> Result<()> {
        match self {
            Table::Postgres => {
                let conn = connection(unit).expect("a PostgreSQL unit's connection");
                sqlx::query("UPDATE public.outbox_orders SET shipped = true WHERE id = $1")
                    .bind(id)
                    .execute(conn)
                    .await
                    .map_err(Error::backend)?;
            }
            Table::Memory => {
                let row = NewMessage::new("Shipped", json!({}));
                unit.write(&row_stream(id)?, vec![row], ExpectedVersion::Any)
                    .await?;
            }
        }
        Ok(())
    }

    /// The row of `id`, if there is one (read outside any unit).
    pub async fn row(
        &self,
        store: &dyn MessageStore,
        pool: Option<&PostgresStore>,
        id: &str,
    ) -> Result<Option<Row>> {
        match (self, pool) {
            (Table::Postgres, Some(pg)) => {
                let row: Option<(i64, bool)> =
                    sqlx::query_as("SELECT total, shipped FROM public.outbox_orders WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pg.pool())
                        .await
                        .map_err(Error::backend)?;
                Ok(row.map(|(total, shipped)| Row {
                    total: u64::try_from(total).unwrap_or_default(),
                    shipped,
                }))
            }
            _ => {
                let records = store.read_stream_to_end(row_stream(id)?).await?;
                Ok(records.first().map(|inserted| Row {
                    total: inserted.data["total"].as_u64().unwrap_or_default(),
                    shipped: records.iter().any(|r| r.message_type == "Shipped"),
                }))
            }
        }
    }
}

fn row_stream(id: &str) -> Result<StreamName> {
    StreamName::new(format!("orderRow-{id}"))
}
