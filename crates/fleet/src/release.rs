//! Releases: the versions a project-environment has run, and how UAT versions are numbered.
//!
//! A UAT release from Git is tagged `vMAJOR.MINOR.PATCH-uat-YYYYMMDD-HHMM`, its patch one above
//! the repository's newest `v` tag. Production promotes a UAT release as it is: the same
//! version, the same artifacts. Records never hold a secret.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// The version a tag names: `v1.2.3`, or `v1.2.3-` followed by anything.
    pub fn of_tag(tag: &str) -> Option<Version> {
        let rest = tag.strip_prefix('v')?;
        let core = rest.split_once('-').map_or(rest, |(core, _)| core);
        let mut parts = core.split('.');
        let number = |part: Option<&str>| -> Option<u64> {
            let part = part?;
            let plain = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            plain.then(|| part.parse().ok()).flatten()
        };
        let version = Version {
            major: number(parts.next())?,
            minor: number(parts.next())?,
            patch: number(parts.next())?,
        };
        parts.next().is_none().then_some(version)
    }

    /// The next UAT version after the newest of `tags` (from `v0.0.0` when there is none).
    pub fn next_after<'a>(tags: impl IntoIterator<Item = &'a str>) -> Version {
        let newest = tags.into_iter().filter_map(Version::of_tag).max();
        let base = newest.unwrap_or(Version { major: 0, minor: 0, patch: 0 });
        Version { patch: base.patch + 1, ..base }
    }

    /// The UAT tag of this version made at `stamp` (`YYYYMMDD-HHMM`, UTC).
    pub fn uat_tag(self, stamp: &str) -> String {
        format!("{self}-uat-{stamp}")
    }
}

/// One artifact: what a service runs, by content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// SHA-256 of the artifact, hexadecimal.
    pub digest: String,
    pub bytes: u64,
    /// The directory of the project's tree it was packed from.
    #[serde(default)]
    pub context: String,
    /// On the container platforms, the image built from it (`sha256:…`): what runs, and what
    /// a promotion or rollback runs again without building.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// How a release ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It serves (or served, until a newer release replaced it).
    Deployed,
    /// It never served: why, and what kept serving.
    Failed { reason: String },
}

/// One release of a project-environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The Git tag for a release from Git; `local-…` for one from a local tree.
    pub version: String,
    pub project: String,
    pub environment: String,
    /// The commit built (for a local tree, its `HEAD`, if it is a Git work tree).
    pub commit: Option<String>,
    /// The branch built from, for a UAT release from Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Whether the tag was pushed to the remote.
    #[serde(default)]
    pub tag_pushed: bool,
    /// For a local tree: its path and a hash of its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_tree: Option<LocalTree>,
    /// The artifact of each service.
    pub artifacts: BTreeMap<String, Artifact>,
    /// How each service was started and checked, so a promotion or rollback runs it the same
    /// way whatever the configuration says by then.
    #[serde(default)]
    pub services: BTreeMap<String, RecordedService>,
    /// A hash of the service definitions the release ran with (never of secret values).
    pub config_hash: String,
    pub platform: String,
    /// The droplets it went to.
    pub droplets: Vec<String>,
    /// RFC 3339.
    pub at: String,
    pub outcome: Outcome,
    /// For a production release: the UAT release it promotes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<String>,
    /// For a rollback: the version it went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<String>,
    /// The serving release run again where `--orchestrate` placed the project anew.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placed_anew: bool,
}

/// A service as a release ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedService {
    /// The start script, rendered from the process template.
    pub command: String,
    pub health_check: crate::deploy_config::HealthCheck,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalTree {
    pub path: String,
    pub content_hash: String,
}

/// Every release of one project-environment, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Releases {
    pub releases: Vec<Release>,
}

impl Releases {
    /// The release serving now: the newest that deployed.
    pub fn current(&self) -> Option<&Release> {
        self.releases.iter().rev().find(|r| r.outcome == Outcome::Deployed)
    }

    /// The newest deployed release of another version than the current one.
    pub fn previous(&self) -> Option<&Release> {
        let current = self.current()?;
        self.releases
            .iter()
            .rev()
            .filter(|r| r.outcome == Outcome::Deployed)
            .find(|r| r.version != current.version)
    }

