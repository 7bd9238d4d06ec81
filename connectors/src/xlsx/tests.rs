use std::path::Path;

use super::config::Source as XlsxSource;
use flows::{Backlog, Pos};
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
    let date = ExcelDateTime::from_ymd(2026, 11, 21).expect("from_ymd succeeds");
    let _ =
        orders.write_datetime_with_format(1, 4, &date, &Format::new().set_num_format("yyyy-mm-dd"));
    let other = book.add_worksheet();
    let _ = other.set_name("Other");
    let _ = other.write_string(0, 0, "id");
    book.save(path).expect("it is saved");
}

fn source(path: &Path, sheet: Option<&str>, key: &[&str]) -> XlsxFile {
    XlsxFile::new(&XlsxSource {
        path: path.to_path_buf(),
        sheet: sheet.map(String::from),
        key: key.iter().map(|k| k.to_string()).collect(),
        backlog: Backlog::Skip,
        max_rows: super::config::MAX_ROWS,
        max_columns: super::config::MAX_COLUMNS,
        pos: Pos::default(),
    })
}

#[tokio::test]
async fn rows_of_a_named_sheet_become_records_with_text_cells() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("orders.xlsx");
    write_book(&path);
    let fetched = source(&path, Some("Orders"), &["order_id"])
        .fetch()
        .await
        .expect("the source is read");
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("orders.xlsx");
    write_book(&path);
    let err = fetch_error(&source(&path, Some("Ordres"), &[])).await;
    assert!(
        err.contains("has no sheet `Ordres` (sheets: Orders, Other)"),
        "{err}"
    );
    let err = fetch_error(&source(&path, Some("Orders"), &["id"])).await;
    assert!(err.contains("key column `id` not in the header"), "{err}");
    let err = fetch_error(&source(&dir.path().join("nope.xlsx"), None, &[])).await;
    assert!(err.contains("cannot open"), "{err}");
}

/// Why reading the sheet failed (empty if it did not).
async fn fetch_error(source: &XlsxFile) -> String {
    source.fetch().await.err().map(|e| e.0).unwrap_or_default()
}

fn bounded(path: &Path, max_rows: u32, max_columns: u32) -> XlsxFile {
    XlsxFile::new(&XlsxSource {
        path: path.to_path_buf(),
        sheet: None,
        key: vec!["order_id".into()],
        backlog: Backlog::Skip,
        max_rows,
        max_columns,
        pos: Pos::default(),
    })
}

fn small_book(path: &Path, extra: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["order_id", "name", "phone"].iter().enumerate() {
        let _ = sheet.write_string(0, c as u16, *h);
    }
    let _ = sheet.write_string(1, 0, "A-1");
    let _ = sheet.write_string(1, 1, "Olena");
    extra(sheet);
    book.save(path).expect("it is saved");
}

#[tokio::test]
async fn a_far_away_cell_takes_no_memory_and_is_ignored_outside_the_header() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("far.xlsx");
    // One value at XFD1048576: the sheet's <dimension> claims all of A1:XFD1048576.
    small_book(&path, |sheet| {
        let _ = sheet.write_string(1_048_575, 16_383, "far away");
    });
    let fetched = source(&path, None, &["order_id"])
        .fetch()
        .await
        .expect("the source is read");
    let keys: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["A-1"]);
}

#[tokio::test]
async fn rows_and_columns_past_the_caps_are_errors_that_say_where() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let deep = dir.path().join("deep.xlsx");
    small_book(&deep, |sheet| {
        let _ = sheet.write_string(5000, 0, "A-5001");
    });
    let err = fetch_error(&bounded(&deep, 1000, 100)).await;
    assert!(
        err.contains("has a value at A5001, more than 1000 rows below its header")
            && err.contains("`max_rows`"),
        "{err}"
    );
    assert!(bounded(&deep, 10_000, 100).fetch().await.is_ok());
    // `max_rows` rows below the header are read, the one after is not.
    assert!(bounded(&deep, 5000, 100).fetch().await.is_ok());
    let err = fetch_error(&bounded(&deep, 4999, 100)).await;
    assert!(
        err.contains("more than 4999 rows below its header"),
        "{err}"
    );
    let wide = dir.path().join("wide.xlsx");
    small_book(&wide, |sheet| {
        let _ = sheet.write_string(0, 16_383, "far header");
    });
    let header = bounded(&wide, 1000, 1000).header().err().map(|e| e.0);
    assert!(
        header.is_some(),
        "validate reads the header and says so too"
    );
    let err = fetch_error(&bounded(&wide, 1000, 1000)).await;
    assert!(
        err.contains("spans columns A to XFD (row 1), 16384 columns; a flow reads at most 1000 (`max_columns`)"),
        "{err}"
    );
}

