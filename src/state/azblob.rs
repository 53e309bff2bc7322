//! A state in Azure Blob Storage.

use super::store::Store;
use crate::error::{Error, Result};

pub enum AzBlobStore {}

impl AzBlobStore {
    pub fn new(_a: &str, _c: &str, _b: &str, url: String) -> Result<Box<dyn Store>> {
        Err(Error::user(format!("state {url}: TODO")))
    }
}
