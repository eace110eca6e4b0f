//! A simulator of the DigitalOcean API v2, served on loopback, for testing DigitalOcean
//! clients where the real API cannot be reached.
//!
//! ```no_run
//! use do_simulator::{SimConfig, Simulator};
//!
//! let sim = Simulator::start(SimConfig::new("test-token"));
//! // Point the client under test at `sim.base_url()` (it calls `{base_url}/v2/...`)
//! // with the token `test-token`, let it work, then inspect what it did:
//! for droplet in sim.droplets() {
//!     println!("{} {} {:?} {}", droplet.name, droplet.size, droplet.status, droplet.public_ipv4);
//! }
//! assert!(sim.requests().iter().all(|r| r.status < 500));
//! // Dropping `sim` stops the server.
//! ```
//!
//! # What it serves
//!
//! Shapes, status codes and error bodies follow the public API documentation:
//!
//! | Endpoint | Answers |
//! | --- | --- |
//! | `GET /v2/account` | 200 `account` |
//! | `GET /v2/regions`, `GET /v2/sizes` | 200, paginated |
//! | `GET`/`POST /v2/account/keys` | 200 paginated / 201; 422 for a duplicate fingerprint |
//! | `GET`/`PUT`/`DELETE /v2/account/keys/{id or fingerprint}` | 200 / 200 / 204 |
//! | `POST /v2/droplets` | 202 `droplet` + `links.actions` (single create) |
//! | `GET /v2/droplets?tag_name=&name=&page=&per_page=` | 200, paginated |
//! | `GET`/`DELETE /v2/droplets/{id}`, `DELETE /v2/droplets?tag_name=` | 200 / 204 / 204 |
//! | `POST`/`GET /v2/droplets/{id}/actions`, `GET /v2/actions/{id}` | 201 / 200 / 200 |
//! | `GET /v2/droplets/{id}/snapshots`, `GET /v2/snapshots?resource_type=droplet` | 200 |
//! | `GET`/`DELETE /v2/snapshots/{id}` | 200 / 204 |
//! | `GET`/`POST /v2/tags`, `GET`/`DELETE /v2/tags/{name}` | 200 / 201 / 200 / 204 |
//! | `POST`/`DELETE /v2/tags/{name}/resources` | 204 |
//! | `GET`/`POST /v2/firewalls`, `GET`/`PUT`/`DELETE /v2/firewalls/{id}` | 200/202/200/200/204 |
//!
//! Every request needs `Authorization: Bearer <token>` (else 401 `unauthorized`, "Unable to
//! authenticate you."); every answer carries `ratelimit-limit`, `ratelimit-remaining` and
//! `ratelimit-reset`; every error body is `{"id", "message", "request_id"}`. Lists take
//! `page` and `per_page` (default 20, at most 200) and carry `links.pages` and
//! `meta.total`. Sliding-window rate limits (5,000/hour, 250/minute and 10 key listings a
//! minute by default; see [`RateLimitConfig`]) answer 429 `too_many_requests`.
//!
//! A new Droplet is `new`, without networks, for [`SimConfig::create_latency`], then
//! `active`. Actions (`power_off`, `shutdown`, `power_on`, `power_cycle`, `reboot`,
//! `resize`, `snapshot`, `rename`, `enable_ipv6`, `enable_backups`, `disable_backups`) are
//! `in-progress` for [`SimConfig::action_latency`], then `completed`, and only then take
//! effect. A Droplet runs one event at a time (422 "Droplet already has a pending event."),
//! and `resize` needs it off (422 "Droplet is currently on. Please power it off to run this
//! event."). Creating a Droplet with `image` set to a snapshot id restores that snapshot.
//!
//! # Deliberate deviations
//!
//! * **Addresses are loopback.** Public IPv4 addresses come from 127.210.0.0/16 and private
//!   ones from 127.211.0.0/16, because tests on this machine may only send traffic to
//!   loopback. No IPv6 address is handed out (`networks.v6` stays empty) for the same
//!   reason.
//! * One Droplet per create request (`names` is refused with 422).
//! * Firewalls apply at once (`status` is always `succeeded`); referenced Droplets, load
//!   balancers and clusters are not checked for existence.
//! * Only Droplet snapshots and Droplet tagging are modelled.
//!
//! # Admin endpoints
//!
//! The [`SimHandle`] controls are also served over HTTP under `/_sim`, without a token,
//! unlogged and not rate limited. Bodies are JSON objects; changes answer 204. Where a fault
//! takes a matcher, its fields `"method"` and `"path_prefix"` (both optional) sit in the
//! same object as the others, as in `{"method": "POST", "path_prefix": "/v2/droplets",
//! "count": 5}`; without them the fault matches every request.
//!
//! * `GET /_sim/state`: droplets, snapshots, keys, firewalls and tags, as JSON.
//! * `GET /_sim/requests`, `DELETE /_sim/requests`: read or clear the request log.
//! * `POST /_sim/reset`: drop every fault, restore the configured latencies and limits and
//!   forget counted requests; `POST /_sim/reset?all=true` also empties the account and log.
//! * `PUT /_sim/timing` `{"create_latency_ms"?, "action_latency_ms"?}`: set the latencies.
//! * `PUT /_sim/rate_limit` `{"per_hour", "per_minute", "key_list_per_minute"?}`.
//! * `POST /_sim/faults/latency` `{"method"?, "path_prefix"?, "delay_ms"}`: delay matching requests.
//! * `POST /_sim/faults/rate_limited` `{"method"?, "path_prefix"?, "count"}`: the next N matching answer 429.
//! * `POST /_sim/faults/server_error` `{"method"?, "path_prefix"?, "count", "status"?}`: the next N matching
//!   answer that 5xx (default 500) without being carried out.
//! * `POST /_sim/faults/create_error` `{"count"}`: the next N successful Droplet creates
//!   answer 500 *after* creating the Droplet.
//! * `POST /_sim/faults/action_error` `{"type"}`: the next action of that type ends
//!   `errored`, with no effect.

mod account;
mod actions;
mod admin;
mod catalog;
mod config;
mod droplets;
mod errors;
mod faults;
mod firewalls;
mod gate;
mod ids;
mod inspect;
mod keys;
mod pagination;
mod ratelimit;
mod routes;
mod server;
mod snapshots;
mod state;
mod tags;

pub use config::{RateLimitConfig, SimConfig};
pub use faults::RequestMatcher;
pub use firewalls::{InboundRule, OutboundRule, RuleTargets};
pub use inspect::{DropletInfo, DropletStatus, FirewallInfo, KeyInfo, LoggedRequest, SnapshotInfo};
pub use server::{SimHandle, Simulator};
