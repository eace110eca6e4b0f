//! Releases of the example project on the container platforms: images built by the real Docker
//! engine (and Podman, through its Docker-compatible API) from the example's Containerfiles, on
//! a Python image made from this machine's own Python since nothing can be pulled; containers
//! run by the real agents, traffic through the real nginx.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::common::{eventually, have, http_get};
use crate::deploy::{Project, assert_no_secret_outside_env, git};
use crate::infrastructure::{REDIS_PASSWORD, have_redis, instance, redis};

const BASE_IMAGE: &str = "orchestrator-example/python:3";
/// The example's Redis as a container, made from this machine's redis-server.
const REDIS_IMAGE: &str = "orchestrator-example/redis:7";

/// The example project on a container platform; removes the images its deploys built.
struct DockerProject {
    project: Option<Project>,
    workspace: PathBuf,
    /// `docker` or `podman`: the command that inspects what the platform made.
    engine: &'static str,
}

impl DockerProject {
    /// None, with a notice, where no Docker engine runs (in CI there must be one).
    fn new() -> Option<DockerProject> {
        if !have("a Docker engine", Path::new("/var/run/docker.sock").exists()) {
            return None;
        }
        Some(DockerProject::on("docker"))
    }

    /// The example on `platform`, with the base image made once on its engine.
    fn on(platform: &'static str) -> DockerProject {
        let engine = if platform == "podman" { "podman" } else { "docker" };
        static MADE: Mutex<Vec<&str>> = Mutex::new(Vec::new());
        let mut made = MADE.lock().expect("not poisoned");
        if !made.contains(&engine) {
            let mut images = vec![("python-image.sh", BASE_IMAGE)];
            if have_redis() {
                images.push(("redis-image.sh", REDIS_IMAGE));
            }
            for (script, image) in images {
                let script =
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(script);
                let output = Command::new(script)
                    .arg(image)
                    .env("ENGINE", engine)
                    .output()
                    .expect("the script runs");
                assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            }
            made.push(engine);
        }
        drop(made);

        let project = Project::new();
        let path = project.fleet.path().join("config/deployment_config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
        config["deployment_platform"] = platform.into();
        for service in ["backend", "frontend", "worker_email"] {
            config["projects"]["hostomatic"]["services"][service]["build_args"] =
                serde_json::json!({"BASE_IMAGE": BASE_IMAGE});
        }
        // Redis from the image made here; it moves into a container once confirmed.
        config["infrastructure"]["redis"]["image"] = REDIS_IMAGE.into();
        std::fs::write(&path, config.to_string()).expect("writes");
        let workspace = project.fleet.path().canonicalize().expect("a real path");
        DockerProject { project: Some(project), workspace, engine }
    }

    fn project(&self) -> &Project {
        self.project.as_ref().expect("until dropped")
    }

    /// The images this fleet's deploys built, sorted (the engine lists them by creation time,
    /// in no fixed order within a second).
    fn images(&self) -> Vec<String> {
        let label = format!("label=orchestrator.workspace={}", self.workspace.display());
        let mut images =
            lines(self.engine, &["images", "--quiet", "--no-trunc", "--filter", &label]);
        images.sort();
        images.dedup();
        images
    }
}

impl Drop for DockerProject {
    fn drop(&mut self) {
        // The fleet first: its containers go with its droplets, then nothing uses the images.
        drop(self.project.take());
        let images = self.images();
        if !images.is_empty() {
            let _ = Command::new(self.engine).arg("rmi").arg("--force").args(images).output();
        }
    }
}

fn lines(engine: &str, args: &[&str]) -> Vec<String> {
    let output = Command::new(engine).args(args).output().expect("the engine's command runs");
    assert!(
        output.status.success(),
        "{engine} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

/// Containers of droplets under `root`: (id, name).
fn containers_under(engine: &str, root: &Path) -> Vec<(String, String)> {
    let format = match engine {
        "podman" => "{{.ID}} {{.Names}} {{index .Labels \"orchestrator.droplet-dir\"}}",
        _ => "{{.ID}} {{.Names}} {{.Label \"orchestrator.droplet-dir\"}}",
    };
    let root = root.display().to_string();
    lines(
        engine,
        &["ps", "--all", "--filter", "label=orchestrator.droplet-dir", "--format", format],
    )
    .into_iter()
    .filter_map(|line| {
        let mut words = line.split(' ');
        let (id, name, dir) = (words.next()?, words.next()?, words.next()?);
        dir.starts_with(&root).then(|| (id.to_string(), name.to_string()))
    })
    .collect()
}

fn services_on(project: &Project, droplet: &str) -> serde_json::Value {
    let record = project.fleet.state().droplets[droplet].clone();
    let url = format!("http://{}:{}/services", record.ip, record.agent_port);
    serde_json::from_str(&http_get(&url)).unwrap_or_default()
}

#[test]
fn on_docker_uat_is_promoted_by_tag_rolled_back_and_reproduced_without_rebuilding() {
    let Some(docker) = DockerProject::new() else { return };
    let project = docker.project();
    let fleet = &project.fleet;

    let said = fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.releases("uat")["current"].as_str().expect("current").to_string();
    assert!(said.contains(&format!("Tagged {first} and pushed the tag.")), "{said}");
    eventually(30, "UAT serving the first release", || project.serving("uat") == first);
    let release = &project.releases("uat")["releases"][0];
    assert_eq!(release["platform"], "docker");
    for service in ["backend", "frontend", "worker_email"] {
        let image = release["artifacts"][service]["image"].as_str().unwrap_or_default();
        assert!(image.starts_with("sha256:"), "{service} has an image: {release}");
    }
    assert_eq!(docker.images().len(), 3, "one image a service");

    // Each of web1 and web2 runs the three services as containers; the backend reaches Redis.
    let running = containers_under(docker.engine, &docker.workspace);
    assert_eq!(running.len(), 6, "{running:?}");
    assert!(running.iter().all(|(_, name)| name.starts_with("hostomatic-uat-")), "{running:?}");
    let health = || http_get(&format!("{}health", project.route("uat", "backend")));
    eventually(20, "the backend reaches Redis on master", || {
        health().contains("\"redis\": \"PONG\"")
    });
    let page = http_get(&project.route("uat", "frontend"));
    assert!(page.contains("<h1>hostomatic</h1>"), "{page}");

    // A container that dies is started again by its agent.
    let worker = running.iter().find(|(_, name)| name.contains("-worker_email-web1-"));
    let (worker, _) = worker.expect("the worker on web1");
    lines("docker", &["kill", worker]);
    eventually(30, "the worker started again", || {
        services_on(project, "web1").as_array().into_iter().flatten().any(|s| {
            s["service"] == "worker_email" && s["restarts"] == 1 && s["state"] == "running"
        })
    });

    // A second release, then production gets the first by tag: the same images, none built.
    let app = std::fs::read_to_string(project.work.join("backend/app.py")).expect("reads");
    project.change("backend/app.py", &format!("{app}\n# second\n"));
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let second = project.releases("uat")["current"].as_str().expect("current").to_string();
    eventually(30, "UAT serving the second release", || project.serving("uat") == second);
    let images = docker.images();
    let said = fleet.ok(&["--deploy-prod", "hostomatic", "--tag", &first]);
    assert!(said.contains("nothing was rebuilt"), "{said}");
    eventually(30, "production serving the first release", || project.serving("prod") == first);
    assert_eq!(docker.images(), images, "promoting builds no image");
    let uat_first = project.uat_release(&first);
    assert_eq!(project.releases("prod")["releases"][0]["artifacts"], uat_first["artifacts"]);

    // Back to the first release in UAT, then the tag rebuilds the same build contexts.
    let said = fleet.ok(&["--rollback", "hostomatic", "uat"]);
    assert!(said.contains("Rolled back; nothing was rebuilt."), "{said}");
    eventually(30, "UAT back on the first release", || project.serving("uat") == first);
    let dir = fleet.path().join("reproduced");
    let reproduced =
        fleet.json(&["--reproduce", &first, "--reproduce-dir", dir.to_str().expect("utf-8")]);
    let artifacts = reproduced["artifacts"].as_array().expect("list");
    assert!(artifacts.iter().all(|a| a["matches"] == true), "{reproduced}");
    assert!(dir.join("backend/Dockerfile").is_file());
    assert_eq!(git(&project.remote, &["tag", "--list"]).lines().count(), 2);
    assert_no_secret_outside_env(fleet, &said);

    // The fleet's containers go with it.
    let workspace = docker.workspace.clone();
    drop(docker);
    assert_eq!(containers_under("docker", &workspace), Vec::new(), "no container is left");
}

#[test]
fn on_docker_a_redeploy_drops_no_request_and_a_version_that_never_turns_healthy_is_stopped() {
    let Some(docker) = DockerProject::new() else { return };
    let project = docker.project();
    project.quick_backend_health(5);
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.current_uat();
    eventually(30, "UAT serving", || project.serving("uat") == first);

    let second = project.redeploy_under_load("docker");
    let refused = project.broken_release_under_load();
    assert!(refused.contains("backend did not pass its health check after 5 tries"), "{refused}");
    assert_eq!(project.serving("uat"), second);
    let backends = containers_under(docker.engine, &docker.workspace)
        .into_iter()
        .filter(|(_, name)| name.starts_with("hostomatic-uat-backend-"))
        .count();
    assert_eq!(backends, 2, "the broken version's containers are gone; one backend a droplet");
}

/// Podman's API service on its usual root socket, for one test: started unless one answers
/// there already, and stopped after the test if it started it.
struct PodmanService(Option<std::process::Child>);

impl PodmanService {
    const SOCKET: &str = "/run/podman/podman.sock";

    fn start() -> Option<PodmanService> {
        let installed = Command::new("podman").arg("--version").output();
        if !have("podman", installed.is_ok_and(|o| o.status.success())) {
            return None;
        }
        if std::os::unix::net::UnixStream::connect(Self::SOCKET).is_ok() {
            return Some(PodmanService(None));
        }
        let _ = std::fs::remove_file(Self::SOCKET);
        let _ = std::fs::create_dir_all("/run/podman");
        let child = Command::new("podman")
            .args(["system", "service", "--time=0", &format!("unix://{}", Self::SOCKET)])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("podman starts");
        let service = PodmanService(Some(child));
        eventually(20, "podman's API answering", || {
            std::os::unix::net::UnixStream::connect(Self::SOCKET).is_ok()
        });
        Some(service)
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

#[test]
fn on_podman_a_redeploy_drops_no_request_and_the_release_is_promoted_unchanged() {
    let Some(_podman) = PodmanService::start() else { return };
    let docker = DockerProject::on("podman");
    let project = docker.project();
    let fleet = &project.fleet;
    // Podman raises a root container's open-file and process limits unless told otherwise, and
    // this machine's sandbox refuses any raise; the template is where such settings live.
    let template = std::fs::read_to_string(fleet.path().join("templates/container.json.j2"))
        .expect("reads")
        .replace(
            "\"NetworkMode\": \"host\",",
            "\"NetworkMode\": \"host\",\n    \"Ulimits\": [{\"Name\": \"nofile\", \"Soft\": 4096, \"Hard\": 4096}, \
             {\"Name\": \"nproc\", \"Soft\": 4096, \"Hard\": 4096}],",
        );
    fleet.write("templates/container.json.j2", template);

    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let first = project.releases("uat")["current"].as_str().expect("current").to_string();
    eventually(30, "UAT serving on podman", || project.serving("uat") == first);
    assert_eq!(project.releases("uat")["releases"][0]["platform"], "podman");
    assert_eq!(containers_under("podman", &docker.workspace).len(), 6);

    let second = project.redeploy_under_load("podman");

    let images = docker.images();
    let said = fleet.ok(&["--deploy-prod", "hostomatic"]);
    assert!(said.contains("nothing was rebuilt"), "{said}");
    eventually(30, "production serving", || project.serving("prod") == second);
    assert_eq!(docker.images(), images, "promoting builds no image");

    let workspace = docker.workspace.clone();
    drop(docker);
    assert_eq!(containers_under("podman", &workspace), Vec::new(), "no container is left");
}

/// A kubeconfig in the fleet's home naming a cluster that is not there: nothing listens on
/// its address.
pub fn unreachable_cluster(fleet: &crate::common::TestFleet) {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = closed.local_addr().expect("an address").port();
    drop(closed);
    fleet.write(
        "home/.kube/config",
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  \
             cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\nusers:\n\
             - name: test\n  user:\n    token: not-a-real-token\n"
        ),
    );
}

#[test]
fn on_kubernetes_a_release_is_written_as_checked_objects_and_an_unreachable_cluster_is_refused() {
    if !have("a Docker engine", Path::new("/var/run/docker.sock").exists()) {
        return;
    }
    let docker = DockerProject::on("kubernetes");
    let project = docker.project();
    let fleet = &project.fleet;
    unreachable_cluster(fleet);

    // A typo in the template is refused before anything is built.
    let template_path = fleet.path().join("templates/kubernetes.json.j2");
    let template = std::fs::read_to_string(&template_path).expect("reads");
    fleet.write(
        "templates/kubernetes.json.j2",
        template.replace("imagePullPolicy", "imagePullPolicyy"),
    );
    let refused = fleet.fails(&["--deploy-uat", "hostomatic"]);
    assert!(
        refused.contains(
            "no such field in the Deployment schema: spec.template.spec.containers[0].imagePullPolicyy"
        ),
        "{refused}"
    );
    assert!(docker.images().is_empty(), "nothing was built");
    fleet.write("templates/kubernetes.json.j2", template);

    let refused = fleet.fails(&["--deploy-uat", "hostomatic"]);
    assert!(refused.contains("cannot apply Namespace hostomatic-uat to the cluster"), "{refused}");
    let dir = fleet.path().join("kubernetes/hostomatic-uat");
    let read = |file: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|_| panic!("{file}"));
        serde_json::from_str(&text).expect("json")
    };
    let version =
        project.releases("uat")["releases"][0]["version"].as_str().expect("v").to_string();
    let backend = read("deployment-backend.json");
    let container = &backend["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], format!("orchestrator/hostomatic-backend:{version}"));
    assert_eq!(backend["spec"]["replicas"], 2, "one replica a droplet the CSV gives it");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    let port = fleet.state().project_services("hostomatic-uat").expect("placed")["backend"].port;
    assert_eq!(container["ports"][0]["containerPort"], port.expect("a port"));
    assert_eq!(read("service-backend.json")["spec"]["ports"][0]["port"], port.expect("a port"));
    let redis_host =
        container["env"].as_array().into_iter().flatten().find(|e| e["name"] == "REDIS_HOST");
    assert_eq!(
        redis_host.map(|e| e["value"].clone()),
        Some("infra-redis.hostomatic-uat.svc".into()),
        "the services reach the cluster's Redis by its Service"
    );
    assert!(dir.join("deployment-worker-email.json").is_file());
    assert!(!dir.join("service-worker-email.json").exists(), "a worker has no Service");
    assert_eq!(read("namespace-hostomatic-uat.json")["kind"], "Namespace");

    // The secrets are in the Secrets' files alone, readable by their owner.
    let secret_file = dir.join("secret-backend-secrets.json");
    let secret = read("secret-backend-secrets.json");
    assert_eq!(secret["stringData"]["DB_PASSWORD"], "db-Secret-4411");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret_file).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for entry in std::fs::read_dir(&dir).expect("lists").filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().to_string();
        let text = std::fs::read_to_string(entry.path()).expect("reads");
        if !name.starts_with("secret-") {
            assert!(!text.contains("Secret-"), "{name} holds no secret value");
        }
    }
    assert!(!refused.contains("db-Secret-4411"));
    let release = &project.releases("uat")["releases"][0];
    assert_eq!(release["platform"], "kubernetes");
    assert!(release["outcome"]["failed"]["reason"].is_string(), "{release}");
    assert!(git(&project.remote, &["tag", "--list"]).is_empty(), "a failed release is not tagged");
}

#[test]
fn on_docker_a_replaced_droplet_runs_the_release_again_and_its_old_containers_are_gone() {
    let Some(docker) = DockerProject::new() else { return };
    let project = docker.project();
    project.fleet.ok(&["--deploy-uat", "hostomatic"]);
    let release = project.current_uat();
    eventually(30, "UAT serving", || project.serving("uat") == release);
    let before = project.fleet.state().droplets["web1"].clone();
    let dir = project.fleet.path().join(".local-cloud/droplets").join(&before.id);
    let dir = dir.canonicalize().expect("the droplet's directory");
    let old: Vec<String> = containers_under("docker", &dir).into_iter().map(|(id, _)| id).collect();
    assert_eq!(old.len(), 3, "web1 runs the three services: {old:?}");

    // web1's agent dies on its own; its peers replace the droplet from its snapshot.
    let pid = orchestrator::provider::local::manifest::running_agent(&dir).expect("runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL)
        .expect("kills");
    eventually(90, "web1 replaced and running the release in containers", || {
        let state = project.fleet.json(&["--status"]);
        let web1 = state["droplets"].as_array().into_iter().flatten().find(|d| d["name"] == "web1");
        let Some(ip) = web1.and_then(|d| d["ip"].as_str()).filter(|ip| *ip != before.ip) else {
            return false;
        };
        let url = format!("http://{ip}:{}/services", before.agent_port);
        let services: serde_json::Value = serde_json::from_str(&http_get(&url)).unwrap_or_default();
        services.as_array().into_iter().flatten().any(|s| {
            s["service"] == "backend" && s["version"] == release.as_str() && s["state"] == "running"
        })
    });
    eventually(30, "UAT serving through nginx", || project.serving("uat") == release);
    let left: Vec<(String, String)> = containers_under("docker", &docker.workspace)
        .into_iter()
        .filter(|(id, _)| old.contains(id))
        .collect();
    assert_eq!(left, Vec::new(), "the dead droplet's containers are removed with it");
}

#[test]
fn on_docker_redis_moves_into_a_container_once_confirmed_keeps_its_data_and_outlives_app_deploys() {
    let Some(docker) = DockerProject::new() else { return };
    if !have_redis() {
        return;
    }
    let project = docker.project();
    let fleet = &project.fleet;
    let process = instance(project, "hostomatic-uat");
    assert_eq!(
        process["image"],
        serde_json::Value::Null,
        "a process until the change is confirmed"
    );
    let address = format!("{}:{}", fleet.state().droplets["master"].ip, process["port"]);
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["SET", "kept", "yes"]), ["+OK", "+OK"]);

