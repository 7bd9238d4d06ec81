//! Rendering the quickstart flow's map (`examples/quickstart/order-sms.yaml`'s, the same
//! templates, parsed with flows' test catalogue) for one record: the per-record work of
//! a run before anything is sent. One thread.
//! `cargo bench -p engine --bench mapper`; `cargo test -p engine --benches` runs it once.

// A bench is a test: its set-up states what it expects.
#![allow(clippy::expect_used)]

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{Mapper, Record};
use serde_json::{json, Value};

/// The allocator the `switchboard` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The quickstart flow's map, over a source and receiver of the test catalogue.
const ORDER_SMS: &str = r#"timezone: Europe/Kyiv
source: {connector: rows, path: orders.csv, key: order_id}
receiver: {connector: sms, action: send, account: sms}
map:
  destination: "{{phone}}"
  source: "MyShop"
  text: "Hi {{name}}, order {{order_id}} is confirmed ({{date}} {{time}})."
"#;

fn quickstart_mapper() -> Mapper {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("the test writes its file")
    };
    write("accounts.yaml", "sms: {connector: sms}\n");
    write("order-sms.yaml", ORDER_SMS);
    let project = flows::load_project(
        &flows::LoadOptions {
            flows_dir: dir.path().to_path_buf(),
            ..flows::LoadOptions::default()
        },
        &flows::testkit::TestCatalogue,
    );
    let flow = project.flows.get("order-sms").unwrap_or_else(|| {
        panic!(
            "the quickstart flow does not load: {:#?}",
            project.diagnostics()
        )
    });
    Mapper::new(flow).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn record(i: u64) -> Record {
    let fields = json!({
        "order_id": format!("A-{i}"),
        "name": "Олена Коваленко",
        "phone": "+380671112233",
        "total": "980.50",
    });
    Record::new(
        format!("A-{i}"),
        match fields {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        },
    )
}

fn render(c: &mut Criterion) {
    let mapper = quickstart_mapper();
    let now = Utc
        .with_ymd_and_hms(2026, 11, 21, 10, 8, 0)
        .single()
        .unwrap_or_default();
    let record = record(1001);
    let mut group = c.benchmark_group("mapper");
    group.throughput(Throughput::Elements(1));
    // As in a run: the record is the source's, moved into the mapper (making the copy
    // for each iteration is set-up, not timed).
    group.bench_function("quickstart order-sms, one record", |b| {
        b.iter_batched(
            || record.clone(),
            |record| mapper.render_owned(record, now),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
