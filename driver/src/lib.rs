//! openshell-driver-config (work in progress).
