//! The incremental writer: appends new and changed objects after the original bytes, then a
//! cross-reference section of the same kind as the file's last one (table or stream) whose
//! trailer points back with `/Prev`. The original bytes are never changed. It knows nothing
//! about signatures: the signer finds its placeholder in the output through the offsets this
//! writer returns (pyHanko keeps the two apart the same way).

use crate::document::XrefKind;
use crate::error::{Error, Result};
use lopdf::{Dictionary, Object, ObjectId, Writer};
use std::collections::BTreeMap;
use std::io::Write;

/// What an incremental update needs of the file it extends: its bytes, its last trailer and
/// cross-reference section, the next free object number, and its objects by id. Implemented
/// by the full lopdf parse ([`crate::SourcePdf`]) and by the minimal reader
/// ([`crate::minimal::MinimalPdf`]), which must answer alike.
pub trait UpdateBase {
    /// The original bytes.
    fn bytes(&self) -> &[u8];
    /// The latest trailer dictionary.
    fn trailer(&self) -> &Dictionary;
    /// Offset of the last cross-reference section (the `startxref` value).
    fn startxref(&self) -> usize;
    /// Whether the last cross-reference section is a table or a stream.
    fn xref_kind(&self) -> XrefKind;
    /// The first object number an update may use.
    fn next_object_number(&self) -> u32;
    /// The indirect object `id` as stored (references inside it not followed).
    fn object(&self, id: ObjectId) -> Option<&Object>;
    /// The first page, as lopdf's page iterator finds it.
    fn first_page(&self) -> Option<ObjectId>;
}

impl std::fmt::Debug for dyn UpdateBase + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UpdateBase({} bytes)", self.bytes().len())
    }
}

/// One incremental update under construction.
#[derive(Debug)]
pub struct IncrementalUpdate<'a> {
    base: &'a dyn UpdateBase,
    objects: BTreeMap<ObjectId, Body>,
    next: u32,
}

/// An object of the update: parsed, or already serialized by the caller.
#[derive(Debug)]
enum Body {
    Object(Object),
    Raw(Vec<u8>),
}

/// The written file and where each object of the update starts in it.
#[derive(Debug)]
pub struct WrittenUpdate {
    /// The whole file: original bytes followed by the update.
    pub bytes: Vec<u8>,
    /// Offset of each written object's `N G obj` line.
    pub offsets: BTreeMap<ObjectId, usize>,
}

impl<'a> IncrementalUpdate<'a> {
    /// Starts an empty update of `base`.
    pub fn new(base: &'a dyn UpdateBase) -> Self {
        IncrementalUpdate {
            base,
            objects: BTreeMap::new(),
            next: base.next_object_number(),
        }
    }

