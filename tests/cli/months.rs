//! Running it for months (issue 17) through the real binary against the stand-in:
//! `filter:` drops and passes records, and says why in `run`, `history` and `test`.

use super::*;

/// Orders with a status and an amount; the flow texts paid orders over 100 only.
const ORDERS_WITH_STATUS: &str = "order_id,name,phone,status,amount\nA-1,Olena,+380501234567,paid,250\nA-2,Tom,+12025550175,pending,300\nA-3,María,+34612345678,paid,40\n";

const FILTER: &str =
    "filter:\n  all:\n    - {field: status, equals: paid}\n    - {field: amount, gt: 100}\n";

#[tokio::test]
async fn a_filter_drops_and_passes_records_and_a_changed_row_is_judged_again() {
    let (_sandbox, url) = daily::sandbox().await;
    let dir = Dir::new(&url);
    dir.write("flows/orders.csv", ORDERS_WITH_STATUS);
    dir.append("flows/order-sms.yaml", FILTER);
    // `test` shows which records the filter drops, and why, before anything is sent.
    let preview = dir.run(&["test", "order-sms"]).await;
    assert_eq!(preview.code, 0, "{preview:?}");
    assert!(
        preview.stdout.contains("record A-2 (new)\n  filtered out, not sent: filter: `status` is `pending`, and the filter wants `paid`"),
        "{preview:?}"
    );
    let run = dir.run(&["run", "order-sms"]).await;
    assert_eq!(run.code, 0, "filtered records are not failures: {run:?}");
    assert!(
        run.stdout
            .contains("fetched 3, new 3, sent 1, failed 0, skipped 0, filtered 2 (succeeded"),
        "{run:?}"
    );
    let rows = dir
        .run(&["history", "order-sms", "--run", "1", "--json"])
        .await
        .json();
    let statuses: Vec<(&str, &str)> = rows["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["key"].as_str().unwrap_or(""),
                r["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("A-1", "sent"), ("A-2", "filtered"), ("A-3", "filtered")]
    );
    assert_eq!(
        rows["rows"][2]["reason"],
        "filter: `amount` is `40`, and the filter wants more than 100"
    );
    // Nothing changed: nothing is judged again (filtered: remember, the default).
    let again = dir.run(&["run", "order-sms"]).await;
    assert!(
        again
            .stdout
            .contains("fetched 3, new 0, sent 0, failed 0, skipped 0 (succeeded"),
        "{again:?}"
    );
    // A-2 is paid now: its row changed, so it is judged again, and sent.
    dir.write(
        "flows/orders.csv",
        &ORDERS_WITH_STATUS.replace("pending", "paid"),
    );
    let paid = dir.run(&["run", "order-sms"]).await;
    assert!(
        paid.stdout.contains("fetched 3, new 1, sent 1, failed 0"),
        "{paid:?}"
    );
    let received = daily::sandbox_messages(&url).await;
    assert!(
        received.contains("+12025550175") && !received.contains("+34612345678"),
        "{received}"
    );
}

#[tokio::test]
async fn filtered_retry_judges_again_every_run_and_a_record_it_cannot_judge_fails() {
    let (_sandbox, url) = daily::sandbox().await;
    let dir = Dir::new(&url);
    dir.write(
        "flows/orders.csv",
        &format!("{ORDERS_WITH_STATUS}A-4,Ann,+380671112233,paid,lots\n"),
    );
    dir.append(
        "flows/order-sms.yaml",
        &format!("{FILTER}filtered: retry\n"),
    );
    let first = dir.run(&["run", "order-sms"]).await;
    assert_eq!(first.code, 1, "A-4 cannot be judged: {first:?}");
    assert!(
        first
            .stdout
            .contains("sent 1, failed 1, skipped 0, filtered 2"),
        "{first:?}"
    );
    assert!(
        first
            .stdout
            .contains("failed  A-4  filter: `amount` is `lots`, not a number"),
        "{first:?}"
    );
    let second = dir.run(&["run", "order-sms"]).await;
    assert!(
        second
            .stdout
            .contains("fetched 4, new 2, sent 0, failed 0, skipped 0, filtered 2"),
        "the two filtered rows are judged again: {second:?}"
    );
}

#[tokio::test]
async fn filter_mistakes_are_pointed_at_by_validate() {
    let dir = Dir::new("http://127.0.0.1:9");
    dir.append(
        "flows/order-sms.yaml",
        "filter:\n  any:\n    - {field: total, gt: many}\n    - {field: name, matches: \"(\"}\n    - {field: phone, startswith: \"+380\"}\n",
    );
    // The filter's lines follow the flow's own.
    let at = |n: usize, col: usize| format!("order-sms.yaml:{}:{col}: ", FLOW.lines().count() + n);
    let run = dir.run(&["validate"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    for expected in [
        format!(
            "{}`gt` compares numbers or dates; `many` is neither",
            at(3, 26)
        ),
        format!("{}`matches`: `(` is not a regular expression", at(4, 30)),
        format!(
            "{}unknown filter operator `startswith`\n  hint: did you mean `starts_with`?",
            at(5, 22)
        ),
    ] {
        assert!(run.stdout.contains(&expected), "{expected}: {run:?}");
    }
    // Once it reads, the fields it tests are checked against the source's columns.
    dir.write(
        "flows/order-sms.yaml",
        &format!("{FLOW}filter: {{field: staus, equals: paid}}\n"),
    );
    let names = dir.run(&["validate"]).await;
    assert!(
        names.stdout.contains(&format!(
            "{}`filter` tests `staus`, which the source has no column for",
            at(1, 17)
        )),
        "{names:?}"
    );
}
