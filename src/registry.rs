//! The live set of lists.
