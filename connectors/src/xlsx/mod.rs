//! `connector: xlsx` — rows of one sheet of an XLSX, XLS or ODS file (read with
//! calamine), the first row being the header. Rows are identified like CSV rows (key
//! column(s) or a hash of the row); cells become text: whole numbers without `.0`, dates
//! as `YYYY-MM-DD` (with ` HH:MM:SS` when they have a time).

use std::path::PathBuf;

use async_trait::async_trait;
use calamine::{open_workbook_auto, Data, DataType, Reader};
use engine::{Fetched, Source, SourceError};

use crate::rows::{self, Table};

/// A spreadsheet sheet as a source.
#[derive(Debug, Clone)]
pub struct XlsxFile {
    path: PathBuf,
    sheet: Option<String>,
    key: Vec<String>,
}

impl XlsxFile {
    pub fn new(config: &flows::XlsxSource) -> Self {
        XlsxFile {
            path: config.path.clone(),
            sheet: config.sheet.clone(),
            key: config.key.clone(),
        }
    }

    /// Every row of the sheet as text, the header first.
    fn rows(&self) -> Result<Vec<Vec<String>>, SourceError> {
        let shown = self.path.display();
        let mut book = open_workbook_auto(&self.path)
            .map_err(|e| SourceError(format!("cannot open `{shown}`: {e}")))?;
        let names = book.sheet_names();
        let name = match &self.sheet {
            Some(name) if names.contains(name) => name.clone(),
            Some(name) => {
                return Err(SourceError(format!(
                    "`{shown}` has no sheet `{name}` (sheets: {})",
                    names.join(", ")
                )));
            }
            None => names
                .first()
                .cloned()
                .ok_or_else(|| SourceError(format!("`{shown}` has no sheets")))?,
        };
        let range = book
            .worksheet_range(&name)
            .map_err(|e| SourceError(format!("cannot read sheet `{name}` of `{shown}`: {e}")))?;
        Ok(range
            .rows()
            .map(|row| row.iter().map(cell_text).collect())
            .collect())
    }

    /// The header row.
    pub fn header(&self) -> Result<Vec<String>, SourceError> {
        Ok(self
            .rows()?
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect())
    }

    /// What is wrong with a header (a repeated name, missing key columns).
    pub fn header_problem(&self, header: &[String]) -> Option<String> {
        rows::header_problem(header, &self.key, &self.path.display().to_string())
    }

    fn read_all(&self) -> Result<Fetched, SourceError> {
        let mut rows = self.rows()?.into_iter();
        let header: Vec<String> = rows
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let table =
            Table::new(header, &self.key, &self.path.display().to_string()).map_err(SourceError)?;
        let mut fetched = Fetched::default();
        for (i, row) in rows.enumerate() {
            match table.record(&row, || format!("row {}", i + 2)) {
                Ok(Some(record)) => fetched.records.push(record),
                Ok(None) => {}
                Err(reject) => fetched.rejects.push(reject),
            }
        }
        Ok(fetched)
    }
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(_) => match cell.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.format("%Y-%m-%d").to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => cell.to_string(),
        },
        Data::Error(e) => format!("#{e:?}"),
    }
}

#[async_trait]
impl Source for XlsxFile {
    async fn fetch(&self) -> Result<Fetched, SourceError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_all())
            .await
            .map_err(|e| SourceError(format!("reading the spreadsheet stopped: {e}")))?
    }

    fn known_fields(&self) -> Option<Vec<String>> {
        self.header().ok()
    }
}

#[cfg(test)]
mod tests;