/// An ODS file whose `content.xml` is `table`.
fn ods(path: &Path, table: &str) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("the test creates its file");
    let mut zip = zip::ZipWriter::new(file);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let _ = zip.start_file("mimetype", stored);
    let _ = zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet");
    let _ = zip.start_file(
        "META-INF/manifest.xml",
        zip::write::SimpleFileOptions::default(),
    );
    let _ = zip.write_all(b"<?xml version=\"1.0\"?><manifest:manifest xmlns:manifest=\"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0\"><manifest:file-entry manifest:full-path=\"/\" manifest:media-type=\"application/vnd.oasis.opendocument.spreadsheet\"/><manifest:file-entry manifest:full-path=\"content.xml\" manifest:media-type=\"text/xml\"/></manifest:manifest>");
    let _ = zip.start_file("content.xml", zip::write::SimpleFileOptions::default());
    let _ = zip.write_all(format!(
        "<?xml version=\"1.0\"?><office:document-content xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\" xmlns:table=\"urn:oasis:names:tc:opendocument:xmlns:table:1.0\" xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\"><office:body><office:spreadsheet>{table}</office:spreadsheet></office:body></office:document-content>"
    ).as_bytes());
    let _ = zip.finish();
}

#[tokio::test]
async fn an_ods_sheet_that_claims_billions_of_cells_is_read_in_the_memory_of_its_values() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bomb = dir.path().join("bomb.ods");
    // 1 KB: a value repeated over 16,384 columns, that row repeated 1,048,576 times.
    ods(
        &bomb,
        "<table:table table:name=\"S\"><table:table-row table:number-rows-repeated=\"1048576\"><table:table-cell table:number-columns-repeated=\"16384\" office:value-type=\"string\"><text:p>x</text:p></table:table-cell></table:table-row></table:table>",
    );
    let err = fetch_error(&bounded(&bomb, 1000, 1000)).await;
    assert!(
        err.contains("the header of sheet `S` of")
            && err.contains("spans columns A to XFD (row 1), 16384 columns; a flow reads at most 1000 (`max_columns`)"),
        "{err}"
    );
    // A header, and one value in the sheet's far corner, outside the header's columns:
    // ignored, as in an XLSX sheet.
    let corner = dir.path().join("corner.ods");
    ods(
        &corner,
        "<table:table table:name=\"S\"><table:table-row><table:table-cell office:value-type=\"string\"><text:p>order_id</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated=\"1048574\"><table:table-cell/></table:table-row><table:table-row><table:table-cell table:number-columns-repeated=\"16383\"/><table:table-cell office:value-type=\"string\"><text:p>far</text:p></table:table-cell></table:table-row></table:table>",
    );
    let fetched = bounded(&corner, 1_048_576, 1000)
        .fetch()
        .await
        .expect("the source is read");
    assert!(fetched.records.is_empty() && fetched.rejects.is_empty());
}

