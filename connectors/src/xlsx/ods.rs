//! ODS sheets read as a stream: `content.xml` is read event by event and a sheet comes out
//! row by row, each row with the cells that hold a value (repeat counts are kept as counts,
//! never spread over empty cells), so a sheet takes memory for a row, not for its grid.
//! Cells are read as calamine reads them (a test compares the two on the same file), so a
//! sheet reads the same as when calamine loaded it whole.

use std::io::BufRead;

use calamine::Data;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// The most rows and columns a sheet has (calamine's bounds, LibreOffice's too): rows
/// and cells past them are not read.
const MAX_ROWS: u64 = 1_048_576;
const MAX_COLUMNS: u64 = 16_384;

/// The most spaces one `<text:s>` stands for.
const MAX_SPACES: u64 = 65_536;

/// One row as read: where it is, how many times it repeats, and its cells that hold a
/// value (column, value), in column order.
pub(super) struct Row {
    pub index: u32,
    pub repeat: u32,
    pub cells: Vec<(u32, Data)>,
}

/// `content.xml` of an ODS file, read forward.
pub(super) struct Content<R: BufRead> {
    xml: Reader<R>,
    buf: Vec<u8>,
    /// The next row's index in the sheet being read.
    row: u64,
    passed: Vec<String>,
}

impl<R: BufRead> Content<R> {
    pub fn new(content: R) -> Self {
        let mut xml = Reader::from_reader(content);
        let config = xml.config_mut();
        config.check_end_names = false;
        config.trim_text(false);
        config.check_comments = false;
        config.expand_empty_elements = true;
        Content {
            xml,
            buf: Vec::with_capacity(1024),
            row: 0,
            passed: Vec::new(),
        }
    }

    /// Go to the sheet named `wanted` (or the first) and say its name; `None` when there
    /// is no such sheet ([`Content::passed`] names those there are).
    pub fn find_sheet(&mut self, wanted: Option<&str>) -> Result<Option<String>, String> {
        loop {
            self.buf.clear();
            let name = match self.xml.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) if e.name().as_ref() == "table:table" => {
                    attribute(&e, "table:name")
                }
                Ok(Event::Eof) => return Ok(None),
                Err(e) => return Err(e.to_string()),
                _ => continue,
            };
            let Some(name) = name else {
                continue;
            };
            if wanted.is_none_or(|wanted| wanted == name) {
                self.row = 0;
                return Ok(Some(name));
            }
            self.passed.push(name);
            self.buf.clear();
            self.xml
                .read_to_end_into(quick_xml::name::QName("table:table"), &mut self.buf)
                .map_err(|e| e.to_string())?;
        }
    }

    /// The sheets passed over looking for one.
    pub fn passed(&self) -> &[String] {
        &self.passed
    }

    /// The sheet's next row that holds a value; `None` at the sheet's end.
    pub fn next_row(&mut self) -> Result<Option<Row>, String> {
        loop {
            self.buf.clear();
            let repeat = match self.xml.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) if e.name().as_ref() == "table:table-row" => {
                    count(&e, "table:number-rows-repeated")?
                }
                Ok(Event::End(e)) if e.name().as_ref() == "table:table" => return Ok(None),
                Ok(Event::Eof) => return Ok(None),
                Err(e) => return Err(e.to_string()),
                _ => continue,
            };
            let index = self.row;
            let repeat = repeat.min(MAX_ROWS.saturating_sub(index));
            self.row = index + repeat;
            let cells = self.cells()?;
            if repeat > 0 && !cells.is_empty() {
                return Ok(Some(Row {
                    index: index as u32,
                    repeat: repeat as u32,
                    cells,
                }));
            }
        }
    }

    /// The cells of the row just begun, up to its end.
    fn cells(&mut self) -> Result<Vec<(u32, Data)>, String> {
        let mut cells = Vec::new();
        let mut col = 0u64;
        let mut scratch = Vec::new();
        loop {
            self.buf.clear();
            let (repeat, value) = match self.xml.read_event_into(&mut self.buf) {
                Ok(Event::Start(e))
                    if matches!(
                        e.name().as_ref(),
                        "table:table-cell" | "table:covered-table-cell"
                    ) =>
                {
                    let repeat = count(&e, "table:number-columns-repeated")?;
                    let e = e.into_owned();
                    (repeat, value(&mut self.xml, &e, &mut scratch)?)
                }
                Ok(Event::End(e)) if e.name().as_ref() == "table:table-row" => break,
                Ok(Event::Eof) => return Err("the file ends inside a row".into()),
                Err(e) => return Err(e.to_string()),
                _ => continue,
            };
            let repeat = repeat.min(MAX_COLUMNS.saturating_sub(col));
            if !matches!(value, Data::Empty) {
                for at in col..col + repeat {
                    cells.push((at as u32, value.clone()));
                }
            }
            col += repeat;
        }
        Ok(cells)
    }
}

