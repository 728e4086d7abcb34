//! Verification of signed FSE PDFs: every signature's CMS (signer certificate embedded,
//! message digest over the `/ByteRange`, signature over the signed attributes), the
//! `/ByteRange` shape (starts at 0, its hole is exactly the `/Contents` string, the last one
//! reaches the end of the file), `/M`, the PAdES baseline B-B rules, and the `cda.xml`
//! attachment where the gateway looks. Changes appended after the last signature are reported
//! and make the file invalid. Trust (chains, revocation) is not judged here.

use crate::attachment::{check_cda_root, find_cda};
use crate::cms_asn1::*;
use crate::document::SourcePdf;
use crate::identity::{cert_time, rfc3339, validity, CertTime};
use crate::signature::parse_pdf_date;
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::{Decode, Encode};
use lopdf::Object;
use serde::Serialize;
use x509_cert::Certificate;

/// PAdES baseline level of one signature (B-LT/B-LTA are not told apart from B-T here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum PadesLevel {
    /// Below B-B (legacy `adbe.pkcs7.detached`, CMS signing-time, missing attributes...).
    #[serde(rename = "NONE")]
    None,
    /// Baseline B-B.
    #[serde(rename = "B-B")]
    BB,
    /// B-B plus a signature time-stamp (or a document timestamp).
    #[serde(rename = "B-T")]
    BT,
}

impl std::fmt::Display for PadesLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PadesLevel::None => "NONE",
            PadesLevel::BB => "B-B",
            PadesLevel::BT => "B-T",
        })
    }
}

/// What was found about one signature.
#[derive(Debug, Clone, Serialize)]
pub struct SignatureReport {
    /// Field name (`/T`).
    pub field: String,
    /// `/SubFilter`.
    pub sub_filter: String,
    /// Whether this is a document timestamp (`/Type /DocTimeStamp`).
    pub doc_timestamp: bool,
    /// `/M`, when present.
    pub signing_time: Option<String>,
    /// The signer certificate's subject, when found.
    pub signer: Option<String>,
    /// The `/ByteRange`.
    pub byte_range: Vec<i64>,
    /// Message digest and signature both verify.
    pub intact: bool,
    /// The signed range reaches the end of the file (trailing white space aside).
    pub covers_whole_file: bool,
    /// Bytes appended after the signed range.
    pub bytes_after: u64,
    /// PAdES baseline level.
    pub level: PadesLevel,
    /// Problems found (empty when none).
    pub problems: Vec<String>,
    /// The revision this signature covers (1 = the original file; each incremental update
    /// adds one), when its signed range ends where a revision ends.
    pub revision: Option<usize>,
    /// Revisions appended after the one this signature covers.
    pub later_revisions: usize,
    /// What those later revisions changed beyond adding signatures and validation data
    /// (empty when nothing).
    pub changed_after: Vec<String>,
    /// Whether the revision this signature covers carries the file's final `cda.xml`, byte
    /// for byte (`None` when the file has no readable `cda.xml`).
    pub covers_final_cda: Option<bool>,
    /// The signer certificate's notBefore (RFC 3339), when found.
    pub cert_not_before: Option<String>,
    /// The signer certificate's notAfter (RFC 3339), when found.
    pub cert_not_after: Option<String>,
    /// The signer certificate at the signing time `/M`: `valid`, `expired` or `not_yet_valid`
    /// (`None` when either is missing or unreadable).
    pub cert_at_signing: Option<CertTime>,
    /// The signer certificate now: `valid`, `expired` or `not_yet_valid`.
    pub cert_now: Option<CertTime>,
}

/// The verdict on one PDF.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// `true` when every check passed.
    pub valid: bool,
    /// Reasons the file is invalid.
    pub problems: Vec<String>,
    /// Per signature, in field order.
    pub signatures: Vec<SignatureReport>,
    /// Size of the embedded CDA, when found.
    pub cda_bytes: Option<usize>,
    /// Lowercase hex SHA-256 of the whole file (the gateway's `attachment_hash`).
    pub sha256: String,
    /// Revisions of the file (1 = no incremental update).
    pub revisions: usize,
    /// What is worth knowing but does not make the file invalid (e.g. a signer certificate
    /// that has expired since it signed: without a timestamp, nothing proves when it signed).
    pub warnings: Vec<String>,
}

