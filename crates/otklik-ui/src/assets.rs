//! The embedded browser assets (see `build.rs`): served under a name that carries their
//! content hash, so they can be cached for a year.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::UiError;

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The name pages ask for (`app.js`).
    pub name: &'static str,
    /// The name it is served under (`app.3f2a1b9c0d.js`).
    pub hashed: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The URL of asset `name`; an unknown name is a programming error caught by the tests.
pub fn url(name: &str) -> String {
    ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .map(|asset| format!("/assets/{}", asset.hashed))
        .unwrap_or_else(|| format!("/assets/missing/{name}"))
}

/// `GET /assets/{name}`: only hashed names are served, and they never change.
pub async fn serve(Path(name): Path<String>) -> Result<Response, UiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.hashed == name)
        .ok_or(UiError::NotFound)?;
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_under_a_hashed_name() {
        for name in ["htmx.min.js", "app.js", "app.css", "favicon.svg"] {
            let url = url(name);
            assert!(!url.contains("missing"), "{name} is not embedded");
            let asset = ASSETS.iter().find(|asset| asset.name == name).unwrap();
            assert_ne!(asset.hashed, asset.name);
            assert!(!asset.bytes.is_empty());
        }
        let htmx = ASSETS.iter().find(|a| a.name == "htmx.min.js").unwrap();
        assert!(
            std::str::from_utf8(htmx.bytes).unwrap().contains("2.0.11"),
            "htmx 2.0.11 from the lockfile"
        );
    }
}
