//! What a service's front costs: latency and throughput of requests sent straight to a service
//! and through the front that sits on its fixed port (and moves between versions on a deploy).
//!
//! `cargo bench -p orchestrator --bench front`. Everything runs in this process on loopback:
//! a small HTTP service, its front, and the clients.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestrator::agent::services::front::Front;

const SEQUENTIAL: usize = 5_000;
const CONCURRENT_CLIENTS: usize = 8;
const PER_CLIENT: usize = 2_500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        orchestrator::http::install_crypto_provider();
        let service = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let service_address = service.local_addr().expect("bound");
        let app = axum::Router::new().fallback(|| async { "{\"status\": \"ok\"}" });
        tokio::spawn(async move { axum::serve(service, app).await });

        let front_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let front_address = front_listener.local_addr().expect("bound");
        let front = Front::serve_on(front_listener).expect("serves");
        front.switch(Some(service_address));

        // Warm both paths up (connections, the service's first requests) before measuring.
        sequential(&format!("http://{service_address}/health")).await;
        sequential(&format!("http://{front_address}/health")).await;
        println!("{SEQUENTIAL} sequential requests, one client, kept-alive connections:");
        let direct = sequential(&format!("http://{service_address}/health")).await;
        let through = sequential(&format!("http://{front_address}/health")).await;
        report("  straight to the service", &direct);
        report("  through the front", &through);
        println!(
            "  the front adds {:.0} µs at the median",
            (median(&through).as_secs_f64() - median(&direct).as_secs_f64()) * 1e6
        );

        println!("{CONCURRENT_CLIENTS} clients × {PER_CLIENT} requests:");
        let direct = concurrent(&format!("http://{service_address}/health")).await;
        let through = concurrent(&format!("http://{front_address}/health")).await;
        println!("  straight to the service: {direct:.0} requests/s");
        println!("  through the front:       {through:.0} requests/s");
    });
}

async fn sequential(url: &str) -> Vec<Duration> {
    let client = reqwest::Client::new();
    let mut times = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let started = Instant::now();
        let answer = client.get(url).send().await.expect("answers");
        answer.bytes().await.expect("a body");
        times.push(started.elapsed());
    }
    times.sort();
    times
}

async fn concurrent(url: &str) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENT_CLIENTS {
        let (client, url) = (client.clone(), Arc::new(url.to_string()));
        clients.spawn(async move {
            for _ in 0..PER_CLIENT {
                let answer = client.get(url.as_str()).send().await.expect("answers");
                answer.bytes().await.expect("a body");
            }
        });
    }
    while clients.join_next().await.is_some() {}
    (CONCURRENT_CLIENTS * PER_CLIENT) as f64 / started.elapsed().as_secs_f64()
}

fn median(times: &[Duration]) -> Duration {
    times[times.len() / 2]
}

fn report(label: &str, times: &[Duration]) {
    let p99 = times[times.len() * 99 / 100];
    println!(
        "{label}: median {:.0} µs, p99 {:.0} µs",
        median(times).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}
