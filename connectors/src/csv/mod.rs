//! `connector: csv` — rows of a CSV file with a header line. A row is identified by its
//! `key` column(s), or by a hash of the whole row. A malformed line fails alone.

use std::path::PathBuf;

use async_trait::async_trait;
use engine::{Fetched, Reject, Source, SourceError};

use crate::rows::{self, Table};

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
        rows::missing_key_columns(header, &self.key, &self.path.display().to_string())
    }

    fn read_all(&self) -> Result<Fetched, SourceError> {
        let mut all = Fetched::default();
        let mut failed = None;
        self.read_chunks(usize::MAX, |chunk| match chunk {
            Ok(chunk) => {
                all.records.extend(chunk.records);
                all.rejects.extend(chunk.rejects);
                true
            }
            Err(e) => {
                failed = Some(e);
                false
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(all),
        }
    }

    /// Read the file, handing `emit` chunks of at most `size` rows (records and rejects)
    /// until it returns false; an error is the last thing emitted.
    fn read_chunks(&self, size: usize, mut emit: impl FnMut(Result<Fetched, SourceError>) -> bool) {
        let opened = self.reader().and_then(|reader| {
            let table = Table::new(self.header()?, &self.key, &self.path.display().to_string())
                .map_err(SourceError)?;
            Ok((reader, table))
        });
        let (mut reader, table) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                emit(Err(e));
                return;
            }
        };
        let mut fetched = Fetched::default();
        for (i, row) in reader.records().enumerate() {
            if fetched.records.len() + fetched.rejects.len() >= size
                && !emit(Ok(std::mem::take(&mut fetched)))
            {
                return;
            }
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
                        reason: row_error(&e, table.header().len()),
                    });
                    continue;
                }
            };
            let values: Vec<String> = row.iter().map(String::from).collect();
            let line = || {
                format!(
                    "line {}",
                    row.position().map(|p| p.line()).unwrap_or(i as u64 + 2)
                )
            };
            match table.record(&values, line) {
                Ok(Some(record)) => fetched.records.push(record),
                Ok(None) => {}
                Err(reject) => fetched.rejects.push(reject),
            }
        }
        emit(Ok(fetched));
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

#[async_trait]
impl Source for CsvFile {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_all())
            .await
            .map_err(|e| SourceError(format!("reading the CSV file stopped: {e}")))?
    }

    async fn stream(&self, size: usize) -> engine::Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let this = self.clone();
        // Read on a blocking thread, one chunk ahead of the run at most.
        tokio::task::spawn_blocking(move || {
            this.read_chunks(size, |chunk| tx.blocking_send(chunk).is_ok())
        });
        rx
    }

    fn known_fields(&self) -> Option<Vec<String>> {
        self.header().ok()
    }
}

#[cfg(test)]
mod tests;
