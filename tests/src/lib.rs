//! openshell-e2e (work in progress).
