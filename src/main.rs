//! The `switchboard` binary: parses arguments and hands each command to the libraries.
//! Data goes to stdout, logs to stderr.

#[macro_use]
extern crate runtime;

mod api;
mod cli;
mod commands;
mod console;
mod routes;
mod sandbox;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc (without transparent huge pages, which tripled resident memory): a run
/// allocates and frees small values for every record (fields, request bodies, SQLite
/// rows), and glibc's allocator was a third of a run's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_t`, mimalloc.h of the
/// bundled v3 and v2 alike).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long the allocator keeps memory freed before giving it back to the system, in
/// milliseconds: 10 instead of mimalloc's 1,000, so a long run's resident memory follows
/// what it holds (a million rows peaked ~12 MiB lower at the same speed; BENCHMARKS.md).
/// `MIMALLOC_PURGE_DELAY` in the environment still decides when it is set.
const PURGE_DELAY_MS: std::os::raw::c_long = 10;

#[allow(unsafe_code)]
fn purge_freed_memory_soon() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` takes an option and a value by value, touches no memory of
    // the caller's, and may be called at any time from any thread (mimalloc's options
    // are atomics); the option is a valid `mi_option_t` of the bundled mimalloc.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

fn main() -> ExitCode {
    purge_freed_memory_soon();
    let cli = cli::Cli::parse();
    init_logging(cli.global.verbose);
    // Blocking work (file reads, state flushes) needs few threads, and every thread
    // keeps an allocator heap of its own: tokio's default of 512 let a daemon running
    // 10,000 flows a minute hold ~30 MiB more than it needed (BENCHMARKS.md).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", runtime::report::error_text(&e));
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(runtime::report::colour_on_stderr())
        .with_target(false)
        .init();
}
