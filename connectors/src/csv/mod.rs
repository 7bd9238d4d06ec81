//! `connector: csv` — rows of a CSV file with a header line. A row is identified by its
//! `key` column(s), or by a hash of the whole row. A malformed line fails alone.

use std::path::PathBuf;

use async_trait::async_trait;
use engine::{Fetched, Reject, Source, SourceError};

use crate::rows::{self, Table};

pub mod config;

/// A CSV file as a source.
#[derive(Debug, Clone)]
pub struct CsvFile {
    path: PathBuf,
    key: Vec<String>,
    delimiter: u8,
}

impl CsvFile {
    pub fn new(config: &config::Source) -> Self {
        CsvFile {
            path: config.path.clone(),
            key: config.key.clone(),
            delimiter: config.delimiter,
        }
    }

    /// A file with the source's defaults (a `.tsv` is read with tabs): for a sample.
    pub fn at(path: &std::path::Path) -> Self {
        let tabs = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
        CsvFile {
            path: path.to_path_buf(),
            key: Vec::new(),
            delimiter: if tabs { b'\t' } else { b',' },
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

    /// What is wrong with a header (a repeated name, missing key columns).
    pub fn header_problem(&self, header: &[String]) -> Option<String> {
        rows::header_problem(header, &self.key, &self.path.display().to_string())
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
        // Where the last row started and what became of it, for an unclosed quote.
        let mut last: Option<(u64, String, Last)> = None;
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
                    let byte = e.position().map(|p| p.byte()).unwrap_or(0);
                    last = Some((byte, format!("line {at}"), Last::Reject));
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
            let byte = row.position().map(|p| p.byte()).unwrap_or(0);
            let kind = match table.record(&values, line) {
                Ok(Some(record)) => {
                    fetched.records.push(record);
                    Last::Record
                }
                Ok(None) => Last::Blank,
                Err(reject) => {
                    fetched.rejects.push(reject);
                    Last::Reject
                }
            };
            last = Some((byte, line(), kind));
        }
        // A `"` that is never closed makes the rest of the file one field of the last
        // row: that row fails (and every row after the quote with it) until it is fixed.
        if let Some((byte, at, kind)) = last {
            if ends_in_open_quote(&self.path, byte, self.delimiter) {
                match kind {
                    Last::Record => {
                        fetched.records.pop();
                    }
                    Last::Reject => {
                        fetched.rejects.pop();
                    }
                    Last::Blank => {}
                }
                fetched.rejects.push(Reject {
                    key: at,
                    reason: "a quoted field opened here is never closed (a `\"` is missing), so the rest of the file was read as one field".into(),
                });
            }
        }
        emit(Ok(fetched));
    }
}

/// What became of a row.
#[derive(Clone, Copy)]
enum Last {
    Record,
    Reject,
    Blank,
}

/// Whether the file, read from byte `from` (where its last row starts), ends inside a
/// quoted field (`"` opening a field, `""` inside one, as the CSV reader reads them).
fn ends_in_open_quote(path: &std::path::Path, from: u64, delimiter: u8) -> bool {
    use std::io::{BufRead, BufReader, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    if file.seek(SeekFrom::Start(from)).is_err() {
        return false;
    }
    let mut reader = BufReader::new(file);
    let (mut in_quote, mut field_start, mut quote_seen) = (false, true, false);
    loop {
        let Ok(buf) = reader.fill_buf() else {
            return false;
        };
        if buf.is_empty() {
            return in_quote && !quote_seen;
        }
        for &b in buf {
            if in_quote {
                if quote_seen {
                    // `""` is a quote inside the field; anything else closed it.
                    quote_seen = false;
                    if b != b'"' {
                        in_quote = false;
                        field_start = b == delimiter || b == b'\n' || b == b'\r';
                    }
                } else if b == b'"' {
                    quote_seen = true;
                }
            } else if field_start && b == b'"' {
                in_quote = true;
                field_start = false;
            } else {
                field_start = b == delimiter || b == b'\n' || b == b'\r';
            }
        }
        let used = buf.len();
        reader.consume(used);
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

/// `connector: csv` in the registry.
pub struct CsvConnector;

#[async_trait::async_trait]
impl crate::Connector for CsvConnector {
    crate::described!(config::CARD);

    crate::source_role!(config::source, |s: &config::Source| {
        crate::connector::SourceShape::read(None, s.backlog).keyed(&s.key)
    });

    crate::local_table_role!(CsvFile, config::Source);
}

#[cfg(test)]
mod tests;
