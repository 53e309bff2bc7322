//! idplan's end-to-end tests, in one binary so that the cloud SDKs are linked once: a module
//! per suite, the helpers they share in `support/`, the peers they start in `tests/support/`.
//!
//! `cargo test --test e2e` runs them all; `cargo test --test e2e azure::` one suite. The
//! real-cloud acceptance suites are ignored unless asked for:
//! `IDPLAN_ACC=azure cargo test --test e2e azure_acceptance -- --ignored` (see each file).

mod support;

mod adopt;
mod aws_irsa;
mod aws_mode_switch;
mod aws_pod_identity;
mod aws_pod_identity_trust;
mod azure;
mod azure_acceptance;
mod azure_replace;
mod chart;
mod ci_recipes;
mod cli;
mod fake_readers;
mod gcp;
mod gcp_acceptance;
mod gcp_fake_shapes;
mod init;
mod kube;
mod kube_watch;
mod manual_setup;
mod ministack_paging;
mod persist;
mod plan_markdown;
mod release;
mod remote_state;
mod scenarios;
mod spec_errors;
mod spec_fuzz;
mod watch;
