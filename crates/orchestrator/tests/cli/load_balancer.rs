//! nginx on master, driven by the master's agent, with real HTTP traffic through it.

use std::collections::BTreeSet;
use std::time::Duration;

use orchestrator::agent::api::{FleetUpdate, FleetUpdateAnswer, LbSettings};
use orchestrator::control::{AgentClient, FleetKey};
use orchestrator::lb::nginx;

use crate::common::{TestFleet, TextServer, eventually, have, http_get};

fn nginx_installed() -> bool {
    have("nginx", nginx::find_binary().is_some())
}

/// The example fleet with stand-in services on hostomatic-prod's backend on web1 and web2.
struct Running {
    fleet: TestFleet,
    lb: String,
    _servers: Vec<TextServer>,
}

fn running_example() -> Running {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let state = fleet.state();
    let port = state.projects["hostomatic-prod"]["backend"].port.expect("a port");
    let servers = ["web1", "web2"]
        .iter()
        .map(|name| {
            TextServer::start(&state.droplets[*name].ip, port, &format!("backend on {name}"))
        })
        .collect();
    let lb = format!("http://{}:8080", state.droplets["master"].ip);
    Running { fleet, lb, _servers: servers }
}

fn backend_answers(lb: &str, count: usize) -> Vec<String> {
    (0..count).map(|_| http_get(&format!("{lb}/hostomatic/prod/backend/whoami"))).collect()
}

