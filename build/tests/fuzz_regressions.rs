//! What the fuzzers found in build-image, one test each. The inputs that
//! found them are in `fuzz/regressions/TARGET/` and replayed by the
//! `fuzz_corpus` test; these say what the behaviour must be.

// Helpers outside #[test] functions panic on failure too: that fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openshell_verify::filesystem::{Filesystem, FilesystemError};

/// A PAX extended header with `records`, followed by one regular file.
fn pax_tar(records: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (key, value) in records {
        // "%d %s=%s\n", the length counting its own digits.
        let body = format!(" {key}={value}\n");
        let mut length = body.len() + 1;
        while length.to_string().len() + body.len() != length {
            length += 1;
        }
        data.extend_from_slice(format!("{length}{body}").as_bytes());
    }
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_path("PaxHeaders/file").unwrap();
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_size(data.len() as u64);
    header.set_cksum();
    builder.append(&header, &data[..]).unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_path("file").unwrap();
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &b"x"[..]).unwrap();
    builder.into_inner().unwrap()
}

/// Found by the `layers` target (`pax-times-message-order`): with two bad
/// PAX time records, the refusal named one or the other at random (the
/// records were merged in a hash map's order, as Go merges them), so
/// applying the same layer twice gave two messages. The verdict was always
/// a refusal; now the message is the same every time too.
#[test]
fn a_layer_with_several_bad_pax_records_is_refused_with_one_message() {
    let tar = pax_tar(&[("mtime", "1.5"), ("ctime", "17x"), ("atime", "not-a-time")]);
    let mut messages = std::collections::BTreeSet::new();
    for _ in 0..32 {
        let err = Filesystem::default()
            .apply_layer(0, &tar[..])
            .expect_err("a bad PAX time is refused");
        assert!(matches!(err, FilesystemError::Tar { .. }), "{err}");
        messages.insert(err.to_string());
    }
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let message = messages.pop_first().unwrap();
    assert!(
        message.contains("the PAX record atime is not a time"),
        "{message}"
    );
    // The good records alone apply.
    let tar = pax_tar(&[("mtime", "1.5"), ("uid", "7")]);
    let mut filesystem = Filesystem::default();
    filesystem.apply_layer(0, &tar[..]).unwrap();
    assert_eq!(filesystem.nodes["file"].uid, 7);
}
