//! AWS's side of the transport: the one SDK configuration of the drivers and the S3 state
//! store. The SDK signs, times out and retries; this says how patiently, once for both.

/// Attempts of one AWS call in all.
const ATTEMPTS: u32 = 8;
/// The retry budget of one run, per service and region. The SDK's default bucket (500) is
/// spent after some 35 retried server errors, and then it stops retrying at all: one apply
/// of a few hundred writes on a bad day would fail. This one still stops a run against an
/// outage after a few hundred calls, each having used its attempts.
const RETRY_BUDGET: usize = 50_000;

/// The SDK configuration from the environment (credentials chain, region, endpoint, HTTP
/// client), with idplan's retries.
pub async fn config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        // Throttling and transient errors: the SDK retries with exponential backoff and
        // jitter (up to 20 s a wait); eight attempts ride out a bad day (one call in five
        // failing leaves one call in 400,000 failing) without hiding an outage for long.
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(ATTEMPTS))
        .load()
        .await
}

/// A retry partition of its own for one client (`name`), with [`RETRY_BUDGET`].
pub fn retry_partition(name: String) -> aws_sdk_iam::config::retry::RetryPartition {
    use aws_sdk_iam::config::retry::{RetryPartition, TokenBucket};
    RetryPartition::custom(name)
        .token_bucket(TokenBucket::builder().capacity(RETRY_BUDGET).build())
        .build()
}
