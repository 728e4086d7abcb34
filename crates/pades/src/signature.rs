//! PAdES baseline B-B signing: adds an invisible signature field and a signature dictionary
//! (`/SubFilter /ETSI.CAdES.detached`, `/M`) in an incremental update, reserves `/Contents`,
//! then computes the SHA-256 over the `/ByteRange` and patches in a detached CMS with one
//! SignerInfo (signed attributes content-type, message-digest, signing-certificate-v2; no CMS
//! signing-time, the time is in `/M`).

use crate::cms_asn1::*;
use crate::document::{find_from, SourcePdf};
use crate::error::{Error, Result};
use crate::identity::{SignerIdentity, SigningKey};
use crate::incremental::IncrementalUpdate;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use lopdf::{Dictionary, Object, StringFormat};
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

/// Signs a PDF (already carrying its `cda.xml`) and returns the signed file: the original
/// bytes followed by one incremental update.
pub fn sign_pdf(pdf: &SourcePdf, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    let reserved = opts.reserved.unwrap_or_else(|| estimate_cms_len(id));
    let mut up = IncrementalUpdate::new(pdf);
    let cat_id = pdf.catalog_id()?;
    let mut catalog = pdf.catalog()?.clone();

    // AcroForm and its fields
    let acro_ref = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| o.as_reference().ok());
    let mut acro: Dictionary = catalog
        .get(b"AcroForm")
        .ok()
        .and_then(|o| pdf.resolve(o))
        .and_then(|o| o.as_dict().ok())
        .cloned()
        .unwrap_or_default();
    let fields_ref = acro.get(b"Fields").ok().and_then(|o| o.as_reference().ok());
    let mut fields: Vec<Object> = match acro.get(b"Fields").ok().and_then(|o| pdf.resolve(o)) {
        Some(Object::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let taken: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|f| pdf.resolve(f).and_then(|f| f.as_dict().ok()))
        .filter_map(|f| {
            f.get(b"T")
                .ok()
                .and_then(|t| t.as_str().ok())
                .map(<[u8]>::to_vec)
        })
        .collect();
    let name = match &opts.field_name {
        Some(n) => {
            if taken.iter().any(|t| t == n.as_bytes()) {
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
        .doc()
        .page_iter()
        .next()
        .ok_or_else(|| Error::Malformed("the PDF has no pages".into()))?;
    let mut page = pdf.dict(page_id)?.clone();

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
    let mut annots: Vec<Object> = match page.get(b"Annots").ok().and_then(|o| pdf.resolve(o)) {
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

    let mut h = Sha256::new();
    h.update(&out[..br[1]]);
    h.update(&out[br[2]..]);
    let digest = h.finalize();
    let cms = build_cms(id, &digest)?;
    if cms.len() > reserved {
        return Err(Error::ContentsTooSmall {
            needed: cms.len(),
            reserved,
        });
    }
    let hex = hex_upper(&cms);
    out[contents_start + 1..contents_start + 1 + hex.len()].copy_from_slice(&hex);
    Ok(out)
}

/// Injects nothing: reads, signs and returns the signed bytes (convenience for callers that
/// hold bytes). A damaged unsigned input is rewritten once first (see
/// [`SourcePdf::appendable`]).
pub fn sign(pdf_bytes: Vec<u8>, id: &SignerIdentity, opts: &SignOptions) -> Result<Vec<u8>> {
    let pdf = SourcePdf::parse(pdf_bytes)?;
    let pdf = match pdf.appendable() {
        Ok(()) => pdf,
        Err(_) => pdf.rewritten()?,
    };
    sign_pdf(&pdf, id, opts)
}

fn hex_upper(b: &[u8]) -> Vec<u8> {
    const H: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = Vec::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[(x >> 4) as usize]);
        s.push(H[(x & 15) as usize]);
    }
    s
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

/// Builds the detached CMS SignedData (DER) for a document digest (SHA-256).
pub fn build_cms(id: &SignerIdentity, digest: &[u8]) -> Result<Vec<u8>> {
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
    let signature = id.key().sign(&to_sign)?;
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
