//! How long planning takes for a large fleet: a generated CSV of 1,000 projects with 1 to 20
//! servers each and three services per project, in two environments.
//!
//! Run with `cargo bench -p fleet`. Prints the median, fastest and slowest of repeated runs
//! for a first plan (empty cloud) and a re-plan (everything exists already).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use fleet::deploy_config::{self, DeploymentConfig};
use fleet::{DesiredFleet, DropletStatus, ObservedDroplet, State, projects};

const PROJECTS: usize = 1_000;
const ROUNDS: usize = 30;

fn main() {
    let csv = generate_csv();
    let config = generate_config();
    let path = Path::new("projects.csv");

    let first = measure(|| {
        let rows = projects::parse(path, csv.as_bytes()).expect("the generated CSV is valid");
        let desired = DesiredFleet::from_config(&rows, &config);
        fleet::plan(&desired, &[], &State::default(), false).expect("plans")
    });

    let rows = projects::parse(path, csv.as_bytes()).expect("valid");
    let desired = DesiredFleet::from_config(&rows, &config);
    let plan = fleet::plan(&desired, &[], &State::default(), false).expect("plans");
    let observed = observe(&desired);
    let state = plan.state_after(&observed, &State::default(), "bench");
    let replan = measure(|| {
        let rows = projects::parse(path, csv.as_bytes()).expect("valid");
        let desired = DesiredFleet::from_config(&rows, &config);
        fleet::plan(&desired, &observed, &state, false).expect("plans")
    });

    let services: usize = plan.services.values().map(BTreeMap::len).sum();
    println!(
        "fleet: {PROJECTS} projects, {} droplets, {services} services, {} actions in the first plan",
        desired.droplets.len(),
        plan.actions.len()
    );
    report("parse + first plan (empty cloud)", &first);
    report("parse + re-plan (nothing to do)", &replan);
}

fn measure<T>(mut work: impl FnMut() -> T) -> Vec<Duration> {
    black_box(work());
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let started = Instant::now();
            black_box(work());
            started.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(name: &str, times: &[Duration]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: median {:.2} ms, fastest {:.2} ms, slowest {:.2} ms over {} runs",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
}

/// Servers from 1 to 20, spread by a fixed linear congruential sequence so every run is alike.
fn generate_csv() -> String {
    let sizes = ["s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"];
    let mut seed: u64 = 42;
    let mut text = String::from("Project,Servers,MasterSpec,WebSpec\n");
    for index in 0..PROJECTS {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let servers = 1 + (seed >> 33) % 20;
        let size = sizes[(seed >> 40) as usize % sizes.len()];
        text.push_str(&format!("project{index},{servers},{size},{size}\n"));
    }
    text
}

fn generate_config() -> DeploymentConfig {
    let projects: Vec<String> = (0..PROJECTS)
        .map(|index| {
            format!(
                r#""project{index}": {{"services": {{"backend": {{}}, "frontend": {{}}, "worker": {{"type": "worker"}}}}}}"#
            )
        })
        .collect();
    let text = format!(r#"{{"projects": {{{}}}}}"#, projects.join(","));
    deploy_config::parse(Path::new("deployment_config.json"), &text)
        .expect("the generated configuration is valid")
}

fn observe(desired: &DesiredFleet) -> Vec<ObservedDroplet> {
    desired
        .droplets
        .iter()
        .enumerate()
        .map(|(index, droplet)| ObservedDroplet {
            id: format!("{index}"),
            name: droplet.name.clone(),
            role: droplet.role,
            size: droplet.size.clone(),
            region: droplet.region.clone(),
            ip: Some(format!("10.0.0.{index}")),
            agent_port: 7700,
            status: DropletStatus::Active,
        })
        .collect()
}
