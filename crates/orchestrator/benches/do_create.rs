//! How long making droplets on DigitalOcean takes when each create needs two seconds at the
//! cloud: ten at once against one, and ten one after another for comparison.
//!
//! Runs against the API simulator on loopback. `cargo bench -p orchestrator --bench do_create`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use do_simulator::{RateLimitConfig, SimConfig, Simulator};
use fleet::Role;
use orchestrator::control::FleetKey;
use orchestrator::provider::digitalocean::client::DoClient;
use orchestrator::provider::digitalocean::{DigitalOcean, DoSettings};
use orchestrator::provider::{DropletSpec, Provider};
use orchestrator::secret::Secret;

const TOKEN: &str = "bench-token";
const LATENCY: Duration = Duration::from_secs(2);

fn main() {
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    let one = runtime.block_on(create(1, Mode::Concurrent));
    let ten = runtime.block_on(create(10, Mode::Concurrent));
    let serial = runtime.block_on(create(10, Mode::Serial));
    println!("simulated create latency: {LATENCY:?}");
    println!("1 droplet: {:.2} s", one.as_secs_f64());
    println!(
        "10 droplets at once: {:.2} s ({:.2}x one; target under 1.5x)",
        ten.as_secs_f64(),
        ten.as_secs_f64() / one.as_secs_f64()
    );
    println!("10 droplets one after another: {:.2} s", serial.as_secs_f64());
}

enum Mode {
    Concurrent,
    Serial,
}

async fn create(count: u32, mode: Mode) -> Duration {
    let sim = Simulator::start(
        SimConfig::new(TOKEN)
            .with_create_latency(LATENCY)
            .with_rate_limit(RateLimitConfig::DOCUMENTED),
    );
    let provider = Arc::new(DigitalOcean::new(DoSettings {
        api_url: sim.base_url().to_string(),
        client: Arc::new(DoClient::new(sim.base_url(), Secret::new(TOKEN))),
        fleet: "bench".into(),
        image: "ubuntu-24-04-x64".into(),
        agent_url: Some("https://downloads.example/orchestrator".into()),
        agent_sha256: Some("ab".repeat(32)),
        fleet_key: Some(FleetKey::generate()),
        agent_port: 7700,
        poll: Some(Duration::from_millis(250)),
    }));
    let spec = |index: u32| DropletSpec {
        name: format!("web{index}"),
        role: Role::Web,
        size: "s-1vcpu-1gb".into(),
        region: "nyc3".into(),
        agent_port: 7700,
    };
    let started = Instant::now();
    match mode {
        Mode::Concurrent => {
            let tasks: Vec<_> = (1..=count)
                .map(|index| {
                    let provider = Arc::clone(&provider);
                    tokio::spawn(async move { provider.create(&spec(index)).await })
                })
                .collect();
            for task in tasks {
                task.await.expect("joins").expect("creates");
            }
        }
        Mode::Serial => {
            for index in 1..=count {
                provider.create(&spec(index)).await.expect("creates");
            }
        }
    }
    let elapsed = started.elapsed();
    assert_eq!(sim.droplets().len(), count as usize);
    elapsed
}