    // The change restarts Redis, so it is shown and waits for confirmation.
    let said = fleet.ok(&["--orchestrate"]);
    assert!(said.contains("redis hostomatic-uat"), "{said}");
    assert!(said.contains("wait for confirmation"), "{said}");
    assert_eq!(instance(project, "hostomatic-uat")["pid"], process["pid"], "{said}");
    fleet.ok(&["--orchestrate", "--yes"]);
    eventually(30, "Redis healthy in its container", || {
        let now = instance(project, "hostomatic-uat");
        now["image"] == REDIS_IMAGE && now["healthy"] == true
    });
    let status = fleet.ok(&["--status"]);
    assert!(status.contains(REDIS_IMAGE), "--status says what runs it: {status}");
    let master =
        fleet.path().join(".local-cloud/droplets").join(&fleet.state().droplets["master"].id);
    let on_master = || containers_under("docker", &master.canonicalize().expect("a real path"));
    let first = on_master();
    assert_eq!(first.len(), 2, "one instance a project-environment: {first:?}");
    assert!(first.iter().all(|(_, name)| name.starts_with("infra-redis-hostomatic-")), "{first:?}");

    // The same data directory, now mounted; the password still required.
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["GET", "kept"]), ["+OK", "yes"]);
    assert!(redis(&address, None, &["PING"])[0].starts_with("-NOAUTH"));
    assert!(redis(&address, Some("wrong"), &["PING"])[0].starts_with("-WRONGPASS"));
    let inspected = lines("docker", &["inspect", "--format", "{{json .Config}}", &first[0].0]);
    assert!(!inspected.concat().contains(REDIS_PASSWORD), "not in the container's settings");

    // The backend reaches it; app deploys leave the container alone.
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    let health = || http_get(&format!("{}health", project.route("uat", "backend")));
    eventually(30, "the backend reaches Redis in its container", || {
        health().contains("\"redis\": \"PONG\"")
    });
    let app = std::fs::read_to_string(project.work.join("backend/app.py")).expect("reads");
    project.change("backend/app.py", &format!("{app}\n# next\n"));
    fleet.ok(&["--deploy-uat", "hostomatic"]);
    fleet.ok(&["--orchestrate"]);
    assert_eq!(on_master(), first, "neither a deploy nor --orchestrate restarted Redis");

    // Restarted by hand: a new container, the same data.
    fleet.ok(&["--restart-infra", "redis", "hostomatic", "uat"]);
    eventually(30, "Redis back in a new container", || {
        let now = on_master();
        now.len() == 2 && now != first && redis_answers(&address)
    });
    assert_eq!(redis(&address, Some(REDIS_PASSWORD), &["GET", "kept"]), ["+OK", "yes"]);

    // An image that cannot be had stops nothing: the running container stays (the registry
    // named is on this machine, where nothing listens).
    let restarted = on_master();
    let path = fleet.path().join("config/deployment_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("reads")).expect("json");
    config["infrastructure"]["redis"]["image"] = "127.0.0.1:1/orchestrator-example/none:1".into();
    std::fs::write(&path, config.to_string()).expect("writes");
    let said = fleet.ok(&["--orchestrate", "--yes"]);
    assert!(said.contains(&format!("from {REDIS_IMAGE} to 127.0.0.1:1/")), "{said}");
    assert!(
        said.contains("not restarted: 127.0.0.1:1/orchestrator-example/none:1 is not on"),
        "{said}"
    );
    assert_eq!(on_master(), restarted, "{said}");
    assert!(redis_answers(&address));
}

fn redis_answers(address: &str) -> bool {
    std::net::TcpStream::connect(address).is_ok()
        && redis(address, Some(REDIS_PASSWORD), &["PING"]) == ["+OK", "+PONG"]
}
