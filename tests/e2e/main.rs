//! egate end to end against a real control plane: kube-apiserver and etcd
//! from `scripts/control-plane.sh`, a real `kubectl debug`, and the real
//! `egate serve` registered with the webhook configurations of
//! `deploy/webhooks.yaml`.
//!
//! Every test is `#[ignore]`d in a plain `cargo test`: it needs the control
//! plane. `make e2e` starts one, runs them one at a time and stops it:
//!
//! ```sh
//! make e2e                                               # all of them
//! scripts/control-plane.sh up                            # or by hand:
//! cargo test --test e2e -- --ignored --test-threads=1 profiles
//! scripts/control-plane.sh down
//! ```
//!
//! Scenarios run one at a time (the webhook configurations are
//! cluster-wide). Each has a namespace of its own and an `egate serve` of
//! its own, both removed when it ends, pass or fail. No assertion is timed:
//! what takes time is polled under a generous bound.

mod admission_policies;
#[path = "../support/child.rs"]
mod child;
mod cluster;
mod cluster_policies;
mod debug;
mod egate;
mod faults;
mod grants;
mod params;
mod pod_security;
mod pods;
mod records;
mod who_can_debug;
