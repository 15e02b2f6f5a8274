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

/// The impls both traits have alike: the validated type (owned or
/// borrowed) as it is, strings through the type's `new`.
macro_rules! into_name {
    ($trait:ident, $method:ident, $ty:ident) => {
        impl $trait for $ty {
            fn $method(self) -> Result<$ty> {
                Ok(self)
            }
        }

        impl $trait for &$ty {
            fn $method(self) -> Result<$ty> {
                Ok(self.clone())
            }
        }

        impl $trait for &str {
            fn $method(self) -> Result<$ty> {
                $ty::new(self)
            }
        }

        impl $trait for String {
            fn $method(self) -> Result<$ty> {
                $ty::new(self)
            }
        }

        impl $trait for &String {
            fn $method(self) -> Result<$ty> {
                $ty::new(self)
            }
        }
    };
}

into_name!(IntoStreamName, into_stream_name, StreamName);

/// Anything that names a category: a [`Category`] (owned or borrowed), or a
/// string validated as one when the call that takes it runs.
pub trait IntoCategory {
    /// The validated category.
    fn into_category(self) -> Result<Category>;
}

into_name!(IntoCategory, into_category, Category);
