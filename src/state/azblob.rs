//! A state in Azure Blob Storage: the blob `BLOB` (created empty when missing), its previous
//! version `BLOB.backup`, and the lock: an infinite lease on the state blob, whose id is the
//! lock id, with who holds it in the blob's metadata (`idplanlock`). Every write carries the
//! lease id and `If-Match` on the ETag this run read or wrote.
//!
//! Credentials: `AZURE_STORAGE_CONNECTION_STRING` (shared key, what the Azure emulator speaks),
//! else Entra ID tokens (`IDPLAN_AZURE_ACCESS_TOKEN` or azure_identity). Endpoint:
//! `IDPLAN_AZURE_BLOB_ENDPOINT`, the connection string's `BlobEndpoint`, or
//! `https://ACCOUNT.blob.core.windows.net`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use sha2::Sha256;

use super::store::{self, LockInfo, Put, Refused, Store};
use crate::error::{Error, Result};
use crate::transport::{Auth, ErrorBody, Failure, Request, Rest, Retries, Sign, Signing};

const VERSION: &str = "2021-08-06";
const META: &str = "x-ms-meta-idplanlock";

/// An account's shared key, signing requests as the Blob service's Shared Key scheme says.
pub struct SharedKey {
    pub account: String,
    key: Vec<u8>,
}

impl SharedKey {
    pub fn new(account: &str, key_base64: &str) -> Result<SharedKey, String> {
        let key = BASE64
            .decode(key_base64.trim())
            .map_err(|e| format!("AccountKey is not base64: {e}"))?;
        Ok(SharedKey {
            account: account.to_string(),
            key,
        })
    }

    /// The `Authorization` value of a request: `method`, its URL `path` (as sent, with the
    /// account for a path-style endpoint), its `query` and its headers, `x-ms-date` included.
    pub fn authorization(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(String, String)],
        length: usize,
    ) -> String {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| v.as_str())
        };
        let length = match length {
            0 => String::new(),
            n => n.to_string(),
        };
        let mut ms: Vec<(String, &str)> = headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
            .collect();
        ms.sort();
        let mut query: Vec<(String, &str)> = query
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        query.sort();
        let mut text = format!(
            "{method}\n\n\n{length}\n\n{}\n\n\n{}\n{}\n\n\n",
            header("content-type"),
            header("if-match"),
            header("if-none-match"),
        );
        for (k, v) in &ms {
            text.push_str(&format!("{k}:{v}\n"));
        }
        text.push_str(&format!("/{}{path}", self.account));
        for (k, v) in &query {
            text.push_str(&format!("\n{k}:{v}"));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(text.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        format!("SharedKey {}:{signature}", self.account)
    }
}

