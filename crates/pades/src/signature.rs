//! PAdES baseline B-B signing: adds an invisible signature field and a signature dictionary
//! (`/SubFilter /ETSI.CAdES.detached`, `/M`) in an incremental update, reserves `/Contents`,
//! then computes the SHA-256 over the `/ByteRange` and patches in a detached CMS with one
//! SignerInfo (signed attributes content-type, message-digest, signing-certificate-v2; no CMS
//! signing-time, the time is in `/M`).

use crate::cms_asn1::*;
use crate::document::{find_from, SourcePdf};
use crate::error::{Error, Result};
use crate::identity::{SignerIdentity, SigningKey};
use crate::incremental::{IncrementalUpdate, UpdateBase};
use crate::minimal::{deref, MinimalPdf};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use lopdf::{Dictionary, Object, ObjectId, StringFormat};
use sha2::{Digest, Sha256};
use spki::AlgorithmIdentifierOwned;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::Certificate;

/// Options of a signature.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// `/Reason`.
    pub reason: Option<String>,
    /// `/Location`.
    pub location: Option<String>,
    /// `/ContactInfo`.
    pub contact: Option<String>,
    /// The signing time written in `/M`; now when `None`.
    pub time: Option<time::OffsetDateTime>,
    /// Field name; `Signature<n>` (first free) when `None`.
    pub field_name: Option<String>,
    /// Bytes reserved for the CMS; computed from the identity when `None`.
    pub reserved: Option<usize>,
    /// Sign even when the signer certificate is expired or not yet valid now (tests only):
    /// otherwise [`Error::CertificateTime`].
    pub allow_invalid_cert_time: bool,
}

impl SignOptions {
    /// Refuses a signer certificate that is not valid now, unless allowed.
    fn check_signer(&self, id: &SignerIdentity) -> Result<()> {
        if self.allow_invalid_cert_time {
            return Ok(());
        }
        id.check_valid_now()
    }
}

const BYTERANGE_PLACEHOLDER: i64 = 9_999_999_999;

/// Formats a PDF date (`D:YYYYMMDDHHmmSS+HH'mm'`).
pub fn pdf_date(t: time::OffsetDateTime) -> String {
    let off = t.offset();
    let (h, m, _) = off.as_hms();
    let sign = if off.is_negative() { '-' } else { '+' };
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}{}{:02}'{:02}'",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        sign,
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

fn text_string(s: &str) -> Object {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut v = vec![0xFE, 0xFF];
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_be_bytes());
        }
        Object::String(v, StringFormat::Hexadecimal)
    }
}

/// Reads a PDF date (`D:YYYY[MM[DD[HH[mm[SS[Z|+HH'mm'|-HH'mm']]]]]]`); `None` when it is not one.
pub fn parse_pdf_date(s: &str) -> Option<time::OffsetDateTime> {
    let s = s.strip_prefix("D:").unwrap_or(s);
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits < 4 || digits % 2 != 0 || digits > 14 {
        return None;
    }
    let field = |from: usize, len: usize, default: u8| -> Option<u8> {
        if from + len <= digits {
            s.get(from..from + len)?.parse().ok()
        } else {
            Some(default)
        }
    };
    let year: i32 = s.get(..4)?.parse().ok()?;
    let month = time::Month::try_from(field(4, 2, 1)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, field(6, 2, 1)?).ok()?;
    let clock = time::Time::from_hms(field(8, 2, 0)?, field(10, 2, 0)?, field(12, 2, 0)?).ok()?;
    let rest = &s[digits..];
    let offset = match rest.as_bytes().first() {
        Some(&sign @ (b'+' | b'-')) => {
            let nums: Vec<i8> = rest[1..]
                .split(|c: char| !c.is_ascii_digit())
                .filter(|p| !p.is_empty())
                .take(2)
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            let (h, m) = (*nums.first().unwrap_or(&0), *nums.get(1).unwrap_or(&0));
            let k = if sign == b'-' { -1 } else { 1 };
            time::UtcOffset::from_hms(k * h, k * m, 0).ok()?
        }
        _ => time::UtcOffset::UTC,
    };
    Some(time::PrimitiveDateTime::new(date, clock).assume_offset(offset))
}

/// Signs a PDF (already carrying its `cda.xml`) and returns the signed file: the original
/// bytes followed by one incremental update.
pub fn sign_pdf(pdf: &SourcePdf, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    sign_base(pdf, id, opts)
}

