//! The conformance cases. Each is a plain `async fn(&dyn MessageStore)` named
//! for the behaviour it checks; [`conformance_suite!`](crate::conformance_suite)
//! stamps one test per case.

mod concurrency;
mod consumer;
mod decorators;
mod ext;
mod filters;
mod fleet;
mod idle;
mod lag;
mod limits;
mod read;
mod read_ahead;
mod read_last;
mod subscription;
mod traced;
mod typed;
mod unit;
mod write;
mod write_input;
mod writers;

pub use concurrency::*;
pub use consumer::*;
pub use decorators::*;
pub use ext::*;
pub use filters::*;
pub use fleet::*;
pub use idle::*;
pub use lag::*;
pub use limits::*;
pub use read::*;
pub use read_ahead::*;
pub use read_last::*;
pub use subscription::*;
pub use traced::*;
pub use typed::*;
pub use unit::*;
pub use write::*;
pub use write_input::*;
pub use writers::*;
