//! The store's own reads of rows and messages: the rows of a stream or
//! category page (the paged feed decodes a page while it fetches the next),
//! and a category read decoded as its rows arrive.

use message_store::backend::paging::RawPage;
use message_store::backend::trace;
use message_store::{Category, CategoryRead, Message, Result, StreamName, StreamRead};
use sqlx::postgres::PgRow;

use crate::error::map_error;
use crate::pooler::leased;
use crate::retry::read_with_retry;
use crate::{member, rows, statements, PostgresStore, BACKEND};

impl PostgresStore {
    /// The rows of one stream read, not decoded.
    pub(crate) async fn stream_rows(
        &self,
        stream: &StreamName,
        options: &StreamRead,
    ) -> Result<Vec<PgRow>> {
        let span = trace::read(BACKEND, "read_stream", stream.as_str());
        trace::call(span, trace::counted, async {
            message_store::backend::validate_stream_read(stream)?;
            read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| statements::read_stream(
                    conn, persistent, stream, options
                ))
            })
            .await
            .map_err(|e| map_error(e, None))
        })
        .await
    }

    /// The rows of one category read, not decoded.
    pub(crate) async fn category_rows(
        &self,
        category: &Category,
        options: &CategoryRead,
    ) -> Result<Vec<PgRow>> {
        let span = trace::read(BACKEND, "read_category", category.as_str());
        trace::call(span, trace::counted, async {
            options.validate()?;
            read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| member::read_category(
                    conn,
                    persistent,
                    &self.inner.members,
                    category,
                    options
                ))
            })
            .await
            .map_err(|e| map_error(e, None))
        })
        .await
    }

    /// The messages of one category read, each decoded as its row arrives
    /// (a page of the paged feed is decoded while the next is fetched
    /// instead: see [`PostgresStore::category_rows`]).
    pub(crate) async fn category_messages_now(
        &self,
        category: &Category,
        options: &CategoryRead,
    ) -> Result<Vec<Message>> {
        let span = trace::read(BACKEND, "read_category", category.as_str());
        trace::call(span, trace::counted, async {
            options.validate()?;
            let read = read_with_retry(self.attempts(), || {
                leased!(self, |conn, persistent| member::read_category_messages(
                    conn,
                    persistent,
                    &self.inner.members,
                    category,
                    options
                ))
            })
            .await;
            read.map_err(|error| match rows::decode_failure(error) {
                Ok(failure) => failure.into(),
                Err(error) => map_error(error, None),
            })
        })
        .await
    }
}

/// A page of rows with the position after its last row (`column`: 3 for
/// the stream position, 4 for the global position), for [`pages`](message_store::backend::paging::pages).
pub(crate) fn raw_page(rows: Vec<PgRow>, column: usize) -> Result<RawPage<Vec<PgRow>>> {
    let next = match rows.last() {
        Some(row) => Some(rows::position(row, column)? + 1),
        None => None,
    };
    Ok(RawPage {
        len: rows.len(),
        next,
        rows,
    })
}
