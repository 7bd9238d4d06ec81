//! "Did you mean …?" suggestions for misspelt names.

/// The closest candidate to `input`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let input_lower = input.to_lowercase();
    let limit = (input.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            let c_lower = c.to_lowercase();
            (
                strsim::levenshtein(&input_lower, &c_lower),
                strsim::jaro_winkler(&input_lower, &c_lower),
                c,
            )
        })
        .filter(|(distance, _, _)| *distance <= limit)
        // Fewest edits first; among equals, the one sharing the longer prefix.
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, c)| c)
}

/// A hint naming the closest candidate, or listing them all when none is close.
pub fn hint(input: &str, candidates: &[&str]) -> String {
    match did_you_mean(input, candidates.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("expected one of: {}", backticked(candidates)),
    }
}

pub fn backticked(items: &[&str]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_name() {
        // Connector names: the cases the catalogue's tests meet with real ones.
        assert_eq!(did_you_mean("4x5", ["4x4", "csv"]), Some("4x4"));
        assert_eq!(
            did_you_mean("shop-4x", ["shop-4x4", "other"]),
            Some("shop-4x4")
        );
        assert_eq!(did_you_mean("zzzzzz", ["4x4", "csv"]), None);
    }
}
