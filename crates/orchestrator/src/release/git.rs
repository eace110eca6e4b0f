//! The project's repository, through the `git` command: a clone kept under
//! `.orchestrator/repos/`, fetched before each deploy; tags made and pushed there.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// A project's repository on this machine.
pub struct Repo {
    pub dir: PathBuf,
    pub url: String,
}

impl Repo {
    /// Clones `url` into `dir` the first time, fetches branches and tags every time.
    pub fn fetch(url: &str, dir: &Path) -> anyhow::Result<Repo> {
        refuse_credentials(url)?;
        if dir.join(".git").exists() || dir.join("HEAD").exists() {
            git(Some(dir), &["remote", "set-url", "origin", url])?;
        } else {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            git(Some(dir), &["init", "--quiet"])?;
            git(Some(dir), &["remote", "add", "origin", url])?;
        }
        git(
            Some(dir),
            &[
                "fetch",
                "--quiet",
                "--prune",
                "--tags",
                "--force",
                "origin",
                "+refs/heads/*:refs/remotes/origin/*",
            ],
        )
        .with_context(|| {
            format!(
                "cannot fetch {url}, the repository git_config names in deployment_config.json \
                 (base_url and url_pattern); check that it exists and can be reached"
            )
        })?;
        Ok(Repo { dir: dir.to_path_buf(), url: url.to_string() })
    }

    /// The commit at the tip of `branch` on the remote.
    pub fn branch_commit(&self, branch: &str) -> anyhow::Result<String> {
        git(
            Some(&self.dir),
            &["rev-parse", "--verify", &format!("refs/remotes/origin/{branch}^{{commit}}")],
        )
        .with_context(|| format!("{} has no branch {branch:?}", self.url))
    }

    /// The commit a tag points at.
    pub fn tag_commit(&self, tag: &str) -> anyhow::Result<String> {
        git(Some(&self.dir), &["rev-parse", "--verify", &format!("refs/tags/{tag}^{{commit}}")])
            .with_context(|| format!("{} has no tag {tag:?}", self.url))
    }

    pub fn tags(&self) -> anyhow::Result<Vec<String>> {
        Ok(git(Some(&self.dir), &["tag", "--list", "v*"])?.lines().map(str::to_string).collect())
    }

    /// Tags `commit` and pushes the tag to the remote.
    pub fn tag_and_push(&self, tag: &str, commit: &str) -> anyhow::Result<()> {
        git(Some(&self.dir), &["tag", tag, commit])?;
        git(Some(&self.dir), &["push", "--quiet", "origin", &format!("refs/tags/{tag}")])
            .with_context(|| {
                format!("the tag {tag} was made here but not pushed to {}", self.url)
            })?;
        Ok(())
    }

    /// Writes the files of `commit` into `into` (which must not exist yet).
    pub fn export(&self, commit: &str, into: &Path) -> anyhow::Result<()> {
        let output = Command::new("git")
            .args(["archive", "--format=tar", commit])
            .current_dir(&self.dir)
            .output()
            .context("cannot run git")?;
        if !output.status.success() {
            bail!(
                "git archive {commit} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        std::fs::create_dir_all(into)
            .with_context(|| format!("cannot create {}", into.display()))?;
        tar::Archive::new(output.stdout.as_slice())
            .unpack(into)
            .with_context(|| format!("cannot write the files into {}", into.display()))
    }
}

/// The commit checked out in a local tree, if it is a Git work tree.
pub fn head_of(tree: &Path) -> Option<String> {
    git(Some(tree), &["rev-parse", "--verify", "HEAD^{commit}"]).ok()
}

/// A URL with a password or token in it would show in every process listing.
fn refuse_credentials(url: &str) -> anyhow::Result<()> {
    if url.contains('?') || url.contains('#') {
        bail!(
            "the repository URL has a query or fragment, where tokens hide; use SSH keys or a Git \
             credential helper instead (the URL itself is not repeated here)"
        );
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        let user = authority.rsplit_once('@').map(|(user, _)| user);
        let web = matches!(scheme, "http" | "https");
        if user.is_some_and(|user| web || user.contains(':')) {
            bail!(
                "the repository URL holds a password or token; use SSH keys or a Git credential \
                 helper instead (the URL itself is not repeated here)"
            );
        }
    }
    Ok(())
}

fn git(dir: Option<&Path>, args: &[&str]) -> anyhow::Result<String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    // Never wait for a password prompt nobody will answer.
    let output = command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .context("cannot run git; is it installed?")?;
    if !output.status.success() {
        bail!("git {} failed: {}", args[0], String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_carry_credentials_are_refused_without_repeating_them() {
        for url in [
            "https://user:s3cret@example.com/p.git",
            "https://t0ken@example.com/p.git",
            "https://example.com/p.git?access_token=s3cret",
            "ssh://git:s3cret@example.com/p.git",
        ] {
            let refused = refuse_credentials(url).expect_err(url).to_string();
            assert!(!refused.contains("s3cret") && !refused.contains("t0ken"), "{refused}");
        }
        for url in [
            "https://example.com/p.git",
            "git@example.com:me/p.git",
            "/srv/git/p.git",
            "ssh://git@example.com/p.git",
        ] {
            assert!(refuse_credentials(url).is_ok(), "{url}");
        }
    }
}