    /// The newest deployed release of `version`.
    pub fn find(&self, version: &str) -> Option<&Release> {
        self.releases.iter().rev().find(|r| r.outcome == Outcome::Deployed && r.version == version)
    }

    /// Artifact digests to keep: every artifact of the newest `keep` versions that served
    /// (the current one first among them).
    pub fn kept_digests(&self, keep: usize) -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for artifact in self.kept_artifacts(keep) {
            if !kept.contains(&artifact.digest) {
                kept.push(artifact.digest.clone());
            }
        }
        kept
    }

    /// The images of the same releases as [`Releases::kept_digests`].
    pub fn kept_images(&self, keep: usize) -> Vec<String> {
        let mut kept: Vec<String> = Vec::new();
        for image in self.kept_artifacts(keep).into_iter().filter_map(|a| a.image.as_ref()) {
            if !kept.contains(image) {
                kept.push(image.clone());
            }
        }
        kept
    }

    /// The artifacts of the newest `keep` versions that served.
    fn kept_artifacts(&self, keep: usize) -> Vec<&Artifact> {
        let mut versions: Vec<&str> = Vec::new();
        let mut kept = Vec::new();
        for release in self.releases.iter().rev().filter(|r| r.outcome == Outcome::Deployed) {
            if !versions.contains(&release.version.as_str()) {
                if versions.len() == keep {
                    break;
                }
                versions.push(&release.version);
            }
            kept.extend(release.artifacts.values());
        }
        kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_give_versions_and_the_next_patch() {
        assert_eq!(Version::of_tag("v1.2.3"), Some(Version { major: 1, minor: 2, patch: 3 }));
        assert_eq!(
            Version::of_tag("v1.2.30-uat-20241215-1430"),
            Some(Version { major: 1, minor: 2, patch: 30 })
        );
        for bad in ["1.2.3", "v1.2", "v1.2.3.4", "v1.x.3", "v-1.2.3", "v1.2.+3"] {
            assert_eq!(Version::of_tag(bad), None, "{bad}");
        }
        let tags = ["v1.2.3", "v1.2.10-uat-20241215-1430", "v1.1.99", "release-7", "v0.9.0"];
        assert_eq!(Version::next_after(tags).to_string(), "v1.2.11");
        assert_eq!(Version::next_after([]).uat_tag("20261203-1900"), "v0.0.1-uat-20261203-1900");
    }

    fn release(version: &str, outcome: Outcome, digest: &str) -> Release {
        Release {
            version: version.into(),
            project: "p".into(),
            environment: "uat".into(),
            commit: None,
            branch: None,
            tag_pushed: false,
            local_tree: None,
            services: BTreeMap::new(),
            artifacts: BTreeMap::from([(
                "backend".into(),
                Artifact { digest: digest.into(), bytes: 1, context: ".".into(), image: None },
            )]),
            config_hash: String::new(),
            platform: "process".into(),
            droplets: Vec::new(),
            at: String::new(),
            outcome,
            promoted_from: None,
            rollback_to: None,
            placed_anew: false,
        }
    }

    #[test]
    fn current_and_previous_skip_failed_releases() {
        let failed = Outcome::Failed { reason: "unhealthy".into() };
        let releases = Releases {
            releases: vec![
                release("v1", Outcome::Deployed, "a"),
                release("v2", Outcome::Deployed, "b"),
                release("v3", failed, "c"),
            ],
        };
        assert_eq!(releases.current().map(|r| r.version.as_str()), Some("v2"));
        assert_eq!(releases.previous().map(|r| r.version.as_str()), Some("v1"));
        assert_eq!(releases.find("v3"), None);
        assert_eq!(releases.kept_digests(5), vec!["b", "a"]);
        assert_eq!(releases.kept_digests(1), vec!["b"]);
        // Versions are counted, not artifacts: a release of three services keeps all three.
        let mut three = release("v4", Outcome::Deployed, "d");
        for (service, digest) in [("frontend", "e"), ("worker", "f")] {
            three.artifacts.insert(
                service.into(),
                Artifact { digest: digest.into(), bytes: 1, context: ".".into(), image: None },
            );
        }
        let releases = Releases { releases: [releases.releases, vec![three]].concat() };
        assert_eq!(releases.kept_digests(2), vec!["d", "e", "f", "b"]);
    }
}