/// The account key and blob endpoint of a connection string, when it is for `account`.
pub fn connection_string(text: &str, account: &str) -> Result<(SharedKey, Option<String>), String> {
    let field = |name: &str| {
        text.split(';')
            .filter_map(|part| part.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let name = field("AccountName").ok_or("it has no AccountName")?;
    if name != account {
        return Err(format!(
            "it is for storage account {name}, and the state is in {account}"
        ));
    }
    let key = field("AccountKey").ok_or("it has no AccountKey")?;
    Ok((SharedKey::new(&name, &key)?, field("BlobEndpoint")))
}

/// Requests signed with the account's key: the date goes into each attempt's signature.
impl Sign for SharedKey {
    fn sign(&self, r: &Signing<'_>, headers: &mut Vec<(String, String)>) {
        headers.push((
            "x-ms-date".into(),
            httpdate::fmt_http_date(SystemTime::now()),
        ));
        let authorization =
            self.authorization(r.method.as_str(), r.path, r.query, headers, r.length);
        headers.push(("authorization".into(), authorization));
    }
}

/// An answer, or why there is none.
struct Answer {
    headers: HeaderMap,
    bytes: Vec<u8>,
}

pub struct AzBlobStore {
    rest: Rest,
    /// The endpoint's URL, without a trailing `/`.
    endpoint: String,
    container: String,
    blob: String,
    /// `azblob://ACCOUNT/CONTAINER/BLOB`, for messages.
    url: String,
    kept: store::Kept,
    /// The lease this run holds, and the holder metadata every write carries.
    lease: Mutex<Option<(String, String)>>,
}

impl AzBlobStore {
    pub fn new(account: &str, container: &str, blob: &str, url: String) -> Result<AzBlobStore> {
        let env = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let (auth, from_string) = match env("AZURE_STORAGE_CONNECTION_STRING") {
            Some(text) => {
                let (key, endpoint) = connection_string(&text, account).map_err(|e| {
                    Error::user(format!("state {url}: AZURE_STORAGE_CONNECTION_STRING: {e}"))
                })?;
                (Auth::Signed(Box::new(key)), endpoint)
            }
            None => (
                Auth::Bearer(crate::transport::azure::tokens(
                    "https://storage.azure.com/.default",
                )),
                None,
            ),
        };
        let retries = Retries {
            attempts: 5,
            first: Duration::from_millis(400),
            cap: Duration::from_secs(5),
        };
        let endpoint = env("IDPLAN_AZURE_BLOB_ENDPOINT")
            .or(from_string)
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        Ok(AzBlobStore {
            rest: Rest::new(auth, retries, describe)?
                .reading(read_error)
                .timeout(Duration::from_secs(60)),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            container: container.to_string(),
            blob: blob.to_string(),
            url,
            kept: store::Kept::default(),
            lease: Mutex::new(None),
        })
    }

    /// Sends one request about blob `name` through the transport (retries, backoff,
    /// `Retry-After`); any status but 2xx is a [`Failure`].
    async fn send(
        &self,
        method: Method,
        name: &str,
        query: &[(&str, &str)],
        mut headers: Vec<(String, String)>,
        body: &[u8],
        stat: &str,
    ) -> Result<Answer, Failure> {
        let url = format!(
            "{}/{}/{}",
            self.endpoint,
            self.container,
            percent_encoding::utf8_percent_encode(name, PATH)
        );
        headers.push(("x-ms-version".into(), VERSION.into()));
        let request = Request::new(method, &url, stat)
            .query(query)
            .headers(&headers)
            // The blob service wants a length on every PUT, 0 included.
            .payload(body)
            .raw_answer();
        let response = self.rest.send(&request).await?;
        Ok(Answer {
            headers: response.headers,
            bytes: response.bytes,
        })
    }

    fn error(&self, api: &'static str, f: Failure) -> Error {
        if f.code.as_deref() == Some("ContainerNotFound") {
            return Error::user(format!(
                "state {}: container {} does not exist; create it: `az storage container create \
                 --name {} --account-name ACCOUNT` (and turn on blob versioning to keep every \
                 state)",
                self.url, self.container, self.container
            ));
        }
        Error::Cloud {
            resource: self.url.clone(),
            api: api.into(),
            message: f.message,
        }
    }

    /// The lease this run holds and its holder metadata, which every state write carries.
    fn leased(&self) -> Result<(String, String)> {
        let lease = self.lease.lock().expect("lease").clone();
        lease.ok_or_else(|| Error::internal("a state write without the lease"))
    }

    fn lease_headers(action: &str) -> Vec<(String, String)> {
        vec![("x-ms-lease-action".into(), action.into())]
    }

    /// `PUT BLOB?comp=COMP` (a lease action, metadata) with `headers`.
    async fn put_comp(
        &self,
        comp: &str,
        headers: Vec<(String, String)>,
        stat: &str,
    ) -> Result<Answer, Failure> {
        self.send(
            Method::PUT,
            &self.blob,
            &[("comp", comp)],
            headers,
            &[],
            stat,
        )
        .await
    }

    /// The blob's lease state and holder (`None` when unleased), from its properties.
    async fn held(&self) -> Result<store::Held> {
        let answer = self
            .send(
                Method::HEAD,
                &self.blob,
                &[],
                vec![],
                &[],
                "blob:GetBlobProperties",
            )
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            Err(f) if f.is(404) && f.code.as_deref() != Some("ContainerNotFound") => {
                return Ok(None);
            }
            Err(f) => return Err(self.error("blob:GetBlobProperties", f)),
        };
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        if header("x-ms-lease-state") != "leased" {
            return Ok(None);
        }
        let info = BASE64.decode(header(META)).unwrap_or_default();
        Ok(Some(match info.is_empty() {
            true => (None, "a lease idplan did not take".into()),
            false => LockInfo::describe(&info),
        }))
    }

    /// Releases the lease `id`: only the lease of that id is released, whoever took another
    /// since. `Err` with Azure's answer when the blob holds no lease of that id.
    async fn release(&self, id: &str) -> Result<(), Failure> {
        let mut headers = Self::lease_headers("release");
        headers.push(("x-ms-lease-id".into(), id.into()));
        self.put_comp("lease", headers, "blob:LeaseBlob")
            .await
            .map(|_| ())
    }

    /// The state blob's bytes and ETag; `None` when there is none.
    async fn get(&self) -> Result<Option<(Vec<u8>, Option<String>)>> {
        match self
            .send(Method::GET, &self.blob, &[], vec![], &[], "blob:GetBlob")
            .await
        {
            Ok(answer) => Ok(Some((answer.bytes, etag_of(&answer.headers)))),
            Err(f) if f.code.as_deref() == Some("BlobNotFound") => Ok(None),
            Err(f) => Err(self.error("blob:GetBlob", f)),
        }
    }

    /// Acquires an infinite lease with `info`'s id; creates the blob, empty, when missing.
    async fn acquire(&self, info: &LockInfo) -> Result<(), Refused> {
        let mut headers = Self::lease_headers("acquire");
        headers.push(("x-ms-lease-duration".into(), "-1".into()));
        headers.push(("x-ms-proposed-lease-id".into(), info.id.clone()));
        for _ in 0..3 {
            let answer = self
                .put_comp("lease", headers.clone(), "blob:LeaseBlob")
                .await;
            match answer {
                Ok(_) => return Ok(()),
                // Azure renews a lease acquired again with its own id, so a retried acquire
                // whose first reply was lost succeeds; the holder is read all the same, and a
                // lock naming this run's id is this run's.
                Err(f) if f.code.as_deref() == Some("LeaseAlreadyPresent") || f.is(409) => {
                    return match self.held().await? {
                        Some((Some(id), _)) if id == info.id => Ok(()),
                        Some((_, holder)) => Err(Refused::Held(holder)),
                        None => Err(Refused::Held("released just now".into())),
                    };
                }
                Err(f) if f.code.as_deref() == Some("BlobNotFound") => {
                    let create = self
                        .put_blob(&self.blob, &[], vec![("if-none-match".into(), "*".into())])
                        .await;
                    match create {
                        Ok(_) => {}
                        Err(f) if f.is(409) || f.is(412) => {}
                        Err(f) => return Err(self.error("blob:PutBlob", f).into()),
                    }
                }
                Err(f) => return Err(self.error("blob:LeaseBlob", f).into()),
            }
        }
        Err(Error::user(format!(
            "state {}: the blob vanished while it was being locked",
            self.url
        ))
        .into())
    }

    async fn put_blob(
        &self,
        name: &str,
        bytes: &[u8],
        mut headers: Vec<(String, String)>,
    ) -> Result<Answer, Failure> {
        headers.push(("x-ms-blob-type".into(), "BlockBlob".into()));
        headers.push(("content-type".into(), "application/json".into()));
        self.send(Method::PUT, name, &[], headers, bytes, "blob:PutBlob")
            .await
    }
}

/// Path bytes kept as they are in a blob URL.
const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Where the Blob service says what failed: the `x-ms-error-code` header or the XML body's
/// `<Code>`, and its `<Message>`'s first line.
fn read_error(headers: &HeaderMap, bytes: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(bytes);
    let code = headers
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| between(&text, "<Code>", "</Code>"));
    let message = between(&text, "<Message>", "</Message>")
        .map(|m| m.lines().next().unwrap_or("").to_string());
    (code, message)
}