/// A cell's value, as calamine reads it: the first value attribute, else (a string cell
/// without one, or an error cell) its paragraphs' text; the reader is left after the cell.
fn value<R: BufRead>(
    xml: &mut Reader<R>,
    cell: &BytesStart<'_>,
    buf: &mut Vec<u8>,
) -> Result<Data, String> {
    let mut value: Option<Data> = None;
    let (mut string, mut error) = (false, false);
    for attr in cell.attributes().with_checks(false) {
        let attr = attr.map_err(|e| e.to_string())?;
        let text = || unescape(&attr.value);
        match attr.key.as_ref() {
            "office:value" if value.is_none() => {
                let raw = &attr.value;
                let number = raw
                    .trim()
                    .parse::<f64>()
                    .map_err(|e| format!("the number `{raw}` cannot be read: {e}"))?;
                value = Some(Data::Float(number));
            }
            "office:string-value" if value.is_none() => value = Some(Data::String(text()?)),
            "office:date-value" if value.is_none() => value = Some(Data::DateTimeIso(text()?)),
            "office:time-value" if value.is_none() => value = Some(Data::DurationIso(text()?)),
            "office:boolean-value" if value.is_none() => {
                value = Some(Data::Bool(matches!(attr.value.as_ref(), "TRUE" | "true")));
            }
            "office:value-type" if value.is_none() => string = attr.value == "string",
            "calcext:value-type" => error = attr.value == "error",
            _ => {}
        }
    }
    let empty_error = error && matches!(&value, Some(Data::String(s)) if s.is_empty());
    if (value.is_none() && string) || empty_error {
        return paragraphs(xml, buf).map(Data::String);
    }
    buf.clear();
    xml.read_to_end_into(cell.name(), buf)
        .map_err(|e| e.to_string())?;
    Ok(value.unwrap_or(Data::Empty))
}

/// A cell's text: its paragraphs one per line (spaces, tabs and line breaks as written,
/// notes left out), up to the cell's end.
fn paragraphs<R: BufRead>(xml: &mut Reader<R>, buf: &mut Vec<u8>) -> Result<String, String> {
    let mut text = String::new();
    let mut first = true;
    loop {
        buf.clear();
        match xml.read_event_into(buf).map_err(|e| e.to_string())? {
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(entity) => {
                let name = entity.as_ref().to_string();
                if let Some(resolved) = quick_xml::escape::resolve_xml_entity(&name) {
                    text.push_str(resolved);
                } else if let Some(c) = entity.resolve_char_ref().map_err(|e| e.to_string())? {
                    text.push(c);
                } else {
                    return Err(format!("unknown entity `&{name};`"));
                }
            }
            Event::End(e)
                if matches!(
                    e.name().as_ref(),
                    "table:table-cell" | "table:covered-table-cell"
                ) =>
            {
                return Ok(text);
            }
            Event::Start(e) => match e.name().as_ref() {
                "office:annotation" => {
                    let e = e.into_owned();
                    buf.clear();
                    xml.read_to_end_into(e.name(), buf)
                        .map_err(|e| e.to_string())?;
                }
                "text:p" if first => first = false,
                "text:p" | "text:line-break" => text.push('\n'),
                "text:s" => {
                    // A few bytes must not ask for gigabytes of spaces.
                    let spaces = count(&e, "text:c")?.min(MAX_SPACES);
                    text.extend(std::iter::repeat_n(' ', spaces as usize));
                }
                "text:tab" => text.push('\t'),
                _ => {}
            },
            Event::Eof => return Err("the file ends inside a cell".into()),
            _ => {}
        }
    }
}

fn attribute(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.try_get_attribute(name)
        .ok()
        .flatten()
        .and_then(|a| unescape(&a.value).ok())
}

/// An attribute's value with its entities resolved.
fn unescape(raw: &str) -> Result<String, String> {
    quick_xml::escape::unescape(raw)
        .map(|v| v.into_owned())
        .map_err(|e| e.to_string())
}

/// A repeat count (1 when absent); one that is not a number is an error, as in calamine.
fn count(e: &BytesStart<'_>, name: &str) -> Result<u64, String> {
    match attribute(e, name) {
        None => Ok(1),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("`{name}` is `{v}`, not a count")),
    }
}
