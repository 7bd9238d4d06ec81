//! A range of a sheet, read once for every use: the source's new rows, the `find_row`
//! look-up and `update_row` all read its values ([`super::config::VALUES`])
//! here (token for a service account, backing off on the quota's 429), and work out
//! where a cell is in A1 notation. A source read in pages also asks how many rows the
//! sheet's grid has ([`super::config::GRID`]), so that a page of
//! blank rows is not taken for the end.

use std::time::Duration;

use engine::SendError;
use serde::Deserialize;
use serde_json::Value;

use super::auth;
use super::config::Account;
use crate::http::{self, AccountClient};

/// Tries for one read of a source when the quota answers 429: its waits (2, 4, … s, at
/// most a minute each) outlast a per-minute quota, which a long read in pages can meet.
/// A receiver's or a look-up's read is tried once: the engine's retries (bounded by
/// `delivery.max_time`, after the `Retry-After` asked for) take it from there, and a
/// send slot is not held asleep meanwhile.
pub(super) const QUOTA_TRIES: u32 = 7;

/// What Sheets answers for a range: where it really is, and its rows.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ValueRange {
    #[serde(default)]
    pub range: String,
    #[serde(default)]
    pub values: Vec<Vec<Value>>,
}

/// The values of `range` in `spreadsheet_id`, read as `account` (a service account's
/// token with `scope`). Errors say what Google said, with a hint for 403 and 404; 401 is
/// the account refused, 429 (past the tries) and 5xx are transient.
pub(super) async fn read(
    client: &AccountClient,
    account: &Account,
    spreadsheet_id: &str,
    range: &str,
    (scope, timeout, quota_tries): (&str, Duration, u32),
) -> Result<ValueRange, SendError> {
    let path = super::config::path(super::config::VALUES, spreadsheet_id, range, "");
    let body = get(client, account, &path, (scope, timeout, quota_tries)).await?;
    serde_json::from_slice(&body).map_err(|e| {
        SendError::permanent(format!(
            "Google Sheets answered with something that is not a value range: {e}"
        ))
    })
}

/// How many rows the grid of the sheet `range` is on has (filled or not).
pub(super) async fn grid_rows(
    client: &AccountClient,
    account: &Account,
    spreadsheet_id: &str,
    range: &str,
    scope: &str,
    timeout: Duration,
) -> Result<usize, SendError> {
    let path = super::config::path(super::config::GRID, spreadsheet_id, range, "");
    let body = get(client, account, &path, (scope, timeout, QUOTA_TRIES)).await?;
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    answer["sheets"][0]["properties"]["gridProperties"]["rowCount"]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| {
            SendError::permanent(format!(
                "Google Sheets did not say how many rows the sheet of `{range}` has: {}",
                http::snippet(&body)
            ))
        })
}

/// `GET path` as `account`: the body of a 2xx answer, or the error it was.
async fn get(
    client: &AccountClient,
    account: &Account,
    path: &str,
    (scope, timeout, quota_tries): (&str, Duration, u32),
) -> Result<Vec<u8>, SendError> {
    let mut tries = 0;
    loop {
        tries += 1;
        let mut call = client.get(path, timeout);
        if let (None, Some(file)) = (&account.api_key, &account.service_account_file) {
            let token = auth::token(client, file, &account.token_url, scope)
                .await
                .map_err(|message| SendError::Unauthorized {
                    code: None,
                    message,
                })?;
            call = call.bearer(&token);
        }
        let response = call.send().await.map_err(|e| SendError::Transient {
            reason: format!("Google Sheets: {e}"),
            retry_after: None,
        })?;
        let status = response.status.as_u16();
        if response.status.is_success() {
            return Ok(response.body);
        }
        if status == 429 && tries < quota_tries {
            let wait = http::retry_after(&response.headers, chrono::Utc::now())
                .unwrap_or(Duration::from_secs(1 << tries));
            tracing::warn!(?wait, "Google Sheets quota exceeded (429); backing off");
            tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
            continue;
        }
        let detail = super::google_error(&response.body);
        let hint = match status {
            403 => " (share the sheet with the service account's client_email, or make it public for an API key)",
            404 => " (check spreadsheet_id and the sheet name in range)",
            _ => "",
        };
        let message = format!("Google Sheets answered HTTP {status}: {detail}{hint}");
        return Err(match status {
            401 => SendError::Unauthorized {
                code: None,
                message,
            },
            408 | 429 | 500..=599 => SendError::Transient {
                reason: message,
                retry_after: http::retry_after(&response.headers, chrono::Utc::now()),
            },
            _ => SendError::Permanent {
                code: None,
                message,
            },
        });
    }
}

