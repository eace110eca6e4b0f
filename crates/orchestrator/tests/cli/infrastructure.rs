//! Infrastructure services on master: a real Redis from Debian's package, started by
//! `--orchestrate` through the process platform, with its password from `.env`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use crate::common::{eventually, have, http_get};
use crate::deploy::{Project, SECRETS};

pub const REDIS_PASSWORD: &str = "redis-Secret-7781";

/// One Redis command over a fresh connection, after `AUTH password` when given: the replies.
pub fn redis(address: &str, password: Option<&str>, command: &[&str]) -> Vec<String> {
    let mut connection = TcpStream::connect(address).expect("Redis takes connections");
    let mut commands = Vec::new();
    if let Some(password) = password {
        commands.push(vec!["AUTH", password]);
    }
    commands.push(command.to_vec());
    let mut reader = BufReader::new(connection.try_clone().expect("clones"));
    let mut replies = Vec::new();
    for words in commands {
        let mut message = format!("*{}\r\n", words.len());
        for word in words {
            message.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        connection.write_all(message.as_bytes()).expect("sends");
        let mut line = String::new();
        reader.read_line(&mut line).expect("answers");
        if line.starts_with('$') && !line.starts_with("$-1") {
            let mut value = String::new();
            reader.read_line(&mut value).expect("answers");
            line = value;
        }
        replies.push(line.trim().to_string());
    }
    replies
}

pub fn have_redis() -> bool {
    have("redis-server", std::path::Path::new("/usr/bin/redis-server").exists())
}

/// The Redis instance of `project_env`, from `--status --json`.
pub fn instance(project: &Project, project_env: &str) -> serde_json::Value {
    let status = project.fleet.json(&["--status"]);
    status["infrastructure"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| i["name"] == "redis" && i["project_env"] == project_env)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn redis_runs_on_master_with_its_password_and_outlives_app_deploys() {
    if !have_redis() {
        return;
    }
    let project = Project::new();
    eventually(20, "Redis healthy in --status", || {
        instance(&project, "hostomatic-uat")["healthy"] == true
    });
    let redis_uat = instance(&project, "hostomatic-uat");
    let master = project.fleet.state().droplets["master"].ip.clone();
    let dashboard = http_get(&format!("http://{master}:8080/"));
    assert!(dashboard.contains("Infrastructure on master"), "{dashboard}");
    assert!(
        dashboard.contains(&format!(
            "<td>redis</td><td>cache</td><td>hostomatic-uat</td><td>{}</td>",
            redis_uat["port"]
        )),
        "the dashboard lists Redis: {dashboard}"
    );
    let address = format!("{master}:{}", redis_uat["port"]);
    assert_ne!(
        instance(&project, "hostomatic-prod")["port"],
        redis_uat["port"],
        "an instance per environment"
    );

    // The password is required, and only the right one works.
    assert!(redis(&address, None, &["PING"])[0].starts_with("-NOAUTH"));
    assert!(redis(&address, Some("wrong"), &["PING"])[0].starts_with("-WRONGPASS"));
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["PING"]), ["+OK", "+PONG"]);
    assert_eq!(
        redis(&address, Some(REDIS_PASSWORD), &["SET", "greeting", "hello"]),
        ["+OK", "+OK"]
    );

    // The backend, on the web droplets, reaches it with the password through its wiring.
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let health = || http_get(&format!("{}health", project.route("uat", "backend")));
    eventually(20, "the backend's health shows Redis answering", || {
        health().contains("\"redis\": \"PONG\"")
    });

    // An app redeploy leaves Redis and its data alone.
    let pid = instance(&project, "hostomatic-uat")["pid"].clone();
    let app = std::fs::read_to_string(project.work.join("backend/app.py")).expect("reads");
    project.change("backend/app.py", &format!("{app}\n# next\n"));
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    assert_eq!(instance(&project, "hostomatic-uat")["pid"], pid, "Redis was not restarted");
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["GET", "greeting"]), ["+OK", "hello"]);
    let said = project.fleet.ok(&["--orchestrate"]);
    assert_eq!(instance(&project, "hostomatic-uat")["pid"], pid, "nor by --orchestrate: {said}");

    // Master's snapshot holds its data directory; the password sits only in the file Redis
    // reads, outside what snapshots carry.
    let snapshots = project.fleet.path().join(".local-cloud/snapshots");
    let mut archives: Vec<_> = std::fs::read_dir(&snapshots)
        .expect("lists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    archives.sort();
    let listed: Vec<String> = archives
        .iter()
        .flat_map(|archive| {
            let file = std::fs::File::open(archive).expect("opens");
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            tar.entries()
                .expect("reads")
                .filter_map(Result::ok)
                .map(|e| e.path().expect("a path").display().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        listed.iter().any(|p| p.starts_with("data/infrastructure/redis/hostomatic-uat/data")),
        "a snapshot holds Redis's data directory"
    );
    let holders: Vec<String> = project
        .fleet
        .files()
        .0
        .into_iter()
        .filter(|(_, bytes)| String::from_utf8_lossy(bytes).contains(REDIS_PASSWORD))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        holders.iter().all(|p| p.ends_with("/.env") || p.ends_with("redis.conf")),
        "the password is only in .env and the files Redis reads: {holders:?}"
    );
    assert!(holders.iter().all(|p| !p.contains("/data/")), "{holders:?}");

    // Restarted by hand: a new process, the same data.
    project.fleet.ok(&["--restart-infra", "redis", "hostomatic", "uat"]);
    eventually(20, "Redis back", || {
        let now = instance(&project, "hostomatic-uat");
        now["healthy"] == true && now["pid"] != pid
    });
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["GET", "greeting"]), ["+OK", "hello"]);
}

