//! The promise, round three: what hostile testing, a fault campaign and a new user's hour
//! found (issue 28). Each test failed before its fix: configuration changes that resent
//! or dropped rows without a word, and the other defects of that round.

use super::*;

/// A flow that sends only the rows its filter admits.
fn filtered_flow(dir: &Dir, filter: &str) {
    dir.write(
        "flows/order-sms.yaml",
        &FLOW.replace(
            "schedule:\n  every: 15m\n",
            &format!("schedule:\n  every: 15m\nfilter: {filter}\n"),
        ),
    );
}

#[tokio::test]
async fn a_changed_filter_judges_again_the_rows_it_dropped() {
    let server = mock_8x8().await;
    let dir = Dir::new(&server.uri());
    dir.write(
        "flows/orders.csv",
        "order_id,name,phone,status\nA-1,Olena,+380501234567,paid\nA-2,Tom,+12025550175,pending\nA-3,Fang,+8613800138000,pending\n",
    );
    filtered_flow(&dir, "{field: status, equals: paid}");
    let first = dir.run(&["run", "order-sms"]).await;
    assert!(
        first.stdout.contains("sent 1") && first.stdout.contains("filtered 2"),
        "{first:?}"
    );
    // Read again unchanged: nothing new (and the chunk is noted as holding nothing new).
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(again.stdout.contains("new 0, sent 0"), "{again:?}");

    // The filter is fixed: the rows it dropped are judged again, and now sent; the row
    // sent before is not sent again.
    filtered_flow(&dir, "{field: status, in: [paid, pending]}");
    let fixed = dir.run(&["run", "order-sms"]).await;
    assert_eq!(fixed.code, 0, "{fixed:?}");
    assert!(fixed.stdout.contains("new 2, sent 2"), "{fixed:?}");
    assert_eq!(
        client_ids(&bodies(&server).await),
        ["order-sms:A-1", "order-sms:A-2", "order-sms:A-3"]
    );

    // Narrowed again: what was sent stays sent; nothing is judged into a resend.
    filtered_flow(&dir, "{field: status, equals: paid}");
    let narrowed = dir.run(&["run", "order-sms"]).await;
    assert!(narrowed.stdout.contains("sent 0"), "{narrowed:?}");
    assert_eq!(bodies(&server).await.len(), 3);
}
