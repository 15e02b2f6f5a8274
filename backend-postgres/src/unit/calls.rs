//! The calls of a unit of work on PostgreSQL, written once for both kinds:
//! [`PgUnit`](super::PgUnit), which owns its transaction, and
//! [`Within`](super::Within), the caller's. Each type gives
//! `connection()` (its connection while usable, else `UnitEnded`) and
//! `abort(error, write)` (ends its use after a failure and maps the
//! error) and `wrote(stream, count)` (notes messages written, to report
//! them as sent if it commits).

/// Runs `$call` on the open unit's connection (`$conn`, prepared as
/// `$persistent` says); a failure aborts the unit. `$write`: the stream and
/// expected version of a write, for its error.
macro_rules! on_unit {
    ($unit:expr, $write:expr, |$conn:ident, $persistent:ident| $call:expr) => {{
        let ($conn, $persistent) = $unit.connection()?;
        match $call.await {
            Ok(value) => value,
            Err(error) => return Err($unit.abort(error, $write).await),
        }
    }};
}

/// `impl UnitOfWork` for `$unit`, a type with `connection()` and `abort()`.
macro_rules! unit_calls {
    ($unit:ty) => {
        #[async_trait::async_trait]
        impl UnitOfWork for $unit {
            async fn write(
                &mut self,
                stream: &StreamName,
                messages: Vec<NewMessage>,
                expected: ExpectedVersion,
            ) -> Result<u64> {
                self.connection()?;
                use message_store::backend::trace;
                let call = trace::unit_write($crate::BACKEND, stream.as_str(), &messages);
                let count = messages.len();
                trace::call(call, trace::uncounted, async move {
                    validate_write(stream, &messages)?;
                    let batch = statements::Batch::new(messages);
                    let positions = $crate::unit::calls::on_unit!(
                        self,
                        Some((stream.as_str(), expected)),
                        |conn, persistent| {
                            statements::write(conn, persistent, stream, &batch, expected)
                        }
                    );
                    let last = convert::last_written(positions)?;
                    self.wrote(stream, count);
                    Ok(last)
                })
                .await
            }

            async fn read_stream(
                &mut self,
                stream: &StreamName,
                options: StreamRead,
            ) -> Result<Vec<Message>> {
                self.connection()?;
                message_store::backend::validate_stream_read(stream)?;
                let rows = $crate::unit::calls::on_unit!(self, None, |conn, persistent| {
                    statements::read_stream(conn, persistent, stream, &options)
                });
                Ok(rows::decode_all(&rows)?)
            }

            async fn read_category(
                &mut self,
                category: &Category,
                options: CategoryRead,
            ) -> Result<Vec<Message>> {
                self.connection()?;
                options.validate()?;
                let rows = $crate::unit::calls::on_unit!(self, None, |conn, persistent| {
                    statements::read_category(conn, persistent, category, &options)
                });
                Ok(rows::decode_all(&rows)?)
            }

            async fn read_last_message(
                &mut self,
                stream: &StreamName,
                message_type: Option<&str>,
            ) -> Result<Option<Message>> {
                let row = $crate::unit::calls::on_unit!(self, None, |conn, persistent| {
                    statements::read_last(conn, persistent, stream, message_type)
                });
                Ok(row.as_ref().map(rows::decode).transpose()?)
            }

            async fn stream_version(&mut self, stream: &StreamName) -> Result<Option<u64>> {
                let version = $crate::unit::calls::on_unit!(self, None, |conn, persistent| {
                    statements::stream_version(conn, persistent, stream)
                });
                Ok(version.and_then(convert::version_from_bigint))
            }

            async fn lock_categories(&mut self, categories: &[Category]) -> Result<()> {
                let names = statements::lock_order(categories.iter().map(Category::as_str));
                $crate::unit::calls::on_unit!(self, None, |conn, persistent| {
                    statements::lock_categories(conn, persistent, &names)
                });
                Ok(())
            }

            fn backend(&mut self) -> Option<&mut (dyn std::any::Any + Send)> {
                let (conn, _) = self.connection().ok()?;
                Some(conn)
            }
        }
    };
}

pub(crate) use on_unit;
pub(crate) use unit_calls;