/// Verifies a PDF's bytes. Never panics on hostile input: what cannot be read is reported.
pub fn verify(bytes: &[u8]) -> VerifyReport {
    let sha256 = hex_lower(digest::digest(&digest::SHA256, bytes).as_ref());
    let mut report = VerifyReport {
        valid: false,
        problems: Vec::new(),
        signatures: Vec::new(),
        cda_bytes: None,
        sha256,
        revisions: revision_ends(bytes).len().max(1),
        warnings: Vec::new(),
    };
    let pdf = match SourcePdf::parse(bytes.to_vec()) {
        Ok(p) => p,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    if let Some(lopdf::xref::XrefRecovery::Reconstructed) = pdf.doc().xref_recovery {
        report
            .problems
            .push("damaged PDF: its cross-reference data had to be rebuilt".into());
    }
    let fields = signature_fields(&pdf);
    if fields.is_empty() {
        report
            .problems
            .push("not signed: no top-level AcroForm field /FT /Sig with a value".into());
    }
    for (name, sig_obj) in fields {
        report
            .signatures
            .push(check_signature(&pdf, bytes, name, sig_obj));
    }
    let final_cda = match find_cda(&pdf) {
        Ok(found) => {
            report.cda_bytes = Some(found.xml.len());
            if let Err(e) = check_cda_root(&found.xml) {
                report.problems.push(e.to_string());
            }
            Some(found.xml)
        }
        Err(e) => {
            report.problems.push(e.to_string());
            None
        }
    };
    let ends = revision_ends(bytes);
    let n = report.signatures.len();
    for (i, s) in report.signatures.iter_mut().enumerate() {
        let last = i + 1 == n;
        if !s.intact {
            report
                .problems
                .push(format!("{}: signature not intact", s.field));
        }
        for p in &s.problems {
            report.problems.push(format!("{}: {p}", s.field));
        }
        let signed_end = match s.byte_range.as_slice() {
            [_, _, c, d] => usize::try_from(c.saturating_add(*d)).unwrap_or(0),
            _ => 0,
        }
        .min(bytes.len());
        if signed_end > 0 {
            let covered = ends.iter().filter(|&&e| e <= signed_end).count();
            s.later_revisions = ends.len().saturating_sub(covered);
            s.revision = ends
                .iter()
                .position(|&e| e <= signed_end && trailing_space(&bytes[e..signed_end]))
                .map(|r| r + 1);
        }
        if s.covers_whole_file || signed_end == 0 {
            s.covers_final_cda = final_cda.as_ref().map(|_| true);
        } else {
            match SourcePdf::parse(bytes[..signed_end].to_vec()) {
                Ok(old) => {
                    if let Err(why) = changes_after(&pdf, &old, !last) {
                        s.changed_after.push(why);
                    }
                    s.covers_final_cda = final_cda
                        .as_ref()
                        .map(|x| find_cda(&old).is_ok_and(|f| f.xml == *x));
                }
                Err(_) => s
                    .changed_after
                    .push("the signed revision cannot be read on its own".into()),
            }
        }
        if let Some(why) = s.changed_after.first() {
            report.problems.push(if last {
                format!(
                    "{}: {} bytes were appended after the last signature (incremental changes \
                     after signing: {why})",
                    s.field, s.bytes_after
                )
            } else {
                format!(
                    "{}: a later revision changed what it signed ({why})",
                    s.field
                )
            });
        }
        if s.covers_final_cda == Some(false) {
            report.problems.push(format!(
                "{}: the cda.xml it signed is not the file's cda.xml (replaced or added in a \
                 later revision): that CDA is not signed by {}",
                s.field,
                s.signer.as_deref().unwrap_or("its signer")
            ));
        }
        let dates = format!(
            "valid from {} to {}",
            s.cert_not_before.as_deref().unwrap_or("?"),
            s.cert_not_after.as_deref().unwrap_or("?")
        );
        match s.cert_at_signing {
            Some(CertTime::Valid) | None => {}
            Some(state) => report.problems.push(format!(
                "{}: the signer certificate was {state} at the signing time {} ({dates})",
                s.field,
                s.signing_time.as_deref().unwrap_or("-"),
            )),
        }
        match (s.cert_at_signing, s.cert_now) {
            (Some(CertTime::Valid), Some(now)) if now != CertTime::Valid => {
                report.warnings.push(format!(
                    "{}: the signer certificate is {now} now ({dates}); only /M, which the \
                     signer wrote, says it signed before",
                    s.field
                ))
            }
            _ => {}
        }
        if last && s.doc_timestamp {
            report.problems.push(format!(
                "{}: the last signature is a document timestamp (no /M: the gateway answers /msg/sign-error)",
                s.field
            ));
        }
        if !s.doc_timestamp && s.level < PadesLevel::BB {
            report
                .problems
                .push(format!("{}: below PAdES baseline B-B", s.field));
        }
    }
    report.problems.dedup();
    report.valid = report.problems.is_empty();
    report
}

/// Where each revision of the file ends: just after each `%%EOF` that follows a `startxref`.
fn revision_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut from = 0;
    while let Some(at) = crate::document::find_from(bytes, b"%%EOF", from) {
        let head = &bytes[at.saturating_sub(64)..at];
        if head.windows(9).any(|w| w == b"startxref") {
            ends.push(at + 5);
        }
        from = at + 5;
    }
    ends
}

