//! Property tests of the pure parts of the contract: the stream-name grammar
//! and consumer-group partitioning, on arbitrary input.

use message_store::{stream_name, Category, ConsumerGroup, StreamName};
use proptest::prelude::*;

fn name_text() -> impl Strategy<Value = String> {
    // Mostly the characters that matter to the grammar, plus some others.
    prop::collection::vec(
        prop::sample::select(vec!['a', 'b', '-', '+', ':', ' ', 'é', '\0', '1']),
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A stream name is accepted exactly when it is non-empty, NUL-free and does not start with `-`;
    /// category, id and cardinal id recompose the name as Message DB splits it.
    #[test]
    fn stream_names_split_at_the_first_dash(text in name_text()) {
        let valid = !text.is_empty() && !text.contains('\0') && !text.starts_with('-');
        prop_assert_eq!(StreamName::new(text.clone()).is_ok(), valid);
        let category = stream_name::category_of(&text);
        prop_assert!(!category.contains('-'));
        match stream_name::id_of(&text) {
            Some(id) => {
                prop_assert_eq!(format!("{category}-{id}"), text.clone());
                let cardinal = stream_name::cardinal_id_of(&text).unwrap();
                prop_assert!(id.starts_with(cardinal));
                prop_assert!(!cardinal.contains('+'));
                prop_assert!(id.len() == cardinal.len() || id[cardinal.len()..].starts_with('+'));
            }
            None => {
                prop_assert_eq!(category, text.as_str());
                prop_assert!(stream_name::is_category(&text));
            }
        }
    }

    /// A category is accepted exactly when it is non-empty, NUL-free and has no `-`,
    /// and every stream built from it belongs to it.
    #[test]
    fn categories_own_the_streams_built_from_them(text in name_text(), id in name_text()) {
        let valid = !text.is_empty() && !text.contains('\0') && !text.contains('-');
        let category = Category::new(text.clone());
        prop_assert_eq!(category.is_ok(), valid);
        if let (Ok(category), false) = (category, id.contains('\0')) {
            let stream = category.stream(&id).unwrap();
            prop_assert!(category.contains(stream.as_str()));
            prop_assert_eq!(stream.category(), category);
            prop_assert_eq!(stream.id(), Some(id.as_str()));
        }
    }

    /// Every stream with an id belongs to exactly one member of a group; id-less streams to none.
    #[test]
    fn each_stream_belongs_to_exactly_one_member(text in name_text(), size in 1u32..50) {
        let members = (0..size)
            .filter(|&member| ConsumerGroup::new(member, size).unwrap().contains(&text))
            .count();
        let expected = usize::from(stream_name::id_of(&text).is_some());
        prop_assert_eq!(members, expected);
    }
}
