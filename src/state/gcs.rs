//! A state in Google Cloud Storage: the object `OBJECT`, its previous version `OBJECT.backup`,
//! and the lock object `OBJECT.lock` created with `ifGenerationMatch=0` while a run holds it.
//! The state is written with `ifGenerationMatch` on the generation this run read or wrote
//! (0: there was none), as multipart uploads (the emulator honours preconditions only there).
//! Tokens: `IDPLAN_GCP_ACCESS_TOKEN` or gcp_auth's chain; none for an emulator named by
//! `STORAGE_EMULATOR_HOST`. Base URL: `IDPLAN_GCP_ENDPOINT`, `STORAGE_EMULATOR_HOST`, or
//! Google's.

use std::time::Duration;

use futures::future::BoxFuture;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::json;

use super::store::{self, Created, LockInfo, Put};
use crate::error::{Error, Result};
use crate::transport::{Failure, FixedToken, Request, Rest, Retries, TokenSource};

/// The state's and its lock's objects in a bucket; [`store::ObjectStore`] makes them a store.
pub struct GcsObjects {
    rest: Rest,
    base: String,
    bucket: String,
    object: String,
    /// `gs://BUCKET/OBJECT`, for messages.
    url: String,
}

const BOUNDARY: &str = "idplan-state-7f3a91c2";

impl GcsObjects {
    pub fn new(bucket: &str, object: &str, url: String) -> Result<GcsObjects> {
        let env = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let emulator = env("STORAGE_EMULATOR_HOST").map(|host| match host.contains("://") {
            true => host,
            false => format!("http://{host}"),
        });
        let base = env("IDPLAN_GCP_ENDPOINT")
            .or_else(|| emulator.clone())
            .unwrap_or_else(|| "https://storage.googleapis.com".into());
        let tokens: Box<dyn TokenSource> =
            match emulator.is_some() && env("IDPLAN_GCP_ACCESS_TOKEN").is_none() {
                true => Box::new(FixedToken(String::new())),
                false => crate::transport::gcp::tokens(),
            };
        let retries = Retries {
            attempts: 5,
            first: Duration::from_millis(400),
            cap: Duration::from_secs(5),
        };
        Ok(GcsObjects {
            rest: Rest::new(tokens, retries, crate::transport::gcp::describe)?,
            base: base.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            object: object.to_string(),
            url,
        })
    }

    fn lock_name(&self) -> String {
        format!("{}.lock", self.object)
    }

    fn object_url(&self, name: &str) -> String {
        format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            self.bucket,
            utf8_percent_encode(name, NON_ALPHANUMERIC)
        )
    }

    fn error(&self, api: &'static str, failure: Failure) -> Error {
        failure.into_error(&self.url, api)
    }

    /// Uploads `bytes` as `name` when its generation is `if_generation` (`None`: any);
    /// returns the new generation.
    async fn upload(
        &self,
        name: &str,
        bytes: &[u8],
        if_generation: Option<&str>,
    ) -> Result<String, Failure> {
        let mut body = format!(
            "--{BOUNDARY}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n{}\r\n\
             --{BOUNDARY}\r\ncontent-type: application/json\r\n\r\n",
            json!({ "name": name, "contentType": "application/json" })
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let url = format!("{}/upload/storage/v1/b/{}/o", self.base, self.bucket);
        let mut query = vec![("uploadType", "multipart")];
        if let Some(generation) = if_generation {
            query.push(("ifGenerationMatch", generation));
        }
        let content_type = format!("multipart/related; boundary={BOUNDARY}");
        let answer = self
            .rest
            .send(
                &Request::new(Method::POST, &url, "gcs:objects.insert")
                    .query(&query)
                    .raw(&content_type, &body),
            )
            .await?;
        Ok(generation_of(&answer.body["generation"]))
    }

    /// The object `name` and its generation; `None` when there is none.
    async fn download(&self, name: &str) -> Result<Option<(Vec<u8>, String)>> {
        let url = self.object_url(name);
        let query = [("alt", "media")];
        let request = Request::new(Method::GET, &url, "gcs:objects.get")
            .query(&query)
            .raw_answer();
        match self.rest.send(&request).await {
            Ok(answer) => {
                let generation = answer
                    .headers
                    .get("x-goog-generation")
                    .and_then(|g| g.to_str().ok())
                    .unwrap_or("0")
                    .to_string();
                Ok(Some((answer.bytes, generation)))
            }
            Err(f) if f.is(404) => match self.bucket_exists().await? {
                true => Ok(None),
                false => Err(self.missing_bucket()),
            },
            Err(f) => Err(self.error("storage.objects.get", f)),
        }
    }

    async fn bucket_exists(&self) -> Result<bool> {
        let url = format!("{}/storage/v1/b/{}", self.base, self.bucket);
        match self
            .rest
            .send(&Request::new(Method::GET, &url, "gcs:buckets.get"))
            .await
        {
            Ok(_) => Ok(true),
            Err(f) if f.is(404) => Ok(false),
            Err(f) => Err(self.error("storage.buckets.get", f)),
        }
    }

    fn missing_bucket(&self) -> Error {
        Error::user(format!(
            "state {}: bucket {} does not exist; create it (with object versioning, to keep every \
             state): `gcloud storage buckets create gs://{} && gcloud storage buckets update \
             gs://{} --versioning`",
            self.url, self.bucket, self.bucket, self.bucket
        ))
    }

    /// An upload's failure: a missing bucket named, else the API and Google's message.
    fn upload_error(&self, f: Failure) -> Error {
        match f.is(404) {
            true => self.missing_bucket(),
            false => self.error("storage.objects.insert", f),
        }
    }

    /// An upload's answer, or the error of one that failed; `None` when a precondition failed.
    fn uploaded(&self, answer: Result<String, Failure>) -> Result<Option<String>, (Error, bool)> {
        match answer {
            Ok(generation) => Ok(Some(generation)),
            Err(f) if f.is(412) => Ok(None),
            // No answer, or a server error after every retry: it may have landed.
            Err(f) => {
                let unsure = f.status.is_none_or(|s| s.is_server_error());
                Err((self.upload_error(f), unsure))
            }
        }
    }
}