#[tokio::test]
async fn an_xls_sheet_that_would_span_billions_of_cells_is_refused_before_loading() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // An XLS workbook stream with a value at A1 and one at IV65536.
    let xls = dir.path().join("corner.xls");
    let mut biff = Vec::new();
    let mut record = |kind: u16, data: &[u8]| {
        biff.extend_from_slice(&kind.to_le_bytes());
        biff.extend_from_slice(&(data.len() as u16).to_le_bytes());
        biff.extend_from_slice(data);
    };
    record(0x0809, &[0; 16]);
    record(0x000A, &[]);
    record(0x0809, &[0; 16]);
    for (row, col) in [(0u16, 0u16), (65_535, 255)] {
        let mut number = Vec::new();
        number.extend_from_slice(&row.to_le_bytes());
        number.extend_from_slice(&col.to_le_bytes());
        number.extend_from_slice(&[0; 10]);
        record(0x0203, &number);
    }
    record(0x000A, &[]);
    let mut book = cfb::create(&xls).expect("the test creates its file");
    {
        use std::io::Write;
        let mut stream = book
            .create_stream("/Workbook")
            .expect("create_stream succeeds");
        stream.write_all(&biff).expect("the test writes it");
    }
    drop(book);
    let err = fetch_error(&bounded(&xls, 1000, 1000)).await;
    assert!(
        err.contains("spans A1:IV65536 (16777216 cells) for 2 value(s)")
            && err.contains("XLS sheets are loaded whole"),
        "{err}"
    );
}

/// An XLSX sheet streams: 2,500 rows in chunks of 1,000 arrive as three chunks, in order,
/// the same records `fetch` gives; a blank row and a row with a missing key are handled as
/// in one piece.
#[tokio::test]
async fn a_big_sheet_streams_in_chunks_with_the_records_fetch_gives() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("big.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let _ = sheet.write_string(0, 0, "order_id");
    let _ = sheet.write_string(0, 1, "amount");
    for i in 1..=2_500u32 {
        if i == 700 {
            continue; // a blank row
        }
        if i != 1_500 {
            let _ = sheet.write_string(i, 0, format!("A-{i}"));
        }
        let _ = sheet.write_number(i, 1, f64::from(i));
    }
    book.save(&path).expect("it is saved");
    let file = source(&path, None, &["order_id"]);
    let whole = file.fetch().await.expect("the source is read");
    let mut chunks = file.stream(1_000).await;
    let mut sizes = Vec::new();
    let mut keys = Vec::new();
    let mut rejects = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk.expect("it succeeds");
        sizes.push(chunk.records.len() + chunk.rejects.len());
        keys.extend(chunk.records.into_iter().map(|r| r.key));
        rejects.extend(chunk.rejects.into_iter().map(|r| r.key));
    }
    assert_eq!(
        sizes,
        [1_000, 1_000, 499],
        "2,499 rows with a value, a chunk at a time"
    );
    let whole_keys: Vec<String> = whole.records.into_iter().map(|r| r.key).collect();
    assert_eq!(keys, whole_keys);
    assert_eq!(rejects, ["row 1501"], "{rejects:?}");
    assert_eq!(keys.first().map(String::as_str), Some("A-1"));
    assert_eq!(keys.last().map(String::as_str), Some("A-2500"));
}

