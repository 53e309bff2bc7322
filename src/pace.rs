//! Pacing of cloud calls: at most a set number per second across the process, so that a
//! long-running `watch` does not eat the API rate limit of an account other tools share. Off
//! unless [`limit`] is called; every attempt (retries too) waits its turn.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

struct Pace {
    /// The time between two calls.
    interval: Duration,
    /// When the next call may start.
    next: Mutex<Instant>,
}

static PACE: OnceLock<Pace> = OnceLock::new();

/// Paces every cloud call from now on to at most `per_second`; the first setting holds.
pub fn limit(per_second: u32) {
    let _ = PACE.set(Pace {
        interval: Duration::from_secs(1) / per_second.max(1),
        next: Mutex::new(Instant::now()),
    });
}

/// Whether calls are paced.
pub fn limited() -> bool {
    PACE.get().is_some()
}

/// Waits for this call's turn; at once when calls are not paced.
pub async fn turn() {
    let Some(pace) = PACE.get() else {
        return;
    };
    let at = {
        let mut next = pace.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = (*next).max(Instant::now());
        *next = at + pace.interval;
        at
    };
    tokio::time::sleep_until(at).await;
}

/// The AWS SDK's default HTTPS client, each attempt waiting its [`turn`].
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
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
            turn().await;
            inner.call(request).await
        })
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_interval() {
        super::limit(20);
        let start = tokio::time::Instant::now();
        for _ in 0..21 {
            super::turn().await;
        }
        // The first call goes at once, the next 20 one every 50 ms.
        assert_eq!(start.elapsed(), std::time::Duration::from_secs(1));
    }
}
