//! The shared conformance suite on `MemoryStore`, directly and through
//! `Arc<dyn MessageStore>` and `Box<dyn MessageStore>` (so object safety and
//! the forwarding impls cannot regress).

use message_store_memory::MemoryStore;

mod direct {
    use super::*;
    message_store_conformance::conformance_suite!(async { MemoryStore::new() });
}

mod arc_dyn {
    use super::*;
    use message_store::MessageStore;
    use std::sync::Arc;
    message_store_conformance::conformance_suite!(async {
        Arc::new(MemoryStore::new()) as Arc<dyn MessageStore>
    });
}

mod box_dyn {
    use super::*;
    use message_store::MessageStore;
    message_store_conformance::conformance_suite!(
        async { Box::new(MemoryStore::new()) as Box<dyn MessageStore> },
        property_cases = 64
    );
}