#[test]
fn an_ods_sheet_streamed_reads_as_calamine_reads_it_whole() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("book.ods");
    let cell =
        |attrs: &str, text: &str| format!("<table:table-cell {attrs}>{text}</table:table-cell>");
    let string = |text: &str| {
        cell(
            "office:value-type=\"string\"",
            &format!("<text:p>{text}</text:p>"),
        )
    };
    let row = |cells: &[String], attrs: &str| {
        format!(
            "<table:table-row {attrs}>{}</table:table-row>",
            cells.concat()
        )
    };
    let blank = |n: u32| format!("<table:table-cell table:number-columns-repeated=\"{n}\"/>");
    let first = format!(
        "<table:table table:name=\"Hidden &amp; first\">{}</table:table>",
        row(&[string("not this one")], "")
    );
    let orders = [
        // Two empty rows and two empty columns before the header.
        row(&[blank(4)], "table:number-rows-repeated=\"2\""),
        row(
            &[
                blank(2),
                string("order_id"),
                string("name"),
                string("total"),
                string("paid"),
                string("when"),
                string("note"),
                blank(1024),
            ],
            "",
        ),
        row(
            &[
                blank(2),
                string("A-1"),
                cell("office:value-type=\"string\" office:string-value=\"O&apos;Neil &amp; Co\"", "<text:p>shown</text:p>"),
                cell("office:value-type=\"float\" office:value=\"1250\"", "<text:p>1,250.00</text:p>"),
                cell("office:value-type=\"boolean\" office:boolean-value=\"true\"", "<text:p>TRUE</text:p>"),
                cell("office:value-type=\"date\" office:date-value=\"2026-11-29\"", "<text:p>29/11/26</text:p>"),
                cell(
                    "office:value-type=\"string\"",
                    "<office:annotation><text:p>a note</text:p></office:annotation><text:p>two<text:s text:c=\"3\"/>lines</text:p><text:p>tab<text:tab/>&#x41;&lt;<text:line-break/>end</text:p>",
                ),
            ],
            "",
        ),
        // A row repeated three times, with a value repeated over two columns.
        row(
            &[
                blank(2),
                string("A-2"),
                cell("office:value-type=\"string\" table:number-columns-repeated=\"2\"", "<text:p>same</text:p>"),
                cell("office:value-type=\"percentage\" office:value=\"0.125\"", ""),
                cell("office:value-type=\"time\" office:time-value=\"PT10H30M00S\"", ""),
                cell("", "<text:p>no type: not read</text:p>"),
            ],
            "table:number-rows-repeated=\"3\"",
        ),
        row(&[blank(1024)], "table:number-rows-repeated=\"1000\""),
        row(
            &[
                blank(2),
                string("A-5"),
                cell("table:number-columns-spanned=\"2\" office:value-type=\"currency\" office:value=\"99.5\"", ""),
                "<table:covered-table-cell/>".to_string(),
                cell("office:value-type=\"date\" office:date-value=\"2026-11-29T10:30:00\"", ""),
                cell("office:value-type=\"string\" office:string-value=\"\" calcext:value-type=\"error\"", "<text:p>#DIV/0!</text:p>"),
                cell("office:value-type=\"float\" office:value=\"-0.5\"", ""),
            ],
            "",
        ),
        row(&[blank(1024)], "table:number-rows-repeated=\"1047000\""),
    ]
    .concat();
    let second = format!("<table:table table:name=\"Orders\">{orders}</table:table>");
    ods(&path, &format!("{first}{second}"));

    for sheet in [Some("Orders"), None, Some("Hidden & first")] {
        let source = source(&path, sheet, &["order_id"]);
        let streamed = source.read(false).expect("the test reads the file");
        // calamine's workbook loads an ODS sheet whole, as its range.
        let whole = source.read_book(false, None).expect("read_book succeeds");
        assert_eq!(streamed.header, whole.header, "{sheet:?}");
        assert_eq!(streamed.rows, whole.rows, "{sheet:?}");
    }
    let missing = source(&path, Some("Nope"), &["order_id"]).read(false).err();
    assert!(
        missing.as_ref().is_some_and(|e| e
            .0
            .ends_with("has no sheet `Nope` (sheets: Hidden & first, Orders)")),
        "{missing:?}"
    );
    // And what they read is what the sheet holds.
    let sheet = source(&path, Some("Orders"), &["order_id"])
        .read(false)
        .expect("the test reads the file");
    assert_eq!(
        sheet.header,
        ["order_id", "name", "total", "paid", "when", "note"]
    );
    let rows: Vec<(u32, Vec<String>)> = sheet.rows;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(
        rows[0],
        (
            3,
            vec![
                "A-1".to_string(),
                "O'Neil & Co".into(),
                "1250".into(),
                "true".into(),
                "2026-11-29".into(),
                "two   lines\ntab\tA<\nend".into()
            ]
        )
    );
    assert_eq!(rows[1].0, 4);
    assert_eq!(rows[3].0, 6);
    assert_eq!(rows[1].1[..4], ["A-2", "same", "same", "0.125"]);
    assert_eq!(rows[4].0, 1007);
    assert_eq!(rows[4].1[..3], ["A-5", "99.5", ""]);
}