/// The table `keyed` names, read as `account` (token `scope`), and its key column.
pub(super) async fn keyed(
    client: &AccountClient,
    account: &Account,
    keyed: &super::config::Keyed,
    scope: &str,
    timeout: Duration,
) -> Result<(Table, usize), SendError> {
    let read = read(
        client,
        account,
        &keyed.spreadsheet_id,
        &keyed.range,
        (scope, timeout, 1),
    )
    .await?;
    let table = Table::of(read, &keyed.range);
    let key = table.column(&keyed.key).map_err(SendError::permanent)?;
    Ok((table, key))
}

/// A cell's text as the source and look-ups give it.
pub(super) fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Where an A1 range starts: its sheet (`Orders`, quotes kept: `'My Sheet'`; empty when
/// it names none), first column (0 = A) and first row (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Origin {
    pub sheet: String,
    pub column: usize,
    pub row: usize,
}

/// A range's sheet (`Orders`, quotes kept; empty when it names none) and its cells
/// (`B3:F`; empty for a whole sheet).
fn sheet_and_cells(range: &str) -> (&str, &str) {
    match range.rsplit_once('!') {
        Some((sheet, cells)) => (sheet, cells),
        // A bare name is a whole sheet, unless it reads as cells (`A:F`, `B2`).
        None if looks_like_cells(range) => ("", range),
        None => (range, ""),
    }
}

/// One end of a range of cells (`B3`, `$F`, `12`): its column (0 = A) and row, each when
/// it names one.
fn corner(text: &str) -> (Option<usize>, Option<usize>) {
    let text = text.replace('$', "");
    let letters = text.chars().take_while(char::is_ascii_alphabetic).count();
    (column_index(&text[..letters]), text[letters..].parse().ok())
}

/// The start of `range` (`Orders!B3:F` → Orders, B, 3; `Orders` → Orders, A, 1; `A:F` →
/// no sheet, A, 1).
pub(super) fn origin(range: &str) -> Origin {
    let (sheet, cells) = sheet_and_cells(range);
    let (column, row) = corner(cells.split(':').next().unwrap_or(cells));
    Origin {
        sheet: sheet.to_string(),
        column: column.unwrap_or(0),
        row: row.unwrap_or(1),
    }
}

/// Where an A1 range starts and, when it says, where it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Extent {
    pub origin: Origin,
    /// Its last column (0 = A): none for a whole sheet (`Orders`) or whole rows.
    pub last_column: Option<usize>,
    /// Its last row (1-based): none when it runs to the sheet's end (`A1:F`, `Orders`).
    pub last_row: Option<usize>,
}

/// The extent of `range` (`Orders!A1:F500` → A1 to F500; `Orders!B3:F` → B3 to F, to the
/// end; `Orders` → the whole sheet; `C5` → the one cell).
pub(super) fn extent(range: &str) -> Extent {
    let (_, cells) = sheet_and_cells(range);
    // The end is after the colon; a single cell is its own end.
    let end = cells.split_once(':').map_or(cells, |(_, end)| end);
    let (last_column, last_row) = corner(end);
    Extent {
        origin: origin(range),
        last_column,
        last_row,
    }
}

impl Extent {
    /// Rows `first` to `last` (1-based, on the sheet) of the range's columns, in A1
    /// notation: `Orders!A2:F5001`, or `Orders!2:5001` for a range of whole rows.
    pub fn rows(&self, first: usize, last: usize) -> String {
        let cells = match self.last_column {
            Some(column) => format!(
                "{}{first}:{}{last}",
                column_letters(self.origin.column),
                column_letters(column)
            ),
            None => format!("{first}:{last}"),
        };
        if self.origin.sheet.is_empty() {
            cells
        } else {
            format!("{}!{cells}", self.origin.sheet)
        }
    }
}

/// `A:F`, `B2`, `$C$5:$D`: cells, not a sheet's name (`Orders`, `Tab`, `Sheet1`). A
/// single reference without a row number is a name: columns alone come in pairs.
fn looks_like_cells(text: &str) -> bool {
    if !text.contains(':') && !text.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    text.split(':').all(|part| {
        let part = part.replace('$', "");
        let letters = part.chars().take_while(char::is_ascii_alphabetic).count();
        letters <= 3
            && part[letters..].chars().all(|c| c.is_ascii_digit())
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_alphanumeric())
    })
}

/// `A` → 0, `Z` → 25, `AA` → 26; `None` for no letters.
fn column_index(letters: &str) -> Option<usize> {
    if letters.is_empty() {
        return None;
    }
    letters
        .chars()
        .try_fold(0usize, |n, c| {
            Some(n * 26 + (c.to_ascii_uppercase() as usize - 'A' as usize + 1))
        })
        .map(|n| n - 1)
}

/// 0 → `A`, 25 → `Z`, 26 → `AA`.
pub(super) fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push((b'A' + (index % 26) as u8) as char);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