/// Only end-of-line and white-space bytes (what may follow `%%EOF`).
fn trailing_space(b: &[u8]) -> bool {
    b.iter().all(|b| b" \t\r\n\x0c\0".contains(b))
}

/// A serialization that ignores dictionary key order (writers reorder keys freely).
fn serialized(o: &Object) -> Vec<u8> {
    fn canon(o: &Object, out: &mut Vec<u8>, depth: usize) {
        if depth > 64 {
            return;
        }
        match o {
            Object::Dictionary(d) => dict(d, out, depth),
            Object::Stream(s) => {
                dict(&s.dict, out, depth);
                out.extend_from_slice(b"stream");
                out.extend_from_slice(&s.content);
            }
            Object::Array(a) => {
                out.push(b'[');
                for x in a {
                    canon(x, out, depth + 1);
                    out.push(b' ');
                }
                out.push(b']');
            }
            other => {
                // writing to a Vec cannot fail
                let _ = lopdf::Writer::write_object(out, other);
            }
        }
    }
    fn dict(d: &lopdf::Dictionary, out: &mut Vec<u8>, depth: usize) {
        let mut keys: Vec<&Vec<u8>> = d.as_hashmap().keys().collect();
        keys.sort();
        out.extend_from_slice(b"<<");
        for k in keys {
            out.push(b'/');
            out.extend_from_slice(k);
            out.push(b' ');
            if let Ok(v) = d.get(k) {
                canon(v, out, depth + 1);
            }
            out.push(b' ');
        }
        out.extend_from_slice(b">>");
    }
    let mut v = Vec::new();
    canon(o, &mut v, 0);
    v
}