/// The catalog's id (the trailer's `/Root`, which must lead to a dictionary).
fn catalog_id(pdf: &dyn UpdateBase) -> Result<ObjectId> {
    let id = pdf
        .trailer()
        .get(b"Root")
        .and_then(Object::as_reference)
        .map_err(|_| Error::Malformed("the trailer has no /Root reference".into()))?;
    match deref(pdf, id) {
        Some(Object::Dictionary(_)) => Ok(id),
        _ => Err(Error::Malformed(format!(
            "the catalog {} {} R is missing or not a dictionary",
            id.0, id.1
        ))),
    }
}

/// A dictionary (or a stream's dictionary) by id, references followed.
fn dict(pdf: &dyn UpdateBase, id: ObjectId) -> Result<&Dictionary> {
    match deref(pdf, id) {
        Some(Object::Dictionary(d)) => Ok(d),
        Some(Object::Stream(s)) => Ok(&s.dict),
        _ => Err(Error::Malformed(format!(
            "object {} {} R is missing or not a dictionary",
            id.0, id.1
        ))),
    }
}

/// Follows references (a bounded number of times) to the direct object.
fn resolve<'a>(pdf: &'a dyn UpdateBase, mut obj: &'a Object) -> Option<&'a Object> {
    for _ in 0..32 {
        match obj {
            Object::Reference(id) => obj = pdf.object(*id)?,
            other => return Some(other),
        }
    }
    None
}

