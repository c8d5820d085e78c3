//! `oci:DIR[:TAG]`: an OCI image layout folder, read and written.
//!
//! Writing: blobs are content-addressed, so each is written under a
//! temporary name and renamed into place, and `index.json` is replaced last:
//! a run that stops half-way leaves the previous image fully usable, with
//! at worst some unreferenced blobs. Other tags in `index.json` are kept;
//! the same tag moves to the new image. Writers of one layout take an
//! advisory lock on its folder ([`LayoutLock`]), so concurrent runs
//! serialize instead of seeing each other's half-written files.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use oci_spec::image::{
    Descriptor, DescriptorBuilder, ImageIndex, ImageIndexBuilder, MediaType, OciLayoutBuilder,
    SCHEMA_VERSION,
};
use openshell_contract::annotations::oci::REF_NAME;

use crate::destination::{Destination, Published};
use crate::document::{self, canonical_json};
use crate::image::{Blob, BlobData, ImageToWrite};
use crate::limits::{ReadLimits, read_bounded};
use crate::progress::{Progress, human_size};
use crate::source::{ImageSource, referrer_facts};
use crate::{TransportError, atomic, digest};

/// Name of the layout marker file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";
/// Name of the layout's index.
pub const INDEX_FILE: &str = "index.json";

/// The path of a blob inside a layout, for a well-formed digest only (so a
/// hostile digest cannot name a path outside `blobs/`).
pub fn blob_path(layout: &Path, digest: &str) -> Option<PathBuf> {
    let (algorithm, hex) = digest.split_once(':')?;
    let safe = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit())
    };
    (safe(algorithm) && safe(hex)).then(|| layout.join("blobs").join(algorithm).join(hex))
}

/// Whether an `index.json` entry names an image manifest (referrers are
/// image manifests since OCI 1.1; an empty media type is read to find out).
fn is_manifest(entry: &Descriptor) -> bool {
    let media_type = entry.media_type().to_string();
    media_type.is_empty() || media_type == MediaType::ImageManifest.to_string()
}

/// The tag an `index.json` entry carries.
pub fn tag_of(entry: &Descriptor) -> Option<&str> {
    entry
        .annotations()
        .as_ref()
        .and_then(|annotations| annotations.get(REF_NAME))
        .map(String::as_str)
}

