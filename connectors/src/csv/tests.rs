use super::*;
use flows::{Backlog, CsvSource, Pos};
use std::path::Path;

fn source(dir: &Path, text: &str, key: &[&str]) -> CsvFile {
    let path = dir.join("rows.csv");
    std::fs::write(&path, text).unwrap_or_default();
    CsvFile::new(&CsvSource {
        path,
        key: key.iter().map(|k| k.to_string()).collect(),
        backlog: Backlog::Skip,
        delimiter: b',',
        pos: Pos::default(),
    })
}

#[tokio::test]
async fn rows_become_records_keyed_by_their_key_column() -> Result<(), SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError(e.to_string()))?;
    let csv = source(
        dir.path(),
        "order_id,name\nA-1,Olena\nA-2,Tom & Jerry\n",
        &["order_id"],
    );
    let fetched = csv.fetch().await?;
    assert_eq!(fetched.records.len(), 2);
    assert_eq!(fetched.records[0].key, "A-1");
    assert_eq!(fetched.records[1].fields["name"], "Tom & Jerry");
    assert!(fetched.rejects.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_malformed_line_fails_alone() -> Result<(), SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError(e.to_string()))?;
    let csv = source(
        dir.path(),
        "order_id,name\nA-1,Olena\nA-2,too,many\n\nA-3,Ivan\n,NoKey\n",
        &["order_id"],
    );
    let fetched = csv.fetch().await?;
    let keys: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["A-1", "A-3"]);
    assert_eq!(fetched.rejects.len(), 2);
    assert_eq!(fetched.rejects[0].key, "line 3");
    assert!(
        fetched.rejects[0]
            .reason
            .contains("3 fields but the header has 2"),
        "{:?}",
        fetched.rejects[0]
    );
    assert!(fetched.rejects[1]
        .reason
        .contains("key column `order_id` is empty"));
    Ok(())
}

#[tokio::test]
async fn without_a_key_identical_rows_share_a_hash() -> Result<(), SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError(e.to_string()))?;
    let csv = source(dir.path(), "a,b\n1,2\n1,2\n1,3\n", &[]);
    let fetched = csv.fetch().await?;
    assert_eq!(fetched.records[0].key, fetched.records[1].key);
    assert_ne!(fetched.records[0].key, fetched.records[2].key);
    assert!(fetched.records[0].key.starts_with("row:"));
    Ok(())
}

#[tokio::test]
async fn a_missing_file_or_key_column_fails_the_fetch_with_a_reason() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let missing = CsvFile::new(&CsvSource {
        path: dir.path().join("nope.csv"),
        key: vec![],
        backlog: Backlog::Skip,
        delimiter: b',',
        pos: Pos::default(),
    });
    let err = missing.fetch().await.err().map(|e| e.0).unwrap_or_default();
    assert!(err.contains("no such file"), "{err}");
    let wrong_key = source(dir.path(), "id,name\n1,a\n", &["order_id"]);
    let err = wrong_key
        .fetch()
        .await
        .err()
        .map(|e| e.0)
        .unwrap_or_default();
    assert!(
        err.contains("key column `order_id` not in the header"),
        "{err}"
    );
}

#[tokio::test]
async fn multi_column_keys_and_semicolons() -> Result<(), SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError(e.to_string()))?;
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, "shop;order;name\nkyiv;1;A\nlviv;1;B\n")
        .map_err(|e| SourceError(e.to_string()))?;
    let csv = CsvFile::new(&CsvSource {
        path,
        key: vec!["shop".into(), "order".into()],
        backlog: Backlog::Skip,
        delimiter: b';',
        pos: Pos::default(),
    });
    let fetched = csv.fetch().await?;
    assert_eq!(fetched.records[0].key, r#"["kyiv","1"]"#);
    assert_eq!(fetched.records[1].key, r#"["lviv","1"]"#);
    Ok(())
}
