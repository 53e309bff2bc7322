//! A state in Google Cloud Storage.

use super::store::Store;
use crate::error::{Error, Result};

pub enum GcsStore {}

impl GcsStore {
    pub fn new(_bucket: &str, _object: &str, url: String) -> Result<Box<dyn Store>> {
        Err(Error::user(format!("state {url}: TODO")))
    }
}
