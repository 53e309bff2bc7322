//! The HTTP transport of the REST drivers (Azure Resource Manager, the Google APIs): bearer
//! tokens, one timeout, retries of throttling, server errors and lost connections with jittered
//! backoff (`Retry-After` honoured), and the cloud's error body read into a [`Failure`] that
//! becomes an error naming the resource, the API and the cloud's own message.

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
        }
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

    pub fn into_error(self, resource: &str, api: &'static str) -> Error {
        let exists = self
            .code
            .as_deref()
            .is_some_and(|code| EXISTS_CODES.contains(&code));
        Error::Cloud {
            resource: resource.to_string(),
            api,
            message: self.message,
        }
        .exists_if(exists)
    }
}

pub struct Rest {
    http: reqwest::Client,
    tokens: Box<dyn TokenSource>,
    retries: Retries,
    describe: Describe,
}

impl Rest {
    pub fn new(tokens: Box<dyn TokenSource>, retries: Retries, describe: Describe) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| Error::internal(format!("the HTTP client does not build: {e}")))?;
        Ok(Rest {
            http,
            tokens,
            retries,
            describe,
        })
    }

    /// Sends one request, retrying throttling, server errors, lost connections and the
    /// request's own transient code. Any status other than 2xx is a [`Failure`].
    pub async fn send(&self, req: &Request<'_>) -> Result<Response, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            crate::stats::count(req.stat);
            if attempt > 1 {
                crate::stats::count_retry();
            }
            let token = self.tokens.token().await.map_err(Failure::unanswered)?;
            crate::pace::turn().await;
            let mut request = self
                .http
                .request(req.method.clone(), req.url)
                .header("accept", "application/json");
            if !token.is_empty() {
                request = request.bearer_auth(token);
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
            let last = attempt >= self.retries.attempts;
            let answer = match request.send().await {
                Ok(response) => {
                    let (status, headers) = (response.status(), response.headers().clone());
                    response.bytes().await.map(|b| (status, headers, b))
                }
                Err(e) => Err(e),
            };
            let wait = match answer {
                Err(e) if last => return Err(Failure::unanswered(super::causes(&e))),
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
                    let failure = failure(self.describe, status, &bytes);
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
            tokio::time::sleep(wait.unwrap_or_else(|| super::backoff(attempt, first, cap))).await;
        }
    }
}

/// A failed answer: the cloud's error body, worded by the cloud's driver.
pub fn failure(describe: Describe, status: StatusCode, bytes: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(bytes);
    let json: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let error = &json["error"];
    let code = error["code"].as_str().or_else(|| error["status"].as_str());
    let body = ErrorBody {
        code,
        message: error["message"].as_str(),
        text: &text,
    };
    Failure {
        status: Some(status),
        code: code.map(str::to_string),
        message: describe(status, &body),
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
pub fn answer<T: DeserializeOwned>(body: Value, what: &str, api: &'static str) -> Result<T> {
    // An empty answer reads as an empty object, and a null field as an absent one: every
    // field the cloud left out takes its default.
    let mut body = match body {
        Value::Null => Value::Object(serde_json::Map::new()),
        body => body,
    };
    drop_nulls(&mut body);
    serde_json::from_value(body).map_err(|e| Error::Cloud {
        resource: what.to_string(),
        api,
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
