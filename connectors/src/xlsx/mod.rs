//! `connector: xlsx` — rows of one sheet of an XLSX, XLSB, XLS or ODS file (read with
//! calamine), the first row holding a value being the header. Rows are identified like
//! CSV rows (key column(s) or a hash of the row); cells become text: whole numbers
//! without `.0`, dates as `YYYY-MM-DD` (with ` HH:MM:SS` when they have a time).
//!
//! A sheet takes memory for what is in it, never for where it claims to reach: XLSX and
//! XLSB sheets are read cell by cell (their `<dimension>` is ignored), cells outside the
//! header's columns are ignored, and a header wider than `max_columns` or data below
//! `max_rows` is an error. XLS and ODS files are loaded whole by calamine, so they are
//! first scanned ([`dense`]) and refused when a sheet would span far more cells than it
//! holds.

pub mod config;
mod dense;

use std::collections::BTreeMap;
use std::path::PathBuf;

use async_trait::async_trait;
use calamine::{open_workbook_auto, Data, DataType, Reader, Sheets};
use engine::{Fetched, Source, SourceError};

use crate::rows::{self, Table};

/// A spreadsheet sheet as a source.
#[derive(Debug, Clone)]
pub struct XlsxFile {
    path: PathBuf,
    sheet: Option<String>,
    key: Vec<String>,
    max_rows: u32,
    max_columns: u32,
}

/// A sheet as read: its header and its rows (sheet row number, values under the header).
struct Sheet {
    header: Vec<String>,
    rows: Vec<(u32, Vec<String>)>,
}

impl XlsxFile {
    pub fn new(config: &config::Source) -> Self {
        XlsxFile {
            path: config.path.clone(),
            sheet: config.sheet.clone(),
            key: config.key.clone(),
            max_rows: config.max_rows,
            max_columns: config.max_columns,
        }
    }

    /// The sheet's header and (unless `header_only`) its rows.
    fn read(&self, header_only: bool) -> Result<Sheet, SourceError> {
        let shown = self.path.display().to_string();
        let extension = self
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        // Formats calamine loads whole at open: scanned first.
        match extension.as_str() {
            "xls" | "xla" => dense::check_xls(&self.path).map_err(SourceError)?,
            "ods" => dense::check_ods(&self.path).map_err(SourceError)?,
            _ => {}
        }
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
        let unreadable = |e: &dyn std::fmt::Display| {
            SourceError(format!("cannot read sheet `{name}` of `{shown}`: {e}"))
        };
        let mut sink = Sink::new(self, &name, header_only);
        match &mut book {
            Sheets::Xlsx(xlsx) => {
                let mut cells = xlsx
                    .worksheet_cells_reader(&name)
                    .map_err(|e| unreadable(&e))?;
                while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
                    let (row, col) = cell.get_position();
                    if !sink.cell(row, col, &Data::from(cell.get_value().clone()))? {
                        break;
                    }
                }
            }
            Sheets::Xlsb(xlsb) => {
                let mut cells = xlsb
                    .worksheet_cells_reader(&name)
                    .map_err(|e| unreadable(&e))?;
                while let Some(cell) = cells.next_cell().map_err(|e| unreadable(&e))? {
                    let (row, col) = cell.get_position();
                    if !sink.cell(row, col, &Data::from(cell.get_value().clone()))? {
                        break;
                    }
                }
            }
            book => {
                let range = book.worksheet_range(&name).map_err(|e| unreadable(&e))?;
                let (top, left) = range.start().unwrap_or((0, 0));
                for (row, col, value) in range.used_cells() {
                    if !sink.cell(top + row as u32, left + col as u32, value)? {
                        break;
                    }
                }
            }
        }
        sink.finish()
    }

    /// The header row.
    pub fn header(&self) -> Result<Vec<String>, SourceError> {
        Ok(self.read(true)?.header)
    }

    /// What is wrong with a header (a repeated name, missing key columns).
    pub fn header_problem(&self, header: &[String]) -> Option<String> {
        rows::header_problem(header, &self.key, &self.path.display().to_string())
    }

    fn read_all(&self) -> Result<Fetched, SourceError> {
        let sheet = self.read(false)?;
        let table = Table::new(sheet.header, &self.key, &self.path.display().to_string())
            .map_err(SourceError)?;
        let mut fetched = Fetched::default();
        for (row, values) in sheet.rows {
            match table.record(&values, || format!("row {}", row + 1)) {
                Ok(Some(record)) => fetched.records.push(record),
                Ok(None) => {}
                Err(reject) => fetched.rejects.push(reject),
            }
        }
        Ok(fetched)
    }
}

