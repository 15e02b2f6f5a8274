//! Message DB's `hash_64` and consumer-group partitioning, bit-exact.

use md5::{Digest, Md5};

use crate::error::{ConsumerGroupProblem, Error, Result};
use crate::stream_name::cardinal_id_of;

/// The largest group size Message DB accepts (it binds the size as a smallint).
pub const MAX_CONSUMER_GROUP_SIZE: u32 = 32_767;

/// Message DB's `hash_64`: the first 8 bytes of the MD5 of the UTF-8 text,
/// read as a big-endian two's-complement `i64`.
///
/// ```
/// assert_eq!(message_store::hash_64("someStream"), 2053039834977696644);
/// ```
pub fn hash_64(value: &str) -> i64 {
    let digest = Md5::digest(value.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// One member of a consumer group: the member receives the streams whose
/// cardinal id hashes to it, so each entity is handled by exactly one member.
///
/// ```
/// use message_store::ConsumerGroup;
/// let group = ConsumerGroup::new(1, 3).unwrap();
/// assert!(group.contains("account-2"));
/// assert!(!group.contains("account")); // streams without an id go to no member
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerGroup {
    member: u32,
    size: u32,
}

impl ConsumerGroup {
    /// Validates member and size in Message DB's order: size at least 1,
    /// member below size; also a size Message DB can bind (at most 32767).
    pub fn new(member: u32, size: u32) -> Result<Self> {
        let problem = if size < 1 {
            Some(ConsumerGroupProblem::SizeLessThanOne)
        } else if member >= size {
            Some(ConsumerGroupProblem::MemberNotLessThanSize)
        } else if size > MAX_CONSUMER_GROUP_SIZE {
            Some(ConsumerGroupProblem::SizeTooLarge)
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::InvalidConsumerGroup {
                member: member.into(),
                size: size.into(),
                problem,
            }),
            None => Ok(ConsumerGroup { member, size }),
        }
    }

    /// This member's index, `0..size`.
    pub fn member(&self) -> u32 {
        self.member
    }

    /// The number of members.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// True when this member receives the stream: `|hash_64(cardinal id)| mod size == member`.
    /// Streams without an id belong to no member.
    pub fn contains(&self, stream_name: &str) -> bool {
        cardinal_id_of(stream_name)
            .is_some_and(|cardinal| member_of(cardinal, self.size) == self.member)
    }
}

/// The member of a group of `size` that receives streams with this cardinal id.
pub fn member_of(cardinal_id: &str, size: u32) -> u32 {
    let bucket = hash_64(cardinal_id).unsigned_abs() % u64::from(size);
    u32::try_from(bucket).expect("a remainder modulo a u32 fits in u32")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_64_matches_message_db() {
        let table: &[(&str, i64)] = &[
            ("", -3162216497309240828),
            ("1", -4266524885998034046),
            ("2", -4026655064267673757),
            ("123", 2318431741638412123),
            ("abc", -8070080442485551184),
            ("account", -2132379389342958165),
            ("someStream", 2053039834977696644),
            ("someStream:command", 752374363316544549),
            ("ü", -4597031018240990771),
            ("café-ü", 6441126649939632346),
            ("3", -1383792015730482434),
        ];
        for &(value, hash) in table {
            assert_eq!(hash_64(value), hash, "hash_64({value:?})");
        }
    }

    #[test]
    fn membership_matches_message_db() {
        // cardinal id, then the member for sizes 2, 3, 4, 5 (message-db.md §3.3).
        let table: &[(&str, [u32; 4])] = &[
            ("1", [0, 0, 2, 1]),
            ("2", [1, 1, 1, 2]),
            ("3", [0, 2, 2, 4]),
            ("123", [1, 1, 3, 3]),
            ("abc", [0, 2, 0, 4]),
            ("ü", [1, 2, 3, 1]),
            ("", [0, 2, 0, 3]),
        ];
        for &(cardinal, members) in table {
            for (size, expected) in (2..=5).zip(members) {
                assert_eq!(
                    member_of(cardinal, size),
                    expected,
                    "{cardinal:?} size {size}"
                );
            }
        }
    }

    #[test]
    fn compound_ids_share_a_member_and_idless_streams_have_none() {
        let group = ConsumerGroup::new(1, 3).unwrap();
        assert!(group.contains("account-2"));
        assert!(group.contains("account-2+abc"));
        assert!(group.contains("account:command-2"));
        assert!(!group.contains("account"));
        let whole = ConsumerGroup::new(0, 1).unwrap();
        assert!(!whole.contains("account"));
        assert!(whole.contains("account-"));
    }

    #[test]
    fn invalid_groups_name_the_rule() {
        let problem = |m, s| match ConsumerGroup::new(m, s) {
            Err(Error::InvalidConsumerGroup { problem, .. }) => problem,
            other => panic!("{m}/{s}: {other:?}"),
        };
        assert_eq!(problem(0, 0), ConsumerGroupProblem::SizeLessThanOne);
        assert_eq!(problem(3, 3), ConsumerGroupProblem::MemberNotLessThanSize);
        assert_eq!(problem(0, 32_768), ConsumerGroupProblem::SizeTooLarge);
        assert!(ConsumerGroup::new(32_766, 32_767).is_ok());
        let text = ConsumerGroup::new(3, 3).unwrap_err().to_string();
        assert!(
            text.contains("member 3") && text.contains("size 3"),
            "{text}"
        );
    }
}
