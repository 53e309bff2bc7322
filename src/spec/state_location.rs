//! Where a state is kept: a local path (the default) or an object in a cloud's storage,
//! `s3://BUCKET/KEY`, `gs://BUCKET/OBJECT` or `azblob://ACCOUNT/CONTAINER/BLOB`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The default location: a local file beside the spec.
pub const DEFAULT: &str = "state/idplan.state.json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    Local(PathBuf),
    S3 {
        bucket: String,
        key: String,
    },
    Gcs {
        bucket: String,
        object: String,
    },
    AzBlob {
        account: String,
        container: String,
        blob: String,
    },
}

impl Default for StateLocation {
    fn default() -> Self {
        StateLocation::Local(PathBuf::from(DEFAULT))
    }
}

impl StateLocation {
    /// Reads a path or a URL; the error says what a valid one looks like.
    pub fn parse(text: &str) -> Result<StateLocation, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("a state location is a path or a URL, not empty".into());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return match text.split_once(':') {
                Some((scheme, _)) if shape_of(scheme).is_some() => Err(format!(
                    "state location `{text}`: `{scheme}:` is not followed by `//`; expected {} \
                     (or a local path: `./{text}`)",
                    shape_of(scheme).unwrap_or_default()
                )),
                _ => Ok(StateLocation::Local(PathBuf::from(text))),
            };
        };
        let parts: Vec<&str> = rest.splitn(3, '/').collect();
        let bad = |shape: &str, why: &str| {
            Err(format!(
                "state location `{text}`: {why}; expected {shape} (or a local path)"
            ))
        };
        match scheme {
            "s3" | "gs" => {
                let shape = shape_of(scheme).unwrap_or_default();
                let (bucket, name) = match rest.split_once('/') {
                    Some((b, n)) => (b, n),
                    None => return bad(shape, "no object name after the bucket"),
                };
                if !valid_bucket(bucket) {
                    return bad(
                        shape,
                        &format!(
                            "`{bucket}` is not a bucket name (3-63 lower-case letters, digits, \
                             `.`, `-` and `_`)"
                        ),
                    );
                }
                if let Some(why) = invalid_object(name) {
                    return bad(shape, why);
                }
                let (bucket, name) = (bucket.to_string(), name.to_string());
                Ok(if scheme == "s3" {
                    StateLocation::S3 { bucket, key: name }
                } else {
                    StateLocation::Gcs {
                        bucket,
                        object: name,
                    }
                })
            }
            "azblob" => {
                let shape = shape_of(scheme).unwrap_or_default();
                let [account, container, blob] = parts[..] else {
                    return bad(shape, "it needs an account, a container and a blob name");
                };
                if !(3..=24).contains(&account.len())
                    || !account
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return bad(
                        shape,
                        &format!(
                            "`{account}` is not a storage account name (3-24 lower-case letters \
                             and digits)"
                        ),
                    );
                }
                if !valid_container(container) {
                    return bad(
                        shape,
                        &format!(
                            "`{container}` is not a container name (3-63 lower-case letters, \
                             digits and single `-`)"
                        ),
                    );
                }
                if let Some(why) = invalid_object(blob) {
                    return bad(shape, why);
                }
                Ok(StateLocation::AzBlob {
                    account: account.into(),
                    container: container.into(),
                    blob: blob.into(),
                })
            }
            other => Err(format!(
                "state location `{text}`: unknown scheme `{other}://`; expected s3://BUCKET/KEY, \
                 gs://BUCKET/OBJECT, azblob://ACCOUNT/CONTAINER/BLOB or a local path"
            )),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, StateLocation::Local(_))
    }
}

impl FromStr for StateLocation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        StateLocation::parse(s)
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::Local(path) => write!(f, "{}", path.display()),
            StateLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            StateLocation::Gcs { bucket, object } => write!(f, "gs://{bucket}/{object}"),
            StateLocation::AzBlob {
                account,
                container,
                blob,
            } => write!(f, "azblob://{account}/{container}/{blob}"),
        }
    }
}

/// The form a location of `scheme` takes; `None` for a scheme that is not a store's.
fn shape_of(scheme: &str) -> Option<&'static str> {
    match scheme {
        "s3" => Some("s3://BUCKET/KEY"),
        "gs" => Some("gs://BUCKET/OBJECT"),
        "azblob" => Some("azblob://ACCOUNT/CONTAINER/BLOB"),
        _ => None,
    }
}

fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
        })
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn invalid_object(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.ends_with('/') {
        Some("no object name after the bucket (or container)")
    } else if name.len() > 1000 {
        Some("the object name is longer than 1,000 characters")
    } else if name.chars().any(char::is_control) {
        Some("the object name holds a control character")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls() {
        // A path that only looks like a scheme once written as a path.
        assert_eq!(
            StateLocation::parse("./s3:/team-state").unwrap(),
            StateLocation::Local("./s3:/team-state".into())
        );
        assert_eq!(
            StateLocation::parse("c:/state.json").unwrap(),
            StateLocation::Local("c:/state.json".into())
        );
        assert_eq!(
            StateLocation::parse("state/x.json").unwrap(),
            StateLocation::Local("state/x.json".into())
        );
        assert_eq!(
            StateLocation::parse("s3://acme-state/idplan/prod.json").unwrap(),
            StateLocation::S3 {
                bucket: "acme-state".into(),
                key: "idplan/prod.json".into()
            }
        );
        let gs = StateLocation::parse("gs://acme-state/prod.json").unwrap();
        assert_eq!(gs.to_string(), "gs://acme-state/prod.json");
        let az = StateLocation::parse("azblob://acme/tfstate/idplan/prod.json").unwrap();
        assert_eq!(az.to_string(), "azblob://acme/tfstate/idplan/prod.json");
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        for (text, expect) in [
            ("s3://acme-state", "no object name"),
            ("s3://Acme/k", "not a bucket name"),
            ("gs://acme-state/", "no object name"),
            (
                "azblob://acme/tfstate",
                "needs an account, a container and a blob",
            ),
            ("azblob://ACME/tfstate/x", "not a storage account name"),
            ("azblob://acme/t--s/x", "not a container name"),
            ("ftp://host/x", "unknown scheme `ftp://`"),
            (
                "s3:/team-state",
                "`s3:` is not followed by `//`; expected s3://BUCKET/KEY (or a local path: \
                 `./s3:/team-state`)",
            ),
            (
                "gs:/bucket/obj",
                "`gs:` is not followed by `//`; expected gs://BUCKET/OBJECT",
            ),
            (
                "azblob:/x",
                "`azblob:` is not followed by `//`; expected azblob://ACCOUNT/CONTAINER/BLOB",
            ),
            ("s3:team-state/k", "expected s3://BUCKET/KEY"),
            ("", "not empty"),
        ] {
            let err = StateLocation::parse(text).unwrap_err();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }
}