/// Signs the file `pdf` describes (the full parse or the minimal reader).
fn sign_base(pdf: &dyn UpdateBase, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    opts.check_signer(id)?;
    let reserved = opts.reserved.unwrap_or_else(|| estimate_cms_len(id));
    let mut up = IncrementalUpdate::new(pdf);
    let cat_id = catalog_id(pdf)?;
    let mut catalog = dict(pdf, cat_id)?.clone();

    // AcroForm and its fields
    let acro_ref = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| o.as_reference().ok());
    let mut acro: Dictionary = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| resolve(pdf, o))
        .and_then(|o| o.as_dict().ok())
        .cloned()
        .unwrap_or_default();
    let fields_ref = acro.get(b"Fields").ok().and_then(|o| o.as_reference().ok());
    let mut fields: Vec<Object> = match acro.get(b"Fields").ok().and_then(|o| resolve(pdf, o)) {
        Some(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let taken: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|f| resolve(pdf, f).and_then(|f| f.as_dict().ok()))
        .filter_map(|f| {
            f.get(b"T")
                .ok()
                .and_then(|t| t.as_str().ok())
                .map(<[u8]>::to_vec)
        })
        .collect();
    let name = match &opts.field_name {
        Some(n) => {
            // compared as written in the PDF (PDFDocEncoding or UTF-16BE)
            let written = match text_string(n) {
                Object::String(b, _) => b,
                _ => n.as_bytes().to_vec(),
            };
            if taken.iter().any(|t| *t == written || t == n.as_bytes()) {
                return Err(Error::Refused(format!("a field named {n} already exists")));
            }
            n.clone()
        }
        None => (1..)
            .map(|i| format!("Signature{i}"))
            .find(|n| !taken.iter().any(|t| t == n.as_bytes()))
            .unwrap_or_else(|| "Signature".into()),
    };

    // first page, for the widget's /P and the page's /Annots
    let page_id = pdf
        .first_page()
        .ok_or_else(|| Error::Malformed("the PDF has no pages".into()))?;
    let mut page = dict(pdf, page_id)?.clone();

    // signature dictionary with placeholders
    let time = opts.time.unwrap_or_else(time::OffsetDateTime::now_utc);
    let mut sig = Dictionary::new();
    sig.set("Type", Object::Name(b"Sig".to_vec()));
    sig.set("Filter", Object::Name(b"Adobe.PPKLite".to_vec()));
    sig.set("SubFilter", Object::Name(b"ETSI.CAdES.detached".to_vec()));
    sig.set(
        "M",
        Object::String(pdf_date(time).into_bytes(), StringFormat::Literal),
    );
    if let Some(r) = &opts.reason {
        sig.set("Reason", text_string(r));
    }
    if let Some(l) = &opts.location {
        sig.set("Location", text_string(l));
    }
    if let Some(c) = &opts.contact {
        sig.set("ContactInfo", text_string(c));
    }
    // serialized here so that the placeholder's bytes are known exactly
    let mut body = Vec::with_capacity(2 * reserved + 512);
    lopdf::Writer::write_object(&mut body, &Object::Dictionary(sig))
        .map_err(|e| Error::Malformed(e.to_string()))?;
    if body.ends_with(b">>") {
        body.truncate(body.len() - 2);
    }
    body.extend_from_slice(
        format!(
            "/ByteRange [0 {p} {p} {p}]/Contents <",
            p = BYTERANGE_PLACEHOLDER
        )
        .as_bytes(),
    );
    body.resize(body.len() + 2 * reserved, b'0');
    body.extend_from_slice(b">>>");
    let sig_id = up.add_raw(body);

    // merged field + invisible widget
    let mut field = Dictionary::new();
    field.set("Type", Object::Name(b"Annot".to_vec()));
    field.set("Subtype", Object::Name(b"Widget".to_vec()));
    field.set("FT", Object::Name(b"Sig".to_vec()));
    field.set("T", text_string(&name));
    field.set("V", Object::Reference(sig_id));
    field.set("F", 132);
    field.set(
        "Rect",
        Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
    );
    field.set("P", Object::Reference(page_id));
    let field_id = up.add(field);

    // the page's annotations
    let annots_ref = page.get(b"Annots").ok().and_then(|o| o.as_reference().ok());
    let mut annots: Vec<Object> = match page.get(b"Annots").ok().and_then(|o| resolve(pdf, o)) {
        Some(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    annots.push(Object::Reference(field_id));
    match annots_ref {
        Some(id) => up.set(id, Object::Array(annots)),
        None => {
            page.set("Annots", Object::Array(annots));
            up.set(page_id, page);
        }
    }

    fields.push(Object::Reference(field_id));
    match fields_ref {
        Some(id) => up.set(id, Object::Array(fields)),
        None => acro.set("Fields", Object::Array(fields)),
    }
    acro.set("SigFlags", 3);
    match acro_ref {
        Some(id) => up.set(id, acro),
        None => {
            catalog.set("AcroForm", acro);
            up.set(cat_id, catalog);
        }
    }

    let written = up.write()?;
    let sig_at = *written
        .offsets
        .get(&sig_id)
        .ok_or_else(|| Error::Malformed("signature object not written".into()))?;
    let mut out = written.bytes;
    let contents_start = find_from(&out, b"/Contents <", sig_at)
        .and_then(|p| find_from(&out, b"<", p))
        .ok_or_else(|| Error::Malformed("signature placeholder not found".into()))?;
    let contents_end = contents_start + 2 + 2 * reserved; // one past '>'
    if out.get(contents_end - 1) != Some(&b'>') {
        return Err(Error::Malformed(
            "signature placeholder has an unexpected shape".into(),
        ));
    }
    let br_open = find_from(&out, b"/ByteRange", sig_at)
        .and_then(|p| find_from(&out, b"[", p))
        .ok_or_else(|| Error::Malformed("ByteRange placeholder not found".into()))?;
    let br_close = find_from(&out, b"]", br_open)
        .ok_or_else(|| Error::Malformed("ByteRange placeholder not closed".into()))?;
    let br = [
        0usize,
        contents_start,
        contents_end,
        out.len() - contents_end,
    ];
    let text = format!("{} {} {} {}", br[0], br[1], br[2], br[3]);
    let width = br_close - br_open - 1;
    if text.len() > width {
        return Err(Error::Malformed(
            "ByteRange does not fit its placeholder".into(),
        ));
    }
    out[br_open + 1..br_close].copy_from_slice(format!("{text:<width$}").as_bytes());

    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    h.update(&out[..br[1]]);
    h.update(&out[br[2]..]);
    let digest = h.finish();
    let cms = build_cms(id, digest.as_ref())?;
    if cms.len() > reserved {
        return Err(Error::ContentsTooSmall {
            needed: cms.len(),
            reserved,
        });
    }
    hex_upper_into(
        &cms,
        &mut out[contents_start + 1..contents_start + 1 + 2 * cms.len()],
    );
    Ok(out)
}

/// Injects nothing: reads, signs and returns the signed bytes (convenience for callers that
/// hold bytes). A clean input is read with the minimal reader ([`sign_minimal`]); anything else
/// with the full parse ([`sign_lopdf`]), where a damaged unsigned input is rewritten once first
/// (see [`SourcePdf::appendable`]). Both give the same bytes where both apply.
pub fn sign(pdf_bytes: Vec<u8>, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    opts.check_signer(id)?;
    if let Some(out) = sign_minimal(&pdf_bytes, id, opts) {
        return Ok(out);
    }
    sign_lopdf(pdf_bytes, id, opts)
}

/// Signs with the minimal reader ([`MinimalPdf`]) only: `None` when it does not understand the
/// file or signing from it fails (then [`sign_lopdf`] gives the answer, or the error).
pub fn sign_minimal(pdf_bytes: &[u8], id: &SignerIdentity, opts: &SignOptions) -> Option<Vec<u8>> {
    let pdf = MinimalPdf::read(pdf_bytes)?;
    let out = sign_base(&pdf, id, opts).ok()?;
    (!pdf.missed()).then_some(out)
}

/// Signs with the full lopdf parse of the file, rewriting a damaged unsigned input once first.
pub fn sign_lopdf(pdf_bytes: Vec<u8>, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    let pdf = SourcePdf::parse(pdf_bytes)?;
    let pdf = match pdf.appendable() {
        Ok(()) => pdf,
        Err(_) => pdf.rewritten()?,
    };
    sign_pdf(&pdf, id, opts)
}

/// Writes `b` as upper-case hex into `out` (exactly twice its length).
fn hex_upper_into(b: &[u8], out: &mut [u8]) {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    for (&x, pair) in b.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = H[(x >> 4) as usize];
        pair[1] = H[(x & 15) as usize];
    }
}

/// Bytes to reserve for the CMS of this identity (certificates + signature + attributes, with
/// margin).
pub fn estimate_cms_len(id: &SignerIdentity) -> usize {
    let certs: usize = id.cert_der().len() + id.chain_der().iter().map(Vec::len).sum::<usize>();
    certs + id.key().max_signature_len() + 1024
}

fn alg(oid: const_oid::ObjectIdentifier, null_params: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: if null_params { Some(Any::null()) } else { None },
    }
}

