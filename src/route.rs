//! recipient address -> (list, role).
