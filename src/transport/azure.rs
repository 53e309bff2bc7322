//! Azure's side of the transport: Entra ID tokens and how ARM failures read.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use tokio::sync::OnceCell;

use super::{ErrorBody, FixedToken, TokenSource, causes};

/// azure_identity's credential, chosen from the environment on first use, for tokens of one
/// scope.
struct AzureTokens(OnceCell<Arc<dyn TokenCredential>>, &'static str);

/// Entra ID tokens for `scope`: `IDPLAN_AZURE_ACCESS_TOKEN` when set, else azure_identity's.
pub fn tokens(scope: &'static str) -> Box<dyn TokenSource> {
    match std::env::var("IDPLAN_AZURE_ACCESS_TOKEN") {
        Ok(token) if !token.is_empty() => Box::new(FixedToken(token)),
        _ => Box::new(AzureTokens(OnceCell::new(), scope)),
    }
}

impl TokenSource for AzureTokens {
    fn token(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async {
            let fail = |cause: String| {
                // azure_identity says what each source it tried answered, a line each.
                let cause: Vec<&str> = cause
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                format!(
                    "no Azure credentials: run `az login`, or set the workload identity \
                     variables (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE), a \
                     service principal's (AZURE_CLIENT_SECRET), or IDPLAN_AZURE_ACCESS_TOKEN to \
                     a bearer token ({})",
                    cause.join("; ")
                )
            };
            let credential = self
                .0
                .get_or_try_init(|| async { credential().map_err(|e| fail(e.to_string())) })
                .await?;
            let token = credential
                .get_token(&[self.1], None)
                .await
                .map_err(|e| fail(causes(&e)))?;
            Ok(token.token.secret().to_string())
        })
    }
}

/// The azure_identity credential the environment calls for: a service principal's secret
/// (`AZURE_CLIENT_SECRET`), workload identity (`AZURE_FEDERATED_TOKEN_FILE`), a managed
/// identity (`IDENTITY_ENDPOINT`, or `IDPLAN_AZURE_MANAGED_IDENTITY=1` on a VM), else the
/// developer tools (az, azd).
fn credential() -> azure_core::Result<Arc<dyn TokenCredential>> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(tenant), Some(client), Some(secret)) = (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        return Ok(azure_identity::ClientSecretCredential::new(
            &tenant,
            client,
            secret.into(),
            None,
        )?);
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok(azure_identity::WorkloadIdentityCredential::new(None)?);
    }
    if var("IDENTITY_ENDPOINT").is_some() || var("IDPLAN_AZURE_MANAGED_IDENTITY").is_some() {
        return Ok(azure_identity::ManagedIdentityCredential::new(None)?);
    }
    Ok(azure_identity::DeveloperToolsCredential::new(None)?)
}

/// How ARM failures read: `<status>: <error.code>: <error.message>`.
pub fn describe(status: StatusCode, error: &ErrorBody) -> String {
    match (error.code, error.message) {
        (Some(code), Some(msg)) => format!("{status}: {code}: {msg}"),
        (Some(code), None) => format!("{status}: {code}"),
        _ => status.to_string(),
    }
}