/// The A1 address of one cell on the origin's sheet (`'Orders'!D7`).
pub(super) fn address(origin: &Origin, column: usize, row: usize) -> String {
    let cell = format!("{}{row}", column_letters(column));
    if origin.sheet.is_empty() {
        cell
    } else {
        format!("{}!{cell}", origin.sheet)
    }
}

/// A sheet's header and rows: where a key column's value is.
pub(super) struct Table {
    pub origin: Origin,
    pub header: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The range as read: its first row is the header.
    pub fn of(read: ValueRange, asked: &str) -> Table {
        let answered = if read.range.is_empty() {
            asked
        } else {
            &read.range
        };
        let mut origin = origin(answered);
        if origin.sheet.is_empty() {
            origin.sheet = self::origin(asked).sheet;
        }
        let mut rows = read.values.into_iter();
        let header = rows
            .next()
            .map(|h| h.iter().map(|c| cell(c).trim().to_string()).collect())
            .unwrap_or_default();
        Table {
            origin,
            header,
            rows: rows.collect(),
        }
    }

    /// The column named `name` in the header, or why not.
    pub fn column(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h == name.trim())
            .ok_or_else(|| {
                format!(
                    "the sheet has no column `{name}` (its header: {})",
                    if self.header.is_empty() {
                        "empty".to_string()
                    } else {
                        self.header.join(", ")
                    }
                )
            })
    }

    /// The first row whose cell in `column` is `value` (trimmed): its index in `rows` and
    /// its row number on the sheet.
    pub fn find(&self, column: usize, value: &str) -> Option<(usize, usize)> {
        let value = value.trim();
        self.rows
            .iter()
            .position(|row| row.get(column).is_some_and(|c| cell(c).trim() == value))
            .map(|i| (i, self.origin.row + 1 + i))
    }

    /// Row `i` as a record: the header's names with the row's cells (empty for cells
    /// Sheets left out), and `_row`, its row number on the sheet.
    pub fn record(&self, i: usize) -> Value {
        let row = &self.rows[i];
        let mut fields = serde_json::Map::new();
        for (n, name) in self.header.iter().enumerate() {
            if name.is_empty() {
                continue;
            }
            let text = row.get(n).map(cell).unwrap_or_default();
            fields.insert(name.clone(), Value::String(text));
        }
        fields.insert("_row".into(), Value::from(self.origin.row + 1 + i));
        Value::Object(fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_of_a1_ranges() {
        let at = |s: &str, c: usize, r: usize| Origin {
            sheet: s.into(),
            column: c,
            row: r,
        };
        assert_eq!(origin("Orders!B3:F"), at("Orders", 1, 3));
        assert_eq!(origin("'My Sheet'!A:F"), at("'My Sheet'", 0, 1));
        assert_eq!(origin("Orders"), at("Orders", 0, 1));
        assert_eq!(origin("Sheet1"), at("Sheet1", 0, 1));
        assert_eq!(origin("Tab"), at("Tab", 0, 1));
        assert_eq!(origin("A:ZZ"), at("", 0, 1));
        assert_eq!(origin("$C$5:$D"), at("", 2, 5));
        assert_eq!(origin("Orders!AA10"), at("Orders", 26, 10));
    }

    #[test]
    fn columns_round_trip_their_letters() {
        for (i, letters) in [
            (0, "A"),
            (25, "Z"),
            (26, "AA"),
            (51, "AZ"),
            (701, "ZZ"),
            (702, "AAA"),
        ] {
            assert_eq!(column_letters(i), letters);
            assert_eq!(column_index(letters), Some(i));
        }
        let o = origin("Orders!A1:F");
        assert_eq!(address(&o, 3, 7), "Orders!D7");
    }

    #[test]
    fn extents_say_where_a_range_ends_and_name_its_pages() {
        let ends = |range: &str| {
            let e = extent(range);
            (e.last_column, e.last_row)
        };
        assert_eq!(ends("Orders!A1:F500"), (Some(5), Some(500)));
        assert_eq!(ends("Orders!B3:F"), (Some(5), None));
        assert_eq!(ends("'My Sheet'!$A$1:$D"), (Some(3), None));
        assert_eq!(ends("Orders"), (None, None));
        assert_eq!(ends("A:C"), (Some(2), None));
        assert_eq!(ends("Orders!C5"), (Some(2), Some(5)));
        assert_eq!(extent("Orders!B3:F").rows(4, 10003), "Orders!B4:F10003");
        assert_eq!(extent("'My Sheet'!A1:D").rows(1, 10), "'My Sheet'!A1:D10");
        assert_eq!(extent("Orders").rows(2, 5), "Orders!2:5");
        assert_eq!(extent("A:C").rows(1, 3), "A1:C3");
    }
}
