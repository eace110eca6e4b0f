//! Failure consensus: when a droplet counts as failed, and which monitor recovers it.
//!
//! Pure, like the planner: every agent feeds in its own checks and its peers' signed reports
//! with the time it saw them (milliseconds on a monotonic clock), and reads back verdicts.
//! Nothing here sends, sleeps or reads a clock, so every rule below is tested directly.
//!
//! - A monitor suspects a target after `failures_to_suspect` failed checks in a row, and tells
//!   the target's other monitors; one good check withdraws its suspicion.
//! - A suspicion counts for `window` after it was last confirmed.
//! - A target is failed when most of its *live* monitors suspect it. A monitor that is itself
//!   suspected is not live, so two neighbours failing together do not block each other.
//! - A monitor whose checks of every target fail at once is more likely cut off than right:
//!   it holds its suspicions back instead of accusing.
//! - The leader of a recovery is the first agreeing monitor in fleet order; a lease stops a
//!   second leader from acting on the same failure while the first holds it.
//! - When half the fleet or more looks failed at once, nothing is recovered: that is a
//!   partition or an outage of the cloud, for a person to look at.

use std::collections::BTreeMap;

use crate::model;

/// The knobs of consensus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub failures_to_suspect: u32,
    /// How long a suspicion counts after it was last confirmed, in milliseconds.
    pub window_ms: u64,
    /// How long a target must stay failed before it is recovered, in milliseconds, so a
    /// droplet that pauses for a few seconds is not replaced.
    pub confirm_ms: u64,
    /// How long a recovery leader's claim holds, in milliseconds.
    pub lease_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { failures_to_suspect: 3, window_ms: 10_000, confirm_ms: 5_000, lease_ms: 120_000 }
    }
}

/// What a monitor tells the target's other monitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// "I suspect `target`."
    Suspect { target: String },
    /// "`target` answers me again."
    Clear { target: String },
}

/// What the monitors, together, think of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nobody watches it (a one-droplet fleet).
    Unwatched,
    Healthy,
    /// Some live monitors suspect it, not yet enough.
    Suspected {
        by: Vec<String>,
        needed: usize,
    },
    /// Most live monitors suspect it; `leader` coordinates the recovery.
    Failed {
        by: Vec<String>,
        leader: String,
    },
}

/// What this monitor should do about a target now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// This monitor leads the recovery of `target`.
    Recover { target: String },
    /// `targets` have failed, but too much of the fleet at once to act safely.
    HoldBack { targets: Vec<String> },
}

/// One monitor's view.
#[derive(Debug, Clone)]
pub struct Consensus {
    me: String,
    settings: Settings,
    /// Every droplet, and the droplets that watch it.
    watchers: BTreeMap<String, Vec<String>>,
    /// My failed checks in a row, by target.
    failures: BTreeMap<String, u32>,
    /// Suspicions in force: target → monitor → when last confirmed.
    suspicions: BTreeMap<String, BTreeMap<String, u64>>,
    /// Recovery claims: target → (leader, until).
    leases: BTreeMap<String, (String, u64)>,
    /// Since when each target has been failed without a break.
    failed_since: BTreeMap<String, u64>,
}

impl Consensus {
    /// The view of monitor `me` in a fleet where `monitors[d]` are the droplets `d` watches.
    pub fn new(
        me: &str,
        monitors: &BTreeMap<String, Vec<String>>,
        settings: Settings,
    ) -> Consensus {
        let mut watchers: BTreeMap<String, Vec<String>> =
            monitors.keys().map(|d| (d.clone(), Vec::new())).collect();
        for (monitor, targets) in monitors {
            for target in targets {
                watchers.entry(target.clone()).or_default().push(monitor.clone());
            }
        }
        for list in watchers.values_mut() {
            list.sort_by(|a, b| model::droplet_order(a).cmp(&model::droplet_order(b)));
        }
        Consensus {
            me: me.to_string(),
            settings,
            watchers,
            failures: BTreeMap::new(),
            suspicions: BTreeMap::new(),
            leases: BTreeMap::new(),
            failed_since: BTreeMap::new(),
        }
    }

    /// The droplets this monitor checks.
    pub fn targets(&self) -> Vec<String> {
        self.watchers.iter().filter(|(_, w)| w.contains(&self.me)).map(|(t, _)| t.clone()).collect()
    }

    /// The monitors of `target` other than this one, to send reports to.
    pub fn fellow_monitors(&self, target: &str) -> Vec<String> {
        self.watchers
            .get(target)
            .map(|w| w.iter().filter(|m| **m != self.me).cloned().collect())
            .unwrap_or_default()
    }

