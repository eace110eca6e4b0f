//! `--scale PROJECT N`: set a project's server count in the CSV, then orchestrate.
//!
//! The CSV is rewritten only once the plan is shown and, if it destroys anything, confirmed;
//! only the project's `Servers` field changes, every other byte of the file stays.

use anyhow::bail;
use fleet::projects::{self, MAX_SERVERS};

use super::Context;
use super::orchestrate::{CsvRewrite, converge};

pub async fn run(context: &Context, project: &str, servers: &str) -> anyhow::Result<()> {
    let servers: u32 = match servers.parse() {
        Ok(n) if (1..=MAX_SERVERS).contains(&n) => n,
        _ => bail!(
            "--scale {project} {servers}: the server count must be a whole number from 1 to {MAX_SERVERS}"
        ),
    };
    let path = context.workspace.projects_csv();
    let bytes = super::config::read_csv(&path)?;
    let Some(text) = projects::with_servers(&path, &bytes, project, servers)? else {
        let known: Vec<String> =
            projects::parse(&path, &bytes)?.into_iter().map(|row| row.name).collect();
        bail!("project {project:?} is not in {} (it has: {})", path.display(), known.join(", "));
    };
    let config = context.load_config_with(&path, text.as_bytes())?;
    converge(context, &config, false, Some(CsvRewrite { path, text }), "--scale").await
}
