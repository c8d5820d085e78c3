//! One registry conversation for one repository: every operation the
//! project's tools perform (authenticate, pull a manifest or a blob, check
//! and push blobs, push a manifest, resolve a digest), each bounded in time,
//! retried when the failure is transient, and reported in one line that
//! names the registry, the reference and the operation.
//!
//! Authentication (the registry's challenge and the token exchange) is done
//! here too, as oci-client does it, because oci-client reads the token
//! service's answer whole, however large or endless. The requests are sent
//! with the reqwest
//! that oci-client is built on, because oci-client 0.18 hides what bounding
//! and retrying them needs: it drops response headers from its errors (no
//! `Retry-After`), reads a manifest body whole before any size check,
//! offers no way to watch an upload's progress or stall, and reports a
//! failed upload step without saying whether a new session is needed.
//!
//! Reading never allocates from a size the registry or a manifest declares:
//! manifests are read up to a limit, blobs are streamed to the caller.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use oci_client::Reference;
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, LOCATION,
    RANGE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};

use crate::digest::ContentDigest;
use crate::progress::{self, Progress};
use crate::retry::{
    Attempts, ERROR_BODY_LIMIT, Failure, Next, manifest_blobs_lagging, parse_retry_after,
};
use crate::settings::NetworkSettings;
use crate::{RegistryError, RegistryOptions, ResolvedAuth, resolve_auth};
use openshell_contract::digest::{Digester, sha256_digest};

/// Manifest types asked for: OCI and Docker, single and multi-platform.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_LIST_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
];

/// The largest manifest registries accept (distribution's and most
/// others' limit), and the limit [`RegistryClient::resolve_digest`] reads a
/// manifest with when the registry gives no digest header.
pub const DEFAULT_MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// Size of the pieces an upload body is handed to the connection in: each
/// one taken counts as progress for the read timeout.
const UPLOAD_PIECE: usize = 64 * 1024;

/// Largest token service answer read: a token is a few kilobytes (a JWT),
/// so a larger answer is not one.
pub const TOKEN_RESPONSE_LIMIT: u64 = 1024 * 1024;

/// The header in which registries give a manifest's or blob's digest.
const DIGEST_HEADER: &str = "docker-content-digest";

/// What a registry operation is for: pulling needs read access, pushing
/// write access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read.
    Pull,
    /// Read and write.
    Push,
}

/// A manifest (or index) as the registry served it.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// Its bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// Its digest, computed from the bytes (and checked against the digest
    /// asked for and the registry's `Docker-Content-Digest`).
    pub digest: String,
    /// The media type the document states, when it states one.
    pub media_type: Option<String>,
    /// The media type the registry served it as (its `Content-Type`,
    /// without parameters), when it gave one.
    pub content_type: Option<String>,
}

/// Credentials as negotiated for one kind of access.
#[derive(Clone)]
struct Authorization {
    access: Access,
    header: Option<HeaderValue>,
}

/// A client for one repository of one registry.
///
/// Every operation has the settings' deadline (a blob transfer more, in
/// proportion to the bytes that arrive), ends an attempt that makes no
/// progress for the read timeout, and retries timeouts, broken
/// connections, 408, 429 (after its `Retry-After`, capped at a minute) and
/// 5xx with exponential back-off and jitter, up to the settings' attempts;
/// a stall is retried only while a whole read timeout still fits before
/// the deadline. Other 4xx answers are final. Operations take `&self`: one
/// client can run many at once. It is the only registry client in the
/// workspace: build-image, the transport's `docker://` and the driver's
/// pin all go through it.
pub struct RegistryClient {
    reference: Reference,
    auth: ResolvedAuth,
    /// The requests.
    http: reqwest::Client,
    /// `http://REGISTRY` or `https://REGISTRY`.
    base: Url,
    settings: NetworkSettings,
    progress: bool,
    authorization: Mutex<Option<Authorization>>,
}

impl RegistryClient {
    /// A client for `reference`'s repository, with credentials resolved
    /// from `options` (explicit ones, else the usual auth files) and the
    /// network settings from `options`, the environment and the defaults.
    pub fn new(reference: &Reference, options: &RegistryOptions) -> Result<Self, RegistryError> {
        let auth = resolve_auth(reference, options)?;
        let settings = NetworkSettings::resolve(options)?;
        let other = |detail: String| RegistryError::Other {
            registry: reference.registry().to_string(),
            reference: reference.whole(),
            detail,
        };
        let scheme = if options.plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{}", reference.resolve_registry()))
            .map_err(|error| other(format!("the registry is not a host: {error}")))?;
        crate::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(concat!("openshell-registry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| other(format!("could not set up HTTP: {error}")))?;
        Ok(Self {
            reference: reference.clone(),
            auth,
            http,
            base,
            settings,
            progress: progress::wanted(options.quiet),
            authorization: Mutex::new(None),
        })
    }

    /// The reference the client was made for.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// Which credentials are used, and where they came from.
    pub fn credentials(&self) -> &str {
        &self.auth.source
    }

    /// The timeouts and attempts in force.
    pub fn settings(&self) -> &NetworkSettings {
        &self.settings
    }

    /// The same repository, at `digest`.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            digest.to_string(),
        )
    }

