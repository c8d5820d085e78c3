//! `build-image verify SOURCE --key PUB`: the signature and provenance
//! checks live in `openshell_signing::oci_check`, shared with the driver.

pub use openshell_signing::oci_check::*;
