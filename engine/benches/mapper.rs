//! Rendering the quickstart flow's map (`examples/quickstart/order-sms.yaml`) for one
//! record: the per-record work of a run before anything is sent. One thread.
//! `cargo bench -p engine --bench mapper`; `cargo test -p engine --benches` runs it once.

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::{Mapper, Record};
use serde_json::{json, Value};

/// The allocator the `switchboard` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn quickstart_mapper() -> Mapper {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let project = connectors::load_project(&flows::LoadOptions {
        flows_dir: dir,
        ..flows::LoadOptions::default()
    });
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
