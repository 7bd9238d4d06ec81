//! Daily use, as a new user meets the CLI: a row fixed after it failed, an empty flows
//! directory, every problem at once, previews of the next run, quiet output, events
//! described as events, and messages that say what, where, what was expected, and how.

use super::*;

/// A row with bad data fails; fixed in the source, the next `run` sends it (and only
/// it); `replay` then has nothing to do and records no run.
#[tokio::test]
async fn a_row_fixed_in_the_source_after_it_failed_is_sent_by_the_next_run() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.append("flows/orders.csv", "A-1009,Bad Phone,12345\n");

    let first = dir.run(&["run", "order-sms"]).await;
    assert_eq!(first.code, 1, "{first:?}");
    assert!(first.stdout.contains("sent 3, failed 1"), "{first:?}");
    assert!(first.stdout.contains("failed  A-1009"), "{first:?}");

    let unchanged = dir.run(&["run", "order-sms"]).await;
    assert!(
        unchanged
            .stdout
            .starts_with("order-sms run 2: fetched 4, new 0, sent 0, failed 0"),
        "a row that failed is not retried while its data is the same: {unchanged:?}"
    );

    dir.write(
        "flows/orders.csv",
        &format!("{ORDERS}A-1009,Bad Phone,+380991234567\n"),
    );
    let fixed = dir.run(&["run", "order-sms"]).await;
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert!(
        fixed
            .stdout
            .starts_with("order-sms run 3: fetched 4, new 1, sent 1, failed 0"),
        "{fixed:?}"
    );
    let sent = bodies(&server).await;
    assert_eq!(
        sent.iter()
            .filter(|b| b["clientMessageId"] == "order-sms:A-1009")
            .map(|b| b["destination"].clone())
            .collect::<Vec<_>>(),
        [json!("+380991234567")]
    );

    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");

    let replay = dir.run(&["replay", "order-sms"]).await;
    assert_eq!(replay.code, 0, "{replay:?}");
    assert_eq!(
        replay.stdout,
        "order-sms: nothing to replay — no failed row waits to be sent again; no run recorded\n"
    );
    let json = dir.run(&["replay", "order-sms", "--json"]).await;
    assert_eq!(json.json()["nothing_to_replay"], true, "{json:?}");
    let history = dir.run(&["history", "order-sms", "--json"]).await;
    assert_eq!(
        history.json().as_array().map(Vec::len),
        Some(4),
        "no run recorded for an empty replay: {history:?}"
    );
    assert_eq!(bodies(&server).await.len(), 4, "nothing sent twice");
}