fn attr(oid: const_oid::ObjectIdentifier, value: Any) -> Result<Attribute> {
    let values = SetOfVec::try_from(vec![value]).map_err(der_err)?;
    Ok(Attribute { oid, values })
}

fn der_err(e: der::Error) -> Error {
    Error::Crypto(format!("DER encoding: {e}"))
}

/// Builds the detached CMS SignedData (DER) for a document digest (SHA-256). With an RSA key
/// the encoding is the identity's template with the digest and the signature patched in (the
/// same bytes [`build_cms_der`] gives, without re-encoding the certificates each time).
pub fn build_cms(id: &SignerIdentity, digest: &[u8]) -> Result<Vec<u8>> {
    match id.cms_template() {
        Some(t) if digest.len() == t.digest_len => t.fill(id, digest),
        _ => build_cms_der(id, digest),
    }
}

/// [`build_cms`] encoded field by field with the `der` crate (the reference encoding).
pub fn build_cms_der(id: &SignerIdentity, digest: &[u8]) -> Result<Vec<u8>> {
    build_cms_with(id, digest, |attrs| id.key().sign(attrs))
}

/// The CMS of an RSA identity with the message digest and the signature as holes: both have a
/// fixed length, so every other byte (certificates, issuer and serial, ESS
/// signing-certificate-v2, lengths) is the same for every document.
#[derive(Debug)]
pub(crate) struct CmsTemplate {
    /// DER of the signed attributes (what is signed), digest zeroed.
    attrs: Vec<u8>,
    attrs_digest: usize,
    /// The whole ContentInfo, digest and signature zeroed.
    cms: Vec<u8>,
    cms_digest: usize,
    cms_signature: usize,
    digest_len: usize,
    signature_len: usize,
}

