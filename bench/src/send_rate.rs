//! End-to-end send rate: N CSV rows through `switchboard run` (the quickstart's map, the
//! 8x8 receiver, rate limits off) to the stand-in, wall time including start-up, with
//! single sends and with the batch endpoint; the reference is a bare client POSTing the
//! same bodies to the same stand-in at the same concurrency over one keep-alive pool,
//! and Switchboard's own HTTP layer doing the same without the engine (where the gap
//! between the two lies).
//! Then the single-send flow runs again with nothing new.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use connectors::http::{AccountClient, Auth};
use flows::{RateLimit, Secret};
use futures::stream::{self, StreamExt};
use serde_json::{json, Value};

use crate::child::{measure, Measured};
use crate::median;
use crate::standin::StandIn;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// CSV rows to send.
    #[arg(long, default_value_t = 100_000)]
    pub rows: usize,
    /// Sends in flight (the flow's `delivery.concurrency` and the bare client's).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Messages per 8x8 batch request in the batch measurement.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Keep the state in this PostgreSQL database (a schema per measurement, dropped
    /// after) instead of SQLite files: `postgres://postgres@127.0.0.1:5432/test`.
    #[arg(long)]
    pub postgres: Option<String>,
    /// Where the rows come from: a CSV file, or a Google Sheet the stand-in serves
    /// (read in pages, as from Google).
    #[arg(long, value_enum, default_value_t = RowSource::Csv)]
    pub source: RowSource,
    /// The stand-in answers each send after this many milliseconds (a service's own
    /// time; 0: at once).
    #[arg(long, default_value_t = 0)]
    pub delay_ms: u64,
    /// Also measure `wrk` (if on PATH) posting the same request to the same stand-in with
    /// as many connections, for this many seconds, in each run.
    #[arg(long, default_value_t = 0)]
    pub wrk_seconds: u64,
    /// Keep the last run's directory (flows, CSV, states) and print where, to profile a
    /// run of it by hand (e.g. the nothing-new run: `switchboard run single --flows DIR
    /// --state DIR/single-state`).
    #[arg(long)]
    pub keep: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rows: 100_000,
            concurrency: 64,
            batch: 1000,
            postgres: None,
            source: RowSource::Csv,
            delay_ms: 0,
            wrk_seconds: 0,
            keep: false,
        }
    }
}

impl Options {
    pub fn sized(self, smoke: bool) -> Options {
        if smoke {
            Options {
                rows: self.rows.min(500),
                ..self
            }
        } else {
            self
        }
    }
}

/// Where a measurement's rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RowSource {
    Csv,
    Sheet,
    /// An XLSX workbook (read row by row).
    Xlsx,
    /// An ODS file (read row by row).
    Ods,
}

/// The header of the rows.
pub const HEADER: [&str; 4] = ["order_id", "name", "phone", "total"];

/// Row `i` of the orders (0-based), as the CSV file and the sheet both have it.
pub fn order_row(i: usize) -> [String; 4] {
    [
        format!("A-{i}"),
        NAMES[i % NAMES.len()].to_string(),
        format!("+38050{i:07}"),
        format!("{}.00", i % 5000),
    ]
}

const NAMES: [&str; 5] = [
    "Olena Kovalenko",
    "Олена Коваленко",
    "李伟",
    "Νίκος Παπαδόπουλος",
    "José Pérez",
];

const FLOW: &str = r#"timezone: Europe/Kyiv
source:
SOURCE
  key: order_id
  backlog: send
receiver:
  connector: 8x8
  action: send_sms
  account: shop-8x8
BATCH
map:
  destination: "{{phone}}"
  source: "MyShop"
  text: "Hi {{name}}, order {{order_id}} is confirmed ({{date}} {{time}})."
delivery:
  concurrency: CONCURRENCY
"#;

