//! `connector: csv` — rows of a CSV file with a header line. A row is identified by its
//! `key` column(s), or by a hash of the whole row. A malformed line fails alone.

use std::path::PathBuf;

use async_trait::async_trait;
use engine::{Fetched, Record, Reject, Source, SourceError};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// A CSV file as a source.
#[derive(Debug, Clone)]
pub struct CsvFile {
    path: PathBuf,
    key: Vec<String>,
    delimiter: u8,
}

impl CsvFile {
    pub fn new(config: &flows::CsvSource) -> Self {
        CsvFile {
            path: config.path.clone(),
            key: config.key.clone(),
            delimiter: config.delimiter,
        }
    }

    fn reader(&self) -> Result<csv::Reader<std::fs::File>, SourceError> {
        csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .flexible(false)
            .from_path(&self.path)
            .map_err(|e| {
                SourceError(format!(
                    "cannot open `{}`: {}",
                    self.path.display(),
                    io_reason(&e)
                ))
            })
    }

    /// The header row.
    pub fn header(&self) -> Result<Vec<String>, SourceError> {
        let mut reader = self.reader()?;
        let header = reader.headers().map_err(|e| {
            SourceError(format!(
                "cannot read the header of `{}`: {e}",
                self.path.display()
            ))
        })?;
        Ok(header.iter().map(|h| h.trim().to_string()).collect())
    }

    /// Key columns missing from a header, as an error message.
    pub fn missing_key_columns(&self, header: &[String]) -> Option<String> {
        let missing: Vec<&str> = self
            .key
            .iter()
            .filter(|k| !header.contains(k))
            .map(String::as_str)
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "key column{} `{}` not in the header of `{}` (columns: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join("`, `"),
                self.path.display(),
                header.join(", ")
            )
        })
    }

    fn read_all(&self) -> Result<Fetched, SourceError> {
        let mut reader = self.reader()?;
        let header = self.header()?;
        if let Some(problem) = self.missing_key_columns(&header) {
            return Err(SourceError(problem));
        }
        let key_index: Vec<usize> = self
            .key
            .iter()
            .filter_map(|k| header.iter().position(|h| h == k))
            .collect();
        let mut fetched = Fetched::default();
        for (i, row) in reader.records().enumerate() {
            let line =
                |row: &csv::StringRecord| row.position().map(|p| p.line()).unwrap_or(i as u64 + 2);
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    // csv reports some errors (UTF-8) at the record's start in the wrong place;
                    // the row index is a floor for the line the row starts on.
                    let at = e
                        .position()
                        .map(|p| p.line())
                        .unwrap_or(0)
                        .max(i as u64 + 2);
                    fetched.rejects.push(Reject {
                        key: format!("line {at}"),
                        reason: row_error(&e, header.len()),
                    });
                    continue;
                }
            };
            if row.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            let key = if key_index.is_empty() {
                whole_row_key(&row)
            } else {
                let parts: Vec<&str> = key_index
                    .iter()
                    .map(|&i| row.get(i).unwrap_or("").trim())
                    .collect();
                if parts.iter().any(|p| p.is_empty()) {
                    fetched.rejects.push(Reject {
                        key: format!("line {}", line(&row)),
                        reason: format!("key column `{}` is empty", self.key.join("`, `")),
                    });
                    continue;
                }
                match parts.as_slice() {
                    [one] => one.to_string(),
                    many => serde_json::to_string(many).unwrap_or_default(),
                }
            };
            let fields: Map<String, Value> = header
                .iter()
                .zip(row.iter())
                .map(|(h, v)| (h.clone(), Value::String(v.to_string())))
                .collect();
            fetched.records.push(Record::new(key, fields));
        }
        Ok(fetched)
    }
}

fn io_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "no such file".into()
        }
        csv::ErrorKind::Io(io) => io.to_string(),
        _ => e.to_string(),
    }
}

fn row_error(e: &csv::Error, header_len: usize) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => {
            format!("the line has {len} fields but the header has {header_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "the line is not valid UTF-8 text".into(),
        _ => e.to_string(),
    }
}

/// A stable identity for a row without a key column: a hash of all its fields.
fn whole_row_key(row: &csv::StringRecord) -> String {
    let mut hasher = Sha256::new();
    for field in row.iter() {
        hasher.update(field.as_bytes());
        hasher.update([0x1f]);
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("row:{hex}")
}

#[async_trait]
impl Source for CsvFile {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_all())
            .await
            .map_err(|e| SourceError(format!("reading the CSV file stopped: {e}")))?
    }

    fn known_fields(&self) -> Option<Vec<String>> {
        self.header().ok()
    }
}

#[cfg(test)]
mod tests;
