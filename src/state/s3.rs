//! A state in Amazon S3: the state object `KEY`, its previous version `KEY.backup`, and the
//! lock object `KEY.lock` created with `If-None-Match: *` while a run holds it (as terraform's
//! `use_lockfile`), deleted with `If-Match` on the ETag read. The state is written with
//! `If-Match` on the ETag this run read or wrote.
//! Credentials, region and endpoint come from the AWS SDK's chain (`AWS_ENDPOINT_URL` or
//! `AWS_ENDPOINT_URL_S3`, addressed path-style when set); the SDK retries with backoff.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use futures::future::BoxFuture;

use super::store::{self, Created, LockInfo, Put};
use crate::error::{Error, Result};

/// The state's and its lock's objects in a bucket; [`store::ObjectStore`] makes them a store.
pub struct S3Objects {
    client: Client,
    bucket: String,
    key: String,
    /// `s3://BUCKET/KEY`, for messages.
    url: String,
}

impl S3Objects {
    pub async fn new(bucket: &str, key: &str, url: String) -> S3Objects {
        // The drivers' retries: one bad day, one patience.
        let config = crate::transport::aws::config(crate::transport::aws::STORE_ATTEMPTS).await;
        let endpoint_set = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()));
        let mut builder = aws_sdk_s3::config::Builder::from(&config)
            .retry_partition(crate::transport::aws::retry_partition("idplan-s3".into()))
            .interceptor(crate::stats::AwsCalls)
            .force_path_style(endpoint_set);
        if config.region().is_none() {
            builder = builder.region(aws_config::Region::from_static("us-east-1"));
        }
        S3Objects {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_string(),
            key: key.to_string(),
            url,
        }
    }

    fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    fn error<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        api: &'static str,
        e: SdkError<E>,
    ) -> Error {
        s3_error(&self.bucket, &self.url, api, e)
    }

    /// The object `key` and its ETag; `None` when there is none.
    async fn fetch(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(self.error("s3:GetObject", e)),
        };
        let etag = out.e_tag.clone();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.read_failed("s3:GetObject", &e))?
            .to_vec();
        Ok(Some((bytes, etag)))
    }

    fn read_failed(&self, api: &'static str, e: &dyn std::fmt::Display) -> Error {
        Error::Cloud {
            resource: self.url.clone(),
            api: api.into(),
            message: format!("reading the answer failed: {e}"),
        }
    }

    async fn put(
        &self,
        key: String,
        bytes: Vec<u8>,
        condition: Condition<'_>,
    ) -> Result<Option<String>, SdkError<aws_sdk_s3::operation::put_object::PutObjectError>> {
        let mut put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        put = match condition {
            Condition::None => put,
            Condition::Absent => put.if_none_match("*"),
            Condition::Matches(etag) => put.if_match(etag),
        };
        Ok(put.send().await?.e_tag)
    }
}

enum Condition<'a> {
    None,
    Absent,
    Matches(&'a str),
}

impl store::LockObject for S3Objects {
    fn url(&self) -> &str {
        &self.url
    }

    fn create<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            match self
                .put(self.lock_key(), bytes.to_vec(), Condition::Absent)
                .await
            {
                Ok(_) => Ok(Created::Done),
                Err(e) if is_precondition(&e) => Ok(Created::Exists),
                Err(e) if status(&e).is_none_or(|s| s >= 500) => {
                    Ok(Created::Unsure(self.error("s3:PutObject", e)))
                }
                Err(e) => Err(self.error("s3:PutObject", e)),
            }
        })
    }

    fn get(&self) -> BoxFuture<'_, Result<Option<(store::Lock, String)>>> {
        Box::pin(async move {
            Ok(self
                .fetch(&self.lock_key())
                .await?
                .map(|(bytes, etag)| (LockInfo::describe(&bytes), etag.unwrap_or_default())))
        })
    }

    /// `DeleteObject` with `If-Match` on the ETag read (S3 honours it since 2024).
    fn delete<'a>(&'a self, etag: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let deleted = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(self.lock_key())
                .if_match(etag)
                .send()
                .await;
            match deleted {
                Ok(_) => Ok(true),
                Err(e) if is_precondition(&e) => Ok(false),
                Err(e) if is_missing(&e) => Ok(true),
                Err(e) => Err(self.error("s3:DeleteObject", e)),
            }
        })
    }
}

impl store::StateObject for S3Objects {
    fn get_state(&self) -> BoxFuture<'_, Result<store::Found>> {
        Box::pin(self.fetch(&self.key))
    }

    fn put<'a>(&'a self, bytes: &'a [u8], to: Put<'a>) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let (key, condition) = match to {
                Put::Backup => (format!("{}.backup", self.key), Condition::None),
                Put::State(Some(etag)) => (self.key.clone(), Condition::Matches(etag)),
                Put::State(None) => (self.key.clone(), Condition::Absent),
            };
            self.put(key, bytes.to_vec(), condition)
                .await
                .map_err(|e| match to {
                    // `If-Match` on a state deleted since answers 404.
                    Put::State(etag)
                        if is_precondition(&e) || (etag.is_some() && is_missing(&e)) =>
                    {
                        store::changed_since_read(&self.url)
                    }
                    _ => self.error("s3:PutObject", e),
                })
        })
    }
}

fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// 412 `PreconditionFailed`, or 409 `ConditionalRequestConflict` (a racing conditional write).
fn is_precondition<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    matches!(status(e), Some(412 | 409))
        || matches!(
            e.code(),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
}

fn is_missing<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("NoSuchKey") || (status(e) == Some(404) && e.code() != Some("NoSuchBucket"))
}

/// An S3 failure as an error naming the state, the API and S3's own message; a missing bucket
/// says how to create one.
fn s3_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    bucket: &str,
    url: &str,
    api: &'static str,
    e: SdkError<E>,
) -> Error {
    if e.code() == Some("NoSuchBucket") {
        return Error::user(format!(
            "state {url}: bucket {bucket} does not exist; create it (with versioning, to keep \
             every state): `aws s3api create-bucket --bucket {bucket}` then `aws s3api \
             put-bucket-versioning --bucket {bucket} --versioning-configuration Status=Enabled`"
        ));
    }
    let message = match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => crate::transport::causes(&e),
    };
    Error::Cloud {
        resource: url.to_string(),
        api: api.into(),
        message,
    }
}