/// Reads a layout's `index.json` within `limits`.
pub fn read_index(dir: &Path, limits: &ReadLimits) -> Result<ImageIndex, TransportError> {
    let path = dir.join(INDEX_FILE);
    let mut file = match crate::files::open_regular(&path) {
        Ok(file) => file,
        Err(TransportError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && dir.is_dir() =>
        {
            return Err(TransportError::Missing(format!(
                "{}: not an OCI image layout (no {INDEX_FILE}; expected a folder written by build-image or `skopeo copy ... oci:DIR:TAG`)",
                dir.display()
            )));
        }
        Err(err) => return Err(err),
    };
    let bytes = read_bounded(
        &mut file,
        &path.display().to_string(),
        limits,
        TransportError::io("read", &path),
    )?;
    document::parse(&path.display().to_string(), &bytes)
}

/// The `index.json` entry of the image tagged `tag`, or of the only image
/// when no tag is given (several tags of one digest count as one image).
pub fn resolve(
    dir: &Path,
    tag: Option<&str>,
    limits: &ReadLimits,
) -> Result<Descriptor, TransportError> {
    let index = read_index(dir, limits)?;
    let index_path = dir.join(INDEX_FILE);
    let tags: Vec<&str> = index.manifests().iter().filter_map(tag_of).collect();
    // One tag on two entries: skopeo and containers/image take the first,
    // other tools the last; neither is safe to verify for the other.
    let mut seen = std::collections::HashSet::new();
    for tag in &tags {
        if !seen.insert(*tag) {
            let digests: Vec<String> = index
                .manifests()
                .iter()
                .filter(|entry| tag_of(entry) == Some(tag))
                .map(|entry| format!("{} ({})", entry.digest(), entry.media_type()))
                .collect();
            return Err(TransportError::Malformed {
                document: index_path.display().to_string(),
                detail: format!(
                    "the tag {tag:?} is on {} entries: {} (expected each tag on one entry)",
                    digests.len(),
                    digests.join(", ")
                ),
            });
        }
    }
    let listed = if tags.is_empty() {
        "none".to_string()
    } else {
        tags.join(", ")
    };
    let found = match tag {
        Some(tag) => index
            .manifests()
            .iter()
            .find(|entry| tag_of(entry) == Some(tag))
            .cloned()
            .ok_or_else(|| {
                TransportError::Missing(format!(
                    "{} has no image tagged {tag:?} (tags there: {listed})",
                    index_path.display()
                ))
            })?,
        None => {
            let tagged: Vec<&Descriptor> = index
                .manifests()
                .iter()
                .filter(|entry| tag_of(entry).is_some())
                .collect();
            let candidates: Vec<&Descriptor> = if tagged.is_empty() {
                index.manifests().iter().collect()
            } else {
                tagged
            };
            let first = candidates.first().ok_or_else(|| {
                TransportError::Missing(format!("{} lists no image", index_path.display()))
            })?;
            if candidates
                .iter()
                .any(|entry| entry.digest() != first.digest())
            {
                return Err(TransportError::Missing(format!(
                    "{} holds {} images: name one with oci:{}:TAG (tags there: {listed})",
                    index_path.display(),
                    candidates.len(),
                    dir.display()
                )));
            }
            (*first).clone()
        }
    };
    Ok(found)
}

/// An image in an OCI layout, chosen by tag (or the only one there).
#[derive(Debug, Clone)]
pub struct OciLayoutSource {
    dir: PathBuf,
    tag: Option<String>,
}

impl OciLayoutSource {
    /// The image tagged `tag` in the layout at `dir`.
    pub fn new(dir: PathBuf, tag: Option<String>) -> Self {
        Self { dir, tag }
    }
}

impl ImageSource for OciLayoutSource {
    fn describe(&self) -> String {
        match &self.tag {
            Some(tag) => format!("oci:{}:{tag}", self.dir.display()),
            None => format!("oci:{}", self.dir.display()),
        }
    }

    fn top(
        &mut self,
        limits: &ReadLimits,
    ) -> Result<(Option<Descriptor>, Vec<u8>), TransportError> {
        let entry = resolve(&self.dir, self.tag.as_deref(), limits)?;
        let bytes = self.manifest(&entry, limits)?;
        Ok((Some(entry), bytes))
    }

    /// The layout's `index.json` entries (other than the subject) whose
    /// manifest names `subject`: OCI 1.1 stores referrers in a layout as
    /// untagged `index.json` entries.
    fn referrers(
        &mut self,
        subject: &Descriptor,
        limits: &ReadLimits,
    ) -> Result<Option<Vec<Descriptor>>, TransportError> {
        let index = read_index(&self.dir, limits)?;
        let mut found = Vec::new();
        for entry in index.manifests() {
            if entry.digest() == subject.digest() || !is_manifest(entry) {
                continue;
            }
            match self.manifest(entry, limits) {
                Ok(bytes) => {
                    let Some(facts) = referrer_facts(&bytes) else {
                        continue;
                    };
                    if facts.subject.as_deref() != Some(subject.digest().as_ref()) {
                        continue;
                    }
                    let mut descriptor = entry.clone();
                    if descriptor.artifact_type().is_none() {
                        descriptor
                            .set_artifact_type(facts.artifact_type.as_deref().map(MediaType::from));
                    }
                    found.push(descriptor);
                    limits.check_referrers(subject.digest().as_ref(), found.len())?;
                }
                // An artifact whose manifest cannot be read is listed, so
                // the reader reports it broken rather than absent.
                Err(_) if entry.artifact_type().is_some() => {
                    found.push(entry.clone());
                    limits.check_referrers(subject.digest().as_ref(), found.len())?;
                }
                Err(_) => {}
            }
        }
        Ok(Some(found))
    }

    fn open_blob(
        &mut self,
        descriptor: &Descriptor,
    ) -> Result<Box<dyn Read + Send + '_>, TransportError> {
        let digest = descriptor.digest().to_string();
        let path = blob_path(&self.dir, &digest).ok_or_else(|| {
            TransportError::Missing(format!(
                "{}: descriptor digest {digest:?} is not algorithm:hex",
                self.describe()
            ))
        })?;
        let file = crate::files::open_regular(&path)?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            256 * 1024,
            file,
        )))
    }
}

