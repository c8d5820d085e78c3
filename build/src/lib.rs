//! build-image (work in progress).
