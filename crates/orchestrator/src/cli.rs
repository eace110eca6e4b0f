//! The command line, in the product description's shape: one flag per command.

use std::path::PathBuf;

use clap::{ArgAction, ArgGroup, Parser, Subcommand};

/// Describe a fleet of servers in a CSV; the orchestrator creates them, keeps its state, and
/// runs an agent on every one.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, max_term_width = 100)]
#[command(group(
    ArgGroup::new("command")
        .args(["setup", "init", "orchestrate", "status", "scale", "update_ip", "cleanup", "services", "recover", "monitor", "deploy_uat", "deploy_prod", "rollback", "releases", "reproduce", "restart_infra"])
        .required(true)
))]
#[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// Write example configuration (projects.csv, deployment_config.json, email and SMS
    /// settings, templates/, .env.example); existing files are kept.
    #[arg(long)]
    pub setup: bool,

    /// Validate every configuration file, make the SSH key pair and the fleet key, record
    /// ADMIN_IP, and check the cloud can be reached.
    #[arg(long)]
    pub init: bool,

    /// Make the cloud match projects.csv: create, start, resize and destroy droplets, place
    /// services, and record the result in infrastructure.json.
    #[arg(long)]
    pub orchestrate: bool,

    /// With --orchestrate: destroy and recreate every droplet.
    #[arg(long, requires = "orchestrate")]
    pub force: bool,

    /// Show droplets with their live health, services with ports and placement, and problems.
    #[arg(long)]
    pub status: bool,

    /// Set a project's server count in projects.csv and orchestrate.
    #[arg(long, num_args = 2, value_names = ["PROJECT", "N"])]
    pub scale: Option<Vec<String>>,

    /// Show where a project-environment's services are: ports, droplets, direct URLs, the
    /// load-balancer route and their health right now.
    #[arg(long, num_args = 2, value_names = ["PROJECT", "ENVIRONMENT"])]
    pub services: Option<Vec<String>>,

    /// Show what droplet NAME's agent sees of the peers it watches (every agent monitors its
    /// peers all the time); refreshes every second on a terminal.
    #[arg(long, value_name = "NAME")]
    pub monitor: Option<String>,

    /// Replace a droplet now: take it out of the load balancer, remove it, restore it from its
    /// newest snapshot, record it. The fleet's monitors do the same on their own.
    #[arg(long, value_name = "NAME")]
    pub recover: Option<String>,

    /// Remove snapshots beyond the retention setting, droplets of this fleet the CSV does not
    /// ask for, and this fleet's old SSH keys; with --dry-run, only list them with the reason.
    #[arg(long)]
    pub cleanup: bool,

    /// Build PROJECT from its Git branch (or, with --local, a local tree), deploy it to UAT
    /// droplet by droplet without downtime, tag the release and push the tag.
    #[arg(long, value_name = "PROJECT")]
    pub deploy_uat: Option<String>,

    /// With --deploy-uat: the branch to build (default main).
    #[arg(long, value_name = "BRANCH", requires = "deploy_uat", conflicts_with = "local")]
    pub branch: Option<String>,

    /// With --deploy-uat: build from the tree at --project-path instead of Git; no tag is made.
    #[arg(long, requires_all = ["deploy_uat", "project_path"])]
    pub local: bool,

    /// With --local: the project's tree.
    #[arg(long, value_name = "PATH", requires = "local")]
    pub project_path: Option<PathBuf>,

    /// Promote PROJECT's latest UAT release (or --tag) to production: the same artifacts,
    /// never rebuilt.
    #[arg(long, value_name = "PROJECT")]
    pub deploy_prod: Option<String>,

    /// With --deploy-prod: the UAT release to promote.
    #[arg(long, value_name = "TAG", requires = "deploy_prod")]
    pub tag: Option<String>,

    /// Go back to the release before the current one of PROJECT in ENVIRONMENT, or to VERSION.
    #[arg(long, num_args = 2..=3, value_names = ["PROJECT", "ENVIRONMENT", "VERSION"])]
    pub rollback: Option<Vec<String>>,

    /// List the releases of PROJECT in ENVIRONMENT, newest first.
    #[arg(long, num_args = 2, value_names = ["PROJECT", "ENVIRONMENT"])]
    pub releases: Option<Vec<String>>,

    /// Write the code of release TAG into --reproduce-dir and check it builds the very
    /// artifacts the release ran.
    #[arg(long, value_name = "TAG", requires = "reproduce_dir")]
    pub reproduce: Option<String>,

    /// With --reproduce: where to write it (must not exist, or be empty).
    #[arg(long, value_name = "DIR", requires = "reproduce")]
    pub reproduce_dir: Option<PathBuf>,

    /// Restart infrastructure service NAME (a database, a cache …) of PROJECT in ENVIRONMENT
    /// on master; its data stays.
    #[arg(long, num_args = 3, value_names = ["NAME", "PROJECT", "ENVIRONMENT"])]
    pub restart_infra: Option<Vec<String>>,

    /// Record the administrator's address (an IP or CIDR block) and rewrite the firewall.
    #[arg(long, value_name = "IP")]
    pub update_ip: Option<String>,

    /// The configuration directory.
    #[arg(long, value_name = "DIR", default_value = "config", global = true)]
    pub config_dir: PathBuf,

    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// Show what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Apply a plan that destroys or resizes droplets without asking.
    #[arg(long)]
    pub yes: bool,

    /// How long to wait for another orchestrator working on the same fleet.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lock_wait: u64,

    /// More log output (-v: info, -vv: debug).
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub role: Option<RoleCommand>,
}

/// The binary's other role.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Run a droplet's agent (the provider starts it; you rarely run it by hand).
    Agent {
        /// The droplet's directory, holding droplet.json.
        #[arg(long, value_name = "DIR")]
        droplet_dir: PathBuf,
    },
}