pub(crate) fn write_project(dir: &Path, options: &Options, standin: &str) -> anyhow::Result<()> {
    let mut csv = String::with_capacity(options.rows * 48);
    csv.push_str(&HEADER.join(","));
    csv.push('\n');
    for i in 0..options.rows {
        csv.push_str(&order_row(i).join(","));
        csv.push('\n');
    }
    std::fs::write(dir.join("orders.csv"), csv)?;
    match options.source {
        RowSource::Xlsx => write_xlsx(&dir.join("orders.xlsx"), options.rows)?,
        RowSource::Ods => write_ods(&dir.join("orders.ods"), options.rows)?,
        RowSource::Csv | RowSource::Sheet => {}
    }
    std::fs::write(
        dir.join("accounts.yaml"),
        format!(
            "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: bench-key\n  base_url: {standin}\n  rate_limit: off\nsheets:\n  connector: google_sheets\n  api_key: bench-key\n  base_url: {standin}\n  rate_limit: off\n"
        ),
    )?;
    let source = match options.source {
        RowSource::Csv => "  connector: csv\n  path: orders.csv\n",
        RowSource::Sheet => "  connector: google_sheets\n  account: sheets\n  spreadsheet_id: bench\n  range: \"Orders!A1:D\"\n",
        RowSource::Xlsx => "  connector: xlsx\n  path: orders.xlsx\n",
        RowSource::Ods => "  connector: xlsx\n  path: orders.ods\n",
    };
    let flow = FLOW
        .replace("CONCURRENCY", &options.concurrency.to_string())
        .replace("SOURCE\n", source);
    std::fs::write(dir.join("single.yaml"), flow.replace("BATCH\n", ""))?;
    std::fs::write(
        dir.join("batched.yaml"),
        flow.replace("BATCH", &format!("  batch: {}", options.batch)),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.join("accounts.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }
    Ok(())
}

/// The rows as an XLSX workbook (text cells, as in the CSV).
fn write_xlsx(path: &Path, rows: usize) -> anyhow::Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Orders")?;
    for (col, name) in HEADER.iter().enumerate() {
        sheet.write_string(0, col as u16, *name)?;
    }
    for i in 0..rows {
        for (col, value) in order_row(i).iter().enumerate() {
            sheet.write_string(i as u32 + 1, col as u16, value)?;
        }
    }
    book.save(path)?;
    Ok(())
}

/// The rows as an ODS file (text cells, as in the CSV), written as LibreOffice writes one.
fn write_ods(path: &Path, rows: usize) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path)?);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default();
    zip.start_file("mimetype", stored)?;
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")?;
    zip.start_file("META-INF/manifest.xml", deflated)?;
    zip.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.3"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>"#)?;
    zip.start_file("content.xml", deflated)?;
    let mut content = std::io::BufWriter::new(&mut zip);
    content.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.3"><office:body><office:spreadsheet><table:table table:name="Orders">"#)?;
    let row = |out: &mut dyn std::io::Write, cells: &[&str]| -> std::io::Result<()> {
        out.write_all(b"<table:table-row>")?;
        for cell in cells {
            write!(
                out,
                r#"<table:table-cell office:value-type="string"><text:p>{cell}</text:p></table:table-cell>"#
            )?;
        }
        out.write_all(b"</table:table-row>")
    };
    row(&mut content, &HEADER)?;
    for i in 0..rows {
        let values = order_row(i);
        row(&mut content, &values.each_ref().map(String::as_str))?;
    }
    content.write_all(
        b"</table:table></office:spreadsheet></office:body></office:document-content>",
    )?;
    content.flush()?;
    drop(content);
    zip.finish()?;
    Ok(())
}

/// The bodies switchboard sends for the same rows (the map rendered by hand).
fn bodies(rows: usize) -> Vec<Value> {
    (0..rows)
        .map(|i| {
            json!({
                "destination": format!("+38050{i:07}"),
                "source": "MyShop",
                "text": format!("Hi {}, order A-{i} is confirmed (2026-11-21 12:08).", NAMES[i % NAMES.len()]),
                "clientMessageId": format!("single:A-{i}"),
            })
        })
        .collect()
}

/// Where the references post each body: the 8x8 messages endpoint of the flows'
/// sub-account (`shop_main` in the accounts file), under the stand-in's URL.
const MESSAGES_PATH: &str = "api/v1/subaccounts/shop_main/messages";

