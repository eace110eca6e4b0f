use std::os::unix::fs::PermissionsExt;

use crate::common::TestFleet;

#[test]
fn init_makes_an_ed25519_key_pair_with_a_private_mode() {
    let fleet = TestFleet::configured();
    let steps = fleet.json(&["--init"]);
    let key = fleet.path().join("home/.ssh/infrastructure_key");
    let mode = std::fs::metadata(&key).expect("the key exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        fleet
            .read("home/.ssh/infrastructure_key")
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    assert!(fleet.read("home/.ssh/infrastructure_key.pub").starts_with("ssh-ed25519 "));
    let results: Vec<&str> =
        steps.as_array().expect("steps").iter().filter_map(|s| s["step"].as_str()).collect();
    assert!(
        results.contains(&"templates") && results.contains(&"email_config.json"),
        "{results:?}"
    );
}

#[test]
fn init_keeps_an_existing_key() {
    let fleet = TestFleet::configured();
    fleet.ok(&["--init"]);
    let key = fleet.read("home/.ssh/infrastructure_key");
    let steps = fleet.json(&["--init"]);
    assert_eq!(fleet.read("home/.ssh/infrastructure_key"), key);
    assert!(steps.to_string().contains("kept the existing key"));
}

#[test]
fn init_records_admin_addresses_from_dotenv() {
    let fleet = TestFleet::configured();
    fleet.write(
        ".env",
        "ADMIN_IP=203.0.113.100\nADDITIONAL_IPS=\"198.51.100.0/24, 198.51.100.9\"\n",
    );
    fleet.ok(&["--init"]);
    let state = fleet.state();
    assert_eq!(state.admin_ip.as_deref(), Some("203.0.113.100/32"));
    assert_eq!(state.additional_ips, ["198.51.100.0/24", "198.51.100.9/32"]);
}
