use super::config::Source as CsvSource;
use super::*;
use flows::{Backlog, Pos};
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
    let dir = tempfile::tempdir().expect("a temporary directory");
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

/// Broken CSV files, each with the error it must produce. A broken line fails alone;
/// a file that cannot be read at all fails the fetch.
#[tokio::test]
async fn a_corpus_of_broken_csv_files_each_gets_its_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // (content, accepted keys, expected rejects as (key, reason fragment))
    type Case<'a> = (&'a [u8], &'a [&'a str], &'a [(&'a str, &'a str)]);
    let row_cases: &[Case] = &[
        (
            b"order_id,name\nA-1,x\nA-2,y,z\n",
            &["A-1"],
            &[("line 3", "3 fields but the header has 2")],
        ),
        (
            b"order_id,name\nA-1\n",
            &[],
            &[("line 2", "1 fields but the header has 2")],
        ),
        (
            b"order_id,name\nA-1,\xff\xfe\n",
            &[],
            &[("line 2", "not valid UTF-8")],
        ),
        (
            b"order_id,name\n,nobody\n",
            &[],
            &[("line 2", "key column `order_id` is empty")],
        ),
        (b"order_id,name\n\n\nA-1,x\n", &["A-1"], &[]),
        (b"\xef\xbb\xbforder_id,name\nA-1,x\n", &["A-1"], &[]),
        (b"order_id,name\nA-1,\"two\nlines\"\n", &["A-1"], &[]),
        (b"order_id,name\n", &[], &[]),
        (
            b"order_id,name\nA-1,x\nA-2,\"never closed\nA-3,z\n",
            &["A-1"],
            &[("line 3", "a quoted field opened here is never closed")],
        ),
        (
            b"order_id,name\nA-1,\"say \"\"hi\"\"\"\nA-2,\"\"\"\"\n",
            &["A-1", "A-2"],
            &[],
        ),
    ];
    for (i, (content, keys, rejects)) in row_cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.csv"));
        std::fs::write(&path, content).expect("the test writes its file");
        let csv = CsvFile::new(&CsvSource {
            path,
            key: vec!["order_id".into()],
            backlog: Backlog::Skip,
            delimiter: b',',
            pos: Pos::default(),
        });
        let fetched = csv
            .fetch()
            .await
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        let got: Vec<&str> = fetched.records.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(got, *keys, "case {i}");
        assert_eq!(
            fetched.rejects.len(),
            rejects.len(),
            "case {i}: {:?}",
            fetched.rejects
        );
        for (reject, (key, reason)) in fetched.rejects.iter().zip(rejects.iter()) {
            assert_eq!(reject.key, *key, "case {i}");
            assert!(
                reject.reason.contains(reason),
                "case {i}: {:?}",
                reject.reason
            );
        }
    }
    let file_cases: &[(&[u8], &str)] = &[
        (b"", "key column `order_id` not in the header"),
        (b"id,name\n1,x\n", "key column `order_id` not in the header"),
        (
            b"order_id,name,name\n1,x,y\n",
            "column `name` appears twice in the header",
        ),
    ];
    for (i, (content, error)) in file_cases.iter().enumerate() {
        let path = dir.path().join(format!("file{i}.csv"));
        std::fs::write(&path, content).expect("the test writes its file");
        let csv = CsvFile::new(&CsvSource {
            path,
            key: vec!["order_id".into()],
            backlog: Backlog::Skip,
            delimiter: b',',
            pos: Pos::default(),
        });
        let got = csv.fetch().await.err().map(|e| e.0).unwrap_or_default();
        assert!(got.contains(error), "file case {i}: {got}");
    }
}

#[tokio::test]
async fn a_large_file_streams_in_chunks_with_its_rejects_in_place() -> Result<(), SourceError> {
    let dir = tempfile::tempdir().map_err(|e| SourceError(e.to_string()))?;
    let csv = source(
        dir.path(),
        "order_id,name\nA-1,Olena\nA-2,too,many\nA-3,Ivan\n\nA-4,Tom\nA-5,Ann\n",
        &["order_id"],
    );
    let mut chunks = csv.stream(2).await;
    let mut seen = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        let mut names: Vec<String> = chunk.records.iter().map(|r| r.key.clone()).collect();
        names.extend(chunk.rejects.iter().map(|r| r.key.clone()));
        seen.push(names);
    }
    assert_eq!(
        seen,
        [
            vec!["A-1".to_string(), "line 3".into()],
            vec!["A-3".into(), "A-4".into()],
            vec!["A-5".into()]
        ]
    );

    let missing = CsvFile::new(&CsvSource {
        path: dir.path().join("gone.csv"),
        key: vec![],
        backlog: Backlog::Skip,
        delimiter: b',',
        pos: Pos::default(),
    });
    let mut chunks = missing.stream(2).await;
    let first = chunks.recv().await;
    assert!(
        matches!(first, Some(Err(ref e)) if e.0.contains("no such file")),
        "{first:?}"
    );
    assert!(chunks.recv().await.is_none(), "an error ends the stream");
    Ok(())
}
