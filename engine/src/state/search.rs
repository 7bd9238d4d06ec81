//! Finding records by a value they carried: which words of a row outcome the state
//! indexes, and how a person's query is read, so that every store answers the same
//! question. A value is indexed as written (trimmed, lower case), wherever it sits in
//! the record (a webhook's `customer.phone` too); a value of several words also by each
//! word (a last name inside `name`), an e-mail address also by its domain; one that looks
//! like a phone number as its digits, its last ten digits and its last four, so
//! `+1 (555) 010-0199`, `15550100199`, `555 010 0199` and `0199` all find it.

use serde::{Deserialize, Serialize};

use super::RowOutcome;

/// Longer values (message texts, notes) are not indexed: people search by identifiers.
pub const MAX_TERM_CHARS: usize = 100;

/// A record found: the flow, the run and the row's place in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub flow: String,
    pub run: u64,
    pub seq: u64,
}

/// Whether a query term also finds values it starts (`alice@` finds `alice@example.com`);
/// shorter terms find whole values only, so `a` does not list every record.
pub fn matches_start(term: &str) -> bool {
    term.len() >= 3
}

/// How deep into nested objects and lists a record's values are indexed.
const MAX_DEPTH: usize = 4;

/// The most terms one record is indexed by (a record of a thousand fields is found by
/// its first ones).
const MAX_TERMS: usize = 200;

/// The terms an outcome is found by: its key, the service's id, and every short scalar
/// value of its record, nested ones too; each once.
pub fn terms_of(outcome: &RowOutcome) -> Vec<String> {
    let mut terms = Vec::new();
    push(&mut terms, &outcome.key);
    if let Some(id) = &outcome.remote_id {
        push(&mut terms, id);
    }
    for value in outcome.record.values() {
        push_value(&mut terms, value, 0);
    }
    terms.sort_unstable();
    terms.dedup();
    terms.truncate(MAX_TERMS);
    terms
}

fn push_value(terms: &mut Vec<String>, value: &serde_json::Value, depth: usize) {
    if terms.len() >= MAX_TERMS * 2 {
        return;
    }
    match value {
        serde_json::Value::String(s) => push(terms, s),
        serde_json::Value::Number(n) => push(terms, &n.to_string()),
        serde_json::Value::Object(fields) if depth < MAX_DEPTH => {
            for inner in fields.values() {
                push_value(terms, inner, depth + 1);
            }
        }
        serde_json::Value::Array(items) if depth < MAX_DEPTH => {
            for inner in items {
                push_value(terms, inner, depth + 1);
            }
        }
        _ => {}
    }
}

/// What a query is looked up as: its normal form, and its digits when it is a phone
/// number (the longest first). Empty for a query with nothing to look for.
pub fn query_terms(query: &str) -> Vec<String> {
    let mut terms = Vec::new();
    if let Some(term) = normal(query) {
        if let Some(digits) = phone_digits(&term) {
            let last_ten = digits[digits.len().saturating_sub(10)..].to_string();
            terms.push(digits);
            terms.push(last_ten);
        }
        terms.push(term);
    }
    terms.dedup();
    terms
}

fn push(terms: &mut Vec<String>, value: &str) {
    let Some(term) = normal(value) else {
        return;
    };
    // A phone number is found by its digits (a query is turned into digits too), its
    // last ten (without a country code) and its last four.
    if let Some(digits) = phone_digits(&term) {
        if digits.len() > 10 {
            terms.push(digits[digits.len() - 10..].to_string());
        }
        terms.push(digits[digits.len() - 4..].to_string());
        terms.push(digits);
        return;
    }
    // An e-mail address by its domain too; words by each word.
    if let Some((_, domain)) = term.split_once('@') {
        if domain.contains('.') && !domain.contains(char::is_whitespace) {
            terms.push(domain.to_string());
        }
    }
    let words: Vec<&str> = term
        .split(|c: char| c.is_whitespace() || ",;".contains(c))
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 1 {
        terms.extend(words.into_iter().map(String::from));
    }
    terms.push(term);
}

/// Trimmed, lower case, without control characters; `None` when empty or too long.
fn normal(value: &str) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_TERM_CHARS {
        return None;
    }
    Some(
        trimmed
            .chars()
            .filter(|c| !c.is_control())
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

/// The digits of a value written as a phone number (digits, spaces, `+-().`, at least
/// seven digits), when they differ from the value itself.
fn phone_digits(term: &str) -> Option<String> {
    let phone_like = term
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !phone_like {
        return None;
    }
    let digits: String = term.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= 7 && digits != term).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::RowStatus;
    use serde_json::json;

    #[test]
    fn a_phone_number_is_found_however_it_is_written() {
        let row: RowOutcome = serde_json::from_value(json!({
            "run": 1, "seq": 1, "key": "order-7", "status": RowStatus::Sent, "at": chrono::Utc::now(),
            "record": {"phone": "+1 (555) 010-0199", "email": "Ann@Example.com", "amount": 42, "note": "x".repeat(200), "ok": true},
        }))
        .expect("from_value succeeds");
        let terms = terms_of(&row);
        for query in [
            "+15550100199",
            "555 010 0199",
            "(555) 010-0199",
            "ann@example.com ",
            "ORDER-7",
            "42",
        ] {
            assert!(
                query_terms(query).iter().any(|q| terms.contains(q)),
                "{query} not in {terms:?}"
            );
        }
        assert!(!terms.iter().any(|t| t.starts_with("xxx")), "{terms:?}");
        assert!(query_terms("   ").is_empty());
    }

    #[test]
    fn nested_values_words_domains_and_a_phones_last_digits_find_a_record() {
        let row: RowOutcome = serde_json::from_value(json!({
            "run": 1, "seq": 1, "key": "evt-1", "status": RowStatus::Sent, "at": chrono::Utc::now(),
            "record": {
                "customer": {"phone": "+1 (202) 555-0013", "name": "Olena Kovalenko"},
                "emails": ["ivan@shop.example.com"],
            },
        }))
        .expect("from_value succeeds");
        let terms = terms_of(&row);
        for query in [
            "2025550013",
            "0013",
            "Kovalenko",
            "olena kovalenko",
            "shop.example.com",
            "ivan@shop.example.com",
        ] {
            assert!(
                query_terms(query).iter().any(|q| terms.contains(q)),
                "{query} not in {terms:?}"
            );
        }
    }
}