/// Post every body with `post` (true: it arrived), `concurrency` in flight: rows per
/// second, or an error naming `who` when a post failed.
async fn post_all<'a, Post, Posted>(
    who: &str,
    bodies: &'a [Value],
    concurrency: usize,
    post: Post,
) -> anyhow::Result<f64>
where
    Post: Fn(&'a Value) -> Posted,
    Posted: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let failures = stream::iter(bodies)
        .map(post)
        .buffer_unordered(concurrency)
        .fold(0, |n, arrived| async move { n + usize::from(!arrived) })
        .await;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(failures == 0, "{who} saw {failures} failed POSTs");
    Ok(bodies.len() as f64 / seconds)
}

/// POST every body with `concurrency` in flight; rows per second.
async fn bare_client(url: &str, bodies: &[Value], concurrency: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::new();
    let url = format!("{url}/{MESSAGES_PATH}");
    post_all("the bare client", bodies, concurrency, |body| {
        let call = client.post(&url).bearer_auth("bench-key").json(body).send();
        async move {
            match call.await {
                Ok(response) => response.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await
}

/// `switchboard-bench post`: the bare client's POSTs from a process of its own.
#[derive(Debug, Clone, clap::Args)]
pub struct PostOptions {
    /// The stand-in's base URL.
    #[arg(long)]
    url: String,
    /// How many bodies (the same as `send-rate`'s rows).
    #[arg(long)]
    rows: usize,
    /// Sends in flight.
    #[arg(long)]
    concurrency: usize,
}

pub async fn post(options: PostOptions) -> anyhow::Result<()> {
    let rate = bare_client(&options.url, &bodies(options.rows), options.concurrency).await?;
    println!("{rate:.0}");
    Ok(())
}

/// The bare client run as a child (`switchboard-bench post`), timed by the harness that
/// times Switchboard: wall time from spawn, its bodies built in it. Rows per second.
async fn bare_client_apart(
    dir: &Path,
    url: &str,
    rows: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let bench = std::env::current_exe().context("cannot find this benchmark's binary")?;
    let (rows_arg, concurrency_arg) = (rows.to_string(), concurrency.to_string());
    let ran = measure(
        &bench,
        dir,
        &[
            "post",
            "--url",
            url,
            "--rows",
            &rows_arg,
            "--concurrency",
            &concurrency_arg,
        ],
    )
    .await?;
    Ok(rows as f64 / ran.wall.as_secs_f64())
}

/// POST every body through Switchboard's own HTTP layer ([`AccountClient`], as the 8x8
/// receiver does: its bearer key, its per-request timeout, the answer read and checked)
/// with `concurrency` in flight, in this process: what single sends would reach if the
/// engine (ledger, state, templates) cost nothing. Rows per second.
async fn account_client(url: &str, bodies: &[Value], concurrency: usize) -> anyhow::Result<f64> {
    let client = AccountClient::new(
        "bench-http-layer",
        url,
        Auth::Bearer(Secret::new("bench-key")),
        RateLimit::Off,
    );
    post_all("Switchboard's HTTP layer", bodies, concurrency, |body| {
        let call = client
            .post(MESSAGES_PATH, Duration::from_secs(30))
            .json(body)
            .send_ok();
        async move { call.await.is_ok() }
    })
    .await
}

/// `wrk` posting the first body to the stand-in with `connections` for `seconds`:
/// requests per second, or `None` when `wrk` is not installed.
async fn wrk(
    dir: &Path,
    url: &str,
    body: &Value,
    connections: usize,
    seconds: u64,
) -> anyhow::Result<Option<f64>> {
    let script = dir.join("post.lua");
    // A Lua long string holds the JSON as it is.
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.headers[\"Authorization\"] = \"Bearer bench-key\"\n"
        ),
    )?;
    let ran = tokio::process::Command::new("wrk")
        .arg(format!("-t{}", connections.clamp(1, 2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("{url}/{MESSAGES_PATH}"))
        .output()
        .await;
    let output = match ran {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).context("cannot run wrk"),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    ensure!(
        !text.contains("Non-2xx"),
        "wrk saw answers that were not 2xx:\n{text}"
    );
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|n| n.trim().parse().ok())
        .map(Some)
        .with_context(|| format!("wrk printed no Requests/sec:\n{text}"))
}

struct Sample {
    wrk: Option<f64>,
    bare: f64,
    bare_apart: f64,
    http_layer: f64,
    single: Measured,
    batched: Measured,
    nothing_new: Measured,
}

pub(crate) fn rand_tag() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Drop the schemas the measurement's `--state` URLs named (on a thread of its own: the
/// synchronous client cannot run on the runtime's).
pub(crate) fn drop_schemas(server: &str, states: &[&str]) {
    let server = server.to_string();
    let schemas: Vec<String> = states
        .iter()
        .filter_map(|s| {
            s.split_once("?schema=")
                .map(|(_, schema)| schema.to_string())
        })
        .collect();
    let _ = std::thread::spawn(move || {
        if let Ok(mut client) = postgres::Client::connect(&server, postgres::NoTls) {
            for schema in schemas {
                let _ =
                    client.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
            }
        }
    })
    .join();
}

pub async fn run(bin: &Path, runs: usize, options: Options) -> anyhow::Result<()> {
    let standin = StandIn::answering_after(Duration::from_millis(options.delay_ms)).await?;
    standin.serve_sheet_rows(options.rows);
    let bodies = bodies(options.rows);
    println!(
        "send-rate: {} rows from {}, concurrency {}, batch {}, {} run(s), state in {}",
        options.rows,
        match options.source {
            RowSource::Csv => "a CSV file",
            RowSource::Sheet => "a Google Sheet (the stand-in's)",
            RowSource::Xlsx => "an XLSX workbook",
            RowSource::Ods => "an ODS file",
        },
        options.concurrency,
        options.batch,
        runs,
        options
            .postgres
            .as_deref()
            .map_or("SQLite", |_| "PostgreSQL")
    );
    let mut samples = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir()?;
        write_project(dir.path(), &options, &standin.url)?;
        let flows = dir.path().to_string_lossy().into_owned();

        let bare = bare_client(&standin.url, &bodies, options.concurrency).await?;
        ensure!(
            standin.take() == options.rows as u64,
            "bare client: not every row arrived"
        );
        let bare_apart =
            bare_client_apart(dir.path(), &standin.url, options.rows, options.concurrency).await?;
        ensure!(
            standin.take() == options.rows as u64,
            "bare client in its own process: not every row arrived"
        );
        let http_layer = account_client(&standin.url, &bodies, options.concurrency).await?;
        ensure!(
            standin.take() == options.rows as u64,
            "Switchboard's HTTP layer: not every row arrived"
        );
        let wrk = match options.wrk_seconds {
            0 => None,
            seconds => {
                let rate = wrk(
                    dir.path(),
                    &standin.url,
                    &bodies[0],
                    options.concurrency,
                    seconds,
                )
                .await?;
                standin.take();
                rate
            }
        };

        // Each job's own state: a directory, or a schema of the database.
        let (single_state, batched_state) = match &options.postgres {
            Some(server) => {
                let tag = format!("{:x}", rand_tag());
                (
                    format!("{server}?schema=bench_single_{tag}"),
                    format!("{server}?schema=bench_batched_{tag}"),
                )
            }
            None => (
                dir.path()
                    .join("single-state")
                    .to_string_lossy()
                    .into_owned(),
                dir.path()
                    .join("batched-state")
                    .to_string_lossy()
                    .into_owned(),
            ),
        };
        let single = measure(
            bin,
            dir.path(),
            &["run", "single", "--flows", &flows, "--state", &single_state],
        )
        .await?;
        let got = standin.take();
        ensure!(
            got == options.rows as u64,
            "single sends: {got} of {} rows arrived\n{}",
            options.rows,
            single.stdout
        );

        let nothing_new = measure(
            bin,
            dir.path(),
            &["run", "single", "--flows", &flows, "--state", &single_state],
        )
        .await?;
        ensure!(standin.take() == 0, "the nothing-new run sent rows");

        // A second state for the same flows directory: said knowingly (the directory
        // remembers the state it was run with, and refuses another otherwise).
        let batched = measure(
            bin,
            dir.path(),
            &[
                "run",
                "batched",
                "--flows",
                &flows,
                "--state",
                &batched_state,
                "--accept-state-loss",
            ],
        )
        .await?;
        if let Some(server) = &options.postgres {
            drop_schemas(server, &[&single_state, &batched_state]);
        }
        let got = standin.take();
        ensure!(
            got == options.rows as u64,
            "batches: {got} of {} rows arrived\n{}",
            options.rows,
            batched.stdout
        );

        let rate = |m: &Measured| options.rows as f64 / m.wall.as_secs_f64();
        println!(
            "  run {run}: bare {:.0}/s (own process {:.0}/s) · HTTP layer {:.0}/s · single {:.0}/s ({} MiB) · batched {:.0}/s ({} MiB) · nothing new {:.3} s ({} MiB)",
            bare,
            bare_apart,
            http_layer,
            rate(&single),
            single.peak_rss_kib / 1024,
            rate(&batched),
            batched.peak_rss_kib / 1024,
            nothing_new.wall.as_secs_f64(),
            nothing_new.peak_rss_kib / 1024
        );
        if let Some(wrk) = wrk {
            println!(
                "  run {run}: wrk {wrk:.0}/s · single {:.0}% of wrk",
                100.0 * rate(&single) / wrk
            );
        }
        samples.push(Sample {
            wrk,
            bare,
            bare_apart,
            http_layer,
            single,
            batched,
            nothing_new,
        });
        if options.keep {
            println!("  kept: {}", dir.keep().display());
        } else {
            dir.close().context("cannot remove the run's directory")?;
        }
    }
    let rows = options.rows as f64;
    let pick = |f: &dyn Fn(&Sample) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    let bare = pick(&|s| s.bare);
    let single = pick(&|s| rows / s.single.wall.as_secs_f64());
    let batched = pick(&|s| rows / s.batched.wall.as_secs_f64());
    let bare_apart = pick(&|s| s.bare_apart);
    let http_layer = pick(&|s| s.http_layer);
    let mib = |kib: f64| format!("{:.1} MiB", kib / 1024.0);
    println!(
        "\n| {} rows, concurrency {} | rows/s (median) | vs bare | vs bare in its own process | peak RSS |",
        options.rows, options.concurrency
    );
    println!("|---|---|---|---|---|");
    let line = |what: &str, rate: f64, rss: &str| {
        println!(
            "| {what} | {rate:.0} | {:.0}% | {:.0}% | {rss} |",
            100.0 * rate / bare,
            100.0 * rate / bare_apart
        );
    };
    line("bare client (reqwest, keep-alive)", bare, "—");
    line(
        "bare client in a process of its own (timed as Switchboard is: from spawn)",
        bare_apart,
        "—",
    );
    line(
        "Switchboard's HTTP layer alone (AccountClient, no engine)",
        http_layer,
        "—",
    );
    let wrks: Vec<f64> = samples.iter().filter_map(|s| s.wrk).collect();
    if !wrks.is_empty() {
        let of_wrk = median(
            &samples
                .iter()
                .filter_map(|s| Some(rows / s.single.wall.as_secs_f64() / s.wrk?))
                .collect::<Vec<_>>(),
        );
        line(
            &format!(
                "wrk, {} connections (single sends: {:.0}% of it, median of each run's ratio)",
                options.concurrency,
                100.0 * of_wrk
            ),
            median(&wrks),
            "—",
        );
    }
    line(
        "switchboard run, single sends",
        single,
        &mib(pick(&|s| s.single.peak_rss_kib as f64)),
    );
    line(
        &format!("switchboard run, batch {}", options.batch),
        batched,
        &mib(pick(&|s| s.batched.peak_rss_kib as f64)),
    );
    println!(
        "| nothing new (same flow again) | {:.3} s | — | — | {} |",
        pick(&|s| s.nothing_new.wall.as_secs_f64()),
        mib(pick(&|s| s.nothing_new.peak_rss_kib as f64))
    );
    Ok(())
}
