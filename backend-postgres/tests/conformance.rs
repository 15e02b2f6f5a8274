//! The shared conformance suite on PostgreSQL: once on the schema our
//! installer creates, once on genuine Message DB installed by its own script.
//! Both connect as the functions-only `message_store` role.

mod support;

use support::Variant;

mod ours {
    use super::*;
    message_store_conformance::conformance_suite!(
        optional: support::store(Variant::Ours),
        property_cases = 32
    );
}

mod genuine {
    use super::*;
    message_store_conformance::conformance_suite!(
        optional: support::store(Variant::Genuine),
        property_cases = 32
    );
}
