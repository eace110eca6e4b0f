//! Who watches whom: master watches every web droplet; each web droplet watches master and
//! the next web droplet in a ring, so every droplet has at least two monitors once the fleet
//! has three droplets.

use std::collections::BTreeMap;

use crate::model::{self, MASTER};

/// The droplets each droplet monitors, for a fleet of `droplets` (names in any order).
pub fn monitors(droplets: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut webs: Vec<&str> =
        droplets.iter().copied().filter(|d| model::web_index(d).is_some()).collect();
    webs.sort_by_key(|name| model::droplet_order(name));
    let has_master = droplets.contains(&MASTER);

    let mut result = BTreeMap::new();
    if has_master {
        result.insert(MASTER.to_string(), webs.iter().map(|w| w.to_string()).collect());
    }
    for (position, web) in webs.iter().enumerate() {
        let mut watched = Vec::new();
        if has_master {
            watched.push(MASTER.to_string());
        }
        let next = webs[(position + 1) % webs.len()];
        if next != *web {
            watched.push(next.to_string());
        }
        result.insert(web.to_string(), watched);
    }
    result
}

/// The droplets that monitor `target`, inverted from a `monitors` map.
pub fn monitored_by(monitors: &BTreeMap<String, Vec<String>>, target: &str) -> Vec<String> {
    let mut watchers: Vec<String> = monitors
        .iter()
        .filter(|(_, watched)| watched.iter().any(|w| w == target))
        .map(|(watcher, _)| watcher.clone())
        .collect();
    watchers.sort_by(|a, b| model::droplet_order(a).cmp(&model::droplet_order(b)));
    watchers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_droplets_form_a_ring_around_master() {
        let map = monitors(&["web2", "master", "web1"]);
        assert_eq!(map["master"], ["web1", "web2"]);
        assert_eq!(map["web1"], ["master", "web2"]);
        assert_eq!(map["web2"], ["master", "web1"]);
        assert_eq!(monitored_by(&map, "master"), ["web1", "web2"]);
        assert_eq!(monitored_by(&map, "web1"), ["master", "web2"]);
    }

    #[test]
    fn one_web_droplet_watches_master_only() {
        let map = monitors(&["master", "web1"]);
        assert_eq!(map["master"], ["web1"]);
        assert_eq!(map["web1"], ["master"]);
    }

    #[test]
    fn a_lone_master_watches_nobody() {
        let map = monitors(&["master"]);
        assert!(map["master"].is_empty());
        assert!(monitored_by(&map, "master").is_empty());
    }

    #[test]
    fn the_ring_follows_numeric_order() {
        let map = monitors(&["master", "web1", "web2", "web10", "web3"]);
        assert_eq!(map["web3"], ["master", "web10"]);
        assert_eq!(map["web10"], ["master", "web1"]);
    }
}
