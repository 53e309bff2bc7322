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
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        // Throttling and transient errors: the SDK retries with exponential backoff and
        // jitter (up to 20 s a wait); a driver's eight attempts ride out a bad day (one call
        // in five failing leaves one call in 400,000 failing) without hiding an outage for long.
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts));
    match crate::pace::limited() {
        true => config.http_client(paced_http_client()),
        false => config,
    }
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

/// The AWS SDK's default HTTPS client, each attempt waiting its turn ([`crate::pace`]).
fn paced_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    // The SDK's own default (rustls with aws-lc, the proxy from the environment).
    let inner = Builder::new().build_with_connector_fn(|settings, components| {
        let mut builder =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    });
    aws_smithy_runtime_api::client::http::SharedHttpClient::new(Paced(inner))
}

#[derive(Debug)]
struct Paced(aws_smithy_runtime_api::client::http::SharedHttpClient);

impl aws_smithy_runtime_api::client::http::HttpClient for Paced {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        let inner = self.0.http_connector(settings, components);
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(PacedConnector(inner))
    }
}

#[derive(Debug)]
struct PacedConnector(aws_smithy_runtime_api::client::http::SharedHttpConnector);

impl aws_smithy_runtime_api::client::http::HttpConnector for PacedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        let inner = self.0.clone();
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(async move {
            crate::pace::turn().await;
            inner.call(request).await
        })
    }
}
