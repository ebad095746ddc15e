//! Per-role handling of a delivered message: classify, decorate, fan out.

pub mod decorate;