    /// The base document.
    pub fn base(&self) -> &'a dyn UpdateBase {
        self.base
    }

    /// Adds a new object and returns its id.
    pub fn add(&mut self, obj: impl Into<Object>) -> ObjectId {
        let id = (self.next, 0);
        self.next += 1;
        self.objects.insert(id, Body::Object(obj.into()));
        id
    }

    /// Adds a new object given as its serialized body (what goes between `N G obj` and
    /// `endobj`), for callers that must control the exact bytes (a signature placeholder).
    pub fn add_raw(&mut self, body: Vec<u8>) -> ObjectId {
        let id = (self.next, 0);
        self.next += 1;
        self.objects.insert(id, Body::Raw(body));
        id
    }

    /// Reserves an id for an object given later with [`IncrementalUpdate::set`].
    pub fn reserve(&mut self) -> ObjectId {
        let id = (self.next, 0);
        self.next += 1;
        self.objects.insert(id, Body::Object(Object::Null));
        id
    }

    /// Replaces (or sets) the object with id `id` in this update.
    pub fn set(&mut self, id: ObjectId, obj: impl Into<Object>) {
        self.objects.insert(id, Body::Object(obj.into()));
    }

    /// The object as this update will leave it: the updated version, or the base's.
    pub fn current(&self, id: ObjectId) -> Option<&Object> {
        match self.objects.get(&id) {
            Some(Body::Object(o)) => Some(o),
            Some(Body::Raw(_)) => None,
            None => self.base.object(id),
        }
    }

    /// Writes the original bytes followed by this update.
    pub fn write(self) -> Result<WrittenUpdate> {
        let base = self.base;
        let src = base.bytes();
        let raw: usize = self
            .objects
            .values()
            .map(|b| match b {
                Body::Raw(r) => r.len(),
                Body::Object(_) => 0,
            })
            .sum();
        let mut out = Vec::with_capacity(src.len() + raw + 8 * 1024);
        out.extend_from_slice(src);
        if !out.ends_with(b"\n") && !out.ends_with(b"\r") {
            out.push(b'\n');
        }
        let mut offsets = BTreeMap::new();
        for (id, obj) in &self.objects {
            offsets.insert(*id, out.len());
            writeln!(out, "{} {} obj", id.0, id.1).map_err(io)?;
            match obj {
                Body::Object(o) => Writer::write_object(&mut out, o)
                    .map_err(|e| Error::Malformed(e.to_string()))?,
                Body::Raw(b) => out.extend_from_slice(b),
            }
            out.extend_from_slice(b"\nendobj\n");
        }
        let mut trailer = Dictionary::new();
        let old = base.trailer();
        for key in [&b"Root"[..], b"Info", b"ID"] {
            if let Ok(v) = old.get(key) {
                trailer.set(key.to_vec(), v.clone());
            }
        }
        trailer.set("Prev", base.startxref() as i64);
        match base.xref_kind() {
            XrefKind::Table => {
                let size = self.next;
                trailer.set("Size", size as i64);
                let xref_at = out.len();
                out.extend_from_slice(b"xref\n");
                for run in runs(offsets.keys().map(|id| id.0)) {
                    writeln!(out, "{} {}", run.0, run.1).map_err(io)?;
                    for n in run.0..run.0 + run.1 {
                        let (id, off) = offsets
                            .iter()
                            .find(|(id, _)| id.0 == n)
                            .ok_or_else(|| Error::Malformed("xref run out of step".into()))?;
                        write!(out, "{:010} {:05} n\r\n", off, id.1).map_err(io)?;
                    }
                }
                out.extend_from_slice(b"trailer\n");
                Writer::write_object(&mut out, &Object::Dictionary(trailer))
                    .map_err(|e| Error::Malformed(e.to_string()))?;
                write!(out, "\nstartxref\n{xref_at}\n%%EOF\n").map_err(io)?;
            }
            XrefKind::Stream => {
                let xref_id = (self.next, 0u16);
                let size = self.next + 1;
                let xref_at = out.len();
                let mut entries: BTreeMap<u32, (usize, u16)> = offsets
                    .iter()
                    .map(|(id, off)| (id.0, (*off, id.1)))
                    .collect();
                entries.insert(xref_id.0, (xref_at, 0));
                let width = offset_width(xref_at);
                let mut index = Vec::new();
                let mut data = Vec::new();
                for run in runs(entries.keys().copied()) {
                    index.push(Object::Integer(run.0 as i64));
                    index.push(Object::Integer(run.1 as i64));
                    for n in run.0..run.0 + run.1 {
                        let (off, gen) = entries[&n];
                        data.push(1u8);
                        data.extend_from_slice(&(off as u64).to_be_bytes()[8 - width..]);
                        data.extend_from_slice(&gen.to_be_bytes());
                    }
                }
                trailer.set("Type", Object::Name(b"XRef".to_vec()));
                trailer.set("Size", size as i64);
                trailer.set("Index", Object::Array(index));
                trailer.set(
                    "W",
                    Object::Array(vec![1.into(), (width as i64).into(), 2.into()]),
                );
                let stream = lopdf::Stream::new(trailer, data).with_compression(false);
                writeln!(out, "{} {} obj", xref_id.0, xref_id.1).map_err(io)?;
                Writer::write_object(&mut out, &Object::Stream(stream))
                    .map_err(|e| Error::Malformed(e.to_string()))?;
                write!(out, "\nendobj\nstartxref\n{xref_at}\n%%EOF\n").map_err(io)?;
            }
        }
        Ok(WrittenUpdate {
            bytes: out,
            offsets,
        })
    }
}

fn io(e: std::io::Error) -> Error {
    Error::Malformed(e.to_string())
}

fn offset_width(max: usize) -> usize {
    let mut w = 1;
    while w < 8 && (max as u64) >> (8 * w) != 0 {
        w += 1;
    }
    w.max(4)
}

/// Consecutive runs `(first, count)` of sorted, distinct numbers.
fn runs(nums: impl Iterator<Item = u32>) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for n in nums {
        match out.last_mut() {
            Some((first, count)) if *first + *count == n => *count += 1,
            _ => out.push((n, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::runs;

    #[test]
    fn runs_group_consecutive_numbers() {
        assert_eq!(
            runs([1, 2, 3, 7, 8, 10].into_iter()),
            vec![(1, 3), (7, 2), (10, 1)]
        );
        assert!(runs(std::iter::empty()).is_empty());
    }
}