#[test]
fn routes_reach_each_service_on_its_droplets_and_port() {
    if !nginx_installed() {
        return;
    }
    let running = running_example();
    let (fleet, lb) = (&running.fleet, &running.lb);
    assert_eq!(http_get(&format!("{lb}/health")), r#"{"status":"ok","role":"load-balancer"}"#);

    eventually(15, "both backends to answer through nginx", || {
        let seen: BTreeSet<String> = backend_answers(lb, 6).into_iter().collect();
        seen == BTreeSet::from(["backend on web1".to_string(), "backend on web2".to_string()])
    });

    let state = fleet.state();
    let master_port = state.projects["digitalpixo-prod"]["backend"].port.expect("a port");
    let _digitalpixo =
        TextServer::start(&state.droplets["master"].ip, master_port, "digitalpixo on master");
    eventually(15, "digitalpixo's backend on master", || {
        http_get(&format!("{lb}/digitalpixo/prod/backend/")) == "digitalpixo on master"
    });

    let status: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{lb}/lb-status"))).expect("json");
    let upstreams: BTreeSet<String> = status["upstreams"]
        .as_array()
        .expect("upstreams")
        .iter()
        .map(|u| u["route"].as_str().expect("a route").to_string())
        .collect();
    let expected: BTreeSet<String> = state
        .projects
        .iter()
        .flat_map(|(project_env, services)| {
            let (project, environment) = project_env.rsplit_once('-').expect("project-env");
            services
                .iter()
                .filter(|(_, record)| record.port.is_some())
                .map(move |(service, _)| format!("/{project}/{environment}/{service}/"))
        })
        .collect();
    assert_eq!(upstreams, expected, "every web service of the state has an upstream, workers none");

    let status = fleet.json(&["--status"]);
    assert_eq!(status["load_balancer"]["url"], format!("{lb}/"));
    assert_eq!(status["load_balancer"]["nginx_running"], true);
}

#[test]
fn a_target_taken_out_gets_no_traffic_and_returns_when_healthy() {
    if !nginx_installed() {
        return;
    }
    let mut running = running_example();
    let lb = running.lb.clone();
    eventually(15, "both backends in rotation", || {
        backend_answers(&lb, 6).iter().collect::<BTreeSet<_>>().len() == 2
    });

    let web2 = running._servers.remove(1);
    drop(web2);
    eventually(15, "web2 to leave rotation", || {
        let status: serde_json::Value =
            serde_json::from_str(&http_get(&format!("{lb}/lb-status"))).unwrap_or_default();
        status["upstreams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|u| u["name"] == "hostomatic--prod--backend")
            .flat_map(|u| u["targets"].as_array().cloned().unwrap_or_default())
            .any(|t| t["droplet"] == "web2" && t["in_rotation"] == false)
    });
    std::thread::sleep(Duration::from_millis(300));
    let answers = backend_answers(&lb, 40);
    assert!(answers.iter().all(|a| a == "backend on web1"), "{answers:?}");

    let state = running.fleet.state();
    let port = state.projects["hostomatic-prod"]["backend"].port.expect("a port");
    let _back = TextServer::start(&state.droplets["web2"].ip, port, "backend on web2");
    eventually(15, "web2 back in rotation", || {
        backend_answers(&lb, 6).contains(&"backend on web2".to_string())
    });
}

#[test]
fn a_broken_template_is_refused_and_the_last_good_configuration_keeps_serving() {
    if !nginx_installed() {
        return;
    }
    let running = running_example();
    let (fleet, lb) = (&running.fleet, &running.lb);
    let good = std::fs::read_to_string(installed_config(fleet)).expect("installed");

    let template = fleet
        .read("templates/nginx.conf.j2")
        .replace("worker_processes 1;", "worker_processes 1;\nno_such_directive on;");
    fleet.write("templates/nginx.conf.j2", template);
    let message = fleet.fails(&["--orchestrate"]);
    assert!(
        message.contains("the load balancer kept its last good configuration: nginx -t rejected"),
        "{message}"
    );
    assert!(message.contains("no_such_directive"), "{message}");
    assert_eq!(std::fs::read_to_string(installed_config(fleet)).expect("installed"), good);
    assert_eq!(http_get(&format!("{lb}/health")), r#"{"status":"ok","role":"load-balancer"}"#);

    let status = fleet.json(&["--status"]);
    assert!(
        status["load_balancer"]["error"].as_str().is_some_and(|e| e.contains("no_such_directive"))
    );

    fleet.write("templates/nginx.conf.j2", "{{ undefined_variable }}");
    let message = fleet.fails(&["--orchestrate"]);
    assert!(message.contains("templates/nginx.conf.j2"), "{message}");
    assert_eq!(std::fs::read_to_string(installed_config(fleet)).expect("installed"), good);
}

fn installed_config(fleet: &TestFleet) -> std::path::PathBuf {
    let master = fleet.state().droplets["master"].id.clone();
    fleet.path().join(".local-cloud/droplets").join(master).join("run/lb/nginx.conf")
}

#[test]
fn requests_in_flight_survive_ten_reloads() {
    if !nginx_installed() {
        return;
    }
    let running = running_example();
    let (fleet, lb) = (&running.fleet, running.lb.clone());
    eventually(15, "both backends in rotation", || {
        backend_answers(&lb, 6).iter().collect::<BTreeSet<_>>().len() == 2
    });

    let key = FleetKey::load(&fleet.path().join("config/fleet.key")).expect("the fleet key");
    let state = fleet.state();
    let master =
        format!("http://{}:{}", state.droplets["master"].ip, state.droplets["master"].agent_port);
    let template = fleet.read("templates/nginx.conf.j2");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    let (failures, total, reloads) = runtime.block_on(async move {
        let load = tokio::spawn(async move {
            // A fresh connection per request: a reused idle connection that nginx closes as an
            // old worker retires is a client-side race no reload can prevent.
            let http =
                reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a client");
            let mut workers = Vec::new();
            for _ in 0..8 {
                let (http, url) = (http.clone(), format!("{lb}/hostomatic/prod/backend/load"));
                workers.push(tokio::spawn(async move {
                    let mut failures = 0;
                    for _ in 0..650 {
                        match http.get(&url).timeout(Duration::from_secs(5)).send().await {
                            Ok(response) if response.status().is_success() => {}
                            _ => failures += 1,
                        }
                    }
                    failures
                }));
            }
            let mut failures = 0;
            for worker in workers {
                failures += worker.await.expect("a load worker");
            }
            (failures, 8 * 650)
        });
        let client = AgentClient::new(key, "test");
        let mut reloads = 0;
        for round in 0..10 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            // A changed comment is enough to make a new configuration and a real reload.
            let update = FleetUpdate {
                state: state.clone(),
                load_balancer: LbSettings {
                    port: 8080,
                    template: format!("# reload {round}\n{template}"),
                },
                notify: None,
                releases: Default::default(),
            };
            let answer: FleetUpdateAnswer = client
                .post(&master, "/v1/fleet", &update, Duration::from_secs(10))
                .await
                .expect("the update is taken");
            let lb = answer.load_balancer.expect("master answers for the load balancer");
            assert_eq!(lb.error, None);
            reloads += 1;
        }
        let (failures, total) = load.await.expect("the load");
        (failures, total, reloads)
    });
    eprintln!("{total} requests, {reloads} reloads, {failures} failed");
    assert_eq!(reloads, 10);
    assert!(total >= 5000);
    assert_eq!(failures, 0);
}

#[test]
fn unsigned_forged_and_replayed_control_requests_are_refused_and_counted() {
    let fleet = TestFleet::example();
    fleet.ok(&["--orchestrate"]);
    let state = fleet.state();
    let web1 =
        format!("http://{}:{}", state.droplets["web1"].ip, state.droplets["web1"].agent_port);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let update = FleetUpdate {
            state: state.clone(),
            load_balancer: LbSettings { port: 8080, template: String::new() },
            notify: None,
            releases: Default::default(),
        };
        orchestrator::http::install_crypto_provider();
        let unsigned = reqwest::Client::new()
            .post(format!("{web1}/v1/fleet"))
            .json(&update)
            .send()
            .await
            .expect("answers");
        assert_eq!(unsigned.status().as_u16(), 401);
        let forged = AgentClient::new(FleetKey::generate(), "intruder");
        let answer = forged
            .post::<_, FleetUpdateAnswer>(&web1, "/v1/fleet", &update, Duration::from_secs(5))
            .await;
        assert!(answer.expect_err("refused").to_string().contains("401"));
    });
    let status: serde_json::Value =
        serde_json::from_str(&http_get(&format!("{web1}/status"))).expect("json");
    assert_eq!(status["refused_requests"], 2);
}

