use crate::common::TestFleet;

#[test]
fn setup_writes_every_file_and_never_overwrites() {
    let fleet = TestFleet::empty();
    let written = fleet.json(&["--setup"]);
    let paths: Vec<&str> =
        written.as_array().expect("a list").iter().filter_map(|w| w["path"].as_str()).collect();
    assert_eq!(
        paths,
        [
            "config/projects.csv",
            "config/deployment_config.json",
            "config/email_config.json",
            "config/sms_config.json",
            "config/.gitignore",
            "templates/nginx.conf.j2",
            "templates/process.sh.j2",
            "templates/container.json.j2",
            "templates/kubernetes.json.j2",
            "templates/kubernetes-infrastructure.json.j2",
            ".env.example"
        ]
    );
    assert!(fleet.read("config/deployment_config.json").contains("\"provider\": \"local\""));

    fleet.write(
        "config/projects.csv",
        "Project,Servers,MasterSpec,WebSpec\nmine,1,s-1vcpu-1gb,s-1vcpu-1gb\n",
    );
    let again = fleet.json(&["--setup"]);
    assert!(again.as_array().expect("a list").iter().all(|w| w["result"] == "kept"));
    assert!(fleet.read("config/projects.csv").contains("mine,1"));
}

#[test]
fn setup_follows_the_config_dir() {
    let fleet = TestFleet::empty();
    fleet.ok(&["--setup", "--config-dir", "fleets/shop/config"]);
    assert!(fleet.path().join("fleets/shop/config/projects.csv").exists());
    assert!(fleet.path().join("fleets/shop/templates/nginx.conf.j2").exists());
    assert!(fleet.path().join("fleets/shop/.env.example").exists());
}