/// What the revisions after a signed revision `old` changed, as far as a signature over `old`
/// is concerned. Always allowed: new objects, a `/DSS` in the catalog, updated XMP metadata
/// and the information dictionary (PAdES B-LT updates). With `new_signatures`, also what adding
/// a signature needs (pyHanko's FORM_FILLING): `/Fields` and `/Annots` arrays that only grow by
/// signature fields, `/SigFlags`, and a signature field that gets its value. `Err` names the
/// first other change.
fn changes_after(pdf: &SourcePdf, old: &SourcePdf, new_signatures: bool) -> Result<(), String> {
    let cat_id = pdf.catalog_id().map_err(|e| e.to_string())?;
    if old.catalog_id().ok() != Some(cat_id) {
        return Err("the catalog was replaced".into());
    }
    let info = pdf
        .trailer()
        .get(b"Info")
        .and_then(Object::as_reference)
        .ok();
    let acroform_id = pdf
        .catalog()
        .ok()
        .and_then(|c| c.get(b"AcroForm").ok())
        .and_then(|o| o.as_reference().ok());
    // a signature field (or the widget of one) in the final file
    let is_sig_field = |o: &Object| {
        let field = |o: &Object| match pdf.resolve(o) {
            Some(Object::Dictionary(d)) => Some(d.clone()),
            _ => None,
        };
        field(o).is_some_and(|d| {
            d.get(b"FT").and_then(Object::as_name).ok() == Some(&b"Sig"[..])
                || d.get(b"Parent").ok().and_then(field).is_some_and(|p| {
                    p.get(b"FT").and_then(Object::as_name).ok() == Some(&b"Sig"[..])
                })
        })
    };
    // `b` is `a` followed by signature fields only
    let grew_by_signatures = |a: &Object, b: &Object| match (a, b) {
        (Object::Array(a), Object::Array(b)) => {
            new_signatures
                && b.len() >= a.len()
                && a.iter().zip(b).all(|(x, y)| serialized(x) == serialized(y))
                && b[a.len()..].iter().all(is_sig_field)
        }
        _ => false,
    };
    // an AcroForm without what adding a signature changes (or what readers add to it)
    let strip_acroform = |d: &lopdf::Dictionary| {
        let mut d = d.clone();
        d.remove(b"DA");
        d.remove(b"DR");
        if new_signatures {
            d.remove(b"SigFlags");
            d.remove(b"NeedAppearances");
        }
        d
    };
    let acroforms_agree = |a: &lopdf::Dictionary, b: &lopdf::Dictionary| {
        let (mut a, mut b) = (strip_acroform(a), strip_acroform(b));
        if let (Ok(fa), Ok(fb)) = (a.get(b"Fields"), b.get(b"Fields")) {
            if grew_by_signatures(fa, fb) {
                a.remove(b"Fields");
                b.remove(b"Fields");
            }
        }
        serialized(&Object::Dictionary(a)) == serialized(&Object::Dictionary(b))
    };
    let dss = dss_objects(pdf);
    for (id, obj) in &pdf.doc().objects {
        if Some(*id) == info || dss.contains(id) {
            // the document information dictionary is outside what is signed; the DSS is
            // validation data
            continue;
        }
        let Some(before) = old.doc().objects.get(id) else {
            continue; // new objects are reachable only through what changed
        };
        if serialized(before) == serialized(obj) || grew_by_signatures(before, obj) {
            continue;
        }
        let changed = || Err(format!("object {} {} R changed", id.0, id.1));
        if *id == cat_id {
            let (Object::Dictionary(a), Object::Dictionary(b)) = (before, obj) else {
                return Err("the catalog changed type".into());
            };
            // validation data and what readers add along with it (extension level, form
            // defaults): the changes pyHanko's diff analysis accepts as LTA updates
            let strip = |d: &lopdf::Dictionary| {
                let mut d = d.clone();
                d.remove(b"DSS");
                d.remove(b"Extensions");
                d
            };
            let (mut a, mut b) = (strip(a), strip(b));
            match (a.get(b"AcroForm"), b.get(b"AcroForm")) {
                (Ok(Object::Dictionary(fa)), Ok(Object::Dictionary(fb))) => {
                    if !acroforms_agree(fa, fb) {
                        return Err("the catalog's /AcroForm changed".into());
                    }
                    a.remove(b"AcroForm");
                    b.remove(b"AcroForm");
                }
                (Err(_), Ok(form)) if new_signatures => {
                    // a form made for the new signatures only
                    let fields = pdf
                        .resolve(form)
                        .and_then(|f| f.as_dict().ok())
                        .and_then(|f| f.get(b"Fields").ok())
                        .and_then(|f| pdf.resolve(f))
                        .cloned()
                        .unwrap_or(Object::Array(Vec::new()));
                    if !grew_by_signatures(&Object::Array(Vec::new()), &fields) {
                        return Err("a form with other fields than signatures was added".into());
                    }
                    b.remove(b"AcroForm");
                }
                _ => {}
            }
            if serialized(&Object::Dictionary(a)) != serialized(&Object::Dictionary(b)) {
                return Err("the catalog changed beyond /DSS".into());
            }
            continue;
        }
        let is_metadata = |o: &Object| {
            matches!(o, Object::Stream(st)
                if st.dict.get(b"Type").and_then(Object::as_name).ok() == Some(&b"Metadata"[..]))
        };
        if is_metadata(before) && is_metadata(obj) {
            continue;
        }
        let (Object::Dictionary(a), Object::Dictionary(b)) = (before, obj) else {
            return changed();
        };
        if Some(*id) == acroform_id {
            if acroforms_agree(a, b) {
                continue;
            }
            return changed();
        }
        if !new_signatures {
            return changed();
        }
        let type_is = |d: &lopdf::Dictionary, t: &[u8]| {
            d.get(b"Type").and_then(Object::as_name).ok() == Some(t)
        };
        let (mut a, mut b) = (a.clone(), b.clone());
        if type_is(&b, b"Page") {
            // a page whose annotations grew by signature widgets
            let annots = |doc: &SourcePdf, d: &lopdf::Dictionary| {
                d.get(b"Annots")
                    .ok()
                    .and_then(|o| doc.resolve(o))
                    .cloned()
                    .unwrap_or(Object::Array(Vec::new()))
            };
            let (x, y) = (annots(old, &a), annots(pdf, &b));
            if serialized(&x) != serialized(&y) && !grew_by_signatures(&x, &y) {
                return changed();
            }
            a.remove(b"Annots");
            b.remove(b"Annots");
        } else if b.get(b"FT").and_then(Object::as_name).ok() == Some(&b"Sig"[..]) && !a.has(b"V") {
            // an empty signature field that was signed
            for k in [&b"V"[..], b"AP", b"F"] {
                a.remove(k);
                b.remove(k);
            }
        }
        if serialized(&Object::Dictionary(a)) != serialized(&Object::Dictionary(b)) {
            return changed();
        }
    }
    Ok(())
}

