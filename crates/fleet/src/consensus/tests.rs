use super::*;
use crate::topology;

fn fleet(names: &[&str]) -> BTreeMap<String, Vec<String>> {
    topology::monitors(names)
}

fn views(names: &[&str]) -> BTreeMap<String, Consensus> {
    let monitors = fleet(names);
    names
        .iter()
        .map(|n| (n.to_string(), Consensus::new(n, &monitors, Settings::default())))
        .collect()
}

/// Every monitor of `target` checks it `times` times, one second apart from `start`, and every
/// report is delivered to the target's other monitors.
fn check_all(
    views: &mut BTreeMap<String, Consensus>,
    target: &str,
    healthy: bool,
    start: u64,
    times: u64,
) {
    for tick in 0..times {
        let now = start + tick * 1000;
        let monitors: Vec<String> = views
            .iter()
            .filter(|(_, v)| v.targets().contains(&target.to_string()))
            .map(|(n, _)| n.clone())
            .collect();
        for monitor in monitors {
            let report =
                views.get_mut(&monitor).expect("a view").record_check(target, healthy, now);
            if let Some(report) = report {
                for fellow in views[&monitor].fellow_monitors(target) {
                    views.get_mut(&fellow).expect("a view").record_report(&monitor, &report, now);
                }
            }
        }
    }
}

#[test]
fn a_dead_web_droplet_is_failed_and_master_leads_after_confirmation() {
    let mut views = views(&["master", "web1", "web2", "web3", "web4", "web5"]);
    check_all(&mut views, "web2", false, 0, 3);
    let master = views.get_mut("master").expect("master");
    assert_eq!(
        master.verdict("web2", 2000),
        Verdict::Failed { by: vec!["master".into(), "web1".into()], leader: "master".into() }
    );
    assert_eq!(master.decide(2000), vec![], "not yet confirmed");
    assert_eq!(master.decide(7000), vec![Decision::Recover { target: "web2".into() }]);
    assert_eq!(
        views.get_mut("web1").expect("web1").decide(7000),
        vec![],
        "only the leader recovers"
    );
}

#[test]
fn one_lost_check_or_two_do_not_make_a_suspicion() {
    let mut views = views(&["master", "web1", "web2"]);
    check_all(&mut views, "web1", false, 0, 2);
    check_all(&mut views, "web1", true, 2000, 1);
    check_all(&mut views, "web1", false, 3000, 2);
    assert_eq!(views["master"].verdict("web1", 4000), Verdict::Healthy);
}

#[test]
fn a_monitor_cut_off_from_one_target_cannot_get_it_replaced() {
    let mut views = views(&["master", "web1", "web2"]);
    // web1 cannot reach web2; master can.
    for tick in 0..10 {
        let now = tick * 1000;
        if let Some(report) = views.get_mut("web1").expect("web1").record_check("web2", false, now)
        {
            views.get_mut("master").expect("master").record_report("web1", &report, now);
        }
        views.get_mut("master").expect("master").record_check("web2", true, now);
    }
    let master = views.get_mut("master").expect("master");
    assert!(matches!(master.verdict("web2", 9000), Verdict::Suspected { needed: 2, .. }));
    assert!(master.decide(20_000).is_empty());
}

#[test]
fn a_monitor_that_fails_every_check_holds_back_instead_of_accusing() {
    let mut views = views(&["master", "web1", "web2"]);
    let web1 = views.get_mut("web1").expect("web1");
    let mut reports = Vec::new();
    for tick in 0..5 {
        for target in ["master", "web2"] {
            reports.extend(web1.record_check(target, false, tick * 1000));
        }
    }
    assert!(web1.cut_off());
    assert!(
        reports.len() <= 1,
        "at most the report sent before every check had failed: {reports:?}"
    );
}

#[test]
fn a_pause_shorter_than_the_confirmation_recovers_nothing() {
    let mut views = views(&["master", "web1", "web2", "web3"]);
    check_all(&mut views, "web3", false, 0, 3);
    let decided = views.get_mut("master").expect("master").decide(2500);
    assert!(decided.is_empty());
    check_all(&mut views, "web3", true, 3000, 1);
    let master = views.get_mut("master").expect("master");
    assert_eq!(master.verdict("web3", 3000), Verdict::Healthy);
    assert!(master.decide(9000).is_empty());
}

#[test]
fn a_failed_master_is_recovered_by_the_first_web_droplet() {
    let mut views = views(&["master", "web1", "web2", "web3", "web4"]);
    check_all(&mut views, "master", false, 0, 3);
    let web1 = views.get_mut("web1").expect("web1");
    assert!(
        matches!(web1.verdict("master", 2000), Verdict::Failed { ref leader, .. } if leader == "web1")
    );
    assert_eq!(web1.decide(2000), vec![]);
    assert_eq!(web1.decide(8000), vec![Decision::Recover { target: "master".into() }]);
}

#[test]
fn two_neighbours_failing_together_are_both_recovered_in_a_larger_fleet() {
    let mut views = views(&["master", "web1", "web2", "web3", "web4", "web5", "web6"]);
    check_all(&mut views, "web2", false, 0, 3);
    check_all(&mut views, "web3", false, 0, 3);
    let master = views.get_mut("master").expect("master");
    // web3's monitors are master and web2; web2 is suspected itself, so master alone decides.
    assert!(matches!(master.verdict("web3", 2000), Verdict::Failed { .. }));
    master.decide(2000);
    let mut recovered = master.decide(8000);
    recovered.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(
        recovered,
        vec![
            Decision::Recover { target: "web2".into() },
            Decision::Recover { target: "web3".into() }
        ]
    );
}

#[test]
fn half_the_fleet_failing_is_held_back_for_a_person() {
    let mut views = views(&["master", "web1", "web2", "web3"]);
    check_all(&mut views, "web1", false, 0, 3);
    check_all(&mut views, "web2", false, 0, 3);
    let master = views.get_mut("master").expect("master");
    master.decide(2000);
    assert_eq!(
        master.decide(9000),
        vec![Decision::HoldBack { targets: vec!["web1".into(), "web2".into()] }]
    );
}

#[test]
fn a_lease_held_by_another_leader_stops_a_second_recovery() {
    let mut views = views(&["master", "web1", "web2", "web3", "web4"]);
    check_all(&mut views, "web2", false, 0, 3);
    let master = views.get_mut("master").expect("master");
    master.record_claim("web2", "web1", 60_000);
    master.decide(2000);
    assert!(master.decide(8000).is_empty());
    assert_eq!(master.decide(61_000).len(), 0, "suspicions expired with the window");
}

#[test]
fn reports_from_droplets_that_do_not_watch_the_target_are_ignored() {
    let mut views = views(&["master", "web1", "web2", "web3"]);
    let master = views.get_mut("master").expect("master");
    // web3 watches master and web1, not web2.
    master.record_report("web3", &Report::Suspect { target: "web2".into() }, 0);
    assert_eq!(master.verdict("web2", 0), Verdict::Healthy);
}

#[test]
fn a_lone_droplet_is_unwatched() {
    let views = views(&["master"]);
    assert_eq!(views["master"].verdict("master", 0), Verdict::Unwatched);
}
