//! The post's journey and its stages. [`post`] reads top to bottom as the table of contents:
//! read into a [`message::Post`] → loop check → authenticate → [`moderate`] (with [`content`]
//! rules) → [`hold`] or [`decorate`] → [`fanout`] (with [`personal`] copies) → record. Mail to the other role
//! addresses is handled apart (`requests`, `bounce::handle`, `owner`), and so is the work
//! done at a time rather than on a mail (`scheduled`).

pub mod content;
pub mod decorate;
pub mod fanout;
pub mod hold;
pub mod message;
pub mod moderate;
pub mod personal;
pub mod post;
