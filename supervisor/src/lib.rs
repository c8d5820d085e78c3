//! openshell-sandbox (work in progress).