#[test]
fn without_its_password_redis_is_not_started_and_status_says_which_variables_to_set() {
    let project =
        Project::with_secrets(&SECRETS.replace(&format!("REDIS_PASSWORD={REDIS_PASSWORD}\n"), ""));
    let said = project.fleet.ok(&["--orchestrate"]);
    assert!(
        said.contains("redis for hostomatic-prod is not started (or left as it runs): secret redis_password of \
             hostomatic-prod is not set"),
        "{said}"
    );
    let status = project.fleet.json(&["--status"]);
    let missing = status["missing_secrets"]["hostomatic-uat"].to_string();
    assert!(missing.contains("HOSTOMATIC_UAT_REDIS_PASSWORD"), "{missing}");
    let refused = project.fleet.fails(&["--deploy-uat", "hostomatic"]);
    assert!(refused.contains("secret redis_password of hostomatic-uat is not set"), "{refused}");
}

#[test]
fn removing_redis_from_the_configuration_stops_it_only_when_confirmed_and_keeps_its_data() {
    if !have_redis() {
        return;
    }
    let project = Project::new();
    eventually(20, "Redis healthy", || instance(&project, "hostomatic-uat")["healthy"] == true);
    let path = project.fleet.path().join("config/deployment_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
    config.as_object_mut().expect("an object").remove("infrastructure");
    std::fs::write(&path, config.to_string()).expect("writes");

    let said = project.fleet.ok(&["--orchestrate"]);
    assert!(said.contains("no longer configured: stops it (its data stays)"), "{said}");
    assert!(said.contains("wait for confirmation: run --orchestrate --yes"), "{said}");
    assert_eq!(instance(&project, "hostomatic-uat")["state"], "running", "not without a yes");

    project.fleet.ok(&["--orchestrate", "--yes"]);
    assert!(instance(&project, "hostomatic-uat").is_null(), "stopped once confirmed");
    let master = project.fleet.state().droplets["master"].id.clone();
    let data = project
        .fleet
        .path()
        .join(".local-cloud/droplets")
        .join(master)
        .join("data/infrastructure/redis/hostomatic-uat/data");
    assert!(data.is_dir(), "a plan never deletes data");

    let listed = project.fleet.ok(&["--cleanup", "--dry-run"]);
    assert!(listed.contains("redis hostomatic-uat on master"), "{listed}");
    assert!(data.is_dir());
    project.fleet.ok(&["--cleanup", "--yes"]);
    assert!(!data.exists(), "removed by an explicit, confirmed cleanup");
}

#[test]
fn a_lost_password_or_a_broken_definition_never_stops_a_running_redis() {
    if !have_redis() {
        return;
    }
    let project = Project::new();
    eventually(20, "Redis healthy", || instance(&project, "hostomatic-prod")["healthy"] == true);
    let pid = instance(&project, "hostomatic-prod")["pid"].clone();

    // The administrator's machine lost the password: Redis keeps running, even with --yes.
    project.fleet.write(".env", SECRETS.replace(&format!("REDIS_PASSWORD={REDIS_PASSWORD}\n"), ""));
    let said = project.fleet.ok(&["--orchestrate", "--yes"]);
    assert!(said.contains("left as it runs"), "{said}");
    assert!(!said.contains("stops it"), "{said}");
    assert_eq!(instance(&project, "hostomatic-prod")["pid"], pid);
    project.fleet.write(".env", SECRETS);

    // A template that cannot be rendered is refused before anything changes.
    // So is one that cannot start, or would start Redis without its password.
    let path = project.fleet.path().join("config/deployment_config.json");
    let original = std::fs::read_to_string(&path).expect("reads");
    for (field, value, said) in [
        ("config", "port {{ nosuch }}\n", "config: the template cannot be rendered"),
        (
            "command",
            "redis-server \"{{ config_file }}",
            "command: the template cannot be rendered (it has an unclosed quote)",
        ),
        (
            "config",
            "port {{ port }}\n",
            "config: the template cannot be rendered (password_secret is set but the configuration never uses {{ password }}",
        ),
    ] {
        let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
        config["infrastructure"]["redis"]["process"][field] = value.into();
        std::fs::write(&path, config.to_string()).expect("writes");
        let refused = project.fleet.fails(&["--orchestrate", "--yes"]);
        assert!(refused.contains(&format!("at infrastructure.redis.process.{said}")), "{refused}");
    }
    // A password written into the command itself would show in every process listing.
    let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
    config["infrastructure"]["redis"]["process"]["command"] =
        format!("redis-server {{{{ config_file }}}} --masterauth {REDIS_PASSWORD}").into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let said = project.fleet.ok(&["--orchestrate", "--yes"]);
    assert!(said.contains("its command holds the value of secret redis_password"), "{said}");
    assert!(!said.contains(REDIS_PASSWORD), "{said}");
    std::fs::write(&path, original).expect("writes");
    assert_eq!(instance(&project, "hostomatic-prod")["pid"], pid);
    assert_eq!(instance(&project, "hostomatic-prod")["healthy"], true);
}

#[test]
fn on_kubernetes_redis_becomes_a_checked_stateful_set_with_its_password_in_a_secret_alone() {
    let project = Project::new();
    let fleet = &project.fleet;
    crate::containers::unreachable_cluster(fleet);
    let on_master = instance(&project, "hostomatic-uat");
    let path = fleet.path().join("config/deployment_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
    config["deployment_platform"] = "kubernetes".into();
    config["infrastructure"]["redis"]["image"] = "redis:7-alpine".into();
    std::fs::write(&path, config.to_string()).expect("writes");

    // A template the StatefulSet schema refuses stops --orchestrate before anything changes.
    let template = fleet.path().join("templates/kubernetes-infrastructure.json.j2");
    let text = std::fs::read_to_string(&template).expect("--setup wrote it");
    fleet.write(
        "templates/kubernetes-infrastructure.json.j2",
        text.replace("serviceName", "serviceNam"),
    );
    let refused = fleet.fails(&["--orchestrate"]);
    assert!(
        refused.contains(
            "kubernetes-infrastructure.json.j2 rendered for redis for hostomatic-prod: StatefulSet \
             infra-redis: no such field in the StatefulSet schema: spec.serviceNam"
        ),
        "{refused}"
    );
    assert!(!fleet.path().join("kubernetes").exists(), "nothing was written: {refused}");
    fleet.write("templates/kubernetes-infrastructure.json.j2", text);

    // The cluster does not answer: the objects are written for review, nothing else changes.
    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains("written to kubernetes/infrastructure/ but not applied"), "{said}");
    assert!(
        said.contains("runs in the cluster now: stops it on master"),
        "master's Redis waits: {said}"
    );
    assert_eq!(instance(&project, "hostomatic-uat")["pid"], on_master["pid"], "{said}");
    let dir = fleet.path().join("kubernetes/infrastructure/hostomatic-uat/redis");
    let read = |file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| panic!("{file}"));
        serde_json::from_str(&text).expect("json")
    };
    let set = read("statefulset-infra-redis.json");
    assert_eq!(set["metadata"]["namespace"], "hostomatic-uat");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "redis:7-alpine");
    assert_eq!(
        container["args"],
        serde_json::json!(["redis-server", "/etc/orchestrator/redis.conf"])
    );
    assert_eq!(container["ports"][0]["containerPort"], on_master["port"]);
    assert_eq!(container["volumeMounts"][0]["mountPath"], "/data");
    assert_eq!(set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"], "data");
    assert_eq!(read("service-infra-redis.json")["spec"]["ports"][0]["port"], on_master["port"]);
    let secret = read("secret-infra-redis-config.json");
    let conf = secret["stringData"]["redis.conf"].as_str().expect("the configuration file");
    assert!(conf.contains(&format!("requirepass {REDIS_PASSWORD}")), "{conf}");
    assert!(conf.contains("dir /data") && conf.contains("bind 0.0.0.0"), "{conf}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("secret-infra-redis-config.json"))
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the Secret's file is its owner's alone");
    for entry in std::fs::read_dir(&dir).expect("lists").filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().to_string();
        let text = std::fs::read_to_string(entry.path()).expect("reads");
        assert!(name.starts_with("secret-") || !text.contains(REDIS_PASSWORD), "{name}");
    }

    // --status names the cluster that does not answer.
    let status = fleet.json(&["--status"]);
    let issues = status["issues"].to_string();
    assert!(
        issues.contains("infrastructure in the Kubernetes cluster: the Kubernetes cluster"),
        "{issues}"
    );
}

