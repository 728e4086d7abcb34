//! FlateDecode streams written by this crate (rendered pages, fonts, ICC profile, the embedded
//! `cda.xml`).
//!
//! Performance (batch publication renders and injects one PDF per document): one deflate
//! state per thread, reset between streams, instead of a fresh one per stream (its tables
//! were allocated and zeroed each time); the default level (6) instead of lopdf's 9, which
//! costs ~40 % more time for ~0.3 % smaller output; and `flate2`'s `zlib-rs` back end, ~4x
//! faster than `miniz_oxide` at equal level on CDA XML.
//!
//! Streams made for one document only (page contents, ToUnicode maps, the embedded CDA) are
//! deflated at level 1 ([`Level::Fast`]): on the CDA XML of the LAB fixtures (16-24 KB) ~3x
//! less time than level 6 for ~1.1-1.5 KB more output (3.7 KB instead of 2.6 KB, on a PDF
//! of tens of KB). Streams made once per process and reused (font programs, the ICC
//! profile) keep the default level ([`Level::Default`]).

use crate::error::{Error, Result};
use lopdf::{Dictionary, Stream};

/// Compression level of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Level 6: for streams made once and reused.
    Default,
    /// Level 1: for streams made for one document.
    Fast,
}

/// `content` deflated as a zlib stream (RFC 1950) at `level`.
pub(crate) fn deflate(content: &[u8], level: Level) -> Result<Vec<u8>> {
    thread_local! {
        static DEFAULT: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::default(), true));
        static FAST: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::fast(), true));
    }
    let state = match level {
        Level::Default => &DEFAULT,
        Level::Fast => &FAST,
    };
    state.with(|deflate| {
        let mut deflate = deflate.borrow_mut();
        deflate.reset();
        let mut out = Vec::with_capacity(content.len() / 2 + 64);
        loop {
            let consumed = usize::try_from(deflate.total_in()).unwrap_or(usize::MAX);
            let input = content.get(consumed..).unwrap_or_default();
            match deflate.compress_vec(input, &mut out, flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => return Ok(out),
                Ok(_) => out.reserve(out.capacity().max(1024)),
                Err(e) => return Err(Error::Malformed(format!("compression: {e}"))),
            }
        }
    })
}

/// A stream of `content` with `/Filter /FlateDecode` deflated at `level`, kept raw when
/// deflate does not pay (saves fewer than 20 bytes, as lopdf decides).
pub(crate) fn stream(dict: Dictionary, content: Vec<u8>, level: Level) -> Result<Stream> {
    let deflated = deflate(&content, level)?;
    if deflated.len() + 19 < content.len() {
        let mut stream = Stream::new(dict, deflated);
        stream.dict.set("Filter", "FlateDecode");
        Ok(stream)
    } else {
        Ok(Stream::new(dict, content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn inflate(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("valid zlib stream");
        out
    }

    #[test]
    fn round_trips_and_reuses_the_state() {
        let xml = br#"<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Referto</title></ClinicalDocument>"#
            .repeat(200);
        let big: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        // several streams on one thread: each must be complete on its own
        for level in [Level::Default, Level::Fast, Level::Default] {
            for content in [&xml[..], &big[..], b"", &xml[..]] {
                assert_eq!(inflate(&deflate(content, level).expect("deflate")), content);
            }
        }
    }

    #[test]
    fn keeps_content_raw_when_deflate_does_not_pay() {
        let s = stream(Dictionary::new(), b"abc".to_vec(), Level::Fast).expect("stream");
        assert!(s.dict.get(b"Filter").is_err());
        assert_eq!(s.content, b"abc");
        let text = b"the same words again and again ".repeat(50);
        let s = stream(Dictionary::new(), text.clone(), Level::Default).expect("stream");
        assert_eq!(
            s.dict.get(b"Filter").and_then(|f| f.as_name()).ok(),
            Some(&b"FlateDecode"[..])
        );
        assert_eq!(inflate(&s.content), text);
    }

    /// The fast level trades some size for time: its output inflates to the content, still
    /// compresses repetitive XML well, and is no smaller than the default level's.
    #[test]
    fn fast_level_round_trips_and_is_no_smaller_than_default() {
        let xml = br#"<section><title>Esami</title><text><paragraph>Glicemia 90 mg/dL</paragraph></text></section>"#
            .repeat(150);
        let fast = deflate(&xml, Level::Fast).expect("deflate");
        let default = deflate(&xml, Level::Default).expect("deflate");
        assert_eq!(inflate(&fast), xml);
        assert!(
            fast.len() >= default.len(),
            "{} < {}",
            fast.len(),
            default.len()
        );
        assert!(
            fast.len() < xml.len() / 4,
            "{} of {}",
            fast.len(),
            xml.len()
        );
    }
}
