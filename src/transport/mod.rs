//! The HTTP transport of the REST drivers (Azure Resource Manager, the Google APIs): bearer
//! tokens, one timeout, retries of throttling, server errors and lost connections with jittered
//! backoff (`Retry-After` honoured), and the cloud's error body read into a [`Failure`] that
//! becomes an error naming the resource, the API and the cloud's own message. The drivers of
//! `provider` and the state stores of `state` share it; `azure` and `gcp` are each cloud's
//! token source and error wording, `aws` the one SDK configuration of the AWS driver and the
//! S3 store.

pub mod aws;
pub mod azure;
pub mod gcp;

use std::borrow::Cow;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// How long one request may take; long-running operations are polled, never waited on.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait honoured from `Retry-After`.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

/// The error codes of a create that found its object already there (Google, ARM).
const EXISTS_CODES: &[&str] = &["ALREADY_EXISTS", "RoleAssignmentExists"];

/// Where bearer tokens come from; a token is never logged or stored.
pub trait TokenSource: Send + Sync {
    /// A token, or why there is none (said to the user as it is); an empty token sends no
    /// `Authorization` (an emulator).
    fn token(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// What a signature covers of a request besides its headers.
pub struct Signing<'a> {
    pub method: &'a Method,
    /// The URL's path, as sent.
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    /// The body's length.
    pub length: usize,
}

/// Signs a request whole (Azure Storage's shared key): adds its date and `authorization`
/// headers to `headers`, the headers the request is sent with.
pub trait Sign: Send + Sync {
    fn sign(&self, request: &Signing<'_>, headers: &mut Vec<(String, String)>);
}

/// How requests are authorized: a bearer token, or a signature of each request.
pub enum Auth {
    Bearer(Box<dyn TokenSource>),
    Signed(Box<dyn Sign>),
}

impl From<Box<dyn TokenSource>> for Auth {
    fn from(tokens: Box<dyn TokenSource>) -> Auth {
        Auth::Bearer(tokens)
    }
}

/// A token given in the environment, used as it is.
pub struct FixedToken(pub String);

impl TokenSource for FixedToken {
    fn token(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Ok(self.0.clone()) })
    }
}

/// How often and how patiently a cloud's calls are retried.
pub struct Retries {
    /// Attempts of one call in all.
    pub attempts: u32,
    /// The first wait; it doubles per attempt up to `cap`, plus jitter.
    pub first: Duration,
    pub cap: Duration,
}

/// The parts of a cloud's error body: `{"error": {"code" | "status", "message"}}`.
pub struct ErrorBody<'a> {
    pub code: Option<&'a str>,
    pub message: Option<&'a str>,
    /// The body as text, for an answer that is not the cloud's error JSON.
    pub text: &'a str,
}

/// How a cloud words a failed call in its errors.
pub type Describe = fn(StatusCode, &ErrorBody) -> String;

/// Where a cloud puts its error code and message in a failed answer: (code, message).
pub type Read = fn(&HeaderMap, &[u8]) -> (Option<String>, Option<String>);

/// The error JSON of ARM and the Google APIs: `{"error": {"code" | "status", "message"}}`.
pub fn json_error(_headers: &HeaderMap, bytes: &[u8]) -> (Option<String>, Option<String>) {
    let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let error = &json["error"];
    let code = error["code"].as_str().or_else(|| error["status"].as_str());
    (
        code.map(str::to_string),
        error["message"].as_str().map(str::to_string),
    )
}

/// One request.
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub body: Option<&'a Value>,
    /// The name the call is counted under in `--stats`.
    pub stat: &'a str,
    /// A cloud error code that is transient for this call, besides 429 and 5xx.
    pub retry_code: Option<&'static str>,
    /// A body sent as it is, with its content type, instead of `body`.
    pub raw: Option<(&'a str, &'a [u8])>,
    /// Whether the answer is kept as bytes (`Response::bytes`) rather than read as JSON.
    pub raw_answer: bool,
    /// Headers of this request besides the transport's own.
    pub headers: &'a [(String, String)],
    /// Bytes sent as they are, with a `content-length` even when empty; their content type,
    /// if any, is among `headers`.
    pub payload: Option<&'a [u8]>,
    /// Whether the request says it accepts JSON (every API but Azure Storage's).
    pub accept_json: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: &'a str, stat: &'a str) -> Self {
        Request {
            method,
            url,
            query: &[],
            body: None,
            stat,
            retry_code: None,
            raw: None,
            raw_answer: false,
            headers: &[],
            payload: None,
            accept_json: true,
        }
    }

    /// Sends these headers besides the transport's own.
    pub fn headers(mut self, headers: &'a [(String, String)]) -> Self {
        self.headers = headers;
        self
    }

    /// Sends `bytes` as they are, with their length, in an API that answers in other than
    /// JSON (Azure Storage).
    pub fn payload(mut self, bytes: &'a [u8]) -> Self {
        self.payload = Some(bytes);
        self.accept_json = false;
        self
    }

    /// Sends `bytes` as they are, as `content_type`.
    pub fn raw(mut self, content_type: &'a str, bytes: &'a [u8]) -> Self {
        self.raw = Some((content_type, bytes));
        self
    }

    /// Keeps the answer as bytes.
    pub fn raw_answer(mut self) -> Self {
        self.raw_answer = true;
        self
    }

    pub fn query(mut self, query: &'a [(&'a str, &'a str)]) -> Self {
        self.query = query;
        self
    }

    pub fn body(mut self, body: Option<&'a Value>) -> Self {
        self.body = body;
        self
    }
}

