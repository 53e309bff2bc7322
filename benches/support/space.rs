//! The space the pod identity benches plan: one pod-identity space on cluster `bench`.

/// The host namespace of control plane `i`.
pub fn namespace(i: usize) -> String {
    format!("mxp-{i:08x}-0000-4000-8000-000000000000-system")
}

/// The spec of one pod-identity space with `control_planes` control planes and the three
/// components.
pub fn spec(control_planes: usize) -> String {
    let planes: String = (0..control_planes)
        .map(|i| format!("      - {}\n", namespace(i)))
        .collect();
    format!(
        "version: 1\nspaces:\n  - name: bench\n    controlPlanes:\n{planes}    aws:\n      region: us-east-1\n      \
         cluster: bench\n      mode: pod-identity\n    components:\n      backup: {{ bucket: bench-backup }}\n      \
         billing: {{ bucket: bench-billing }}\n      sharedSecrets: {{ secrets: [\"arn:aws:secretsmanager:us-east-1:000000000000:secret:s\"] }}\n"
    )
}

/// Bucket `name` in the ministack's S3, for the state.
pub async fn create_bucket(ms: &crate::common::Ministack, name: &str) {
    let config = aws_sdk_s3::config::Builder::from(&ms.sdk_config().await)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("creating the state bucket");
}

/// The sizes named on the command line (`-- 10 100`), else `default`.
pub fn sizes(default: &[usize]) -> Vec<usize> {
    let given: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    match given.is_empty() {
        true => default.to_vec(),
        false => given,
    }
}
