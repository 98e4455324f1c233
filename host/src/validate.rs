//! Checks a kernel's answers before they are scored: exactly `k` ids per
//! query, every id in range, no id twice in one answer. The first offending
//! query is named.

use crate::verdict::Failure;

/// The id a kernel writes for a missing result (the WIT world's padding).
pub const NO_ID: u32 = u32::MAX;

/// Validates `ids` as `queries` answers of `k` ids each over a base of
/// `n_base` points.
pub fn validate_answers(
    ids: &[u32],
    queries: usize,
    k: usize,
    n_base: usize,
) -> Result<(), Failure> {
    if ids.len() != queries * k {
        return Err(Failure::invalid_output(format!(
            "expected {queries} queries × k = {k} ids ({}), got {}",
            queries * k,
            ids.len()
        )));
    }
    let mut sorted = Vec::with_capacity(k);
    for (q, answer) in ids.chunks_exact(k.max(1)).enumerate() {
        let missing = answer.iter().filter(|&&id| id == NO_ID).count();
        if missing > 0 {
            return Err(Failure::invalid_output(format!(
                "query {q}: {} ids returned, k = {k}",
                k - missing
            )));
        }
        if let Some(&id) = answer.iter().find(|&&id| id as usize >= n_base) {
            return Err(Failure::invalid_output(format!(
                "query {q}: id {id} is out of range (the base set has {n_base} points)"
            )));
        }
        sorted.clear();
        sorted.extend_from_slice(answer);
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Failure::invalid_output(format!(
                "query {q}: id {} is returned more than once",
                w[0]
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    fn message(ids: &[u32], queries: usize, k: usize, n: usize) -> String {
        let err = validate_answers(ids, queries, k, n).unwrap_err();
        assert_eq!(err.verdict, Verdict::InvalidOutput);
        err.message
    }

    #[test]
    fn good_answers_pass() {
        assert!(validate_answers(&[0, 1, 2, 3, 1, 0], 2, 3, 4).is_ok());
    }

    #[test]
    fn each_fault_names_the_first_bad_query() {
        assert!(message(&[0, 1, 2], 2, 3, 4).contains("got 3"));
        assert!(
            message(&[0, 1, 2, 3, NO_ID, NO_ID], 2, 3, 4)
                .contains("query 1: 1 ids returned, k = 3")
        );
        assert!(message(&[0, 1, 9, 3, 2, 1], 2, 3, 4).contains("query 0: id 9 is out of range"));
        assert!(
            message(&[0, 1, 2, 3, 3, 1], 2, 3, 4)
                .contains("query 1: id 3 is returned more than once")
        );
    }
}
