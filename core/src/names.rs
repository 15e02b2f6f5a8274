//! What the conveniences of [`MessageStoreExt`](crate::MessageStoreExt)
//! accept as a stream name or a category: the validated types themselves,
//! or strings, checked when the call is made.

use crate::error::Result;
use crate::stream_name::{Category, StreamName};

/// Anything that names a stream: a [`StreamName`] (owned or borrowed), or a
/// string (`&str`, `String`) validated as one when the call that takes it
/// runs, with the same typed error as [`StreamName::new`].
///
/// ```
/// use message_store::IntoStreamName;
/// assert_eq!("account-1".into_stream_name()?.as_str(), "account-1");
/// assert!("".into_stream_name().is_err());
/// # Ok::<(), message_store::Error>(())
/// ```
pub trait IntoStreamName {
    /// The validated name.
    fn into_stream_name(self) -> Result<StreamName>;
}

impl IntoStreamName for StreamName {
    fn into_stream_name(self) -> Result<StreamName> {
        Ok(self)
    }
}

impl IntoStreamName for &StreamName {
    fn into_stream_name(self) -> Result<StreamName> {
        Ok(self.clone())
    }
}

impl IntoStreamName for &str {
    fn into_stream_name(self) -> Result<StreamName> {
        StreamName::new(self)
    }
}

impl IntoStreamName for String {
    fn into_stream_name(self) -> Result<StreamName> {
        StreamName::new(self)
    }
}

impl IntoStreamName for &String {
    fn into_stream_name(self) -> Result<StreamName> {
        StreamName::new(self)
    }
}

/// Anything that names a category: a [`Category`] (owned or borrowed), or a
/// string validated as one when the call that takes it runs.
pub trait IntoCategory {
    /// The validated category.
    fn into_category(self) -> Result<Category>;
}

impl IntoCategory for Category {
    fn into_category(self) -> Result<Category> {
        Ok(self)
    }
}

impl IntoCategory for &Category {
    fn into_category(self) -> Result<Category> {
        Ok(self.clone())
    }
}

impl IntoCategory for &str {
    fn into_category(self) -> Result<Category> {
        Category::new(self)
    }
}

impl IntoCategory for String {
    fn into_category(self) -> Result<Category> {
        Category::new(self)
    }
}

impl IntoCategory for &String {
    fn into_category(self) -> Result<Category> {
        Category::new(self)
    }
}
