//! AWS's side of the transport: the one SDK configuration of the drivers and the S3 state
//! store. The SDK signs, times out and retries; this says how patiently, once for both.

/// Attempts of one call of the driver in all.
pub const DRIVER_ATTEMPTS: u32 = 8;
/// Attempts of one call of the state store in all: on every cloud a store gives up sooner
/// than a driver, as a run that cannot read its state has written nothing yet.
pub const STORE_ATTEMPTS: u32 = 5;
/// The retry budget of one run, per service and region. The SDK's default bucket (500) is
/// spent after some 35 retried server errors, and then it stops retrying at all: one apply
/// of a few hundred writes on a bad day would fail. This one still stops a run against an
/// outage after a few hundred calls, each having used its attempts.
const RETRY_BUDGET: usize = 50_000;

/// The SDK configuration from the environment (credentials chain, region, endpoint, HTTP
/// client), with idplan's retries: `attempts` of each call in all.
pub async fn config(attempts: u32) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        // Throttling and transient errors: the SDK retries with exponential backoff and
        // jitter (up to 20 s a wait); a driver's eight attempts ride out a bad day (one call
        // in five failing leaves one call in 400,000 failing) without hiding an outage for long.
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts))
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