impl store::LockObject for GcsObjects {
    fn url(&self) -> &str {
        &self.url
    }

    fn create<'a>(&'a self, bytes: &'a [u8]) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let answer = self.upload(&self.lock_name(), bytes, Some("0")).await;
            match self.uploaded(answer) {
                Ok(Some(_)) => Ok(Created::Done),
                Ok(None) => Ok(Created::Exists),
                Err((e, true)) => Ok(Created::Unsure(e)),
                Err((e, false)) => Err(e),
            }
        })
    }

    fn get(&self) -> BoxFuture<'_, Result<Option<(store::Lock, String)>>> {
        Box::pin(async move {
            Ok(self
                .download(&self.lock_name())
                .await?
                .map(|(bytes, generation)| (LockInfo::describe(&bytes), generation)))
        })
    }

    /// `objects.delete` with `ifGenerationMatch` on the generation read.
    fn delete<'a>(&'a self, generation: &'a str) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let url = self.object_url(&self.lock_name());
            let query = [("ifGenerationMatch", generation)];
            match self
                .rest
                .send(&Request::new(Method::DELETE, &url, "gcs:objects.delete").query(&query))
                .await
            {
                Ok(_) => Ok(true),
                Err(f) if f.is(404) => Ok(true),
                Err(f) if f.is(412) => Ok(false),
                Err(f) => Err(self.error("storage.objects.delete", f)),
            }
        })
    }
}

fn generation_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

impl store::StateObject for GcsObjects {
    fn get_state(&self) -> BoxFuture<'_, Result<store::Found>> {
        Box::pin(async move {
            Ok(self
                .download(&self.object)
                .await?
                .map(|(bytes, generation)| (bytes, Some(generation))))
        })
    }

    /// The state on generation 0 when there was none.
    fn put<'a>(&'a self, bytes: &'a [u8], to: Put<'a>) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let generation = match to {
                Put::Backup => {
                    let backup = format!("{}.backup", self.object);
                    let answer = self.upload(&backup, bytes, None).await;
                    return answer.map(Some).map_err(|f| self.upload_error(f));
                }
                Put::State(generation) => generation.unwrap_or("0"),
            };
            let answer = self.upload(&self.object, bytes, Some(generation)).await;
            match self.uploaded(answer) {
                Ok(Some(generation)) => Ok(Some(generation)),
                Ok(None) => Err(store::changed_since_read(&self.url)),
                Err((e, _)) => Err(e),
            }
        })
    }
}