/// How Blob service failures read: `<code> (HTTP <status>): <message>`, or the start of the
/// body when it has no message.
fn describe(status: StatusCode, error: &ErrorBody) -> String {
    let message = match error.message {
        Some(m) => m.to_string(),
        None => error.text.chars().take(300).collect(),
    };
    format!(
        "{} (HTTP {}): {message}",
        error.code.unwrap_or(""),
        status.as_u16()
    )
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_string())
}

fn etag_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl store::StateObject for AzBlobStore {
    fn get_state(&self) -> BoxFuture<'_, Result<store::Found>> {
        Box::pin(self.get())
    }

    fn no_state_yet(&self, bytes: &[u8]) -> bool {
        // The blob a lock created.
        bytes.is_empty()
    }

    /// The state with the lease and its holder metadata.
    fn put<'a>(&'a self, bytes: &'a [u8], to: Put<'a>) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let Put::State(etag) = to else {
                let backup = format!("{}.backup", self.blob);
                let answer = self.put_blob(&backup, bytes, vec![]).await;
                return answer
                    .map(|answer| etag_of(&answer.headers))
                    .map_err(|f| self.error("blob:PutBlob", f));
            };
            let (id, meta) = self.leased()?;
            let mut headers = vec![("x-ms-lease-id".into(), id), (META.into(), meta)];
            headers.push(match etag {
                Some(etag) => ("if-match".into(), etag.into()),
                None => ("if-none-match".into(), "*".into()),
            });
            match self.put_blob(&self.blob, bytes, headers).await {
                Ok(answer) => Ok(etag_of(&answer.headers)),
                Err(f) if f.is(412) => Err(store::changed_since_read(&self.url)),
                Err(f) => Err(self.error("blob:PutBlob", f)),
            }
        })
    }
}

