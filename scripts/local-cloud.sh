#!/usr/bin/env bash
# Builds the orchestrator and brings up the example fleet on the local cloud in ./demo:
# setup, init, orchestrate, then deploys the example project (examples/hostomatic) from a Git
# repository made here to UAT and promotes it to production, then status. Safe to run again:
# existing files are kept, an unchanged fleet plans nothing, and a project already deployed is
# left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

# The master droplet's load balancer is a real nginx; the example project's cache is Redis.
scripts/install-packages.sh nginx redis-server
cargo build --release --locked --bin orchestrator
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
bin="$target/release/orchestrator"

mkdir -p demo
cd demo
"$bin" --setup
"$bin" --init
"$bin" --orchestrate

# The example project's code, in a repository on this machine standing in for its remote.
if [ ! -d remote/hostomatic.git ]; then
  git init --quiet --bare remote/hostomatic.git
  git -C remote/hostomatic.git symbolic-ref HEAD refs/heads/main
  work="$(mktemp -d)"
  cp -r ../examples/hostomatic/. "$work"
  git -C "$work" init --quiet
  git -C "$work" add -A
  git -C "$work" -c user.name=demo -c user.email=demo@localhost commit --quiet -m "hostomatic"
  git -C "$work" push --quiet "$PWD/remote/hostomatic.git" HEAD:refs/heads/main
  rm -rf "$work"
fi
sed -i "s#https://github.com/yourusername#$PWD/remote#" config/deployment_config.json
# Made-up values for the example's secrets (a real fleet keeps real ones in .env).
touch .env
chmod 600 .env
for name in DB_PASSWORD STRIPE_KEY OPENAI_API_KEY STRIPE_PUBLISHABLE_KEY SENDGRID_API_KEY REDIS_PASSWORD; do
  grep -q "^$name=." .env || echo "$name=demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" >> .env
done
# With the secrets in place, master starts the example's Redis.
"$bin" --orchestrate
if "$bin" --releases hostomatic prod --json | grep -q '"current": null'; then
  "$bin" --deploy-uat hostomatic
  "$bin" --deploy-prod hostomatic
fi
"$bin" --status
echo
echo "The fleet runs in $(pwd). Try: $bin --status --config-dir $(pwd)/config"
