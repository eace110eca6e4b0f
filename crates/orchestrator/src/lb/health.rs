//! Active health of load-balancer targets, as the master's agent sees it.
//!
//! A target leaves rotation after several failed checks in a row and returns after several
//! good ones, so one lost check neither drops a healthy target nor lets a flapping one back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Failed checks in a row that take a target out of rotation.
pub const FAILURES_TO_DOWN: u32 = 3;
/// Good checks in a row that put it back.
pub const SUCCESSES_TO_UP: u32 = 2;

/// What the checks say of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not checked enough yet; kept in rotation, where nginx's own passive checks guard it.
    Unknown,
    Up,
    Down,
}

/// One target's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetHealth {
    pub health: Health,
    #[serde(skip)]
    failures: u32,
    #[serde(skip)]
    successes: u32,
    pub last_error: Option<String>,
}

/// A target entering or leaving rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    TakenOut,
    PutBack,
}

/// Health of every target, keyed by droplet and port.
#[derive(Debug, Default)]
pub struct HealthBook {
    targets: BTreeMap<(String, u16), TargetHealth>,
}

impl HealthBook {
    /// Records one check; says whether the target entered or left rotation.
    pub fn record(
        &mut self,
        droplet: &str,
        port: u16,
        result: Result<(), String>,
    ) -> Option<Transition> {
        let target = self.targets.entry((droplet.to_string(), port)).or_insert(TargetHealth {
            health: Health::Unknown,
            failures: 0,
            successes: 0,
            last_error: None,
        });
        match result {
            Ok(()) => {
                target.failures = 0;
                target.successes += 1;
                target.last_error = None;
                match target.health {
                    Health::Down if target.successes >= SUCCESSES_TO_UP => {
                        target.health = Health::Up;
                        Some(Transition::PutBack)
                    }
                    Health::Unknown => {
                        target.health = Health::Up;
                        None
                    }
                    _ => None,
                }
            }
            Err(error) => {
                target.successes = 0;
                target.failures += 1;
                target.last_error = Some(error);
                if target.health != Health::Down && target.failures >= FAILURES_TO_DOWN {
                    target.health = Health::Down;
                    Some(Transition::TakenOut)
                } else {
                    None
                }
            }
        }
    }

    pub fn is_down(&self, droplet: &str, port: u16) -> bool {
        self.get(droplet, port).is_some_and(|t| t.health == Health::Down)
    }

    pub fn get(&self, droplet: &str, port: u16) -> Option<&TargetHealth> {
        self.targets.get(&(droplet.to_string(), port))
    }

    /// Forgets targets that are no longer in the fleet.
    pub fn retain(&mut self, keep: impl Fn(&str, u16) -> bool) {
        self.targets.retain(|(droplet, port), _| keep(droplet, *port));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Result<(), String> {
        Err("connection refused".into())
    }

    #[test]
    fn one_lost_check_keeps_a_target_in_rotation() {
        let mut book = HealthBook::default();
        assert_eq!(book.record("web1", 8001, Ok(())), None);
        assert_eq!(book.record("web1", 8001, fail()), None);
        assert_eq!(book.record("web1", 8001, Ok(())), None);
        assert!(!book.is_down("web1", 8001));
    }

    #[test]
    fn repeated_failures_take_a_target_out_and_good_checks_bring_it_back() {
        let mut book = HealthBook::default();
        assert_eq!(book.record("web2", 8001, fail()), None);
        assert_eq!(book.record("web2", 8001, fail()), None);
        assert_eq!(book.record("web2", 8001, fail()), Some(Transition::TakenOut));
        assert!(book.is_down("web2", 8001));
        assert_eq!(book.record("web2", 8001, fail()), None, "already out");
        assert_eq!(book.record("web2", 8001, Ok(())), None);
        assert_eq!(book.record("web2", 8001, Ok(())), Some(Transition::PutBack));
        assert!(!book.is_down("web2", 8001));
    }
}
