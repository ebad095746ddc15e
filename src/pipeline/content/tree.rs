//! Walking the parsed structure and deciding, part by part, what stays: a leaf is kept or
//! removed by its type; a multipart is dropped whole by its own type, collapsed to its
//! text/plain alternative, or rebuilt from whatever of its children stays.

use mail_parser::{HeaderName, Message, MessagePart, MimeHeaders, PartType};

use super::{splice, ContentError, MimeFilter, Outcome};

/// Deeper nesting than this is not followed: no real mail comes close, and the walk recurses.
const MAX_DEPTH: usize = 40;
/// Longest type or subtype taken as one; longer ones are unreadable.
const MAX_TOKEN: usize = 64;

/// What happens to the whole message.
pub(super) enum Root {
    /// Nothing to remove.
    Unchanged,
    /// The new message.
    Rebuilt(Vec<u8>),
}

/// One filtering pass over a parsed message.
pub(super) struct Walk<'a, 'x> {
    raw: &'a [u8],
    message: &'a Message<'x>,
    filter: &'a MimeFilter,
    removed: Vec<String>,
}

impl<'a, 'x> Walk<'a, 'x> {
    /// `message` is `raw` as parsed by mail-parser.
    pub fn new(raw: &'a [u8], message: &'a Message<'x>, filter: &'a MimeFilter) -> Self {
        Walk {
            raw,
            message,
            filter,
            removed: Vec::new(),
        }
    }

    /// The content types removed so far, in document order.
    pub fn into_removed(self) -> Vec<String> {
        self.removed
    }

    /// Filters the whole message.
    pub fn root(&mut self) -> Result<Root, ContentError> {
        let root = self.part(0)?;
        let ty = part_type(root, false);
        if !is_container(root, &ty) {
            return if self.filter.keeps_leaf(&ty) {
                Ok(Root::Unchanged)
            } else {
                Err(ContentError::Empty)
            };
        }
        if self.filter.drops(&ty) {
            return Err(ContentError::Empty);
        }
        if let Some(text) = self.collapse_target(root, &ty)? {
            self.remove_all_but(root, text)?;
            return splice::hoist(self.raw, root, self.part(text)?).map(Root::Rebuilt);
        }
        let (children, outcomes) = self.children(root, &ty, 1)?;
        if outcomes.iter().all(|o| *o == Outcome::Keep) {
            return Ok(Root::Unchanged);
        }
        if outcomes.iter().all(|o| *o == Outcome::Remove) {
            return Err(ContentError::Empty);
        }
        let note = (ty == "multipart/mixed").then(|| splice::note_part(&self.removed));
        let body = splice::assemble(self.raw, root, &children, &outcomes, note.as_deref())?;
        let head = self
            .raw
            .get(..root.offset_body as usize)
            .ok_or(ContentError::Malformed("part offsets out of range"))?;
        if note.is_some() {
            return Ok(Root::Rebuilt([head, &body].concat()));
        }
        // Another multipart (report, alternative, related): a note inside it would be read as
        // one of its parts, so the rebuilt message becomes the first part of a new
        // multipart/mixed whose second part is the note.
        Ok(Root::Rebuilt(splice::wrap_with_note(
            head,
            &body,
            &splice::note_part(&self.removed),
        )))
    }

    /// The decision for part `id`; `in_digest` when its parent is a multipart/digest (where
    /// a part without Content-Type is a message/rfc822).
    fn visit(&mut self, id: usize, in_digest: bool, depth: usize) -> Result<Outcome, ContentError> {
        if depth > MAX_DEPTH {
            return Err(ContentError::Malformed("multiparts nested too deeply"));
        }
        let part = self.part(id)?;
        let ty = part_type(part, in_digest);
        if !is_container(part, &ty) {
            if self.filter.keeps_leaf(&ty) {
                return Ok(Outcome::Keep);
            }
            self.removed.push(ty);
            return Ok(Outcome::Remove);
        }
        if self.filter.drops(&ty) {
            self.remove_subtree(id, in_digest)?;
            return Ok(Outcome::Remove);
        }
        if let Some(text) = self.collapse_target(part, &ty)? {
            self.remove_all_but(part, text)?;
            let kept = self.part(text)?;
            let bytes = self
                .raw
                .get(kept.offset_header as usize..kept.offset_end as usize)
                .ok_or(ContentError::Malformed("part offsets out of range"))?;
            return Ok(Outcome::Replace(bytes.to_vec()));
        }
        let (children, outcomes) = self.children(part, &ty, depth + 1)?;
        if outcomes.iter().all(|o| *o == Outcome::Keep) {
            return Ok(Outcome::Keep);
        }
        if outcomes.iter().all(|o| *o == Outcome::Remove) {
            return Ok(Outcome::Remove);
        }
        let body = splice::assemble(self.raw, part, &children, &outcomes, None)?;
        let head = self
            .raw
            .get(part.offset_header as usize..part.offset_body as usize)
            .ok_or(ContentError::Malformed("part offsets out of range"))?;
        Ok(Outcome::Replace([head, &body].concat()))
    }

