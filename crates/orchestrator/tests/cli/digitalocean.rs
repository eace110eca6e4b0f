//! The DigitalOcean provider against the API simulator on loopback: the binary end to end,
//! and the scenarios a real cloud brings (rate limits, ambiguous failures, crashes, pages).

use std::time::Duration;

use do_simulator::{RateLimitConfig, RequestMatcher, SimConfig, SimHandle, Simulator};

use crate::common::{TestFleet, csv};

const TOKEN: &str = "dop_v1_simulated_token_0123456789abcdef";

/// A fleet configured for DigitalOcean, pointed at a fresh simulator.
struct Cloud {
    fleet: TestFleet,
    sim: SimHandle,
}

fn cloud_with(config: SimConfig) -> Cloud {
    let sim = Simulator::start(config);
    let fleet = TestFleet::configured();
    let deploy = fleet
        .read("config/deployment_config.json")
        .replace("\"provider\": \"local\"", "\"provider\": \"digitalocean\",\n  \"fleet_name\": \"shop\"")
        .replace("\"load_balancer_port\": 8080,", "")
        .replace(
            "\"git_config\"",
            &format!(
                "\"digitalocean\": {{\"agent_url\": \"https://downloads.example/orchestrator\", \"agent_sha256\": \"{}\"}},\n  \"git_config\"",
                "ab".repeat(32)
            ),
        );
    fleet.write("config/deployment_config.json", deploy);
    fleet.write(
        ".env",
        format!(
            "DO_TOKEN={TOKEN}\nDO_API_URL={}\nDO_POLL_INTERVAL_MS=20\nADMIN_IP=198.51.100.7\n",
            sim.base_url()
        ),
    );
    Cloud { fleet, sim }
}

fn cloud() -> Cloud {
    cloud_with(SimConfig::new(TOKEN).with_rate_limit(RateLimitConfig::UNLIMITED))
}

impl Cloud {
    fn droplet_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.sim.droplets().into_iter().map(|d| d.name).collect();
        names.sort();
        names
    }

    /// The token never shows in anything the tests can see: output, files, the state.
    fn assert_token_hidden(&self, outputs: &[&str]) {
        for output in outputs {
            assert!(!output.contains(TOKEN), "the token leaked into output");
        }
        for (path, bytes) in self.fleet.files().0 {
            if path.ends_with(".env") {
                continue;
            }
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "the token leaked into {}",
                path.display()
            );
        }
    }
}

fn names(prefix: &str, list: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = list.iter().map(|n| format!("{prefix}-{n}")).collect();
    names.sort();
    names
}