/// Cells arriving one by one become a header and rows, holding only what has a value.
struct Sink<'a> {
    source: &'a XlsxFile,
    sheet: &'a str,
    header_only: bool,
    /// The header's sheet row and its cells by column.
    header: Option<(u32, BTreeMap<u32, String>)>,
    /// The header's first and last column, once a later row shows it is complete.
    span: Option<(u32, u32)>,
    rows: BTreeMap<u32, BTreeMap<u32, String>>,
}

impl<'a> Sink<'a> {
    fn new(source: &'a XlsxFile, sheet: &'a str, header_only: bool) -> Self {
        Sink {
            source,
            sheet,
            header_only,
            header: None,
            span: None,
            rows: BTreeMap::new(),
        }
    }

    /// Take one cell; `false` when nothing more is needed.
    fn cell(&mut self, row: u32, col: u32, value: &Data) -> Result<bool, SourceError> {
        let text = cell_text(value);
        if text.trim().is_empty() {
            return Ok(true);
        }
        match &mut self.header {
            None => {
                self.header = Some((row, BTreeMap::from([(col, text)])));
                return Ok(true);
            }
            Some((at, cells)) if *at == row => {
                cells.insert(col, text);
                return Ok(true);
            }
            Some((at, _)) if row < *at => {
                // A row above the header (cells out of order): it is the header.
                let Some((old_row, old_cells)) = self.header.take() else {
                    return Ok(true);
                };
                self.rows.insert(old_row, old_cells);
                self.header = Some((row, BTreeMap::from([(col, text)])));
                self.span = None;
                return Ok(true);
            }
            Some(_) => {}
        }
        if self.header_only {
            return Ok(false);
        }
        let (first, last) = self.span()?;
        if col < first || col > last {
            return Ok(true); // no column name: no template can use it
        }
        let header_row = self.header.as_ref().map(|(r, _)| *r).unwrap_or(0);
        if row - header_row >= self.source.max_rows {
            return Err(SourceError(format!(
                "sheet `{}` of `{}` has a value at {}{}, more than {} rows below its header; a flow reads at most that many (`max_rows`)",
                self.sheet,
                self.source.path.display(),
                column_name(col),
                row + 1,
                self.source.max_rows
            )));
        }
        self.rows.entry(row).or_default().insert(col, text);
        Ok(true)
    }

    /// The header's columns, checked against `max_columns` once.
    fn span(&mut self) -> Result<(u32, u32), SourceError> {
        if let Some(span) = self.span {
            return Ok(span);
        }
        let Some((row, cells)) = &self.header else {
            return Ok((0, 0));
        };
        let first = cells.keys().next().copied().unwrap_or(0);
        let last = cells.keys().next_back().copied().unwrap_or(0);
        if last - first >= self.source.max_columns {
            return Err(SourceError(format!(
                "the header of sheet `{}` of `{}` spans columns {} to {} (row {}), {} columns; a flow reads at most {} (`max_columns`)",
                self.sheet,
                self.source.path.display(),
                column_name(first),
                column_name(last),
                row + 1,
                last - first + 1,
                self.source.max_columns
            )));
        }
        self.span = Some((first, last));
        Ok((first, last))
    }

    fn finish(mut self) -> Result<Sheet, SourceError> {
        let (first, last) = self.span()?;
        let width = (last - first + 1) as usize;
        let Some((_, header_cells)) = self.header.take() else {
            return Ok(Sheet {
                header: Vec::new(),
                rows: Vec::new(),
            });
        };
        let spread = |cells: BTreeMap<u32, String>| {
            let mut values = vec![String::new(); width];
            for (col, text) in cells {
                if (first..=last).contains(&col) {
                    values[(col - first) as usize] = text;
                }
            }
            values
        };
        let header = spread(header_cells)
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = std::mem::take(&mut self.rows)
            .into_iter()
            .map(|(row, cells)| (row, spread(cells)))
            .collect();
        Ok(Sheet { header, rows })
    }
}

/// `A`, `Z`, `AA`, … `XFD` for a 0-based column.
fn column_name(col: u32) -> String {
    let mut n = col + 1;
    let mut name = Vec::new();
    while n > 0 {
        let rem = ((n - 1) % 26) as u8;
        name.push(b'A' + rem);
        n = (n - 1) / 26;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
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