    /// The children of a container and the decision for each.
    #[allow(clippy::type_complexity)]
    fn children(
        &mut self,
        part: &'a MessagePart<'x>,
        ty: &str,
        depth: usize,
    ) -> Result<(Vec<&'a MessagePart<'x>>, Vec<Outcome>), ContentError> {
        let digest = ty == "multipart/digest";
        let ids = child_ids(part);
        let mut parts = Vec::with_capacity(ids.len());
        let mut outcomes = Vec::with_capacity(ids.len());
        for &id in ids {
            parts.push(self.part(id as usize)?);
            outcomes.push(self.visit(id as usize, digest, depth)?);
        }
        Ok((parts, outcomes))
    }

    /// With `collapse_alternatives`, the text/plain child that replaces a multipart/alternative
    /// with more than one child, when it is itself kept.
    fn collapse_target(
        &self,
        part: &MessagePart<'_>,
        ty: &str,
    ) -> Result<Option<usize>, ContentError> {
        if !self.filter.collapse_alternatives || ty != "multipart/alternative" {
            return Ok(None);
        }
        let ids = child_ids(part);
        if ids.len() < 2 {
            return Ok(None);
        }
        for &id in ids {
            let child = self.part(id as usize)?;
            let child_ty = part_type(child, false);
            if child_ty == "text/plain" && !is_container(child, &child_ty) {
                return Ok(self.filter.keeps_leaf(&child_ty).then_some(id as usize));
            }
        }
        Ok(None)
    }

    /// Records every child of `part` except `keep` as removed.
    fn remove_all_but(&mut self, part: &MessagePart<'_>, keep: usize) -> Result<(), ContentError> {
        for &id in child_ids(part) {
            if id as usize != keep {
                self.remove_subtree(id as usize, false)?;
            }
        }
        Ok(())
    }

    /// Records the leaves under `id` (itself when it is a leaf) as removed, in order.
    fn remove_subtree(&mut self, id: usize, in_digest: bool) -> Result<(), ContentError> {
        let mut stack = vec![(id, in_digest)];
        // Each part has one parent, so a walk longer than the part list means a broken tree.
        let mut budget = self.message.parts.len();
        while let Some((id, in_digest)) = stack.pop() {
            budget = budget
                .checked_sub(1)
                .ok_or(ContentError::Malformed("the part tree has a cycle"))?;
            let part = self.part(id)?;
            let ty = part_type(part, in_digest);
            if is_container(part, &ty) {
                let digest = ty == "multipart/digest";
                stack.extend(child_ids(part).iter().rev().map(|&c| (c as usize, digest)));
            } else {
                self.removed.push(ty);
            }
        }
        Ok(())
    }

    fn part(&self, id: usize) -> Result<&'a MessagePart<'x>, ContentError> {
        self.message.parts.get(id).ok_or(ContentError::Malformed(
            "a part mail-parser listed is missing",
        ))
    }
}

/// The ids of a multipart's children (none for anything else).
fn child_ids<'p>(part: &'p MessagePart<'_>) -> &'p [u32] {
    match &part.body {
        PartType::Multipart(ids) => ids,
        _ => &[],
    }
}

/// A multipart whose children are filtered. multipart/signed and multipart/encrypted are
/// leaves: what is inside them must not change.
fn is_container(part: &MessagePart<'_>, ty: &str) -> bool {
    matches!(part.body, PartType::Multipart(_))
        && ty != "multipart/signed"
        && ty != "multipart/encrypted"
}

/// The content type of a part, "type/subtype" in lower case. No Content-Type, or `text`
/// without a subtype: text/plain (no Content-Type in a digest: message/rfc822). One mail-parser could not read, or one with characters
/// outside RFC 2045 tokens: application/octet-stream, so that pass_types cannot be slipped
/// past with a broken field, and what is reported is always clean ASCII.
pub(super) fn part_type(part: &MessagePart<'_>, in_digest: bool) -> String {
    const UNREADABLE: &str = "application/octet-stream";
    match part.content_type() {
        Some(ct) => {
            let main = ct.ctype();
            match ct.subtype() {
                _ if !is_token(main) => UNREADABLE.into(),
                // `text` without a subtype is invalid; RFC 2045 5.2 reads an invalid type as
                // text/plain, and so do the members' clients.
                None if main.eq_ignore_ascii_case("text") => "text/plain".into(),
                None => main.to_ascii_lowercase(),
                Some(sub) if is_token(sub) => format!("{main}/{sub}").to_ascii_lowercase(),
                Some(_) => UNREADABLE.into(),
            }
        }
        None if part
            .headers
            .iter()
            .any(|h| h.name == HeaderName::ContentType) =>
        {
            UNREADABLE.into()
        }
        None if in_digest => "message/rfc822".into(),
        None => "text/plain".into(),
    }
}

/// RFC 2045 token characters (any case), bounded in length.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_TOKEN
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}
