use std::path::Path;

use flows::{Backlog, Pos, XlsxSource};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

use super::*;

fn write_book(path: &Path) {
    let mut book = Workbook::new();
    let orders = book.add_worksheet();
    let _ = orders.set_name("Orders");
    let rows: [[&str; 3]; 4] = [
        ["order_id", "name", "phone"],
        ["A-1", "Olena", "+380501234567"],
        ["", "", ""],
        ["A-3", "王芳", "+8613800138000"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, value) in row.iter().enumerate() {
            let _ = orders.write_string(r as u32, c as u16, *value);
        }
    }
    let _ = orders.write_string(0, 3, "total");
    let _ = orders.write_number(1, 3, 1250.0);
    let _ = orders.write_number(3, 3, 99.5);
    let _ = orders.write_string(0, 4, "date");
    let date = ExcelDateTime::from_ymd(2026, 11, 21).unwrap_or_else(|e| panic!("{e}"));
    let _ =
        orders.write_datetime_with_format(1, 4, &date, &Format::new().set_num_format("yyyy-mm-dd"));
    let other = book.add_worksheet();
    let _ = other.set_name("Other");
    let _ = other.write_string(0, 0, "id");
    book.save(path).unwrap_or_else(|e| panic!("{e}"));
}

fn source(path: &Path, sheet: Option<&str>, key: &[&str]) -> XlsxFile {
    XlsxFile::new(&XlsxSource {
        path: path.to_path_buf(),
        sheet: sheet.map(String::from),
        key: key.iter().map(|k| k.to_string()).collect(),
        backlog: Backlog::Skip,
        pos: Pos::default(),
    })
}

#[tokio::test]
async fn rows_of_a_named_sheet_become_records_with_text_cells() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("orders.xlsx");
    write_book(&path);
    let fetched = source(&path, Some("Orders"), &["order_id"])
        .fetch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(
        keys,
        ["A-1", "A-3"],
        "the blank row is skipped, not an end of data"
    );
    assert_eq!(fetched.records[0].fields["total"], "1250");
    assert_eq!(fetched.records[1].fields["total"], "99.5");
    assert_eq!(fetched.records[0].fields["date"], "2026-11-21");
    assert_eq!(fetched.records[1].fields["name"], "王芳");
    assert_eq!(
        source(&path, None, &[]).header().unwrap_or_default()[0],
        "order_id",
        "the first sheet by default"
    );
}

#[tokio::test]
async fn a_missing_sheet_or_key_column_says_what_there_is() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("orders.xlsx");
    write_book(&path);
    let err = source(&path, Some("Ordres"), &[])
        .fetch()
        .await
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(
        err.contains("has no sheet `Ordres` (sheets: Orders, Other)"),
        "{err}"
    );
    let err = source(&path, Some("Orders"), &["id"])
        .fetch()
        .await
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(err.contains("key column `id` not in the header"), "{err}");
    let err = source(&dir.path().join("nope.xlsx"), None, &[])
        .fetch()
        .await
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(err.contains("cannot open"), "{err}");
}
