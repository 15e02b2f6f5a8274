//! Which instance should hold which bucket: one deterministic function of
//! the live members and the current holdings, so that every instance seeing
//! the same fleet computes the same assignment and acts only on its part.
//!
//! Every member gets `P / n` or `P / n + 1` buckets (balanced within one).
//! The larger shares go to the members holding most, and each member keeps
//! as many of its buckets as its share allows, so a join or a leave moves
//! only the buckets it must.

use std::collections::BTreeMap;

/// The member each bucket should be held by. `members` are the live
/// instances (at least one); `holders[b]` is bucket `b`'s live holder, if any.
pub(crate) fn assign(members: &[String], holders: &[Option<String>]) -> Vec<String> {
    let mut members: Vec<&String> = members.iter().collect();
    members.sort();
    members.dedup();
    assert!(!members.is_empty(), "a fleet plans with itself at least");
    let buckets = holders.len();
    let mut held: BTreeMap<&String, Vec<usize>> = members.iter().map(|m| (*m, vec![])).collect();
    for (bucket, holder) in holders.iter().enumerate() {
        if let Some(list) = holder.as_ref().and_then(|h| held.get_mut(h)) {
            list.push(bucket);
        }
    }
    let (base, extra) = (buckets / members.len(), buckets % members.len());
    let mut by_holdings = members.clone();
    by_holdings.sort_by(|a, b| held[b].len().cmp(&held[a].len()).then(a.cmp(b)));
    let quota: BTreeMap<&String, usize> = by_holdings
        .iter()
        .enumerate()
        .map(|(rank, m)| (*m, base + usize::from(rank < extra)))
        .collect();

    let mut target: Vec<Option<&String>> = vec![None; buckets];
    for (member, list) in &held {
        for &bucket in list.iter().take(quota[member]) {
            target[bucket] = Some(member);
        }
    }
    let free: Vec<usize> = (0..buckets).filter(|&b| target[b].is_none()).collect();
    let mut free = free.into_iter();
    for member in &members {
        let kept = target.iter().filter(|t| **t == Some(*member)).count();
        for _ in kept..quota[member] {
            let bucket = free.next().expect("the quotas add up to the buckets");
            target[bucket] = Some(member);
        }
    }
    target
        .into_iter()
        .map(|t| t.expect("every bucket assigned").clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn counts(target: &[String], members: &[String]) -> Vec<usize> {
        members
            .iter()
            .map(|m| target.iter().filter(|t| *t == m).count())
            .collect()
    }

    #[test]
    fn one_member_takes_every_bucket() {
        let target = assign(&names(&["a"]), &vec![None; 8]);
        assert_eq!(target, vec!["a".to_owned(); 8]);
    }

    #[test]
    fn every_split_is_balanced_within_one_and_settles() {
        for buckets in 1..=17usize {
            for n in 1..=6usize {
                let members: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
                // Start lopsided: the first member holds everything.
                let mut holders = vec![Some(members[0].clone()); buckets];
                let target = assign(&members, &holders);
                let c = counts(&target, &members);
                let (lo, hi) = (c.iter().min().unwrap(), c.iter().max().unwrap());
                assert!(hi - lo <= 1, "{buckets} buckets over {n}: {c:?}");
                // Once held as planned, the plan does not change.
                holders = target.iter().cloned().map(Some).collect();
                assert_eq!(assign(&members, &holders), target, "{buckets}/{n} settles");
            }
        }
    }

    #[test]
    fn a_join_moves_only_the_buckets_it_must() {
        let before = names(&["a", "b"]);
        let holders: Vec<Option<String>> = assign(&before, &vec![None; 8])
            .into_iter()
            .map(Some)
            .collect();
        let after = names(&["a", "b", "c"]);
        let target = assign(&after, &holders);
        let moved = (0..8)
            .filter(|&b| holders[b].as_ref() != Some(&target[b]))
            .count();
        // 8 over 3 is 3, 3, 2: c takes 2 or 3, and nothing else moves.
        assert_eq!(moved, counts(&target, &after)[2]);
        assert!(moved <= 3);
    }

    #[test]
    fn a_leave_hands_out_only_the_leavers_buckets() {
        let members = names(&["a", "b", "c"]);
        let holders: Vec<Option<String>> = assign(&members, &vec![None; 9])
            .into_iter()
            .map(Some)
            .collect();
        let left: Vec<Option<String>> = holders
            .iter()
            .map(|h| h.clone().filter(|h| h != "b"))
            .collect();
        let target = assign(&names(&["a", "c"]), &left);
        for bucket in 0..9 {
            if let Some(holder) = &left[bucket] {
                assert_eq!(&target[bucket], holder, "bucket {bucket} stays");
            }
        }
        assert_eq!(
            counts(&target, &names(&["a", "c"])).iter().sum::<usize>(),
            9
        );
    }
}