#[test]
fn the_example_lives_through_init_orchestrate_scale_update_ip_and_cleanup() {
    let cloud = cloud();
    let fleet = &cloud.fleet;
    let init = fleet.ok(&["--init"]);
    assert!(init.contains("DigitalOcean at") && init.contains("orchestrator-shop"), "{init}");
    assert_eq!(cloud.sim.keys().len(), 1);
    fleet.ok(&["--init"]);
    assert_eq!(
        cloud.sim.keys().len(),
        1,
        "the key is found again by fingerprint, not uploaded twice"
    );

    let first = fleet.ok(&["--orchestrate"]);
    assert_eq!(cloud.droplet_names(), names("shop", &["master", "web1", "web2"]));
    let droplet = cloud.sim.droplets().into_iter().find(|d| d.name == "shop-web1").expect("web1");
    assert!(
        droplet.tags.contains(&"fleet:shop".to_string())
            && droplet.tags.contains(&"fleet:shop:web".to_string())
    );
    let user_data = droplet.user_data.expect("cloud-init");
    assert!(user_data.starts_with("#cloud-config") && user_data.contains("sha256sum -c"));
    assert_eq!(droplet.ssh_key_ids.len(), 1);
    let state = fleet.state();
    assert_eq!(state.provider, "digitalocean");
    assert!(state.droplets.values().all(|d| d.ip.starts_with("127.210.")));
    assert_eq!(state.validate(), Vec::<String>::new());
    let firewalls = cloud.sim.firewalls();
    assert_eq!(firewalls.len(), 2);
    assert!(format!("{firewalls:?}").contains("198.51.100.7/32"));

    let again = fleet.json(&["--orchestrate"]);
    assert_eq!(again["plan"], serde_json::json!([]));
    assert_eq!(cloud.sim.droplets().len(), 3);

    let scaled = fleet.ok(&["--scale", "hostomatic", "5"]);
    assert_eq!(cloud.droplet_names(), names("shop", &["master", "web1", "web2", "web3", "web4"]));

    let update = fleet.ok(&["--update-ip", "203.0.113.50"]);
    assert!(format!("{:?}", cloud.sim.firewalls()).contains("203.0.113.50/32"));
    assert!(!format!("{:?}", cloud.sim.firewalls()).contains("198.51.100.7/32"));

    let listed = fleet.json(&["--cleanup", "--dry-run"]);
    assert_eq!(listed["items"], serde_json::json!([]));
    fleet.write(
        "config/projects.csv",
        csv(&["hostomatic,2,s-2vcpu-4gb,s-2vcpu-4gb", "digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
    );
    let orphans = fleet.json(&["--cleanup", "--dry-run"]);
    assert_eq!(orphans["items"].as_array().expect("items").len(), 3, "{orphans}");
    fleet.ok(&["--cleanup", "--yes"]);
    assert_eq!(cloud.droplet_names(), names("shop", &["master", "web1"]));

    cloud.assert_token_hidden(&[&init, &first, &scaled, &update]);
}

#[test]
fn a_storm_of_429s_while_creating_twenty_droplets_ends_with_exactly_twenty() {
    let cloud = cloud();
    cloud.fleet.write("config/projects.csv", csv(&["big,20,s-1vcpu-1gb,s-1vcpu-1gb"]));
    cloud.fleet.ok(&["--init"]);
    cloud.sim.rate_limit_next(40, RequestMatcher::route("POST", "/v2/droplets"));
    let said = cloud.fleet.ok(&["--orchestrate"]);
    cloud.assert_token_hidden(&[&said]);
    let names = cloud.droplet_names();
    assert_eq!(names.len(), 20);
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names, "no duplicates");
    assert_eq!(cloud.fleet.state().droplets.len(), 20);
}

#[test]
fn the_documented_rate_limit_is_never_exceeded_when_creating_many() {
    let cloud = cloud_with(SimConfig::new(TOKEN));
    cloud.fleet.write("config/projects.csv", csv(&["big,20,s-1vcpu-1gb,s-1vcpu-1gb"]));
    cloud.fleet.ok(&["--init"]);
    cloud.fleet.ok(&["--orchestrate"]);
    assert_eq!(cloud.sim.droplets().len(), 20);
    let refused = cloud.sim.requests().iter().filter(|r| r.status == 429).count();
    assert_eq!(refused, 0, "the client stays inside 250 requests a minute");
}

#[test]
fn a_create_that_answers_500_after_making_the_droplet_makes_no_duplicate() {
    let cloud = cloud();
    cloud.fleet.ok(&["--init"]);
    cloud.sim.fail_creates_after_commit(2);
    let said = cloud.fleet.ok(&["--orchestrate"]);
    cloud.assert_token_hidden(&[&said]);
    assert_eq!(cloud.droplet_names(), names("shop", &["master", "web1", "web2"]));
    assert_eq!(cloud.fleet.state().validate(), Vec::<String>::new());
}

#[test]
fn an_orchestrator_killed_mid_create_is_picked_up_by_the_next_run() {
    let cloud = cloud_with(
        SimConfig::new(TOKEN)
            .with_rate_limit(RateLimitConfig::UNLIMITED)
            .with_create_latency(Duration::from_secs(2)),
    );
    cloud.fleet.ok(&["--init"]);
    let mut child = std::process::Command::new(crate::common::BINARY)
        .arg("--orchestrate")
        .current_dir(cloud.fleet.path())
        .env("HOME", cloud.fleet.path().join("home"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("runs");
    crate::common::eventually(10, "the creates to reach the cloud", || {
        cloud.sim.droplets().len() == 3
    });
    child.kill().expect("kills");
    child.wait().expect("reaped");

    cloud.sim.set_create_latency(Duration::ZERO);
    cloud.fleet.ok(&["--orchestrate"]);
    assert_eq!(cloud.droplet_names(), names("shop", &["master", "web1", "web2"]));
    assert_eq!(cloud.fleet.state().validate(), Vec::<String>::new());
}

#[test]
fn an_action_that_errors_is_reported_and_a_rerun_completes_it() {
    let cloud = cloud();
    cloud.fleet.ok(&["--init"]);
    cloud.fleet.ok(&["--orchestrate"]);
    cloud.fleet.write(
        "config/projects.csv",
        csv(&["hostomatic,3,s-4vcpu-8gb,s-2vcpu-4gb", "digitalpixo,1,s-1vcpu-1gb,s-1vcpu-1gb"]),
    );
    cloud.sim.fail_next_action("resize");
    let message = cloud.fleet.fails(&["--orchestrate", "--yes"]);
    assert!(message.contains("droplet master resize failed at DigitalOcean"), "{message}");
    cloud.assert_token_hidden(&[&message]);
    cloud.fleet.ok(&["--orchestrate", "--yes"]);
    let master =
        cloud.sim.droplets().into_iter().find(|d| d.name == "shop-master").expect("master");
    assert_eq!(master.size, "s-4vcpu-8gb");
    assert_eq!(cloud.sim.droplets().len(), 3);
}

#[test]
fn a_rejected_token_is_a_clear_message_that_never_shows_the_token() {
    let cloud = cloud();
    let wrong = "dop_v1_this_one_is_wrong";
    let env = cloud.fleet.read(".env").replace(TOKEN, wrong);
    cloud.fleet.write(".env", env);
    let message = cloud.fleet.fails(&["--init"]);
    assert!(
        message.contains("DigitalOcean rejected the API token")
            && message.contains("check DO_TOKEN"),
        "{message}"
    );
    assert!(!message.contains(wrong));

    cloud.fleet.write(".env", format!("DO_API_URL={}\n", cloud.sim.base_url()));
    assert!(cloud.fleet.fails(&["--init"]).contains("DO_TOKEN is not set"));
}

#[test]
fn sizes_the_cloud_does_not_offer_are_refused_with_their_line() {
    let cloud = cloud();
    cloud.fleet.ok(&["--init"]);
    cloud.fleet.write("config/projects.csv", csv(&["hostomatic,1,m-32vcpu-256gb,s-1vcpu-1gb"]));
    let message = cloud.fleet.fails(&["--orchestrate"]);
    assert!(
        message.contains("line 2, field MasterSpec")
            && message.contains("not offered by digitalocean in region nyc3"),
        "{message}"
    );
    assert!(cloud.sim.droplets().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_and_fifty_droplets_are_listed_across_pages() {
    use orchestrator::provider::Provider;
    use orchestrator::provider::digitalocean::client::DoClient;
    use orchestrator::provider::digitalocean::{DigitalOcean, DoSettings};
    use orchestrator::secret::Secret;

    let sim = Simulator::start(
        SimConfig::new(TOKEN).with_rate_limit(RateLimitConfig::UNLIMITED).with_droplet_limit(1000),
    );
    orchestrator::http::install_crypto_provider();
    let http = reqwest::Client::new();
    for index in 1..=250 {
        let body = serde_json::json!({
            "name": format!("shop-web{index}"), "region": "nyc3", "size": "s-1vcpu-1gb",
            "image": "ubuntu-24-04-x64", "tags": ["fleet:shop"]
        });
        let answer = http
            .post(format!("{}/v2/droplets", sim.base_url()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .expect("sent");
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    let provider = DigitalOcean::new(DoSettings {
        api_url: sim.base_url().to_string(),
        client: std::sync::Arc::new(DoClient::new(sim.base_url(), Secret::new(TOKEN))),
        fleet: "shop".into(),
        image: "ubuntu-24-04-x64".into(),
        agent_url: None,
        agent_sha256: None,
        fleet_key: None,
        agent_port: 7700,
        poll: Some(Duration::from_millis(20)),
    });
    let listed = provider.list().await.expect("lists");
    assert_eq!(listed.len(), 250);
    let pages = sim
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v2/droplets") && r.method == "GET")
        .count();
    assert_eq!(pages, 2, "two pages of at most 200");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_restores_a_droplet_with_its_name_size_and_tags_and_cleanup_keeps_the_newest() {
    use orchestrator::control::FleetKey;
    use orchestrator::provider::digitalocean::client::DoClient;
    use orchestrator::provider::digitalocean::{DigitalOcean, DoSettings};
    use orchestrator::provider::{DropletSpec, Provider};
    use orchestrator::secret::Secret;

    let sim = Simulator::start(SimConfig::new(TOKEN).with_rate_limit(RateLimitConfig::UNLIMITED));
    let provider = DigitalOcean::new(DoSettings {
        api_url: sim.base_url().to_string(),
        client: std::sync::Arc::new(DoClient::new(sim.base_url(), Secret::new(TOKEN))),
        fleet: "shop".into(),
        image: "ubuntu-24-04-x64".into(),
        agent_url: Some("https://downloads.example/orchestrator".into()),
        agent_sha256: Some("ab".repeat(32)),
        fleet_key: Some(FleetKey::generate()),
        agent_port: 7700,
        poll: Some(Duration::from_millis(20)),
    });
    let spec = DropletSpec {
        name: "web1".into(),
        role: fleet::Role::Web,
        size: "s-2vcpu-4gb".into(),
        region: "nyc3".into(),
        agent_port: 7700,
    };
    let web1 = provider.create(&spec).await.expect("creates");
    let mut taken = Vec::new();
    for _ in 0..2 {
        taken.push(provider.snapshot(&web1).await.expect("snapshots"));
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    assert_eq!(provider.snapshots().await.expect("lists").len(), 2);
    assert!(taken.iter().all(|s| s.droplet_name == "web1"));

    provider.destroy(&web1).await.expect("destroys");
    let restored = provider.restore(&taken[1], &spec).await.expect("restores");
    assert_eq!(restored.name, "web1");
    assert_ne!(restored.id, web1.id);
    let info =
        sim.droplets().into_iter().find(|d| d.id.to_string() == restored.id).expect("listed");
    assert_eq!(info.size, "s-2vcpu-4gb");
    assert_eq!(info.image, taken[1].id);
    assert!(info.tags.contains(&"fleet:shop:web".to_string()));
}

#[test]
fn a_changed_fleet_name_is_refused_instead_of_doubling_the_fleet() {
    let cloud = cloud();
    cloud.fleet.ok(&["--init"]);
    cloud.fleet.ok(&["--orchestrate"]);
    let renamed = cloud
        .fleet
        .read("config/deployment_config.json")
        .replace("\"fleet_name\": \"shop\"", "\"fleet_name\": \"store\"");
    cloud.fleet.write("config/deployment_config.json", renamed);
    let message = cloud.fleet.fails(&["--orchestrate", "--yes"]);
    assert!(
        message.contains("records droplets of fleet \"shop\", but fleet_name is now \"store\""),
        "{message}"
    );
    assert_eq!(cloud.sim.droplets().len(), 3);
}