#[test]
fn after_master_is_replaced_the_backend_reaches_redis_again_without_a_redeploy() {
    if !have_redis() {
        return;
    }
    let project = Project::new();
    let fleet = &project.fleet;
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let health = || http_get(&format!("{}health", project.route("uat", "backend")));
    eventually(20, "the backend reaches Redis", || health().contains("\"redis\": \"PONG\""));
    let before = fleet.state().droplets["master"].clone();
    let dir = fleet.path().join(".local-cloud/droplets").join(&before.id);
    let pid = orchestrator::provider::local::manifest::running_agent(&dir).expect("runs");
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kills");

    // The web droplets replace master from its snapshot; Redis comes back there, at master's
    // new address, and the services find it through their droplets' relays.
    eventually(60, "a new master", || {
        let status = fleet.json(&["--status"]);
        let master =
            status["droplets"].as_array().into_iter().flatten().find(|d| d["name"] == "master");
        master.is_some_and(|m| m["ip"] != before.ip.as_str() && m["health"] == "healthy")
    });
    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains("master was replaced while you were away"), "{said}");
    eventually(30, "the backend reaches Redis on the new master", || {
        health().contains("\"redis\": \"PONG\"")
    });
    assert_eq!(
        project.releases("uat")["releases"].as_array().map(Vec::len),
        Some(1),
        "no redeploy"
    );
}

