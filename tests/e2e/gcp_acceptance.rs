//! Acceptance against real GCP, run only when asked:
//!
//! ```text
//! IDPLAN_ACC=gcp IDPLAN_ACC_GCP_PROJECT=my-project IDPLAN_ACC_GCP_LOCATION=us-central1 \
//! IDPLAN_ACC_GCP_CLUSTER=my-gke IDPLAN_ACC_GCP_BUCKET=my-uniform-bucket \
//!   cargo test --test e2e gcp_acceptance -- --ignored
//! ```
//!
//! Credentials come from gcp_auth's chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud, metadata
//! server) or IDPLAN_GCP_ACCESS_TOKEN. The tests are `#[ignore]`d, so a normal run reports them
//! as ignored, never as passed; run with `--ignored` but without `IDPLAN_ACC=gcp` they fail.
//! They add members for made-up namespaces to the bucket's policy (and, in service-account
//! mode, create two service accounts) and take everything back at the end.

use crate::support::{Output, TestDir, control_planes};

struct Acc {
    project: String,
    location: String,
    cluster: String,
    bucket: String,
}

fn acc() -> Acc {
    assert_eq!(
        std::env::var("IDPLAN_ACC").as_deref(),
        Ok("gcp"),
        "real-GCP acceptance tests run only with IDPLAN_ACC=gcp (see the file's header)"
    );
    let var =
        |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("IDPLAN_ACC=gcp needs {name}"));
    Acc {
        project: var("IDPLAN_ACC_GCP_PROJECT"),
        location: var("IDPLAN_ACC_GCP_LOCATION"),
        cluster: var("IDPLAN_ACC_GCP_CLUSTER"),
        bucket: var("IDPLAN_ACC_GCP_BUCKET"),
    }
}

fn spec(acc: &Acc, mode: &str, planes: &[&str]) -> String {
    let planes = control_planes(planes);
    format!(
        "version: 1\nspaces:\n  - name: acc\n{planes}    gcp:\n      project: {}\n      \
         cluster: {{ location: {}, name: {} }}\n      mode: {mode}\n    components:\n      \
         backup: {{ bucket: {} }}\n",
        acc.project, acc.location, acc.cluster, acc.bucket
    )
}

/// idplan with the machine's credentials, against Google itself (not a fake's endpoint).
fn run(dir: &TestDir, args: &[&str]) -> Output {
    dir.idplan_real(args, &["IDPLAN_GCP_ENDPOINT"])
}

fn round_trip(mode: &str) {
    let acc = acc();
    let dir = TestDir::new();
    let planes = ["mxp-idplan-acc-0-system", "mxp-idplan-acc-1-system"];
    dir.write("idplan.yaml", &spec(&acc, mode, &planes));
    run(&dir, &["apply", "--auto-approve"]).assert_code(0);
    run(&dir, &["plan", "--detailed-exitcode"]).assert_code(0);
    run(&dir, &["drift"]).assert_code(0);
    // Principal mode without control planes wants nothing: everything of idplan's goes.
    dir.write("idplan.yaml", &spec(&acc, "principal", &[]));
    run(&dir, &["apply", "--auto-approve"]).assert_code(0);
    let list = run(&dir, &["state", "list"]);
    list.assert_code(0);
    assert!(!list.stdout.contains("google_"), "{}", list.stdout);
}

#[test]
#[ignore = "real GCP: IDPLAN_ACC=gcp cargo test --test e2e gcp_acceptance -- --ignored"]
fn principal_mode_on_real_gcp() {
    round_trip("principal");
}

#[test]
#[ignore = "real GCP: IDPLAN_ACC=gcp cargo test --test e2e gcp_acceptance -- --ignored"]
fn service_account_mode_on_real_gcp() {
    round_trip("service-account");
}
