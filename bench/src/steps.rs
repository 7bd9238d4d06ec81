//! `steps`: what a flow's `steps:` cost. N CSV rows sent as three texts each through 8x8
//! to the stand-in, two ways in the same run: one three-step flow (the second and third
//! steps reading the first's answer), and three one-step flows over the same rows, run
//! one after the other, each with its own state. Wall time (start-up included) and peak
//! memory of each `switchboard run`; the three one-step runs are summed.

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;

use crate::child::measure;
use crate::median;
use crate::standin::StandIn;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// CSV rows (each gets three texts either way).
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Sends in flight (every flow's `delivery.concurrency`).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rows: 10_000,
            concurrency: 64,
        }
    }
}

impl Options {
    pub fn sized(self, smoke: bool) -> Options {
        if smoke {
            Options {
                rows: self.rows.min(300),
                ..self
            }
        } else {
            self
        }
    }
}

/// The texts of the three sends, in order.
const TEXTS: [&str; 3] = [
    "Hi {{name}}, order {{order_id}} is confirmed.",
    "Order {{order_id}} ships today (ref STEP_A).",
    "Thank you, {{name}}: rate order {{order_id}} (ref STEP_A).",
];

fn write_project(dir: &Path, options: &Options, standin: &str) -> anyhow::Result<()> {
    let mut csv = String::from("order_id,name,phone\n");
    for i in 0..options.rows {
        let [id, name, phone, _] = crate::send_rate::order_row(i);
        csv.push_str(&format!("{id},{name},{phone}\n"));
    }
    std::fs::write(dir.join("orders.csv"), csv)?;
    std::fs::write(
        dir.join("accounts.yaml"),
        format!(
            "shop-8x8:\n  connector: 8x8\n  subaccount_id: shop_main\n  api_key: bench-key\n  base_url: {standin}\n  rate_limit: off\n"
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            dir.join("accounts.yaml"),
            std::fs::Permissions::from_mode(0o600),
        )?;
    }
    let head = "source: {connector: csv, path: orders.csv, key: order_id, backlog: send}\n";
    let delivery = format!("delivery: {{concurrency: {}}}\n", options.concurrency);
    let action = "{connector: 8x8, action: send_sms, account: shop-8x8}";
    // The three-step flow: b and c name a's id.
    let mut three = format!("{head}steps:\n");
    for (name, text) in ["a", "b", "c"].iter().zip(TEXTS) {
        three.push_str(&format!(
            "  - name: {name}\n    action: {action}\n    map: {{destination: \"{{{{phone}}}}\", text: \"{}\"}}\n",
            text.replace("STEP_A", "{{steps.a.id}}")
        ));
    }
    three.push_str(&delivery);
    std::fs::write(dir.join("three.yaml"), three)?;
    // The same sends as three one-step flows (no earlier answer to name).
    for (name, text) in ["one-a", "one-b", "one-c"].iter().zip(TEXTS) {
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            format!(
                "{head}receiver: {action}\nmap: {{destination: \"{{{{phone}}}}\", text: \"{}\"}}\n{delivery}",
                text.replace("STEP_A", "{{order_id}}")
            ),
        )?;
    }
    Ok(())
}

pub async fn run(bin: &Path, runs: usize, options: Options) -> anyhow::Result<()> {
    let standin = StandIn::answering_after(Duration::ZERO).await?;
    println!(
        "steps: {} rows, three texts each, concurrency {}, {} run(s), SQLite state",
        options.rows, options.concurrency, runs
    );
    let (mut three_wall, mut ones_wall, mut three_rss, mut ones_rss) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let dir = tempfile::tempdir()?;
        write_project(dir.path(), &options, &standin.url)?;
        let flows = dir.path().to_string_lossy().into_owned();
        let state = |name: &str| dir.path().join(name).to_string_lossy().into_owned();

        let three = measure(
            bin,
            dir.path(),
            &[
                "run",
                "three",
                "--flows",
                &flows,
                "--state",
                &state("three-state"),
            ],
        )
        .await?;
        let got = standin.take();
        ensure!(
            got == 3 * options.rows as u64,
            "three steps: {got} of {} sends arrived\n{}",
            3 * options.rows,
            three.stdout
        );
        let mut wall = Duration::ZERO;
        let mut rss = 0;
        for name in ["one-a", "one-b", "one-c"] {
            // Another state for the same directory: said knowingly.
            let one = measure(
                bin,
                dir.path(),
                &[
                    "run",
                    name,
                    "--flows",
                    &flows,
                    "--state",
                    &state(&format!("{name}-state")),
                    "--accept-state-loss",
                ],
            )
            .await?;
            wall += one.wall;
            rss = rss.max(one.peak_rss_kib);
        }
        let got = standin.take();
        ensure!(
            got == 3 * options.rows as u64,
            "three one-step flows: {got} of {} sends arrived",
            3 * options.rows
        );
        three_wall.push(three.wall.as_secs_f64());
        three_rss.push(three.peak_rss_kib as f64);
        ones_wall.push(wall.as_secs_f64());
        ones_rss.push(rss as f64);
    }
    let (three, ones) = (median(&three_wall), median(&ones_wall));
    let sends = 3.0 * options.rows as f64;
    println!(
        "  one three-step flow      {three:>7.2} s  {:>8.0} sends/s  peak {:>6.1} MiB",
        sends / three,
        median(&three_rss) / 1024.0
    );
    println!(
        "  three one-step flows     {ones:>7.2} s  {:>8.0} sends/s  peak {:>6.1} MiB (the largest of the three)",
        sends / ones,
        median(&ones_rss) / 1024.0
    );
    println!(
        "  three steps cost {:.2}× the three one-step flows",
        three / ones
    );
    Ok(())
}