#[test]
fn the_dashboard_shows_the_fleet_in_a_headless_browser() {
    if !nginx_installed() {
        return;
    }
    let running = running_example();
    let lb = &running.lb;
    eventually(15, "a backend in rotation", || {
        backend_answers(lb, 2).iter().any(|a| a.starts_with("backend on"))
    });
    let page = http_get(&format!("{lb}/"));
    let backend_port = running.fleet.state().projects["hostomatic-prod"]["backend"]
        .port
        .expect("a port")
        .to_string();
    for expected in [
        "Fleet dashboard",
        "master",
        "web1",
        "web2",
        "hostomatic-prod",
        "worker_email",
        &backend_port,
    ] {
        assert!(page.contains(expected), "the dashboard lacks {expected:?}");
    }
    assert!(page.contains("http-equiv=\"refresh\""));
    assert!(!page.contains("<script"), "readable without JavaScript");

    let Some(browser) =
        ["chromium-headless-shell", "chromium", "chromium-browser"].into_iter().find(|b| which(b))
    else {
        have("a headless Chromium", false);
        return;
    };
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).expect("an artifacts directory");
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("{lb}/"))
        .output()
        .expect("the browser runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let png = std::fs::read(&screenshot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a real picture of the page");
    eprintln!("dashboard screenshot: {}", screenshot.display());
}

#[test]
fn without_nginx_the_local_cloud_says_how_to_install_it() {
    let fleet = TestFleet::example();
    let output = std::process::Command::new(crate::common::BINARY)
        .arg("--orchestrate")
        .current_dir(fleet.path())
        .env("HOME", fleet.path().join("home"))
        .env(nginx::NGINX_VARIABLE, "/nonexistent/nginx")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs");
    assert!(output.status.success(), "the droplets are fine without a load balancer");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("nginx is not installed") && said.contains("apt-get install nginx"),
        "{said}"
    );
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