/// A successful answer; the body is null when empty or asked for as bytes.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The answer as it came, for a request with `raw_answer`.
    pub bytes: Vec<u8>,
}

/// A failed call, after its retries.
#[derive(Debug)]
pub struct Failure {
    /// The HTTP status, or `None` when no answer came (no token, no connection).
    pub status: Option<StatusCode>,
    /// The cloud's error code (`error.code` on ARM, `error.status` on Google).
    pub code: Option<String>,
    /// The whole message, worded as the cloud's driver words it.
    pub message: String,
}

impl Failure {
    fn unanswered(message: String) -> Self {
        Failure {
            status: None,
            code: None,
            message,
        }
    }

    pub fn is(&self, status: u16) -> bool {
        self.status.is_some_and(|s| s.as_u16() == status)
    }

    pub fn into_error(self, resource: &str, api: impl Into<Cow<'static, str>>) -> Error {
        let exists = self
            .code
            .as_deref()
            .is_some_and(|code| EXISTS_CODES.contains(&code));
        Error::Cloud {
            resource: resource.to_string(),
            api: api.into(),
            message: self.message,
        }
        .exists_if(exists)
    }
}

pub struct Rest {
    http: reqwest::Client,
    auth: Auth,
    retries: Retries,
    describe: Describe,
    read: Read,
    timeout: Duration,
}

impl Rest {
    pub fn new(auth: impl Into<Auth>, retries: Retries, describe: Describe) -> Result<Self> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::internal(format!("the HTTP client does not build: {e}")))?;
        Ok(Rest {
            http,
            auth: auth.into(),
            retries,
            describe,
            read: json_error,
            timeout: TIMEOUT,
        })
    }

    /// Reads failed answers with `read` rather than as JSON errors.
    pub fn reading(mut self, read: Read) -> Self {
        self.read = read;
        self
    }

    /// How long one request may take, instead of [`TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one request, retrying throttling, server errors, lost connections and the
    /// request's own transient code. Any status other than 2xx is a [`Failure`].
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, Failure> {
        let url = reqwest::Url::parse(req.url)
            .map_err(|e| Failure::unanswered(format!("{} is not a URL: {e}", req.url)))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            crate::stats::count(req.stat);
            if attempt > 1 {
                crate::stats::count_retry();
            }
            let mut headers = req.headers.to_vec();
            if req.accept_json {
                headers.push(("accept".into(), "application/json".into()));
            }
            match &self.auth {
                Auth::Bearer(tokens) => {
                    let token = tokens.token().await.map_err(Failure::unanswered)?;
                    if !token.is_empty() {
                        headers.push(("authorization".into(), format!("Bearer {token}")));
                    }
                }
                Auth::Signed(signer) => {
                    let signing = Signing {
                        method: &req.method,
                        path: url.path(),
                        query: req.query,
                        length: req.payload.map_or(0, <[u8]>::len),
                    };
                    signer.sign(&signing, &mut headers);
                }
            }
            crate::pace::turn().await;
            let mut request = self
                .http
                .request(req.method.clone(), url.clone())
                .timeout(self.timeout);
            for (name, value) in &headers {
                request = request.header(name, value);
            }
            if !req.query.is_empty() {
                request = request.query(req.query);
            }
            if let Some(body) = req.body {
                request = request.json(body);
            }
            if let Some((content_type, bytes)) = req.raw {
                request = request
                    .header("content-type", content_type)
                    .body(bytes.to_vec());
            }
            if let Some(bytes) = req.payload {
                request = request
                    .header("content-length", bytes.len())
                    .body(bytes.to_vec());
            }
            let last = attempt >= self.retries.attempts;
            let answer = match request.send().await {
                Ok(response) => {
                    let (status, headers) = (response.status(), response.headers().clone());
                    response.bytes().await.map(|b| (status, headers, b))
                }
                Err(e) => Err(e),
            };
            let wait = match answer {
                Err(e) if last => return Err(Failure::unanswered(causes(&e))),
                Err(_) => None,
                Ok((status, headers, bytes)) if status.is_success() && req.raw_answer => {
                    return Ok(Response {
                        status,
                        headers,
                        body: Value::Null,
                        bytes: bytes.to_vec(),
                    });
                }
                Ok((status, headers, bytes)) if status.is_success() => {
                    let body = match bytes.is_empty() {
                        true => Value::Null,
                        false => serde_json::from_slice(&bytes).map_err(|e| Failure {
                            status: Some(status),
                            code: None,
                            message: format!("unreadable response: {e}"),
                        })?,
                    };
                    return Ok(Response {
                        status,
                        headers,
                        body,
                        bytes: Vec::new(),
                    });
                }
                Ok((status, headers, bytes)) => {
                    let failure = read_failure(self.read, self.describe, status, &headers, &bytes);
                    let transient = status == StatusCode::TOO_MANY_REQUESTS
                        || status.is_server_error()
                        || req
                            .retry_code
                            .is_some_and(|c| failure.code.as_deref() == Some(c));
                    if !transient || last {
                        return Err(failure);
                    }
                    retry_after(&headers)
                }
            };
            let Retries { first, cap, .. } = self.retries;
            tokio::time::sleep(wait.unwrap_or_else(|| backoff(attempt, first, cap))).await;
        }
    }
}

