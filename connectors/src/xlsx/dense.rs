//! XLS files, which calamine loads whole when it opens them, every sheet as a dense grid
//! from its first to its last used cell: one value in the far corner of an otherwise
//! small sheet would make a grid of billions of cells. Before calamine sees such a file,
//! its BIFF records are scanned and the file is refused when a sheet's grid would hold
//! more than [`MAX_CELLS`]. (ODS files are read as a stream: [`super::ods`].)

use std::io::Read;
use std::path::Path;

/// The largest grid a sheet of an XLS file may span (about 200 MiB loaded).
pub const MAX_CELLS: u64 = 4_000_000;

/// The bounds of one sheet's values.
#[derive(Debug, Default, Clone, Copy)]
struct Extent {
    /// First and last row and column holding a value, once one was seen.
    rows: Option<(u64, u64)>,
    cols: Option<(u64, u64)>,
    values: u64,
}

impl Extent {
    /// Values in rows `row..row+rows` and columns `col..col+cols`.
    fn add(&mut self, row: u64, rows: u64, col: u64, cols: u64) {
        let widen = |span: Option<(u64, u64)>, from: u64, count: u64| {
            let to = from + count.max(1) - 1;
            Some(match span {
                Some((a, b)) => (a.min(from), b.max(to)),
                None => (from, to),
            })
        };
        self.rows = widen(self.rows, row, rows);
        self.cols = widen(self.cols, col, cols);
        self.values += 1;
    }

    fn cells(&self) -> u64 {
        match (self.rows, self.cols) {
            (Some((r0, r1)), Some((c0, c1))) => (r1 - r0 + 1).saturating_mul(c1 - c0 + 1),
            _ => 0,
        }
    }

    /// The refusal, when the sheet's grid is too large.
    fn check(&self, path: &Path, sheet: &str) -> Result<(), String> {
        let cells = self.cells();
        if cells <= MAX_CELLS {
            return Ok(());
        }
        let (r0, r1) = self.rows.unwrap_or_default();
        let (c0, c1) = self.cols.unwrap_or_default();
        Err(format!(
            "sheet `{sheet}` of `{}` spans {}{}:{}{} ({cells} cells) for {} value(s); XLS sheets are loaded whole, at most {MAX_CELLS} cells",
            path.display(),
            super::column_name(c0 as u32),
            r0 + 1,
            super::column_name(c1 as u32),
            r1 + 1,
            self.values,
        ) + "; delete the stray cells far from the data, or save the file as .xlsx (read cell by cell)")
    }
}

/// Scan an XLS (BIFF) workbook's cell records, sheet by sheet.
pub fn check_xls(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let mut book =
        cfb::open(path).map_err(|e| format!("cannot open `{shown}` as an XLS workbook: {e}"))?;
    let stream_name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|name| book.is_stream(name))
        .ok_or_else(|| format!("`{shown}` holds no workbook stream"))?;
    let mut bytes = Vec::new();
    book.open_stream(stream_name)
        .and_then(|mut stream| stream.read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
    let mut sheet = 0;
    let mut extent = Extent::default();
    let mut at = 0;
    let u16_at = |data: &[u8], i: usize| -> u64 {
        data.get(i..i + 2)
            .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
            .unwrap_or(0)
    };
    while at + 4 <= bytes.len() {
        let kind = u16_at(&bytes, at);
        let len = u16_at(&bytes, at + 2) as usize;
        let data = &bytes[(at + 4).min(bytes.len())..(at + 4 + len).min(bytes.len())];
        at += 4 + len;
        match kind {
            // BOF: a new substream (a sheet, after the workbook globals).
            0x0809 | 0x0409 | 0x0209 | 0x0009 => {
                extent.check(path, &format!("#{sheet}"))?;
                extent = Extent::default();
                sheet += 1;
            }
            // Cells with a value (as calamine reads them): NUMBER, LABEL, RSTRING,
            // BOOLERR, RK, LABELSST, FORMULA, and their BIFF2 forms.
            0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x0002 | 0x0003
            | 0x0004 | 0x0005 => {
                extent.add(u16_at(data, 0), 1, u16_at(data, 2), 1);
            }
            // MULRK: a row, a first column, …, the last column at the end.
            0x00BD if data.len() >= 6 => {
                let first = u16_at(data, 2);
                let last = u16_at(data, data.len() - 2).max(first);
                extent.add(u16_at(data, 0), 1, first, last - first + 1);
            }
            _ => {}
        }
    }
    extent.check(path, &format!("#{sheet}"))
}