    /// Records one of this monitor's own checks; returns the report to send, if any.
    pub fn record_check(&mut self, target: &str, healthy: bool, now: u64) -> Option<Report> {
        let failures = self.failures.entry(target.to_string()).or_default();
        if healthy {
            *failures = 0;
            let withdrawn =
                self.suspicions.get_mut(target).and_then(|s| s.remove(&self.me)).is_some();
            return withdrawn.then(|| Report::Clear { target: target.to_string() });
        }
        *failures += 1;
        if *failures < self.settings.failures_to_suspect || self.cut_off() {
            return None;
        }
        self.suspicions.entry(target.to_string()).or_default().insert(self.me.clone(), now);
        Some(Report::Suspect { target: target.to_string() })
    }

    /// Records a peer's report, received at `now`. Reports from droplets that do not watch
    /// the target are ignored: only monitors get a vote.
    pub fn record_report(&mut self, from: &str, report: &Report, now: u64) {
        let target = match report {
            Report::Suspect { target } | Report::Clear { target } => target,
        };
        if !self.watchers.get(target).is_some_and(|w| w.iter().any(|m| m == from))
            || from == self.me
        {
            return;
        }
        let suspicions = self.suspicions.entry(target.clone()).or_default();
        match report {
            Report::Suspect { .. } => {
                suspicions.insert(from.to_string(), now);
            }
            Report::Clear { .. } => {
                suspicions.remove(from);
            }
        }
    }

    /// Records that `leader` leads the recovery of `target` until `until`.
    pub fn record_claim(&mut self, target: &str, leader: &str, until: u64) {
        self.leases.insert(target.to_string(), (leader.to_string(), until));
    }

    /// The lease lasting from `now`, for a claim this monitor makes.
    pub fn lease_until(&self, now: u64) -> u64 {
        now + self.settings.lease_ms
    }

    /// Whether this monitor's checks of every target it watches (two or more) are failing:
    /// then it is the one cut off, most likely.
    pub fn cut_off(&self) -> bool {
        let targets = self.targets();
        let threshold = self.settings.failures_to_suspect;
        targets.len() >= 2
            && targets.iter().all(|t| self.failures.get(t).is_some_and(|f| *f >= threshold))
    }

    /// What the monitors think of `target` at `now`.
    pub fn verdict(&self, target: &str, now: u64) -> Verdict {
        let Some(watchers) = self.watchers.get(target).filter(|w| !w.is_empty()) else {
            return Verdict::Unwatched;
        };
        let live: Vec<&String> = watchers.iter().filter(|m| !self.is_suspected(m, now)).collect();
        let by: Vec<String> = live
            .iter()
            .filter(|m| self.active_suspicion(target, m, now))
            .map(|m| m.to_string())
            .collect();
        if by.is_empty() {
            return Verdict::Healthy;
        }
        let needed = live.len() / 2 + 1;
        if by.len() >= needed {
            Verdict::Failed { leader: by[0].clone(), by }
        } else {
            Verdict::Suspected { by, needed }
        }
    }

    /// What this monitor should do at `now`: lead the recoveries that fall to it once their
    /// failure is confirmed, or hold back when too much of the fleet looks failed.
    pub fn decide(&mut self, now: u64) -> Vec<Decision> {
        let failed: Vec<(String, String)> = self
            .watchers
            .keys()
            .filter_map(|target| match self.verdict(target, now) {
                Verdict::Failed { leader, .. } => Some((target.clone(), leader)),
                _ => None,
            })
            .collect();
        self.failed_since.retain(|target, _| failed.iter().any(|(t, _)| t == target));
        for (target, _) in &failed {
            self.failed_since.entry(target.clone()).or_insert(now);
        }
        if failed.is_empty() {
            return Vec::new();
        }
        if failed.len() * 2 >= self.watchers.len() {
            return vec![Decision::HoldBack {
                targets: failed.into_iter().map(|(t, _)| t).collect(),
            }];
        }
        failed
            .into_iter()
            .filter(|(_, leader)| *leader == self.me)
            .filter(|(target, _)| {
                self.failed_since
                    .get(target)
                    .is_some_and(|since| now - since >= self.settings.confirm_ms)
            })
            .filter(|(target, _)| {
                self.leases
                    .get(target)
                    .is_none_or(|(holder, until)| *holder == self.me || *until <= now)
            })
            .map(|(target, _)| Decision::Recover { target })
            .collect()
    }

    /// Forgets everything about `target` once it has been replaced.
    pub fn forget(&mut self, target: &str) {
        self.failures.remove(target);
        self.suspicions.remove(target);
        self.leases.remove(target);
        self.failed_since.remove(target);
    }

    fn active_suspicion(&self, target: &str, monitor: &str, now: u64) -> bool {
        self.suspicions
            .get(target)
            .and_then(|s| s.get(monitor))
            .is_some_and(|at| now.saturating_sub(*at) <= self.settings.window_ms)
    }

    /// Whether any live-looking monitor suspects `droplet` (one level deep: a suspicion of a
    /// suspect's monitor does not cascade).
    fn is_suspected(&self, droplet: &str, now: u64) -> bool {
        self.suspicions.get(droplet).is_some_and(|s| {
            s.values().any(|at| now.saturating_sub(*at) <= self.settings.window_ms)
        })
    }
}

#[cfg(test)]
mod tests;
