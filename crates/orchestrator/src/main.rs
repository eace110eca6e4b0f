//! The `orchestrator` binary: parses the command line, sets up logging, and hands over.

use std::process::ExitCode;

use clap::Parser;
use orchestrator::cli::{Cli, RoleCommand};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_agent = cli.role.is_some();
    let level = match (is_agent, cli.verbose) {
        (_, 2..) => LevelFilter::DEBUG,
        (true, _) | (false, 1) => LevelFilter::INFO,
        (false, 0) => LevelFilter::WARN,
    };
    // The Kubernetes client logs each failed request itself; the command says what failed.
    let quiet_kube = if cli.verbose >= 2 { level } else { LevelFilter::OFF };
    let filter = Targets::new().with_default(level).with_target("kube_client", quiet_kube);
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(!is_agent && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    tracing_subscriber::registry().with(output).with(filter).init();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if is_agent { 1 } else { 4 })
        .enable_all()
        .build()
        .expect("the async runtime starts");

    let result = runtime.block_on(async move {
        match cli.role {
            Some(RoleCommand::Agent { droplet_dir }) => {
                orchestrator::agent::run(&droplet_dir).await.map_err(anyhow::Error::from)
            }
            None => orchestrator::commands::run(cli).await,
        }
    });
    let result = result.and_then(|()| match orchestrator::output::write_failure() {
        Some(why) => Err(anyhow::anyhow!("cannot write the output: {why}")),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            orchestrator::note!("error: {}", describe(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause added only where the message does not already say it
/// (most errors here name their cause in their own message).
fn describe(err: &anyhow::Error) -> String {
    let mut message = err.to_string();
    for cause in err.chain().skip(1) {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
    }
    message
}