/// The document security store's own objects: the catalog's `/DSS` dictionary, its arrays
/// (`/Certs`, `/OCSPs`, `/CRLs`), its `/VRI` dictionary and the entries of that.
fn dss_objects(pdf: &SourcePdf) -> std::collections::HashSet<lopdf::ObjectId> {
    let mut ids = std::collections::HashSet::new();
    let Some(dss) = pdf.catalog().ok().and_then(|c| c.get(b"DSS").ok()) else {
        return ids;
    };
    let mut todo = vec![(dss.clone(), 0)];
    while let Some((obj, depth)) = todo.pop() {
        if let Object::Reference(id) = obj {
            match pdf.doc().objects.get(&id) {
                Some(o @ (Object::Dictionary(_) | Object::Array(_))) if ids.insert(id) => {
                    todo.push((o.clone(), depth));
                }
                _ => {}
            }
            continue;
        }
        if depth >= 3 {
            continue;
        }
        match obj {
            Object::Dictionary(d) => {
                for (_, v) in d.iter() {
                    todo.push((v.clone(), depth + 1));
                }
            }
            Object::Array(a) => todo.extend(a.into_iter().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    ids
}

/// Top-level AcroForm fields of type `/Sig` that have a value: `(name, value dictionary)`.
pub(crate) fn signature_fields(pdf: &SourcePdf) -> Vec<(String, lopdf::Dictionary)> {
    let mut out = Vec::new();
    let Ok(cat) = pdf.catalog() else {
        return out;
    };
    let Some(Object::Dictionary(acro)) = cat.get(b"AcroForm").ok().and_then(|o| pdf.resolve(o))
    else {
        return out;
    };
    let Some(Object::Array(fields)) = acro.get(b"Fields").ok().and_then(|o| pdf.resolve(o)) else {
        return out;
    };
    for f in fields {
        let Some(Object::Dictionary(f)) = pdf.resolve(f) else {
            continue;
        };
        if f.get(b"FT").ok().and_then(|o| o.as_name().ok()) != Some(b"Sig") {
            continue;
        }
        let Some(Object::Dictionary(v)) = f.get(b"V").ok().and_then(|o| pdf.resolve(o)) else {
            continue;
        };
        let name = f
            .get(b"T")
            .ok()
            .and_then(|t| t.as_str().ok())
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .unwrap_or_default();
        out.push((name, v.clone()));
    }
    out
}

fn name_of(d: &lopdf::Dictionary, key: &[u8]) -> String {
    d.get(key)
        .ok()
        .and_then(|o| o.as_name().ok())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .unwrap_or_default()
}

fn check_signature(
    pdf: &SourcePdf,
    bytes: &[u8],
    field: String,
    sig: lopdf::Dictionary,
) -> SignatureReport {
    let sub_filter = name_of(&sig, b"SubFilter");
    let doc_timestamp = name_of(&sig, b"Type") == "DocTimeStamp" || sub_filter == "ETSI.RFC3161";
    let signing_time = sig
        .get(b"M")
        .ok()
        .and_then(|m| m.as_str().ok())
        .map(|m| String::from_utf8_lossy(m).into_owned());
    let byte_range: Vec<i64> = match sig.get(b"ByteRange").ok().and_then(|o| pdf.resolve(o)) {
        Some(Object::Array(a)) => a.iter().filter_map(|o| o.as_i64().ok()).collect(),
        _ => Vec::new(),
    };
    let mut r = SignatureReport {
        field,
        sub_filter,
        doc_timestamp,
        signing_time,
        signer: None,
        byte_range: byte_range.clone(),
        intact: false,
        covers_whole_file: false,
        bytes_after: 0,
        level: PadesLevel::None,
        problems: Vec::new(),
        revision: None,
        later_revisions: 0,
        changed_after: Vec::new(),
        covers_final_cda: None,
        cert_not_before: None,
        cert_not_after: None,
        cert_at_signing: None,
        cert_now: None,
    };
    if r.signing_time.is_none() && !doc_timestamp {
        r.problems.push("no /M (signing time)".into());
    }
    let contents = match sig.get(b"Contents").ok().and_then(|o| pdf.resolve(o)) {
        Some(Object::String(s, _)) => s.clone(),
        _ => {
            r.problems.push("no /Contents string".into());
            return r;
        }
    };
    // ByteRange shape
    let len = bytes.len() as i64;
    let ranges = match byte_range.as_slice() {
        [a, b, c, d]
            if *a == 0
                && *b > 0
                && *c > *b
                && *d >= 0
                && c.checked_add(*d).is_some_and(|e| e <= len) =>
        {
            (*b as usize, *c as usize, (*c + *d) as usize)
        }
        _ => {
            r.problems.push(format!(
                "malformed /ByteRange {byte_range:?} for a {len}-byte file"
            ));
            return r;
        }
    };
    let (hole_start, hole_end, signed_end) = ranges;
    let hole = &bytes[hole_start..hole_end];
    let hole_ok = hole.len() >= 2
        && hole[0] == b'<'
        && hole[hole.len() - 1] == b'>'
        && decode_hex(&hole[1..hole.len() - 1]).as_deref() == Some(&contents[..]);
    if !hole_ok {
        r.problems
            .push("the /ByteRange hole is not exactly this signature's /Contents string".into());
    }
    r.bytes_after = (len as u64).saturating_sub(signed_end as u64);
    // trailing end-of-line bytes after %%EOF change nothing a reader sees
    r.covers_whole_file = trailing_space(&bytes[signed_end..]);
    if doc_timestamp {
        // the timestamp token is checked for integrity only as far as its digest goes
        r.level = PadesLevel::BT;
        r.intact = hole_ok;
        return r;
    }
    let parts = [&bytes[..hole_start], &bytes[hole_end..signed_end]];
    match check_cms(&contents, &parts) {
        Ok(c) => {
            let (not_before, not_after) = validity(&c.cert);
            r.cert_not_before = Some(rfc3339(not_before));
            r.cert_not_after = Some(rfc3339(not_after));
            r.cert_now = Some(cert_time(&c.cert, time::OffsetDateTime::now_utc()));
            r.cert_at_signing = r
                .signing_time
                .as_deref()
                .and_then(parse_pdf_date)
                .map(|t| cert_time(&c.cert, t));
            r.signer = Some(c.signer);
            r.intact = c.intact && hole_ok;
            r.problems.extend(c.problems);
            let pades_ok = r.sub_filter == "ETSI.CAdES.detached" && c.pades_problems.is_empty();
            r.level = if !pades_ok {
                PadesLevel::None
            } else if c.has_signature_timestamp {
                PadesLevel::BT
            } else {
                PadesLevel::BB
            };
            if r.sub_filter != "ETSI.CAdES.detached" {
                r.problems.push(format!(
                    "/SubFilter {} is not PAdES (need ETSI.CAdES.detached)",
                    r.sub_filter
                ));
            }
            r.problems.extend(c.pades_problems);
        }
        Err(e) => r.problems.push(e),
    }
    r
}

struct CmsCheck {
    signer: String,
    cert: Certificate,
    intact: bool,
    has_signature_timestamp: bool,
    problems: Vec<String>,
    pades_problems: Vec<String>,
}

/// Length of the DER element at the start of `b` (header + content), if well-formed.
fn der_len(b: &[u8]) -> Option<usize> {
    if b.len() < 2 {
        return None;
    }
    let first = b[1];
    if first < 0x80 {
        return Some(2 + first as usize);
    }
    let n = (first & 0x7f) as usize;
    if n == 0 || n > 4 || b.len() < 2 + n {
        return None;
    }
    let mut l = 0usize;
    for &x in &b[2..2 + n] {
        l = (l << 8) | x as usize;
    }
    (2 + n).checked_add(l)
}

fn digest_alg(oid: ObjectIdentifier) -> Option<&'static digest::Algorithm> {
    match oid {
        x if x == ID_SHA256 => Some(&digest::SHA256),
        x if x == ID_SHA384 => Some(&digest::SHA384),
        x if x == ID_SHA512 => Some(&digest::SHA512),
        x if x == ID_SHA1 => Some(&digest::SHA1_FOR_LEGACY_USE_ONLY),
        _ => None,
    }
}

fn verification_alg(
    sig_oid: ObjectIdentifier,
    digest_oid: ObjectIdentifier,
    cert: &Certificate,
) -> Option<&'static dyn VerificationAlgorithm> {
    let spki = &cert.tbs_certificate.subject_public_key_info;
    let is_rsa = spki.algorithm.oid == ID_RSA;
    let rsa_sig = [ID_RSA, ID_RSA_SHA256, ID_RSA_SHA384, ID_RSA_SHA512].contains(&sig_oid);
    if is_rsa && sig_oid == ID_RSA_PSS {
        // the PSS parameters name the hash; signers use the SignerInfo's digest algorithm
        return match digest_oid {
            x if x == ID_SHA256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
            x if x == ID_SHA384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
            x if x == ID_SHA512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
    }
    if is_rsa && rsa_sig {
        let d = match sig_oid {
            x if x == ID_RSA_SHA256 => ID_SHA256,
            x if x == ID_RSA_SHA384 => ID_SHA384,
            x if x == ID_RSA_SHA512 => ID_SHA512,
            _ => digest_oid,
        };
        return match d {
            x if x == ID_SHA256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            x if x == ID_SHA384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            x if x == ID_SHA512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            x if x == ID_SHA1 => Some(&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
            _ => None,
        };
    }
    if spki.algorithm.oid == ID_EC_PUBLIC_KEY {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok())?;
        let d = match sig_oid {
            x if x == ID_ECDSA_SHA256 => ID_SHA256,
            x if x == ID_ECDSA_SHA384 => ID_SHA384,
            x if x == ID_ECDSA_SHA512 => ID_SHA512,
            _ => digest_oid,
        };
        return match (curve, d) {
            (c, h) if c == ID_P256 && h == ID_SHA256 => Some(&sig::ECDSA_P256_SHA256_ASN1),
            (c, h) if c == ID_P256 && h == ID_SHA384 => Some(&sig::ECDSA_P256_SHA384_ASN1),
            (c, h) if c == ID_P384 && h == ID_SHA384 => Some(&sig::ECDSA_P384_SHA384_ASN1),
            (c, h) if c == ID_P384 && h == ID_SHA256 => Some(&sig::ECDSA_P384_SHA256_ASN1),
            _ => None,
        };
    }
    None
}

fn find_signer<'a>(sd: &'a SignedData, si: &SignerInfo) -> Option<&'a Certificate> {
    let certs = sd.certificates.as_ref()?;
    certs.0.iter().find_map(|c| match c {
        CertificateChoices::Certificate(cert) => {
            let tbs = &cert.tbs_certificate;
            let hit = match &si.sid {
                SignerIdentifier::IssuerAndSerialNumber(ias) => {
                    ias.issuer == tbs.issuer && ias.serial_number == tbs.serial_number
                }
                SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
                    .extensions
                    .as_ref()
                    .map(|exts| {
                        exts.iter().any(|e| {
                            e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER
                                && OctetString::from_der(e.extn_value.as_bytes())
                                    .map(|o| o.as_bytes() == ski.0.as_bytes())
                                    .unwrap_or(false)
                        })
                    })
                    .unwrap_or(false),
            };
            hit.then_some(cert)
        }
        _ => None,
    })
}

