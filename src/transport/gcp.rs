//! Google's side of the transport: tokens and how Google API failures read.

use std::sync::Arc;

use futures::future::BoxFuture;
use reqwest::StatusCode;
use tokio::sync::OnceCell;

use super::{ErrorBody, FixedToken, TokenSource};

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// gcp_auth's chain (service account key, ADC, metadata server, gcloud), set up on first use.
struct GoogleTokens(OnceCell<Arc<dyn gcp_auth::TokenProvider>>);

/// Google tokens: `IDPLAN_GCP_ACCESS_TOKEN` when set, else gcp_auth's chain.
pub fn tokens() -> Box<dyn TokenSource> {
    match std::env::var("IDPLAN_GCP_ACCESS_TOKEN") {
        Ok(token) if !token.trim().is_empty() => Box::new(FixedToken(token.trim().to_string())),
        _ => Box::new(GoogleTokens(OnceCell::new())),
    }
}

impl TokenSource for GoogleTokens {
    fn token(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async {
            let provider = self
                .0
                .get_or_try_init(|| async { gcp_auth::provider().await })
                .await
                .map_err(|e| {
                    format!(
                        "no Google credentials ({e}); set GOOGLE_APPLICATION_CREDENTIALS, run \
                         `gcloud auth application-default login`, or set IDPLAN_GCP_ACCESS_TOKEN"
                    )
                })?;
            let token = provider
                .token(&[SCOPE])
                .await
                .map_err(|e| format!("getting a Google access token failed: {e}"))?;
            Ok(token.as_str().to_string())
        })
    }
}

/// How Google failures read: `<error.status> (HTTP <code>): <error.message>`, or the start of
/// the body when it is not Google's error JSON.
pub fn describe(status: StatusCode, error: &ErrorBody) -> String {
    let message = match error.message {
        Some(m) => m.to_string(),
        None => error.text.chars().take(300).collect(),
    };
    let code = status.as_u16();
    match error.code.filter(|s| !s.is_empty()) {
        None => format!("HTTP {code}: {message}"),
        Some(s) => format!("{s} (HTTP {code}): {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport as rest;

    #[test]
    fn google_errors_are_read() {
        let f = rest::failure(
            describe,
            StatusCode::CONFLICT,
            br#"{"error":{"code":409,"message":"There were concurrent policy changes.","status":"ABORTED"}}"#,
        );
        let e = f.into_error("google_project_iam_members.prod.sharedSecrets", "op");
        assert_eq!(
            e.to_string(),
            "google_project_iam_members.prod.sharedSecrets: op failed: ABORTED (HTTP 409): There \
             were concurrent policy changes."
        );
        let f = rest::failure(describe, StatusCode::BAD_GATEWAY, b"bad gateway");
        assert_eq!(f.message, "HTTP 502: bad gateway");
    }
}
