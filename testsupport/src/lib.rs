//! openshell-testsupport (work in progress).
