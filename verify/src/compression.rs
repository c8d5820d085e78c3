//! How a layer blob is compressed, judged as the runtimes judge it: by its
//! first bytes, checked against its descriptor's media type.

/// How a layer blob is compressed, judged by its first bytes as containerd
/// does (`compression.DecompressStream` looks at the magic bytes, not the
/// media type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerCompression {
    /// Plain tar.
    None,
    /// gzip (`1f 8b`).
    Gzip,
}

/// The magic bytes of the compressions containerd and containers/image
/// detect, and their names.
const MAGICS: [(&[u8], &str); 4] = [
    (&[0x1f, 0x8b], "gzip"),
    (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
    (b"BZh", "bzip2"),
    (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
];

/// Judges a layer by its first bytes (`magic`, up to 6 of them) and its
/// descriptor's `media_type`, as the runtimes do:
///
/// - the bytes decide, as containerd's `DecompressStream` and
///   containers/image's `DetectCompression` decide: a layer declared
///   `+gzip` that is plain tar is read as tar;
/// - a layer declared uncompressed (`...tar` with no suffix) whose bytes
///   are compressed is refused: umoci takes the media type at its word and
///   fails reading the bytes as tar (containerd and podman decompress
///   them), and verification judges by the strictest extractor;
/// - compression this verifier cannot read (zstd, bzip2, xz) is refused
///   with its name.
///
/// `what` names the layer in messages.
pub fn layer_compression(
    what: &str,
    media_type: &str,
    magic: &[u8],
) -> Result<LayerCompression, String> {
    let found = MAGICS
        .iter()
        .find(|(bytes, _)| magic.starts_with(bytes))
        .map(|(_, name)| *name);
    let declared_plain = media_type.ends_with("tar");
    match found {
        Some(name) if declared_plain => Err(format!(
            "{what} is declared {media_type} (uncompressed) but its bytes are {name} data: umoci reads such a layer as tar and fails (expected the media type to say +{name}, or an uncompressed tar)"
        )),
        Some("gzip") => Ok(LayerCompression::Gzip),
        Some(name) => Err(format!(
            "{what} is {name}-compressed, which this verifier cannot read (expected a gzip or plain tar layer)"
        )),
        None if media_type.ends_with("zstd") => Err(format!(
            "{what} is declared {media_type}, which this verifier cannot read (expected a gzip or plain tar layer)"
        )),
        None => Ok(LayerCompression::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_judged_by_their_bytes() {
        const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
        const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
        let gzip = [0x1f, 0x8b, 8, 0, 0, 0];
        let plain = *b"openss";
        assert_eq!(
            layer_compression("layer 0", GZIP, &gzip),
            Ok(LayerCompression::Gzip)
        );
        // A gzip-typed layer that is plain tar is read as tar.
        assert_eq!(
            layer_compression("layer 0", GZIP, &plain),
            Ok(LayerCompression::None)
        );
        assert_eq!(
            layer_compression("layer 0", TAR, &plain),
            Ok(LayerCompression::None)
        );
        let err = layer_compression("layer 0", TAR, &gzip).unwrap_err();
        assert!(err.contains("declared application/vnd.oci.image.layer.v1.tar (uncompressed) but its bytes are gzip"), "{err}");
        let err = layer_compression("layer 1", GZIP, &[0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap_err();
        assert!(err.starts_with("layer 1 is zstd-compressed"), "{err}");
        let err = layer_compression("layer 1", GZIP, b"BZh91A").unwrap_err();
        assert!(err.contains("bzip2"), "{err}");
    }
}