fn check_cms(contents: &[u8], parts: &[&[u8]]) -> Result<CmsCheck, String> {
    let normalized;
    let der: &[u8] = match der_len(contents).filter(|&n| n <= contents.len()) {
        Some(n) if contents.first() == Some(&0x30) => &contents[..n],
        _ => {
            normalized = crate::ber::to_der(contents)
                .map(|(d, _)| d)
                .ok_or("the /Contents is not a CMS (empty or unfilled signature?)".to_string())?;
            &normalized
        }
    };
    let ci = match ContentInfo::from_der(der) {
        Ok(ci) => ci,
        Err(first) => {
            // BER parts inside a definite-length outer layer
            let d = crate::ber::to_der(der)
                .map(|(d, _)| d)
                .ok_or(format!("unreadable CMS ContentInfo: {first}"))?;
            ContentInfo::from_der(&d).map_err(|e| format!("unreadable CMS ContentInfo: {e}"))?
        }
    };
    if ci.content_type != ID_SIGNED_DATA {
        return Err(format!(
            "CMS content type {} is not signedData",
            ci.content_type
        ));
    }
    let sd: SignedData = ci
        .content
        .decode_as()
        .map_err(|e| format!("unreadable CMS SignedData: {e}"))?;
    let mut problems = Vec::new();
    let mut pades = Vec::new();
    let si = sd
        .signer_infos
        .0
        .iter()
        .next()
        .ok_or("the CMS has no SignerInfo")?;
    if sd.signer_infos.0.len() != 1 {
        pades.push(format!(
            "{} SignerInfos (PAdES needs exactly one)",
            sd.signer_infos.0.len()
        ));
    }
    if sd.encap_content_info.econtent.is_some() {
        problems.push("the CMS encapsulates content (must be detached)".into());
    }
    let cert = find_signer(&sd, si).ok_or("the signer certificate is not embedded in the CMS")?;
    let signer = cert.tbs_certificate.subject.to_string();
    let dalg = digest_alg(si.digest_alg.oid)
        .ok_or_else(|| format!("unsupported digest algorithm {}", si.digest_alg.oid))?;
    if si.digest_alg.oid == ID_SHA1 {
        pades.push("SHA-1 digest".into());
    }
    let mut ctx = digest::Context::new(dalg);
    for p in parts {
        ctx.update(p);
    }
    let doc_digest = ctx.finish();

    let attrs = si.signed_attrs.as_ref();
    let values = |oid: ObjectIdentifier| -> Vec<der::Any> {
        attrs
            .map(|a| {
                a.iter()
                    .filter(|x| x.oid == oid)
                    .flat_map(|x| x.values.iter().cloned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (signed_msg, digest_ok) = match attrs {
        Some(a) => {
            let md = values(ID_MESSAGE_DIGEST);
            let ok = md.len() == 1
                && md[0]
                    .decode_as::<OctetString>()
                    .map(|o| o.as_bytes() == doc_digest.as_ref())
                    .unwrap_or(false);
            if md.len() != 1 {
                problems.push("message-digest attribute missing".into());
            } else if !ok {
                problems.push(
                    "message digest does not match the signed byte range (the file was changed)"
                        .into(),
                );
            }
            let ct = values(ID_CONTENT_TYPE);
            if ct.len() != 1 || ct[0].decode_as::<ObjectIdentifier>().ok() != Some(ID_DATA) {
                pades.push("content-type attribute missing or not id-data".into());
            }
            if !values(ID_SIGNING_TIME).is_empty() {
                pades.push(
                    "CMS signing-time attribute present (PAdES baseline puts the time in /M)"
                        .into(),
                );
            }
            let v2 = values(ID_SIGNING_CERTIFICATE_V2);
            let v1 = values(ID_SIGNING_CERTIFICATE);
            if v1.is_empty() == v2.is_empty() {
                pades.push("need exactly one ESS signing-certificate(-v2) attribute".into());
            } else if let Some(v) = v2.first() {
                let cert_der = cert.to_der().map_err(|e| e.to_string())?;
                let first = v
                    .decode_as::<SigningCertificateV2>()
                    .ok()
                    .and_then(|s| s.certs.into_iter().next());
                let matches = first.is_some_and(|c| {
                    let alg = c
                        .hash_algorithm
                        .as_ref()
                        .map(|a| a.oid)
                        .unwrap_or(ID_SHA256);
                    digest_alg(alg).is_some_and(|d| {
                        digest::digest(d, &cert_der).as_ref() == c.cert_hash.as_bytes()
                    })
                });
                if !matches {
                    pades.push(
                        "ESS signing-certificate-v2 does not match the signer certificate".into(),
                    );
                }
            }
            (a.to_der().map_err(|e| e.to_string())?, ok)
        }
        None => {
            pades.push("no signed attributes".into());
            (doc_digest.as_ref().to_vec(), true)
        }
    };
    let spki_bits = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let sig_ok = match verification_alg(si.signature_algorithm.oid, si.digest_alg.oid, cert) {
        Some(alg) => {
            let ok = if attrs.is_some() {
                UnparsedPublicKey::new(alg, spki_bits)
                    .verify(&signed_msg, si.signature.as_bytes())
                    .is_ok()
            } else {
                false
            };
            if attrs.is_none() {
                problems.push("signatures without signed attributes are not supported".into());
            } else if !ok {
                problems
                    .push("the CMS signature does not verify with the signer's public key".into());
            }
            ok
        }
        None => {
            problems.push(format!(
                "unsupported signature algorithm {} for this key",
                si.signature_algorithm.oid
            ));
            false
        }
    };
    let has_signature_timestamp = si
        .unsigned_attrs
        .as_ref()
        .map(|u| u.iter().any(|a| a.oid == ID_SIGNATURE_TIME_STAMP))
        .unwrap_or(false);
    Ok(CmsCheck {
        signer,
        cert: cert.clone(),
        intact: digest_ok && sig_ok,
        has_signature_timestamp,
        problems,
        pades_problems: pades,
    })
}

fn decode_hex(h: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = h
        .iter()
        .copied()
        .filter(|b| !b" \t\r\n\x0c".contains(b))
        .collect();
    let val = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(digits.len() / 2 + 1);
    for pair in digits.chunks(2) {
        let hi = val(pair[0])?;
        let lo = if pair.len() == 2 { val(pair[1])? } else { 0 };
        out.push(hi << 4 | lo);
    }
    Some(out)
}

/// Lowercase hex.
pub fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
