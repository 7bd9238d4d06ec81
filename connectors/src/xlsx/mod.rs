//! `connector: xlsx` — rows of one sheet of an XLSX, XLSB, XLS or ODS file (read with
//! calamine; ODS with [`ods`], as calamine reads it), the first row holding a value being
//! the header. Rows are identified like
//! CSV rows (key column(s) or a hash of the row); cells become text: whole numbers
//! without `.0`, dates as `YYYY-MM-DD` (with ` HH:MM:SS` when they have a time).
//!
//! A sheet takes memory for what is in it, never for where it claims to reach: XLSX, XLSB
//! and ODS sheets are read cell by cell (their claimed extent and repeat counts are not
//! spread out), cells outside the header's columns are ignored, and a header wider than
//! `max_columns` or data below `max_rows` is an error. XLS files are loaded whole by
//! calamine, so they are first scanned ([`dense`]) and refused when a sheet would span far
//! more cells than it holds.

pub mod config;
mod dense;
mod ods;

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

/// The error for sheet `name` of `shown` that could not be read.
fn unreadable(name: &str, shown: &str, e: &dyn std::fmt::Display) -> SourceError {
    SourceError(format!("cannot read sheet `{name}` of `{shown}`: {e}"))
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

    /// A workbook's first sheet with the source's defaults: for a sample.
    pub fn at(path: &std::path::Path) -> Self {
        XlsxFile {
            path: path.to_path_buf(),
            sheet: None,
            key: Vec::new(),
            max_rows: 1_000_000,
            max_columns: 1000,
        }
    }

    /// The sheet's header and (unless `header_only`) its rows.
    fn read(&self, header_only: bool) -> Result<Sheet, SourceError> {
        self.read_into(header_only, None)
    }

    /// [`XlsxFile::read`]; with `flush`, XLSX, XLSB and ODS rows are handed over as soon
    /// as a later row begins (their cells come in row order), in batches, instead of kept:
    /// the sheet is never held whole. `flush` returning `false` stops the read.
    fn read_into<'f>(
        &self,
        header_only: bool,
        flush: Option<&'f mut Flush<'f>>,
    ) -> Result<Sheet, SourceError> {
        let extension = self
            .path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default()
            .to_ascii_lowercase();
        match extension.as_str() {
            "ods" => return self.read_ods(header_only, flush),
            // XLS, which calamine loads whole at open: scanned first.
            "xls" | "xla" => dense::check_xls(&self.path).map_err(SourceError)?,
            _ => {}
        }
        self.read_book(header_only, flush)
    }

    /// The error for a sheet not found among `sheets` (the one asked for, or any).
    fn missing_sheet(&self, shown: &str, sheets: &[String]) -> SourceError {
        SourceError(match &self.sheet {
            Some(name) => format!(
                "`{shown}` has no sheet `{name}` (sheets: {})",
                sheets.join(", ")
            ),
            None => format!("`{shown}` has no sheets"),
        })
    }

    /// [`XlsxFile::read_into`] through calamine's workbook: XLSX and XLSB cell by cell,
    /// other formats as the whole range calamine loads.
    fn read_book<'f>(
        &self,
        header_only: bool,
        flush: Option<&'f mut Flush<'f>>,
    ) -> Result<Sheet, SourceError> {
        let shown = self.path.display().to_string();
        let mut book = open_workbook_auto(&self.path)
            .map_err(|e| SourceError(format!("cannot open `{shown}`: {e}")))?;
        let names = book.sheet_names();
        let name = match &self.sheet {
            Some(name) if names.contains(name) => name.clone(),
            None if !names.is_empty() => names[0].clone(),
            _ => return Err(self.missing_sheet(&shown, &names)),
        };
        let cannot_read = |e: &dyn std::fmt::Display| unreadable(&name, &shown, e);
        let streams = matches!(book, Sheets::Xlsx(_) | Sheets::Xlsb(_));
        let mut sink = Sink::new(self, &name, header_only);
        if streams {
            sink.flush = flush;
        }
        match &mut book {
            Sheets::Xlsx(xlsx) => {
                let mut cells = xlsx
                    .worksheet_cells_reader(&name)
                    .map_err(|e| cannot_read(&e))?;
                while let Some(cell) = cells.next_cell().map_err(|e| cannot_read(&e))? {
                    let (row, col) = cell.get_position();
                    if !sink.cell(row, col, &Data::from(cell.get_value().clone()))? {
                        break;
                    }
                }
            }
            Sheets::Xlsb(xlsb) => {
                let mut cells = xlsb
                    .worksheet_cells_reader(&name)
                    .map_err(|e| cannot_read(&e))?;
                while let Some(cell) = cells.next_cell().map_err(|e| cannot_read(&e))? {
                    let (row, col) = cell.get_position();
                    if !sink.cell(row, col, &Data::from(cell.get_value().clone()))? {
                        break;
                    }
                }
            }
            book => {
                let range = book.worksheet_range(&name).map_err(|e| cannot_read(&e))?;
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

    /// [`XlsxFile::read_into`] for an ODS file, read as a stream ([`ods`]).
    fn read_ods<'f>(
        &self,
        header_only: bool,
        flush: Option<&'f mut Flush<'f>>,
    ) -> Result<Sheet, SourceError> {
        let shown = self.path.display().to_string();
        let cannot = |e: &dyn std::fmt::Display| SourceError(format!("cannot open `{shown}`: {e}"));
        let file = std::fs::File::open(&self.path).map_err(|e| cannot(&e))?;
        let mut zip =
            zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| cannot(&e))?;
        let content = zip.by_name("content.xml").map_err(|e| cannot(&e))?;
        let mut content = ods::Content::new(std::io::BufReader::new(content));
        let Some(name) = content
            .find_sheet(self.sheet.as_deref())
            .map_err(|e| cannot(&e))?
        else {
            return Err(self.missing_sheet(&shown, content.passed()));
        };
        let mut sink = Sink::new(self, &name, header_only);
        sink.flush = flush;
        while let Some(mut row) = content
            .next_row()
            .map_err(|e| unreadable(&name, &shown, &e))?
        {
            for i in 0..row.repeat {
                for (col, value) in &row.cells {
                    if !sink.cell(row.index + i, *col, value)? {
                        return sink.finish();
                    }
                }
                // A row repeated many times: only the cells under the header go again.
                if let Some((first, last)) = sink.span {
                    row.cells.retain(|(col, _)| (first..=last).contains(col));
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
struct Sink<'a, 'f> {
    source: &'a XlsxFile,
    sheet: &'a str,
    header_only: bool,
    /// The header's sheet row and its cells by column.
    header: Option<(u32, BTreeMap<u32, String>)>,
    /// The header's first and last column, once a later row shows it is complete.
    span: Option<(u32, u32)>,
    rows: BTreeMap<u32, BTreeMap<u32, String>>,
    /// Streaming: where finished rows go (the rows kept are only the unfinished one).
    flush: Option<&'f mut Flush<'f>>,
    /// The last row handed over, to catch a cell that comes back to an earlier row.
    flushed_to: Option<u32>,
    stopped: bool,
}

/// Where a streamed sheet's rows go: the header, then finished rows in order; `false`
/// stops the read.
pub(crate) type Flush<'a> = dyn FnMut(&[String], Vec<(u32, Vec<String>)>) -> bool + 'a;

/// Rows handed over together while streaming.
const FLUSH_ROWS: usize = 1000;

impl<'a, 'f> Sink<'a, 'f> {
    fn new(source: &'a XlsxFile, sheet: &'a str, header_only: bool) -> Self {
        Sink {
            source,
            sheet,
            header_only,
            header: None,
            span: None,
            rows: BTreeMap::new(),
            flush: None,
            flushed_to: None,
            stopped: false,
        }
    }

    /// Streaming: hand over the rows before `row` once there are enough of them (or all,
    /// with `row` `None`, at the end).
    fn flush_before(&mut self, row: Option<u32>) -> Result<bool, SourceError> {
        if self.flush.is_none() || self.header.is_none() {
            return Ok(true);
        }
        let ready = match row {
            // Cells come in row order, so every row kept is before `row` but `row` itself
            // (counting them in the map for every cell was half of reading a sheet).
            Some(row) => self.rows.len() - usize::from(self.rows.contains_key(&row)),
            None => self.rows.len(),
        };
        if ready == 0 || (row.is_some() && ready < FLUSH_ROWS) {
            return Ok(true);
        }
        let (first, last) = self.span()?;
        let width = (last - first + 1) as usize;
        let header: Vec<String> = self
            .header
            .as_ref()
            .map(|(_, cells)| spread(cells.clone(), first, last, width))
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let keep = match row {
            Some(row) => self.rows.split_off(&row),
            None => BTreeMap::new(),
        };
        let done = std::mem::replace(&mut self.rows, keep);
        self.flushed_to = done.keys().next_back().copied().or(self.flushed_to);
        let rows: Vec<(u32, Vec<String>)> = done
            .into_iter()
            .map(|(r, cells)| (r, spread(cells, first, last, width)))
            .collect();
        let go_on = self.flush.as_mut().is_none_or(|flush| flush(&header, rows));
        self.stopped = !go_on;
        Ok(go_on)
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
        if row - header_row > self.source.max_rows {
            return Err(SourceError(format!(
                "sheet `{}` of `{}` has a value at {}{}, more than {} rows below its header; a flow reads at most that many (`max_rows`)",
                self.sheet,
                self.source.path.display(),
                column_name(col),
                row + 1,
                self.source.max_rows
            )));
        }
        if self.flush.is_some() {
            if self.flushed_to.is_some_and(|done| row <= done) {
                return Err(SourceError(format!(
                    "the cells of sheet `{}` of `{}` are out of order (row {} comes back after later rows); open and save the file again",
                    self.sheet,
                    self.source.path.display(),
                    row + 1
                )));
            }
            if !self.flush_before(Some(row))? {
                return Ok(false);
            }
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
        if !self.stopped {
            self.flush_before(None)?;
        }
        let (first, last) = self.span()?;
        let width = (last - first + 1) as usize;
        let Some((_, header_cells)) = self.header.take() else {
            return Ok(Sheet {
                header: Vec::new(),
                rows: Vec::new(),
            });
        };
        let header = spread(header_cells, first, last, width)
            .into_iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = std::mem::take(&mut self.rows)
            .into_iter()
            .map(|(row, cells)| (row, spread(cells, first, last, width)))
            .collect();
        Ok(Sheet { header, rows })
    }
}

/// A row's cells by column as values under the header's columns `first..=last`.
fn spread(cells: BTreeMap<u32, String>, first: u32, last: u32, width: usize) -> Vec<String> {
    let mut values = vec![String::new(); width];
    for (col, text) in cells {
        if (first..=last).contains(&col) {
            values[(col - first) as usize] = text;
        }
    }
    values
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

    /// XLSX, XLSB and ODS sheets stream: rows become records a chunk at a time, read on a
    /// blocking thread one chunk ahead of the run (XLS, which calamine loads whole, comes
    /// as one chunk).
    async fn stream(&self, size: usize) -> engine::Chunks {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read_chunks(size.max(1), tx));
        rx
    }

    fn known_fields(&self) -> Option<Vec<String>> {
        self.header().ok()
    }
}

impl XlsxFile {
    fn read_chunks(
        &self,
        size: usize,
        tx: tokio::sync::mpsc::Sender<Result<Fetched, SourceError>>,
    ) {
        let source = self.path.display().to_string();
        let mut table: Option<Table> = None;
        let mut fetched = Fetched::default();
        let mut failed: Option<SourceError> = None;
        let mut flush = |header: &[String], rows: Vec<(u32, Vec<String>)>| -> bool {
            if table.is_none() {
                match Table::new(header.to_vec(), &self.key, &source) {
                    Ok(t) => table = Some(t),
                    Err(e) => {
                        failed = Some(SourceError(e));
                        return false;
                    }
                }
            }
            let Some(table) = &table else {
                return false;
            };
            for (row, values) in rows {
                match table.record(&values, || format!("row {}", row + 1)) {
                    Ok(Some(record)) => fetched.records.push(record),
                    Ok(None) => {}
                    Err(reject) => fetched.rejects.push(reject),
                }
                if fetched.records.len() + fetched.rejects.len() >= size
                    && tx.blocking_send(Ok(std::mem::take(&mut fetched))).is_err()
                {
                    return false;
                }
            }
            true
        };
        let read = self.read_into(false, Some(&mut flush));
        let outcome = match (read, failed) {
            (_, Some(e)) | (Err(e), None) => Err(e),
            (Ok(sheet), None) => {
                // XLS (not streamed): its rows, as one piece.
                let mut rest = Fetched::default();
                if !sheet.rows.is_empty() {
                    match Table::new(sheet.header, &self.key, &source) {
                        Ok(table) => {
                            for (row, values) in sheet.rows {
                                match table.record(&values, || format!("row {}", row + 1)) {
                                    Ok(Some(record)) => rest.records.push(record),
                                    Ok(None) => {}
                                    Err(reject) => rest.rejects.push(reject),
                                }
                            }
                        }
                        Err(e) => {
                            let _ = tx.blocking_send(Err(SourceError(e)));
                            return;
                        }
                    }
                }
                Ok(rest)
            }
        };
        match outcome {
            Ok(rest) => {
                fetched.records.extend(rest.records);
                fetched.rejects.extend(rest.rejects);
                if !fetched.records.is_empty() || !fetched.rejects.is_empty() {
                    let _ = tx.blocking_send(Ok(fetched));
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
            }
        }
    }
}

/// `connector: xlsx` in the registry.
pub struct XlsxConnector;

#[async_trait::async_trait]
impl crate::Connector for XlsxConnector {
    crate::described!(config::CARD);

    crate::source_role!(config::source, |s: &config::Source| {
        crate::connector::SourceShape::read(None, s.backlog).keyed(&s.key)
    });

    crate::local_table_role!(XlsxFile, config::Source);
}

#[cfg(test)]
mod tests;