impl CmsTemplate {
    /// Encodes the CMS once with marker values in the holes and finds them; `None` for keys
    /// whose signatures vary in length (ECDSA) or if a marker is not found exactly once.
    pub(crate) fn new(id: &SignerIdentity) -> Option<Self> {
        let SigningKey::Rsa(k) = id.key() else {
            return None;
        };
        let signature_len = k.public_modulus_len();
        let digest_marker: Vec<u8> = (0..32u8).map(|i| 0xA5 ^ i.wrapping_mul(37)).collect();
        let sig_marker: Vec<u8> = (0..signature_len)
            .map(|i| (i as u8).wrapping_mul(101) ^ 0x5C)
            .collect();
        let mut attrs = None;
        let cms = build_cms_with(id, &digest_marker, |a| {
            attrs = Some(a.to_vec());
            Ok(sig_marker.clone())
        })
        .ok()?;
        let mut attrs = attrs?;
        let attrs_digest = find_once(&attrs, &digest_marker)?;
        let mut cms = cms;
        let cms_digest = find_once(&cms, &digest_marker)?;
        let cms_signature = find_once(&cms, &sig_marker)?;
        attrs[attrs_digest..attrs_digest + 32].fill(0);
        cms[cms_digest..cms_digest + 32].fill(0);
        cms[cms_signature..cms_signature + signature_len].fill(0);
        Some(CmsTemplate {
            attrs,
            attrs_digest,
            cms,
            cms_digest,
            cms_signature,
            digest_len: 32,
            signature_len,
        })
    }

    fn fill(&self, id: &SignerIdentity, digest: &[u8]) -> Result<Vec<u8>> {
        let mut attrs = self.attrs.clone();
        attrs[self.attrs_digest..self.attrs_digest + self.digest_len].copy_from_slice(digest);
        let signature = id.key().sign(&attrs)?;
        if signature.len() != self.signature_len {
            return build_cms_der(id, digest);
        }
        let mut cms = self.cms.clone();
        cms[self.cms_digest..self.cms_digest + self.digest_len].copy_from_slice(digest);
        cms[self.cms_signature..self.cms_signature + self.signature_len]
            .copy_from_slice(&signature);
        Ok(cms)
    }
}

/// The position of the only occurrence of `needle` in `hay`.
fn find_once(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut at = hay
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == &needle);
    let (first, _) = at.next()?;
    at.next().is_none().then_some(first)
}

/// The CMS, with `sign` producing the signature over the DER of the signed attributes.
fn build_cms_with(
    id: &SignerIdentity,
    digest: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>>,
) -> Result<Vec<u8>> {
    let cert: &Certificate = id.cert();
    let tbs = &cert.tbs_certificate;
    let cert_hash = Sha256::digest(id.cert_der());
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(cert_hash.to_vec()).map_err(der_err)?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(tbs.issuer.clone())],
                serial_number: tbs.serial_number.clone(),
            }),
        }],
    };
    let signed_attrs: SetOfVec<Attribute> = SetOfVec::try_from(vec![
        attr(
            ID_CONTENT_TYPE,
            Any::encode_from(&ID_DATA).map_err(der_err)?,
        )?,
        attr(
            ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(digest.to_vec()).map_err(der_err)?)
                .map_err(der_err)?,
        )?,
        attr(
            ID_SIGNING_CERTIFICATE_V2,
            Any::encode_from(&ess).map_err(der_err)?,
        )?,
    ])
    .map_err(der_err)?;
    let to_sign = signed_attrs.to_der().map_err(der_err)?;
    let signature = sign(&to_sign)?;
    let sig_alg = match id.key() {
        SigningKey::Rsa(_) => alg(ID_RSA, true),
        SigningKey::EcdsaP256(_) => alg(ID_ECDSA_SHA256, false),
    };
    let signer = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: alg(ID_SHA256, false),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: sig_alg,
        signature: OctetString::new(signature).map_err(der_err)?,
        unsigned_attrs: None,
    };
    let mut certs = vec![CertificateChoices::Certificate(cert.clone())];
    for der in id.chain_der() {
        let c = Certificate::from_der(der)
            .map_err(|e| Error::Identity(format!("unreadable chain certificate: {e}")))?;
        certs.push(CertificateChoices::Certificate(c));
    }
    let sd = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![alg(ID_SHA256, false)]).map_err(der_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: ID_DATA,
            econtent: None,
        },
        certificates: Some(CertificateSet::try_from(certs).map_err(der_err)?),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer]).map_err(der_err)?,
    };
    let ci = ContentInfo {
        content_type: ID_SIGNED_DATA,
        content: Any::encode_from(&sd).map_err(der_err)?,
    };
    ci.to_der().map_err(der_err)
}