#[test]
fn a_change_that_does_not_come_up_gives_way_and_a_port_change_waiting_rewires_nothing() {
    if !have_redis() {
        return;
    }
    let project = Project::new();
    let fleet = &project.fleet;
    eventually(20, "Redis healthy", || instance(&project, "hostomatic-uat")["healthy"] == true);
    let before = instance(&project, "hostomatic-uat");
    let port = before["port"].as_u64().expect("a port");
    let path = fleet.path().join("config/deployment_config.json");
    let original = std::fs::read_to_string(&path).expect("reads");
    // A port change waiting for confirmation: the state and the services keep the running port.
    let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
    config["infrastructure"]["redis"]["base_port"] = 61000.into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains(&format!("changed port {port} to 61")), "{said}");
    let key = "redis hostomatic-uat";
    assert_eq!(fleet.state().infrastructure[key], u16::try_from(port).expect("a port"));
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let health = || http_get(&format!("{}health", project.route("uat", "backend")));
    eventually(20, "the backend reaches Redis", || health().contains("\"redis\": \"PONG\""));

    // A changed command that cannot run is tried once confirmed, and the one before comes back.
    let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
    config["infrastructure"]["redis"]["process"]["command"] =
        "redis-serverx {{ config_file }}".into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let said = fleet.ok(&["--orchestrate", "--yes"]);
    assert!(said.contains("not restarted: the changed definition did not answer"), "{said}");
    eventually(20, "the definition before serving again", || {
        let now = instance(&project, "hostomatic-uat");
        now["healthy"] == true && now["pid"] != before["pid"] && now["port"] == port
    });
    let issues = fleet.json(&["--status"])["issues"].to_string();
    assert!(issues.contains("redis for hostomatic-uat: not restarted"), "{issues}");
    eventually(20, "the backend reaches Redis again", || health().contains("\"redis\": \"PONG\""));

    // What Redis writes to its log may quote its configuration: the log is its owner's alone,
    // outside what snapshots carry.
    let master = fleet.state().droplets["master"].id.clone();
    let log = fleet
        .path()
        .join(".local-cloud/droplets")
        .join(master)
        .join("run/infrastructure/redis/hostomatic-uat/redis.log");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).expect("the log").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", log.display());

    // Neither the load balancer nor the agents may take a port an instance runs on.
    let mut config: serde_json::Value = serde_json::from_str(&original).expect("json");
    config["load_balancer_port"] = port.into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let refused = fleet.fails(&["--orchestrate", "--yes"]);
    assert!(
        refused.contains(&format!(
            "at load_balancer_port: {port} is the port infrastructure redis hostomatic-uat runs on"
        )),
        "{refused}"
    );
    std::fs::write(&path, &original).expect("writes");
}
