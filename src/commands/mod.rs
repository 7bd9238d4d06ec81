//! One function per command. Each returns the process exit code: 0 success, 1 when the
//! command ran but found problems (invalid flows, failed rows), 2 for errors of use.

use runtime::engine;
mod accounts;
mod connectors;
mod history;
mod new;
mod next;
mod prune;
mod quickstart;
mod run;
mod state;
mod status;
mod test;
mod validate;

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global.global();
    match cli.command {
        Command::Validate { json } => Ok(validate::validate(global, json)),
        Command::Run {
            flow,
            json,
            accept_key_change,
        } => run::run(global, &flow, json, accept_key_change).await,
        Command::New {
            flow,
            source,
            receiver,
            action,
        } => new::new(
            global,
            new::NewArgs {
                flow: &flow,
                source: &source,
                receiver: &receiver,
                action: action.as_deref(),
            },
        ),
        Command::Resume { flow, json } => run::resume(global, &flow, json).await,
        Command::Prune {
            flow,
            dry_run,
            json,
        } => prune::prune(global, flow.as_deref(), dry_run, json).await,
        Command::Replay {
            flow,
            run,
            failed: _,
            uncertain,
            json,
        } => {
            run::replay(
                global,
                &flow,
                engine::ReplayFilter {
                    run,
                    only_uncertain: uncertain,
                },
                json,
            )
            .await
        }
        Command::Test {
            flow,
            limit,
            all,
            events,
            send,
            to,
            json,
        } => {
            let args = test::TestArgs {
                flow: &flow,
                limit,
                all,
                send,
                to: to.as_deref(),
                events: events.as_deref(),
                json,
            };
            test::test(global, args).await
        }
        Command::History {
            flow,
            run,
            limit,
            json,
        } => history::history(global, &flow, run, limit, json).await,
        Command::Daemon {
            listen,
            token,
            allow_host,
            max_connections,
            header_timeout,
            body_timeout,
            stop_timeout,
            prune_every,
            watchdog_every,
            max_runs,
            cluster,
            node,
            lease,
        } => {
            let http = runtime::daemon::HttpLimits {
                max_connections: max_connections
                    .map(|n| n as usize)
                    .unwrap_or_else(runtime::daemon::default_max_connections),
                header_timeout,
                body_timeout,
            };
            let options = runtime::daemon::Options {
                listen,
                token,
                allowed_hosts: allow_host,
                http,
                drain_limit: stop_timeout,
                prune_every,
                watchdog_every,
                max_runs: max_runs.map_or_else(runtime::daemon::default_max_runs, |n| n as usize),
                cluster: cluster.then(|| runtime::daemon::cluster::Options {
                    node: node.unwrap_or_else(runtime::daemon::cluster::host_name),
                    lease,
                }),
                routes: crate::routes::routes,
            };
            runtime::daemon::daemon(global, options, runtime::signal::shutdown()).await
        }
        Command::Status { json } => status::status(global, json).await,
        Command::Flows { json } => status::flows(global, json).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = Cli::command();
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut command, "switchboard", &mut out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Next {
            flow,
            count,
            now,
            json,
        } => next::next(global, &flow, usize::from(count), now.as_deref(), json),
        Command::Accounts {
            command: crate::cli::AccountsCommand::Check { json },
        } => accounts::check(global, json).await,
        Command::State { command } => state::state(global, command).await,
        Command::Sandbox { listen, smtp, seed } => {
            crate::sandbox::serve_forever(listen, smtp, seed).await
        }
        Command::Connectors { name, json } => connectors::connectors(name.as_deref(), json),
        Command::Schema { of } => connectors::schema(of),
        Command::Quickstart { example, dir, list } => {
            if list {
                quickstart::list();
                return Ok(ExitCode::SUCCESS);
            }
            quickstart::quickstart(global, example, dir).await
        }
    }
}
