//! Where the HTML report points into the specification: the chapters' titles and the anchors
//! of their section headings, read from the chapters' Markdown (embedded at compile time).
//!
//! The spec's Markdown has no anchor per requirement: a requirement (`**[FRAME-4]**`) sits in
//! a numbered section, and the only anchors a Markdown renderer gives a chapter are its
//! headings' slugs (GitHub's rule: lowercase, punctuation dropped, spaces as hyphens, `-1`,
//! `-2`, ... on repeats). A requirement's link is therefore its chapter file with the slug of
//! its section's heading (`section` in `spec/requirements.json`), such as
//! `spec/02-framing.md#232-decoding-non-minimal-encodings-and-overflow` for FRAME-4.

use std::sync::OnceLock;

/// The chapters of the specification that requirements live in: file stem and Markdown.
const CHAPTERS: &[(&str, &str)] = &[
    (
        "01-transport",
        include_str!("../../../spec/01-transport.md"),
    ),
    ("02-framing", include_str!("../../../spec/02-framing.md")),
    ("03-streams", include_str!("../../../spec/03-streams.md")),
    (
        "04-handshake",
        include_str!("../../../spec/04-handshake.md"),
    ),
    ("05-rpc", include_str!("../../../spec/05-rpc.md")),
    (
        "06-lifecycle",
        include_str!("../../../spec/06-lifecycle.md"),
    ),
    (
        "07-conformance",
        include_str!("../../../spec/07-conformance.md"),
    ),
];

/// A heading of a chapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heading {
    /// Its level (1 for `#`).
    pub level: usize,
    /// Its text, as written.
    pub text: String,
    /// The anchor a Markdown renderer gives it.
    pub slug: String,
}

/// A chapter: its file stem, title and headings.
#[derive(Debug, Clone)]
pub struct Chapter {
    /// The file stem, such as `02-framing`.
    pub stem: &'static str,
    /// The title, from its first heading (`2. Framing`).
    pub title: String,
    /// Every heading, in order.
    pub headings: Vec<Heading>,
}

/// The anchor GitHub's Markdown renderer gives a heading's text (before de-duplication):
/// lowercase; letters, digits, `-`, `_` and spaces kept, spaces turned into hyphens, the rest
/// (dots, commas, backticks, slashes, ...) dropped.
pub fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The headings of a Markdown text, outside fenced code blocks, with their anchors made
/// unique as a renderer does (`x`, `x-1`, `x-2`).
pub fn headings(markdown: &str) -> Vec<Heading> {
    let mut out: Vec<Heading> = Vec::new();
    let mut fence: Option<&str> = None;
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") {
            fence = Some("```");
            continue;
        }
        if trimmed.starts_with("~~~") {
            fence = Some("~~~");
            continue;
        }
        if line.starts_with("    ") {
            continue;
        }
        let level = trimmed.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&level) || !trimmed[level..].starts_with(' ') {
            continue;
        }
        let text = trimmed[level..]
            .trim()
            .trim_end_matches('#')
            .trim()
            .to_string();
        let base = slug(&text);
        let n = seen.entry(base.clone()).or_insert(0);
        let slug = if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        *n += 1;
        out.push(Heading { level, text, slug });
    }
    out
}

/// The chapters, parsed once.
pub fn chapters() -> &'static [Chapter] {
    static CHAPTERS_PARSED: OnceLock<Vec<Chapter>> = OnceLock::new();
    CHAPTERS_PARSED.get_or_init(|| {
        CHAPTERS
            .iter()
            .map(|(stem, markdown)| {
                let headings = headings(markdown);
                let title = headings
                    .iter()
                    .find(|h| h.level == 1)
                    .map_or_else(|| stem.to_string(), |h| h.text.clone());
                Chapter {
                    stem,
                    title,
                    headings,
                }
            })
            .collect()
    })
}

/// The chapter with file stem `stem`.
pub fn chapter(stem: &str) -> Option<&'static Chapter> {
    chapters().iter().find(|c| c.stem == stem)
}

/// The anchor of section `section` (`2.3.2`) of chapter `stem`: the slug of the heading whose
/// text starts with the section number; the chapter's own heading for a bare chapter number.
pub fn section_anchor(stem: &str, section: &str) -> Option<&'static str> {
    let chapter = chapter(stem)?;
    chapter
        .headings
        .iter()
        .find(|h| {
            h.text
                .strip_prefix(section)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(". "))
        })
        .map(|h| h.slug.as_str())
}

/// Where a requirement's link points: `BASE/CHAPTER.md#SECTION-ANCHOR` (without the anchor
/// when the section has no heading; `None` for an id the specification does not have).
pub fn requirement_url(base: &str, id: &str) -> Option<String> {
    let r = crate::requirements::lookup(id)?;
    let file = format!("{}/{}.md", base.trim_end_matches('/'), r.chapter);
    Some(match section_anchor(&r.chapter, &r.section) {
        Some(anchor) => format!("{file}#{anchor}"),
        None => file,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_renderers_rule() {
        assert_eq!(
            slug("2.3.2 Decoding, non-minimal encodings and overflow"),
            "232-decoding-non-minimal-encodings-and-overflow"
        );
        assert_eq!(
            slug("7.2 The host driver contract, `rpcplugin-host-driver/1`"),
            "72-the-host-driver-contract-rpcplugin-host-driver1"
        );
        let h = headings("# A\n\n```\n# not a heading\n```\n## A\n### B ##\n");
        let slugs: Vec<&str> = h.iter().map(|h| h.slug.as_str()).collect();
        assert_eq!(slugs, ["a", "a-1", "b"]);
    }

    #[test]
    fn every_requirement_links_to_its_sections_heading() {
        for r in crate::requirements::all() {
            let c = chapter(&r.chapter)
                .unwrap_or_else(|| panic!("{}: chapter {} not embedded", r.id, r.chapter));
            let anchor = section_anchor(&r.chapter, &r.section)
                .unwrap_or_else(|| panic!("{}: no heading for section {}", r.id, r.section));
            assert!(c.headings.iter().any(|h| h.slug == anchor));
        }
        assert_eq!(
            requirement_url("spec", "FRAME-4").unwrap(),
            "spec/02-framing.md#232-decoding-non-minimal-encodings-and-overflow"
        );
        assert_eq!(chapter("05-rpc").unwrap().title, "5. RPC");
    }
}