    /// Logs in for `access`: a wrong password fails here, before any
    /// transfer.
    pub async fn authenticate(&self, access: Access) -> Result<(), RegistryError> {
        let operation = match access {
            Access::Pull => "authenticate for pull",
            Access::Push => "authenticate for push",
        };
        let attempts = self.attempts(operation.to_string(), &self.reference, None);
        loop {
            match attempts.run(self.authorization(&attempts, access)).await {
                Ok(_) => return Ok(()),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    /// The manifest or index at `reference` (a tag or digest of this
    /// repository), refused when larger than `limit` bytes or when its
    /// digest is not the one asked for (or the one the registry announces).
    pub async fn pull_manifest(
        &self,
        reference: &Reference,
        limit: u64,
    ) -> Result<PulledManifest, RegistryError> {
        let attempts = self.attempts("pull manifest".to_string(), reference, None);
        loop {
            match attempts
                .run(self.manifest_attempt(&attempts, reference, limit))
                .await
            {
                Ok(manifest) => return Ok(manifest),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    /// The referrers index of the manifest `subject_digest` through the
    /// distribution spec's referrers API (`GET /v2/NAME/referrers/DIGEST`),
    /// read up to `limit` bytes; `None` when the registry answers 404 (it
    /// has no such API, as distribution 2.8, and the caller falls back to
    /// the tag schema).
    pub async fn referrers(
        &self,
        subject_digest: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let subject = self.at_digest(subject_digest);
        let attempts = self.attempts("list referrers".to_string(), &subject, None);
        loop {
            match attempts
                .run(self.referrers_attempt(&attempts, subject_digest, limit))
                .await
            {
                Ok(listing) => return Ok(listing),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    /// Streams the blob `digest` to `sink`, chunk by chunk, in order; each
    /// byte reaches the sink once, also when a broken or stalled transfer is
    /// resumed (`Range`). Refused once more than `limit` bytes arrive (or
    /// the registry announces more). When every byte is in, the blob is
    /// checked against `digest`. On any error (a digest mismatch included)
    /// what the sink received must be discarded. Returns the number of
    /// bytes.
    pub async fn pull_blob(
        &self,
        digest: &str,
        limit: u64,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<u64, RegistryError> {
        let operation = format!("pull blob {digest}");
        let parsed = self.parse_digest(&operation, digest)?;
        let progress = Arc::new(Progress::new(
            self.progress,
            format!("pull {}", short(digest)),
            None,
        ));
        let attempts = self.attempts(operation, &self.reference, Some(progress.clone()));
        let mut state = BlobPull {
            digest: parsed.clone(),
            limit,
            received: 0,
            hasher: parsed.hasher(),
            total: None,
            credited: 0,
            progress,
        };
        let outcome = loop {
            match attempts
                .run(self.blob_attempt(&attempts, &mut state, sink))
                .await
            {
                Ok(()) => break Ok(()),
                Err(failure) => {
                    if let Err(error) = self.after(&attempts, failure).await {
                        break Err(error);
                    }
                }
            }
        };
        // The progress line ends before any error is shown below it.
        state.progress.finish();
        outcome?;
        let actual = state.hasher.finish();
        if actual != parsed.as_str() {
            return Err(RegistryError::DigestMismatch {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(state.received)
    }

    /// Whether the repository already has the blob `digest`.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        let operation = format!("check blob {digest}");
        self.parse_digest(&operation, digest)?;
        let attempts = self.attempts(operation, &self.reference, None);
        loop {
            match attempts.run(self.exists_attempt(&attempts, digest)).await {
                Ok(exists) => return Ok(exists),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    /// Uploads a blob. `bytes` are checked against `digest` first, and never
    /// sent when they do not match. Each attempt opens a new upload session,
    /// sends the whole blob and commits it under `digest`; the registry
    /// checks the digest of what it received, so a partly sent blob is never
    /// committed, and an attempt that fails anywhere is started over in a new
    /// session.
    pub async fn push_blob(&self, digest: &str, bytes: Bytes) -> Result<(), RegistryError> {
        let operation = format!("push blob {digest}");
        let parsed = self.parse_digest(&operation, digest)?;
        let mut hasher = parsed.hasher();
        hasher.update(&bytes);
        let actual = hasher.finish();
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                registry: self.reference.registry().to_string(),
                reference: self.reference.whole(),
                operation: format!("{operation} (checked before sending)"),
                expected: digest.to_string(),
                actual,
            });
        }
        let progress = Arc::new(Progress::new(
            self.progress,
            format!("push {}", short(digest)),
            Some(bytes.len() as u64),
        ));
        let attempts = self
            .attempts(operation, &self.reference, Some(progress.clone()))
            .with_deadline(self.settings.deadline_for_size(bytes.len() as u64));
        let outcome = loop {
            match attempts
                .run(self.upload_attempt(&attempts, digest, &bytes))
                .await
            {
                Ok(()) => break Ok(()),
                Err(failure) => {
                    if let Err(error) = self.after(&attempts, failure).await {
                        break Err(error);
                    }
                }
            }
        };
        // The progress line ends before any error is shown below it.
        progress.finish();
        outcome
    }

    /// Uploads a manifest or index to `reference` (a tag or digest of this
    /// repository). Retried like any request: a manifest PUT is idempotent.
    pub async fn push_manifest(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let attempts = self.attempts("push manifest".to_string(), reference, None);
        let content_type =
            HeaderValue::from_str(media_type).map_err(|error| RegistryError::Other {
                registry: reference.registry().to_string(),
                reference: reference.whole(),
                detail: format!("push manifest: media type {media_type:?}: {error}"),
            })?;
        let body = Bytes::from(bytes);
        loop {
            match attempts
                .run(self.manifest_push_attempt(&attempts, reference, &content_type, &body))
                .await
            {
                Ok(()) => return Ok(()),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    /// The digest the registry gives for `reference` now (its
    /// `Docker-Content-Digest`, or the digest of the manifest it serves). A
    /// reference pinned by digest must resolve to that digest.
    pub async fn resolve_digest(&self, reference: &Reference) -> Result<String, RegistryError> {
        let attempts = self.attempts("resolve digest".to_string(), reference, None);
        loop {
            match attempts
                .run(self.resolve_attempt(&attempts, reference))
                .await
            {
                Ok(digest) => return Ok(digest),
                Err(failure) => self.after(&attempts, failure).await?,
            }
        }
    }

    // ---- one attempt of each operation ----
    //
    // Each is a hand-written request rather than the oci-client operation
    // of the same name; the comment above each says what oci-client 0.18
    // lacks for it. Common to all: oci-client reads an error answer's body
    // whole (`Response::bytes`, no bound) and drops its `Retry-After`, and
    // keeps its own token cache, which the bounded token exchange below
    // could not refresh after a 401.

    /// oci-client's `pull_manifest_raw` reads the body whole before any
    /// size check (no bound) and returns neither the `Content-Type` nor the
    /// `Docker-Content-Digest` header that the checks here compare.
    async fn manifest_attempt(
        &self,
        attempts: &Attempts,
        reference: &Reference,
        limit: u64,
    ) -> Result<PulledManifest, Failure> {
        let authorization = self.authorization(attempts, Access::Pull).await?;
        let url = self.manifest_url(reference)?;
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, ACCEPTED_MANIFEST_TYPES.join(", "));
        let mut response = self.send(attempts, request, &url, &authorization).await?;
        if response.status() != StatusCode::OK {
            return Err(self.status_failure(attempts, response).await);
        }
        let too_large = |what: String| {
            Failure::fatal(RegistryError::TooLarge {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                what,
                limit,
            })
        };
        if let Some(length) = response.content_length().filter(|length| *length > limit) {
            return Err(too_large(format!("the manifest ({length} bytes)")));
        }
        let announced = header_text(&response, DIGEST_HEADER);
        let content_type = header_text(&response, CONTENT_TYPE.as_str()).map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        });
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            attempts.touch();
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large(format!("the manifest (over {limit} bytes)")));
            }
            body.extend_from_slice(&chunk);
        }
        let digest = self.check_manifest_digest(attempts, reference, &body, announced)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|value| {
                value
                    .get("mediaType")
                    .and_then(|media_type| media_type.as_str())
                    .map(str::to_string)
            });
        Ok(PulledManifest {
            bytes: body,
            digest,
            media_type,
            content_type,
        })
    }

    /// oci-client's `pull_referrers` reads the listing whole (no bound),
    /// and on a 404 goes on to the tag schema itself, also unbounded; the
    /// transport does that fallback through [`Self::pull_manifest`].
    async fn referrers_attempt(
        &self,
        attempts: &Attempts,
        subject_digest: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let authorization = self.authorization(attempts, Access::Pull).await?;
        let url = self.join(&format!(
            "/v2/{}/referrers/{subject_digest}",
            self.reference.repository()
        ))?;
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, OCI_IMAGE_INDEX_MEDIA_TYPE);
        let mut response = self.send(attempts, request, &url, &authorization).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if response.status() != StatusCode::OK {
            return Err(self.status_failure(attempts, response).await);
        }
        let too_large = || {
            Failure::fatal(RegistryError::TooLarge {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                what: format!("the referrers listing (over {limit} bytes)"),
                limit,
            })
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            attempts.touch();
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// The digest of a manifest's bytes, checked against the digest the
    /// reference pins (hashed with its algorithm) and the one the registry
    /// announced.
    fn check_manifest_digest(
        &self,
        attempts: &Attempts,
        reference: &Reference,
        body: &[u8],
        announced: Option<String>,
    ) -> Result<String, Failure> {
        let mismatch = |expected: &str, actual: &str| {
            Failure::fatal(RegistryError::DigestMismatch {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                expected: expected.to_string(),
                actual: actual.to_string(),
            })
        };
        let actual = match reference.digest() {
            Some(pinned) => {
                let pinned = ContentDigest::parse(pinned).map_err(|error| attempts.other(error))?;
                let mut hasher = pinned.hasher();
                hasher.update(body);
                let actual = hasher.finish();
                if actual != pinned.as_str() {
                    return Err(mismatch(pinned.as_str(), &actual));
                }
                actual
            }
            None => sha256_digest(body),
        };
        // The registry's own digest must describe the same bytes; one of
        // another algorithm cannot be compared and is ignored.
        if let Some(announced) = announced {
            let same_algorithm = announced.split(':').next() == actual.split(':').next();
            if same_algorithm && announced != actual {
                return Err(mismatch(&announced, &actual));
            }
        }
        Ok(actual)
    }

    /// oci-client's `pull_blob_stream_partial` streams and resumes, but it
    /// exposes neither the `Content-Range` of a resumed answer (a registry
    /// resuming from another offset must be caught) nor the chunks before
    /// they reach its stream's consumer, which is where the deadline grows
    /// with the bytes that arrived.
    async fn blob_attempt(
        &self,
        attempts: &Attempts,
        state: &mut BlobPull,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<(), Failure> {
        let authorization = self.authorization(attempts, Access::Pull).await?;
        let url = self.blob_url(state.digest.as_str())?;
        let mut request = self.http.get(url.clone());
        if state.received > 0 {
            request = request.header(RANGE, format!("bytes={}-", state.received));
        }
        let mut response = self.send(attempts, request, &url, &authorization).await?;
        // Bytes of this response the sink already has (a resumed transfer
        // that the registry answers from an earlier offset, or from 0).
        let (mut skip, total) = match response.status() {
            StatusCode::OK => (state.received, response.content_length()),
            StatusCode::PARTIAL_CONTENT if state.received > 0 => {
                let range = header_text(&response, CONTENT_RANGE.as_str()).unwrap_or_default();
                let Some((start, total)) = parse_content_range(&range) else {
                    return Err(attempts.other(format!(
                        "the registry resumed the transfer with an unusable Content-Range '{range}'"
                    )));
                };
                if start > state.received {
                    return Err(attempts.other(format!(
                        "the registry resumed at byte {start}, past the {} bytes received",
                        state.received
                    )));
                }
                (state.received - start, total)
            }
            _ => return Err(self.status_failure(attempts, response).await),
        };
        if let Some(total) = total {
            if total > state.limit {
                return Err(self.blob_too_large(attempts, state, format!("{total} bytes")));
            }
            if state.total.is_none() {
                state.total = Some(total);
                state.progress.set_total(total);
            }
        }
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            attempts.touch();
            let mut piece = &chunk[..];
            if skip > 0 {
                let skipped = skip.min(piece.len() as u64);
                piece = &piece[skipped as usize..];
                skip -= skipped;
            }
            if piece.is_empty() {
                continue;
            }
            if state.received + piece.len() as u64 > state.limit {
                return Err(self.blob_too_large(
                    attempts,
                    state,
                    format!("over {} bytes", state.limit),
                ));
            }
            state.hasher.update(piece);
            sink(piece).map_err(|error| {
                attempts.other(format!("the receiver of the blob failed: {error}"))
            })?;
            state.received += piece.len() as u64;
            state.progress.update(state.received);
            // The deadline grows with the bytes that arrive, not with the
            // size announced: a registry announcing a terabyte and sending a
            // trickle would otherwise get days. A transfer at least as fast
            // as the floor rate never meets it.
            let credit = deadline_millis(state.received) - deadline_millis(state.credited);
            if credit > 0 {
                attempts
                    .activity
                    .extend(std::time::Duration::from_millis(credit));
                state.credited = state.received;
            }
        }
        if skip > 0 {
            return Err(attempts.other(format!(
                "the registry served fewer bytes than the {} already received",
                state.received
            )));
        }
        if let Some(total) = state.total
            && state.received < total
        {
            return Err(Failure::Transport {
                reason: format!("the body ended after {} of {total} bytes", state.received),
                connect: false,
                retryable: true,
            });
        }
        Ok(())
    }

    fn blob_too_large(&self, attempts: &Attempts, state: &BlobPull, size: String) -> Failure {
        Failure::fatal(RegistryError::TooLarge {
            registry: attempts.registry.clone(),
            reference: attempts.reference.clone(),
            operation: attempts.operation.clone(),
            what: format!("blob {} ({size})", state.digest),
            limit: state.limit,
        })
    }

    /// oci-client's `blob_exists` would fit (a HEAD, no body), but it
    /// authenticates from its own token cache; through the same request
    /// helper as the rest, a refused token is negotiated again here.
    async fn exists_attempt(&self, attempts: &Attempts, digest: &str) -> Result<bool, Failure> {
        let authorization = self.authorization(attempts, Access::Pull).await?;
        let url = self.blob_url(digest)?;
        let response = self
            .send(attempts, self.http.head(url.clone()), &url, &authorization)
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_failure(attempts, response).await),
        }
    }

    /// One upload: a new session (POST), the whole blob (PATCH), the commit
    /// under the digest (PUT). The same three steps as skopeo and podman.
    /// oci-client's `push_blob` does them too, but hides which step failed
    /// (a new session is needed after a failed PATCH) and takes the body
    /// whole, with no way to see the registry stop reading it (a stream).
    async fn upload_attempt(
        &self,
        attempts: &Attempts,
        digest: &str,
        bytes: &Bytes,
    ) -> Result<(), Failure> {
        let authorization = self.authorization(attempts, Access::Push).await?;
        let start = self.join(&format!(
            "/v2/{}/blobs/uploads/",
            self.reference.repository()
        ))?;
        let response = self
            .send(
                attempts,
                self.http.post(start.clone()).header(CONTENT_LENGTH, 0),
                &start,
                &authorization,
            )
            .await?;
        let mut location = self
            .location(attempts, response, StatusCode::ACCEPTED)
            .await?;
        if !bytes.is_empty() {
            let request = self
                .http
                .request(Method::PATCH, location.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, bytes.len())
                .body(self.upload_body(attempts, bytes));
            let response = self
                .send(attempts, request, &location, &authorization)
                .await?;
            location = self
                .location(attempts, response, StatusCode::ACCEPTED)
                .await?;
        }
        location.query_pairs_mut().append_pair("digest", digest);
        let request = self
            .http
            .put(location.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, 0);
        // The commit: the registry reads the whole blob back to check its
        // digest, and may copy it within its storage, before it answers.
        attempts
            .activity
            .touch_with_grace(processing_grace(bytes.len() as u64));
        let response = self
            .send(attempts, request, &location, &authorization)
            .await?;
        if !response.status().is_success() {
            return Err(self.status_failure(attempts, response).await);
        }
        Ok(())
    }

    /// The blob as a request body handed over in pieces, each one counting
    /// as progress: a registry that stops reading stalls the body, and the
    /// watchdog sees it.
    fn upload_body(&self, attempts: &Attempts, bytes: &Bytes) -> reqwest::Body {
        use futures_util::StreamExt;
        let activity = attempts.activity.clone();
        let progress = attempts.progress.clone();
        let bytes = bytes.clone();
        let len = bytes.len();
        let pieces = (0..len).step_by(UPLOAD_PIECE).map(move |start| {
            let end = (start + UPLOAD_PIECE).min(len);
            (bytes.slice(start..end), end)
        });
        let grace = processing_grace(len as u64);
        let stream = futures_util::stream::iter(pieces).map(move |(piece, end)| {
            if end == len {
                activity.touch_with_grace(grace);
            } else {
                activity.touch();
            }
            progress.update(end as u64);
            Ok::<Bytes, std::io::Error>(piece)
        });
        reqwest::Body::wrap_stream(stream)
    }

    /// oci-client's `push_manifest_raw` drops the error code that tells a
    /// registry still committing the blobs (`MANIFEST_BLOB_UNKNOWN`, worth
    /// another attempt) from a refusal, along with `Retry-After`.
    async fn manifest_push_attempt(
        &self,
        attempts: &Attempts,
        reference: &Reference,
        content_type: &HeaderValue,
        body: &Bytes,
    ) -> Result<(), Failure> {
        let authorization = self.authorization(attempts, Access::Push).await?;
        let url = self.manifest_url(reference)?;
        let request = self
            .http
            .put(url.clone())
            .header(CONTENT_TYPE, content_type.clone())
            .body(body.clone());
        let response = self.send(attempts, request, &url, &authorization).await?;
        if !response.status().is_success() {
            return Err(match self.status_failure(attempts, response).await {
                Failure::Status {
                    status,
                    retry_after,
                    detail,
                    ..
                } => Failure::Status {
                    transient: manifest_blobs_lagging(status, &detail),
                    status,
                    retry_after,
                    detail,
                },
                failure => failure,
            });
        }
        Ok(())
    }

    /// oci-client's `fetch_manifest_digest` falls back to reading the
    /// manifest whole when the HEAD has no digest header (no bound).
    async fn resolve_attempt(
        &self,
        attempts: &Attempts,
        reference: &Reference,
    ) -> Result<String, Failure> {
        let authorization = self.authorization(attempts, Access::Pull).await?;
        let url = self.manifest_url(reference)?;
        let request = self
            .http
            .head(url.clone())
            .header(ACCEPT, ACCEPTED_MANIFEST_TYPES.join(", "));
        let response = self.send(attempts, request, &url, &authorization).await?;
        if response.status() != StatusCode::OK {
            return Err(self.status_failure(attempts, response).await);
        }
        let Some(announced) = header_text(&response, DIGEST_HEADER) else {
            // No digest header: hash the manifest itself.
            return self
                .manifest_attempt(attempts, reference, DEFAULT_MANIFEST_LIMIT)
                .await
                .map(|manifest| manifest.digest);
        };
        let announced = ContentDigest::parse(&announced).map_err(|error| {
            attempts.other(format!("the registry's Docker-Content-Digest: {error}"))
        })?;
        if let Some(pinned) = reference.digest()
            && pinned.split(':').next() == announced.as_str().split(':').next()
            && pinned != announced.as_str()
        {
            return Err(Failure::fatal(RegistryError::DigestMismatch {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                expected: pinned.to_string(),
                actual: announced.to_string(),
            }));
        }
        Ok(announced.to_string())
    }

    // ---- authentication ----

    /// The credentials to send for `access`: cached, or negotiated now
    /// (following the registry's challenge: basic credentials, or a token
    /// from its token service, [`Self::token`]). Basic credentials are checked with
    /// `GET /v2/`, so that a wrong password fails before any transfer; a
    /// token service has checked them already.
    async fn authorization(
        &self,
        attempts: &Attempts,
        access: Access,
    ) -> Result<Authorization, Failure> {
        if let Some(cached) = self.cached_authorization(access) {
            return Ok(cached);
        }
        let token = self.token(attempts, access).await?;
        attempts.touch();
        let header = match (token, &self.auth.auth) {
            (Some(token), _) => Some(sensitive(&format!("Bearer {token}"))?),
            (None, RegistryAuth::Basic(username, password)) => {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(sensitive(&format!("Basic {encoded}"))?)
            }
            (None, _) => None,
        };
        let authorization = Authorization { access, header };
        if matches!(self.auth.auth, RegistryAuth::Basic(..)) {
            let url = self.join("/v2/")?;
            let response = self
                .send(attempts, self.http.get(url.clone()), &url, &authorization)
                .await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(Failure::Denied),
                _ => return Err(self.status_failure(attempts, response).await),
            }
        }
        if let Ok(mut cache) = self.authorization.lock() {
            *cache = Some(authorization.clone());
        }
        Ok(authorization)
    }

    /// A bearer token for `access`, when the registry's challenge (to an
    /// anonymous `GET /v2/`) names a token service: asked for with the
    /// basic credentials when there are some, as oci-client and docker do.
    /// `None` when the registry asks for no token. The answer is read up to
    /// [`TOKEN_RESPONSE_LIMIT`], chunk by chunk, each one counting as
    /// progress for the read timeout; the operation's deadline bounds the
    /// whole exchange.
    async fn token(&self, attempts: &Attempts, access: Access) -> Result<Option<String>, Failure> {
        let basic = match &self.auth.auth {
            RegistryAuth::Bearer(token) => return Ok(Some(token.clone())),
            RegistryAuth::Basic(username, password) => Some((username, password)),
            RegistryAuth::Anonymous => None,
        };
        let url = self.join("/v2/")?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(Failure::from_reqwest)?;
        attempts.touch();
        let Some(challenge) = header_text(&response, WWW_AUTHENTICATE.as_str()) else {
            return Ok(None);
        };
        // The body of the challenge is not needed: dropping the response
        // closes the connection instead of reading it.
        drop(response);
        let Some((realm, service)) = bearer_challenge(&challenge) else {
            return Ok(None);
        };
        let realm = Url::parse(&realm).map_err(|error| {
            attempts.other(format!(
                "the registry's token service {realm:?} is not a URL: {error}"
            ))
        })?;
        let scope = match access {
            Access::Pull => format!("repository:{}:pull", self.reference.repository()),
            Access::Push => format!("repository:{}:pull,push", self.reference.repository()),
        };
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut request = self.http.get(realm).query(&query);
        if let Some((username, password)) = basic {
            request = request.basic_auth(username, Some(password));
        }
        let mut response = request.send().await.map_err(Failure::from_reqwest)?;
        attempts.touch();
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Err(Failure::Denied),
            _ => return Err(self.status_failure(attempts, response).await),
        }
        let too_large = |size: String| {
            Failure::fatal(RegistryError::TooLarge {
                registry: attempts.registry.clone(),
                reference: attempts.reference.clone(),
                operation: attempts.operation.clone(),
                what: format!("the token service's answer ({size})"),
                limit: TOKEN_RESPONSE_LIMIT,
            })
        };
        if let Some(length) = response
            .content_length()
            .filter(|length| *length > TOKEN_RESPONSE_LIMIT)
        {
            return Err(too_large(format!("{length} bytes")));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(Failure::from_reqwest)? {
            attempts.touch();
            if (body.len() + chunk.len()) as u64 > TOKEN_RESPONSE_LIMIT {
                return Err(too_large(format!("over {TOKEN_RESPONSE_LIMIT} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|error| {
            attempts.other(format!(
                "the token service's answer is not a token (expected JSON with `token` or `access_token`): {error}"
            ))
        })?;
        match answer.token.or(answer.access_token) {
            Some(token) if !token.is_empty() => Ok(Some(token)),
            _ => Err(attempts.other(
                "the token service answered without a token (expected `token` or `access_token`)"
                    .to_string(),
            )),
        }
    }

    fn cached_authorization(&self, access: Access) -> Option<Authorization> {
        let cache = self.authorization.lock().ok()?;
        cache
            .as_ref()
            .filter(|cached| cached.access == access || cached.access == Access::Push)
            .cloned()
    }

    fn forget_authorization(&self) {
        if let Ok(mut cache) = self.authorization.lock() {
            *cache = None;
        }
    }

    // ---- requests ----

    fn attempts(
        &self,
        operation: String,
        reference: &Reference,
        progress: Option<Arc<Progress>>,
    ) -> Attempts {
        let progress =
            progress.unwrap_or_else(|| Arc::new(Progress::new(self.progress, String::new(), None)));
        Attempts::new(
            operation,
            reference.registry().to_string(),
            reference.whole(),
            self.auth.source.clone(),
            self.settings,
            self.settings.operation_timeout,
            progress,
        )
    }

    /// Decides on a failed attempt: back to the loop to try again, or the
    /// error to return.
    async fn after(&self, attempts: &Attempts, failure: Failure) -> Result<(), RegistryError> {
        match attempts.after(failure).await? {
            Next::Retry => Ok(()),
            Next::Reauthenticate => {
                self.forget_authorization();
                Ok(())
            }
        }
    }

    fn parse_digest(&self, operation: &str, digest: &str) -> Result<ContentDigest, RegistryError> {
        ContentDigest::parse(digest).map_err(|reason| RegistryError::Other {
            registry: self.reference.registry().to_string(),
            reference: self.reference.whole(),
            detail: format!("{operation}: {reason}"),
        })
    }

    /// Sends `request`, with the credentials when it goes to the registry
    /// itself (an upload `Location` or a redirect may point elsewhere, and
    /// credentials must not follow it there).
    async fn send(
        &self,
        attempts: &Attempts,
        request: RequestBuilder,
        url: &Url,
        authorization: &Authorization,
    ) -> Result<Response, Failure> {
        let request = match &authorization.header {
            Some(header) if same_origin(url, &self.base) => request.header(AUTHORIZATION, header),
            _ => request,
        };
        let response = request.send().await.map_err(Failure::from_reqwest)?;
        attempts.touch();
        Ok(response)
    }

    /// The failure for an unexpected answer: its status, `Retry-After`, and
    /// the registry's error codes and messages (read up to a bound).
    async fn status_failure(&self, attempts: &Attempts, mut response: Response) -> Failure {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        // A body that breaks off still leaves the status to report.
        while let Ok(Some(chunk)) = response.chunk().await {
            attempts.touch();
            let room = ERROR_BODY_LIMIT.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
        Failure::Status {
            status: status.as_u16(),
            retry_after,
            detail: error_detail(status, &body),
            transient: false,
        }
    }

    /// The `Location` of an upload step's answer, which must have
    /// `expected` status.
    async fn location(
        &self,
        attempts: &Attempts,
        response: Response,
        expected: StatusCode,
    ) -> Result<Url, Failure> {
        if response.status() != expected {
            return Err(self.status_failure(attempts, response).await);
        }
        let Some(location) = header_text(&response, LOCATION.as_str()) else {
            return Err(attempts.other(format!(
                "the registry answered {expected} without a Location for the upload"
            )));
        };
        // Relative locations are relative to the URL that was asked.
        response
            .url()
            .join(&location)
            .map_err(|error| attempts.other(format!("upload Location '{location}': {error}")))
    }

    fn join(&self, path: &str) -> Result<Url, Failure> {
        self.base.join(path).map_err(|error| {
            Failure::fatal(RegistryError::Other {
                registry: self.reference.registry().to_string(),
                reference: self.reference.whole(),
                detail: format!("cannot form a URL from '{path}': {error}"),
            })
        })
    }

    fn manifest_url(&self, reference: &Reference) -> Result<Url, Failure> {
        let target = reference.digest().or(reference.tag()).unwrap_or("latest");
        self.join(&format!(
            "/v2/{}/manifests/{target}",
            reference.repository()
        ))
    }

    fn blob_url(&self, digest: &str) -> Result<Url, Failure> {
        self.join(&format!(
            "/v2/{}/blobs/{digest}",
            self.reference.repository()
        ))
    }
}

/// How much longer than the read timeout a registry may take to answer
/// once it has a whole blob of `size` bytes: the time `size` takes at
/// [`BLOB_FLOOR_RATE`](crate::BLOB_FLOOR_RATE) (it hashes the blob and
/// stores it, on some registries by copying it within object storage).
fn processing_grace(size: u64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(size as f64 / crate::BLOB_FLOOR_RATE as f64)
}

/// What a blob pull carries from one attempt to the next.
struct BlobPull {
    digest: ContentDigest,
    limit: u64,
    /// Bytes handed to the sink so far (and hashed).
    received: u64,
    hasher: Digester,
    /// The blob's size, once a response told it.
    total: Option<u64>,
    /// Bytes received whose time at the floor rate has been added to the
    /// deadline.
    credited: u64,
    progress: Arc<Progress>,
}

/// Milliseconds `bytes` take at [`crate::BLOB_FLOOR_RATE`].
fn deadline_millis(bytes: u64) -> u64 {
    bytes.saturating_mul(1000) / crate::BLOB_FLOOR_RATE
}

fn sensitive(text: &str) -> Result<HeaderValue, Failure> {
    let mut value = HeaderValue::from_str(text).map_err(|_| Failure::Denied)?;
    value.set_sensitive(true);
    Ok(value)
}

fn same_origin(url: &Url, base: &Url) -> bool {
    url.scheme() == base.scheme()
        && url.host_str() == base.host_str()
        && url.port_or_known_default() == base.port_or_known_default()
}

/// The realm and service of the first `Bearer` challenge of a
/// `WWW-Authenticate` value (parsed as oci-client parses it).
fn bearer_challenge(value: &str) -> Option<(String, Option<String>)> {
    let challenges = http_auth::parse_challenges(value).ok()?;
    let bearer = challenges
        .iter()
        .find(|challenge| challenge.scheme.eq_ignore_ascii_case("Bearer"))?;
    let param = |name: &str| {
        bearer
            .params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_unescaped())
    };
    Some((param("realm")?, param("service")))
}

fn header_text(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`): the start, and the total when
/// given.
fn parse_content_range(text: &str) -> Option<(u64, Option<u64>)> {
    let range = text.trim().strip_prefix("bytes ")?;
    let (span, total) = range.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        total => Some(total.parse().ok()?),
    };
    Some((start, total))
}

/// The registry's error codes and messages (`MANIFEST_UNKNOWN: manifest
/// unknown`), else the start of the body, else the status text.
fn error_detail(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let reason = status.canonical_reason().unwrap_or("unknown status");
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body)
        && !envelope.errors.is_empty()
    {
        let entries: Vec<String> = envelope
            .errors
            .iter()
            .map(
                |entry| match (entry.code.is_empty(), entry.message.is_empty()) {
                    (false, false) => format!("{}: {}", entry.code, entry.message),
                    (false, true) => entry.code.clone(),
                    _ => entry.message.clone(),
                },
            )
            .collect();
        return format!("{reason} ({})", entries.join("; "));
    }
    let text: String = String::from_utf8_lossy(body)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    if text.is_empty() {
        reason.to_string()
    } else {
        format!("{reason} ({text})")
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell transfers apart.
fn short(digest: &str) -> &str {
    let end = digest
        .find(':')
        .map_or(digest.len(), |colon| (colon + 13).min(digest.len()));
    &digest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn operations_can_run_on_any_runtime_thread() {
        // Callers may spawn operations on a multi-threaded runtime: every
        // operation's future must be Send (checked at compile time; the
        // futures are never polled).
        let reference: Reference = "127.0.0.1:1/openshell/supervisor:v1".parse().unwrap();
        let options = RegistryOptions {
            plain_http: true,
            basic: Some(("u".into(), "p".into())),
            ..Default::default()
        };
        let client = RegistryClient::new(&reference, &options).unwrap();
        let mut sink = |_: &[u8]| Ok(());
        assert_send(&client.authenticate(Access::Push));
        assert_send(&client.pull_manifest(&reference, 1));
        assert_send(&client.pull_blob("sha256:0", 1, &mut sink));
        assert_send(&client.blob_exists("sha256:0"));
        assert_send(&client.push_blob("sha256:0", Bytes::new()));
        assert_send(&client.push_manifest(&reference, Vec::new(), "x"));
        assert_send(&client.resolve_digest(&reference));
        fn assert_sync<T: Send + Sync>(_: &T) {}
        assert_sync(&client);
    }

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
        assert_eq!(parse_content_range("bytes x-9/10"), None);
    }

    #[test]
    fn error_details_prefer_the_registry_envelope() {
        let body =
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#;
        assert_eq!(
            error_detail(StatusCode::NOT_FOUND, body),
            "Not Found (MANIFEST_UNKNOWN: manifest unknown)"
        );
        assert_eq!(
            error_detail(StatusCode::BAD_GATEWAY, b"<html>\n  upstream\n gone</html>"),
            "Bad Gateway (<html> upstream gone</html>)"
        );
        assert_eq!(
            error_detail(StatusCode::SERVICE_UNAVAILABLE, b""),
            "Service Unavailable"
        );
    }

    #[test]
    fn short_digests_keep_twelve_hex_digits() {
        let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
        assert_eq!(short(&digest), "sha256:0123456789ab");
        assert_eq!(short("odd"), "odd");
    }

    #[test]
    fn credentials_stay_with_their_registry() {
        let base = Url::parse("http://127.0.0.1:5000").unwrap();
        assert!(same_origin(
            &Url::parse("http://127.0.0.1:5000/v2/x/blobs/uploads/1").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("http://127.0.0.1:5001/v2/").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("https://127.0.0.1:5000/v2/").unwrap(),
            &base
        ));
        assert!(!same_origin(
            &Url::parse("http://storage.example/blob").unwrap(),
            &base
        ));
    }
}
