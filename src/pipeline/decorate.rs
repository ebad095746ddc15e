//! Decoration of a post on raw bytes (placeholder; see the module's spec).
