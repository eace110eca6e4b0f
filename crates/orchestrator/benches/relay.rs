//! What the relay to master's infrastructure costs: round trips to a small TCP echo server
//! (standing in for Redis on master) straight and through the relay a web droplet's agent runs
//! on the instance's port.
//!
//! `cargo bench -p orchestrator --bench relay`. Everything runs in this process on loopback:
//! "master" is 127.0.0.1, the droplet 127.0.0.2.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use orchestrator::agent::services::relay::Relays;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const ROUND_TRIPS: usize = 20_000;
const CONNECTIONS: usize = 2_000;
const MESSAGE: &[u8] = b"*1\r\n$4\r\nPING\r\n";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let master = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let droplet = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let echo = TcpListener::bind((master, 0)).await.expect("binds");
        let port = echo.local_addr().expect("bound").port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 64];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 || stream.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let relays = Relays::new(droplet);
        relays.set_master(Some(master));
        relays.ensure(port).await.expect("relays");
        let straight = SocketAddr::new(master, port);
        let relayed = SocketAddr::new(droplet, port);

        round_trips(straight, 1_000).await;
        round_trips(relayed, 1_000).await;
        println!(
            "{ROUND_TRIPS} round trips of a {}-byte message on one connection:",
            MESSAGE.len()
        );
        let direct = round_trips(straight, ROUND_TRIPS).await;
        let through = round_trips(relayed, ROUND_TRIPS).await;
        report("  straight to master", &direct);
        report("  through the relay", &through);

        println!("{CONNECTIONS} connections, each opened, one round trip, closed:");
        let direct = connections(straight).await;
        let through = connections(relayed).await;
        report("  straight to master", &direct);
        report("  through the relay", &through);
        relays.stop_all();
    });
}

async fn round_trips(address: SocketAddr, count: usize) -> Vec<Duration> {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream.set_nodelay(true).expect("no delay");
    let mut answer = vec![0u8; MESSAGE.len()];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        stream.write_all(MESSAGE).await.expect("sends");
        stream.read_exact(&mut answer).await.expect("answers");
        times.push(started.elapsed());
    }
    times
}

async fn connections(address: SocketAddr) -> Vec<Duration> {
    let mut answer = vec![0u8; MESSAGE.len()];
    let mut times = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        let started = Instant::now();
        let mut stream = TcpStream::connect(address).await.expect("connects");
        stream.set_nodelay(true).expect("no delay");
        stream.write_all(MESSAGE).await.expect("sends");
        stream.read_exact(&mut answer).await.expect("answers");
        drop(stream);
        times.push(started.elapsed());
    }
    times
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn report(label: &str, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let p99 = sorted[sorted.len() * 99 / 100];
    println!(
        "{label}: median {:.0} µs, 99th percentile {:.0} µs",
        median(times).as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}