/// A failed answer: the cloud's error JSON, worded by the cloud's driver.
pub fn failure(describe: Describe, status: StatusCode, bytes: &[u8]) -> Failure {
    read_failure(json_error, describe, status, &HeaderMap::new(), bytes)
}

/// A failed answer: the cloud's error read by `read`, worded by `describe`.
pub fn read_failure(
    read: Read,
    describe: Describe,
    status: StatusCode,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Failure {
    let text = String::from_utf8_lossy(bytes);
    let (code, message) = read(headers, bytes);
    let body = ErrorBody {
        code: code.as_deref(),
        message: message.as_deref(),
        text: &text,
    };
    Failure {
        status: Some(status),
        message: describe(status, &body),
        code,
    }
}

/// The wait a throttled answer asks for, at most [`MAX_WAIT`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_WAIT))
}

/// A cloud's answer read into the type the driver expects; `what` and `api` name the call.
pub fn answer<T: DeserializeOwned>(
    body: Value,
    what: &str,
    api: impl Into<Cow<'static, str>>,
) -> Result<T> {
    // An empty answer reads as an empty object, and a null field as an absent one: every
    // field the cloud left out takes its default.
    let mut body = match body {
        Value::Null => Value::Object(serde_json::Map::new()),
        body => body,
    };
    drop_nulls(&mut body);
    serde_json::from_value(body).map_err(|e| Error::Cloud {
        resource: what.to_string(),
        api: api.into(),
        message: format!("unreadable response: {e}"),
    })
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
/// An error and its sources on one line ("dispatch failure: io error: ... Connection refused"),
/// without the debug dump some SDK formatters append; an error of several lines is joined
/// with "; ".
pub fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        // One line: some errors list their attempts a line each.
        let lines: Vec<String> = err
            .to_string()
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        // "Attempted:" introduces what follows; other lines are parts of a list.
        let text =
            lines
                .iter()
                .skip(1)
                .fold(lines.first().cloned().unwrap_or_default(), |acc, l| {
                    let sep = if acc.ends_with(':') { " " } else { "; " };
                    acc + sep + l
                });
        // Wrappers often repeat their source's text.
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The wait before retry `attempt` (1, 2, ...): `first`, doubling per attempt up to `cap`,
/// plus up to 50% jitter so that parallel retries spread out.
pub fn backoff(
    attempt: u32,
    first: std::time::Duration,
    cap: std::time::Duration,
) -> std::time::Duration {
    let base = first
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(cap);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_bounded() {
        let (first, cap) = (Duration::from_millis(400), Duration::from_secs(5));
        let one = super::backoff(1, first, cap);
        assert!(one >= first && one <= Duration::from_millis(600), "{one:?}");
        let two = super::backoff(2, first, cap);
        assert!(two >= Duration::from_millis(800), "{two:?}");
        for attempt in 1..40 {
            assert!(super::backoff(attempt, first, cap) <= Duration::from_millis(7_500));
        }
    }
}
