//! Runs a DigitalOcean API simulator on loopback until interrupted, for manual use:
//! `do-simulator --port 8080 --token secret`, then `curl -H 'Authorization: Bearer secret'
//! http://127.0.0.1:8080/v2/account`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use do_simulator::{SimConfig, Simulator};

/// A loopback simulator of the DigitalOcean API v2.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Port on 127.0.0.1 to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The bearer token to accept.
    #[arg(long, default_value = "sim-token")]
    token: String,
    /// Milliseconds a new Droplet stays `new`.
    #[arg(long, default_value_t = 0)]
    create_latency_ms: u64,
    /// Milliseconds an action stays `in-progress`.
    #[arg(long, default_value_t = 0)]
    action_latency_ms: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = SimConfig {
        port: args.port,
        create_latency: Duration::from_millis(args.create_latency_ms),
        action_latency: Duration::from_millis(args.action_latency_ms),
        ..SimConfig::new(args.token)
    };
    let sim = match Simulator::try_start(config) {
        Ok(sim) => sim,
        Err(error) => {
            eprintln!("do-simulator: cannot start: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("do-simulator listening on {}", sim.base_url());
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("do-simulator: cannot wait for Ctrl-C: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = runtime.block_on(tokio::signal::ctrl_c()) {
        eprintln!("do-simulator: cannot wait for Ctrl-C: {error}");
        return ExitCode::FAILURE;
    }
    drop(sim);
    ExitCode::SUCCESS
}
