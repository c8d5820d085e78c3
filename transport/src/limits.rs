//! Bounds on what reading an image may cost, whatever the image claims.
//!
//! Sizes in descriptors and tar headers are claims, not facts: nothing is
//! allocated from them, and every document is read up to a limit. Each
//! limit has a default and a flag; a limit that is hit is a refusal that
//! names both.

use crate::TransportError;

/// `--max-manifest-size`: index.json, manifests, indexes and configs.
pub const MAX_MANIFEST_SIZE_FLAG: &str = "--max-manifest-size";
/// `--max-index-depth`: indexes nested in indexes.
pub const MAX_INDEX_DEPTH_FLAG: &str = "--max-index-depth";
/// `--max-index-manifests`: entries of one index.
pub const MAX_INDEX_MANIFESTS_FLAG: &str = "--max-index-manifests";
/// `--max-referrers`: referrers listed for one manifest.
pub const MAX_REFERRERS_FLAG: &str = "--max-referrers";

/// Limits on the documents of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest index.json, index, manifest or config, in bytes. Default
    /// 4 MiB: the distribution registry refuses larger manifests.
    pub max_document_size: u64,
    /// Deepest nesting of indexes below the top (index → index →
    /// manifest is depth 2). Default 4.
    pub max_index_depth: usize,
    /// Most entries one index may list. Default 1024: a multi-platform
    /// supervisor image has a handful, with attestations a few more.
    pub max_index_manifests: usize,
    /// Most referrers (SBOMs, signatures) one manifest may have listed.
    /// Default 64: the supervisor image has one SBOM per platform, and
    /// each listed referrer may cost a manifest read.
    pub max_referrers: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_document_size: 4 * 1024 * 1024,
            max_index_depth: 4,
            max_index_manifests: 1024,
            max_referrers: 64,
        }
    }
}

impl ReadLimits {
    /// Refuses a document of `size` bytes (read or declared) over the limit.
    pub fn check_document(&self, what: &str, size: u64) -> Result<(), TransportError> {
        if size > self.max_document_size {
            return Err(TransportError::Limit {
                what: format!("{what} size"),
                actual: format!("{size} bytes"),
                limit: format!("{} bytes", self.max_document_size),
                flag: MAX_MANIFEST_SIZE_FLAG,
            });
        }
        Ok(())
    }
}

impl ReadLimits {
    /// Refuses a listing of `count` referrers of `subject` over the limit,
    /// before any of them is read.
    pub fn check_referrers(&self, subject: &str, count: usize) -> Result<(), TransportError> {
        if count > self.max_referrers {
            return Err(TransportError::Limit {
                what: format!("the number of referrers listed for {subject}"),
                actual: if count == self.max_referrers + 1 {
                    format!("more than {}", self.max_referrers)
                } else {
                    count.to_string()
                },
                limit: self.max_referrers.to_string(),
                flag: MAX_REFERRERS_FLAG,
            });
        }
        Ok(())
    }
}

/// Reads a document of at most the document limit from `reader`; more is
/// a refusal naming `what`. The buffer grows with what arrives, never with
/// what was declared.
pub fn read_bounded(
    reader: &mut dyn std::io::Read,
    what: &str,
    limits: &ReadLimits,
    on_io: impl FnOnce(std::io::Error) -> TransportError,
) -> Result<Vec<u8>, TransportError> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    reader
        .take(limits.max_document_size.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(on_io)?;
    limits.check_document(what, bytes.len() as u64)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_over_the_limit_are_refused_without_reading_them_all() {
        let limits = ReadLimits {
            max_document_size: 10,
            ..ReadLimits::default()
        };
        let mut endless = std::io::repeat(b'x');
        let err = read_bounded(&mut endless, "index.json", &limits, |err| {
            TransportError::Missing(err.to_string())
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("index.json size is 11 bytes"), "{err}");
        assert!(err.contains(MAX_MANIFEST_SIZE_FLAG), "{err}");
        let ok = read_bounded(&mut &b"0123456789"[..], "x", &limits, |err| {
            TransportError::Missing(err.to_string())
        })
        .unwrap();
        assert_eq!(ok.len(), 10);
    }
}