impl Store for AzBlobStore {
    fn lock<'a>(&'a self, info: &'a LockInfo) -> BoxFuture<'a, Result<(), Refused>> {
        Box::pin(async move {
            self.acquire(info).await?;
            let meta = BASE64.encode(info.to_json());
            *self.lease.lock().expect("lease") = Some((info.id.clone(), meta.clone()));
            let headers = vec![
                ("x-ms-lease-id".into(), info.id.clone()),
                (META.into(), meta),
            ];
            if let Err(f) = self
                .put_comp("metadata", headers, "blob:SetBlobMetadata")
                .await
            {
                // A failed acquisition leaves no lock behind.
                self.lease.lock().expect("lease").take();
                let failed = self.error("blob:SetBlobMetadata", f);
                return Err(match self.release(&info.id).await {
                    Ok(()) => failed,
                    Err(_) => store::with_note(
                        failed,
                        &format!(
                            "; this run's lease on state {} may be left in place: `idplan state \
                             unlock {}` frees it",
                            self.url, info.id
                        ),
                    ),
                }
                .into());
            }
            Ok(())
        })
    }

    fn unlock(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some((id, _)) = self.lease.lock().expect("lease").take() else {
                return Ok(());
            };
            match self.release(&id).await {
                Ok(()) => Ok(()),
                // No lease of this id: released already (a retry whose first reply was lost),
                // or broken, and maybe taken by another run, which keeps it.
                Err(f) if f.is(409) => match self.held().await? {
                    None => Ok(()),
                    Some((Some(held), _)) if held == id => {
                        Err(store::taken_while_released(&self.url))
                    }
                    held => store::is_mine(&self.url, &id, &held).map(|_| ()),
                },
                Err(f) => Err(store::left_in_place(self.error("blob:LeaseBlob", f), &id)),
            }
        })
    }

    /// Releases the lease `id` (idplan's lease id is its lock id): a lease taken by another
    /// run since the holder was read has another id, and is kept.
    fn force_unlock<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            store::may_break(&self.url, id, &self.held().await?)?;
            match self.release(id).await {
                Ok(()) => Ok(()),
                Err(f) if f.is(409) => Err(store::changed_while_unlocking(&self.url)),
                Err(f) => Err(self.error("blob:LeaseBlob", f)),
            }
        })
    }

    fn read(&self) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        Box::pin(self.kept.read(self))
    }

    fn write(&self, bytes: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.leased()?;
            self.kept.write(self, bytes).await
        })
    }

    fn backup(&self) -> String {
        format!("{}.backup", self.url)
    }
}
