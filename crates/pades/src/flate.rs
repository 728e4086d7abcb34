//! FlateDecode streams written by this crate (rendered pages, fonts, ICC profile, the embedded
//! `cda.xml`).
//!
//! Performance (batch publication renders and injects one PDF per document): one deflate
//! state per thread, reset between streams, instead of a fresh one per stream (its tables
//! were allocated and zeroed each time); the default level (6) instead of lopdf's 9, which
//! costs ~40 % more time for ~0.3 % smaller output; and `flate2`'s `zlib-rs` back end, ~4x
//! faster than `miniz_oxide` at equal level on CDA XML.

use crate::error::{Error, Result};
use lopdf::{Dictionary, Stream};

/// `content` deflated as a zlib stream (RFC 1950) at the default level.
pub(crate) fn deflate(content: &[u8]) -> Result<Vec<u8>> {
    thread_local! {
        static DEFLATE: std::cell::RefCell<flate2::Compress> =
            std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::default(), true));
    }
    DEFLATE.with(|deflate| {
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

/// A stream of `content` with `/Filter /FlateDecode`, kept raw when deflate does not pay
/// (saves fewer than 20 bytes, as lopdf decides).
pub(crate) fn stream(dict: Dictionary, content: Vec<u8>) -> Result<Stream> {
    let deflated = deflate(&content)?;
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
        for content in [&xml[..], &big[..], b"", &xml[..]] {
            assert_eq!(inflate(&deflate(content).expect("deflate")), content);
        }
    }

    #[test]
    fn keeps_content_raw_when_deflate_does_not_pay() {
        let s = stream(Dictionary::new(), b"abc".to_vec()).expect("stream");
        assert!(s.dict.get(b"Filter").is_err());
        assert_eq!(s.content, b"abc");
        let text = b"the same words again and again ".repeat(50);
        let s = stream(Dictionary::new(), text.clone()).expect("stream");
        assert_eq!(
            s.dict.get(b"Filter").and_then(|f| f.as_name()).ok(),
            Some(&b"FlateDecode"[..])
        );
        assert_eq!(inflate(&s.content), text);
    }
}