/// Checks that `dir` can receive a layout: missing, empty, or a layout
/// already. Nothing is written by this check.
pub fn check_output(dir: &Path) -> Result<(), TransportError> {
    let refuse = |reason: &str| TransportError::NotALayout {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    match std::fs::metadata(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(TransportError::io("inspect the output folder", dir)(err)),
        Ok(meta) if !meta.is_dir() => Err(refuse("it is not a folder")),
        Ok(_) => {
            if dir.join(OCI_LAYOUT_FILE).is_file() {
                return Ok(());
            }
            let entries = std::fs::read_dir(dir)
                .map_err(TransportError::io("list the output folder", dir))?;
            // A temporary file of a run writing its first image here (or
            // killed while doing so) does not make the folder someone else's.
            let mut others = entries.flatten().filter(|entry| {
                !entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(atomic::TEMP_PREFIX)
            });
            // A writer creates the marker before anything else, so files
            // listed while one was at work (after the check above) mean the
            // marker is there now.
            if others.next().is_some() && !dir.join(OCI_LAYOUT_FILE).is_file() {
                Err(refuse(
                    "it has files but no oci-layout file, so it is not an OCI image layout",
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// How long a writer waits for another run to finish with a layout before
/// giving up: longer than any build, short of forever.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// An exclusive advisory lock (flock) on a layout folder, held while a run
/// reads what an earlier run left there and writes its own image.
///
/// Within one process the lock is shared: asking again for a folder this
/// process holds returns the same lock (two flocks on one file from one
/// process would wait for each other).
#[derive(Debug)]
pub struct LayoutLock {
    dir: PathBuf,
    file: std::fs::File,
    /// Whether this lock created the folder: if it is still empty when the
    /// lock is released (the run failed before writing), it is removed, so
    /// a refused build leaves nothing behind.
    created: bool,
}

impl Drop for LayoutLock {
    fn drop(&mut self) {
        if self.created {
            // Still locked here: a waiter that gets the lock next sees the
            // folder gone and starts over (see `acquire`).
            let _ = std::fs::remove_dir(&self.dir);
        }
        let _ = rustix::fs::flock(&self.file, rustix::fs::FlockOperation::Unlock);
    }
}

/// Whether the open folder `file` is still the one at `path` (it may have
/// been removed by the holder before us, see [`LayoutLock`]'s drop).
fn still_there(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(now)) => open.dev() == now.dev() && open.ino() == now.ino(),
        _ => false,
    }
}

fn held_locks() -> &'static Mutex<HashMap<PathBuf, Weak<LayoutLock>>> {
    static HELD: std::sync::OnceLock<Mutex<HashMap<PathBuf, Weak<LayoutLock>>>> =
        std::sync::OnceLock::new();
    HELD.get_or_init(|| Mutex::new(HashMap::new()))
}

impl LayoutLock {
    /// Locks `dir` (creating the folder if missing), waiting up to
    /// `timeout` for another holder, with a note on `progress` while it
    /// waits.
    pub fn acquire(
        dir: &Path,
        timeout: Duration,
        progress: &Progress,
    ) -> Result<Arc<Self>, TransportError> {
        let start = Instant::now();
        let mut told = false;
        if dir.exists() && !dir.is_dir() {
            return Err(TransportError::NotALayout {
                path: dir.to_path_buf(),
                reason: "it is not a folder".into(),
            });
        }
        loop {
            let created = !dir.exists();
            std::fs::create_dir_all(dir).map_err(TransportError::io("create", dir))?;
            let canonical =
                std::fs::canonicalize(dir).map_err(TransportError::io("resolve", dir))?;
            let mut held = held_locks()
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(lock) = held.get(&canonical).and_then(Weak::upgrade) {
                return Ok(lock);
            }
            let file = std::fs::File::open(&canonical).map_err(TransportError::io("open", dir))?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) if still_there(&file, &canonical) => {
                    let lock = Arc::new(Self {
                        dir: canonical.clone(),
                        file,
                        created,
                    });
                    // Checked under the lock: another writer may have been
                    // half-way through its first image until now.
                    check_output(dir)?;
                    held.insert(canonical, Arc::downgrade(&lock));
                    return Ok(lock);
                }
                // The holder before us removed the folder it had created:
                // start over on whatever is at the path now.
                Ok(()) => continue,
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    drop(held);
                    if start.elapsed() >= timeout {
                        return Err(TransportError::Io {
                            what: "lock",
                            path: dir.to_path_buf(),
                            source: std::io::Error::other(format!(
                                "another run held the layout for more than {} s",
                                timeout.as_secs()
                            )),
                        });
                    }
                    if !told {
                        progress.note(format!(
                            "waiting for another run to finish writing {}",
                            dir.display()
                        ));
                        told = true;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(err) => {
                    return Err(TransportError::io("lock", dir)(err.into()));
                }
            }
        }
    }

    /// The locked folder (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// An OCI image layout folder to write, and the tags the image gets there.
#[derive(Debug, Clone)]
pub struct OciLayoutDestination {
    /// The layout folder.
    pub dir: PathBuf,
    /// Tags (`org.opencontainers.image.ref.name`); at least one.
    pub tags: Vec<String>,
}

/// What writing blobs did.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    blobs: usize,
    bytes: u64,
    kept: usize,
}

impl OciLayoutDestination {
    /// Writes one blob unless the layout already holds exactly it (checked
    /// by hashing: a torn or tampered file of the right name is replaced).
    fn put_blob(&self, blob: &Blob, written: &mut Written) -> Result<(), TransportError> {
        let digest = blob.digest();
        let path = blob_path(&self.dir, &digest).ok_or_else(|| {
            TransportError::Missing(format!("cannot store blob {digest:?}: not algorithm:hex"))
        })?;
        if matches!(&blob.data, BlobData::VerifiedFile(checked) if *checked == path) {
            written.kept += 1;
            return Ok(());
        }
        if std::fs::read(&path)
            .is_ok_and(|existing| digest::check_bytes("", &blob.descriptor, &existing).is_ok())
        {
            written.kept += 1;
            return Ok(());
        }
        let bytes = blob.read_verified()?;
        let dir = atomic::parent(&path);
        std::fs::create_dir_all(dir).map_err(TransportError::io("create", dir))?;
        atomic::write_file(&path, &bytes).map_err(TransportError::io("write", &path))?;
        written.blobs += 1;
        written.bytes += bytes.len() as u64;
        Ok(())
    }

    /// Removes temporary files that killed runs left in the layout; only
    /// called with the layout's lock held, so no live writer owns them.
    fn sweep_temporaries(&self) {
        let mut dirs = vec![self.dir.clone()];
        if let Ok(algorithms) = std::fs::read_dir(self.dir.join("blobs")) {
            dirs.extend(algorithms.flatten().map(|entry| entry.path()));
        }
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(atomic::TEMP_PREFIX)
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
    }

    /// The layout's `index.json` with the image under each tag and the
    /// referrers listed, other tags kept. Referrers an earlier run listed
    /// for a manifest that no tag reaches any more (the tag moved to a new
    /// image) are dropped from the list, so it does not grow with every
    /// build; their blobs stay, like those of the untagged image.
    fn updated_index(&self, image: &ImageToWrite) -> Result<ImageIndex, TransportError> {
        let index_path = self.dir.join(INDEX_FILE);
        let mut manifests: Vec<Descriptor> = if index_path.is_file() {
            let kept: Vec<Descriptor> = read_index(&self.dir, &ReadLimits::default())?
                .manifests()
                .iter()
                .filter(|entry| tag_of(entry).is_none_or(|tag| !self.tags.iter().any(|t| t == tag)))
                .filter(|entry| {
                    !image
                        .referrers
                        .iter()
                        .any(|referrer| referrer.descriptor.digest() == entry.digest())
                })
                .cloned()
                .collect();
            self.without_orphan_referrers(kept, image)
        } else {
            Vec::new()
        };
        for tag in &self.tags {
            manifests.push(with_annotations(
                &image.top.descriptor,
                HashMap::from([(REF_NAME.to_string(), tag.clone())]),
            )?);
        }
        manifests.extend(image.referrers.iter().map(|blob| blob.descriptor.clone()));
        ImageIndexBuilder::default()
            .schema_version(SCHEMA_VERSION)
            .media_type(MediaType::ImageIndex)
            .manifests(manifests)
            .build()
            .map_err(|err| TransportError::Missing(format!("could not assemble index.json: {err}")))
    }

    /// `entries` less the untagged artifacts (entries with an
    /// `artifactType`) whose subject is neither in `image` nor reached from
    /// a tagged entry (directly, or through a tagged index).
    fn without_orphan_referrers(
        &self,
        entries: Vec<Descriptor>,
        image: &ImageToWrite,
    ) -> Vec<Descriptor> {
        let limits = ReadLimits::default();
        let mut source = OciLayoutSource::new(self.dir.clone(), None);
        let mut reached: Vec<String> = image
            .manifests
            .iter()
            .chain(std::iter::once(&image.top))
            .map(Blob::digest)
            .collect();
        for entry in entries.iter().filter(|entry| tag_of(entry).is_some()) {
            reached.push(entry.digest().to_string());
            if document::is_index_media_type(entry.media_type().as_ref()) {
                if let Ok(bytes) = source.manifest(entry, &limits) {
                    if let Ok(index) = serde_json::from_slice::<ImageIndex>(&bytes) {
                        reached.extend(index.manifests().iter().map(|m| m.digest().to_string()));
                    }
                }
            }
        }
        entries
            .into_iter()
            .filter(|entry| {
                if tag_of(entry).is_some() || entry.artifact_type().is_none() {
                    return true;
                }
                // Unreadable: kept, so nothing is dropped on a guess.
                let Ok(bytes) = source.manifest(entry, &limits) else {
                    return true;
                };
                match referrer_facts(&bytes).and_then(|facts| facts.subject) {
                    Some(subject) => reached.contains(&subject),
                    None => true,
                }
            })
            .collect()
    }

    /// Writes `image` while holding `lock` (which must be this folder's).
    pub fn publish_locked(
        &self,
        _lock: &LayoutLock,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        if self.tags.is_empty() {
            return Err(TransportError::Unsupported {
                destination: self.describe(),
                reason: "no tag to give the image".into(),
            });
        }
        self.sweep_temporaries();
        let marker = self.dir.join(OCI_LAYOUT_FILE);
        if !marker.is_file() {
            let layout = OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()
                .map_err(|err| TransportError::Missing(err.to_string()))?;
            let bytes =
                canonical_json(&layout).map_err(|err| TransportError::Missing(err.to_string()))?;
            atomic::write_file(&marker, &bytes).map_err(TransportError::io("write", &marker))?;
        }
        let mut written = Written::default();
        for blob in image.all_blobs() {
            self.put_blob(blob, &mut written)?;
        }
        if let Ok(algorithms) = std::fs::read_dir(self.dir.join("blobs")) {
            for algorithm in algorithms.flatten() {
                atomic::sync_dir(&algorithm.path())
                    .map_err(TransportError::io("sync", algorithm.path()))?;
            }
        }
        let index = self.updated_index(image)?;
        let bytes =
            canonical_json(&index).map_err(|err| TransportError::Missing(err.to_string()))?;
        let index_path = self.dir.join(INDEX_FILE);
        if std::fs::read(&index_path).ok().as_deref() != Some(&bytes[..]) {
            atomic::write_file(&index_path, &bytes)
                .map_err(TransportError::io("write", &index_path))?;
            atomic::sync_dir(&self.dir).map_err(TransportError::io("sync", &self.dir))?;
        }
        progress.note(format!(
            "wrote {}: {} new blob(s), {}; {} already there",
            self.describe(),
            written.blobs,
            human_size(written.bytes),
            written.kept
        ));
        Ok(Published {
            destination: self.describe(),
            references: self
                .tags
                .iter()
                .map(|tag| format!("oci:{}:{tag}", self.dir.display()))
                .collect(),
            digest: image.top.digest(),
            pinned: None,
            blobs_written: written.blobs,
            bytes_written: written.bytes,
            blobs_present: written.kept,
        })
    }
}

impl Destination for OciLayoutDestination {
    fn describe(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tags.join(","))
    }

    fn publish(
        &self,
        image: &ImageToWrite,
        progress: &Progress,
    ) -> Result<Published, TransportError> {
        let lock = LayoutLock::acquire(&self.dir, LOCK_TIMEOUT, progress)?;
        self.publish_locked(&lock, image, progress)
    }
}

/// A descriptor with annotations (for `index.json` entries).
pub fn with_annotations(
    descriptor: &Descriptor,
    annotations: HashMap<String, String>,
) -> Result<Descriptor, TransportError> {
    let builder = DescriptorBuilder::default()
        .media_type(descriptor.media_type().clone())
        .digest(descriptor.digest().clone())
        .size(descriptor.size())
        .annotations(annotations);
    let builder = match descriptor.platform() {
        Some(platform) => builder.platform(platform.clone()),
        None => builder,
    };
    builder.build().map_err(|err| {
        TransportError::Missing(format!("could not build an index.json entry: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_folder_is_judged_by_its_marker_not_by_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        check_output(&layout).unwrap();
        std::fs::create_dir(&layout).unwrap();
        check_output(&layout).unwrap();
        // What a writer (or a killed one) leaves while writing the marker.
        std::fs::write(layout.join(format!("{}abc", atomic::TEMP_PREFIX)), b"{").unwrap();
        check_output(&layout).unwrap();
        std::fs::write(layout.join("photo.jpg"), b"x").unwrap();
        let err = check_output(&layout).unwrap_err().to_string();
        assert!(err.contains("no oci-layout file"), "{err}");
        std::fs::write(layout.join(OCI_LAYOUT_FILE), b"{}").unwrap();
        check_output(&layout).unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = check_output(&file).unwrap_err().to_string();
        assert!(err.contains("it is not a folder"), "{err}");
    }
}
