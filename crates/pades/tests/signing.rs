//! Library-level tests: signing round trips, tampering caught (a flipped byte, content
//! appended after the signature, a swapped certificate), bad identities and malformed PDFs
//! refused with clear errors, and no panic on mutated PDFs.

use fse_pades::certs::{pkcs12, KeyKind, TestPki, TEST_P12_PASSWORD};
use fse_pades::{inject_and_sign, verify, Error, SignOptions, SignerIdentity};
use std::sync::OnceLock;

fn cda() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/pdf/referto.xml"
    ))
    .expect("fixtures/pdf/referto.xml")
}

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate(KeyKind::Rsa2048).expect("test PKI"))
}

fn identity(p: &TestPki) -> SignerIdentity {
    SignerIdentity::from_pem(
        p.signer.key_pem.as_bytes(),
        format!("{}{}", p.signer.cert_pem, p.ca.cert_pem).as_bytes(),
    )
    .expect("identity")
}

fn plain_pdf() -> Vec<u8> {
    fse_pades::render::render_cda(&cda()).expect("render")
}

fn signed() -> Vec<u8> {
    inject_and_sign(
        plain_pdf(),
        &cda(),
        &identity(pki()),
        &SignOptions::default(),
    )
    .expect("sign")
}

#[test]
fn signed_pdf_verifies_and_keeps_the_cda() {
    let out = signed();
    let r = verify(&out);
    assert!(r.valid, "{:?}", r.problems);
    assert_eq!(r.signatures.len(), 1);
    let s = &r.signatures[0];
    assert!(s.intact && s.covers_whole_file && s.signing_time.is_some());
    assert_eq!(s.sub_filter, "ETSI.CAdES.detached");
    assert_eq!(fse_pades::extract_cda(&out).expect("extract"), cda());
    assert_eq!(r.sha256.len(), 64);
    assert!(r
        .sha256
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
}

#[test]
fn ecdsa_signer_verifies() {
    let p = TestPki::generate(KeyKind::EcdsaP256).expect("pki");
    let out =
        inject_and_sign(plain_pdf(), &cda(), &identity(&p), &SignOptions::default()).expect("sign");
    let r = verify(&out);
    assert!(r.valid, "{:?}", r.problems);
}

#[test]
fn flipped_byte_inside_the_signed_range_is_caught() {
    let mut out = signed();
    let r = verify(&out);
    let br = &r.signatures[0].byte_range;
    // a byte of the first range, inside the page content (not structure)
    let at = (br[1] / 2) as usize;
    out[at] ^= 0x20;
    let r = verify(&out);
    assert!(!r.valid);
    // either the digest check or the parser catches it; a readable file must report the digest
    if let Some(s) = r.signatures.first() {
        assert!(!s.intact, "{:?}", r.problems);
    }
    // a flipped byte in the second range (after /Contents) too
    let mut out = signed();
    let br = verify(&out).signatures[0].byte_range.clone();
    let at = (br[2] + 3) as usize;
    out[at] ^= 0x01;
    let r = verify(&out);
    assert!(!r.valid, "{:?}", r.problems);
}

/// Appends one incremental update to `signed` that changes the catalog with `edit`.
fn append_catalog_update(
    signed: Vec<u8>,
    edit: impl Fn(&mut fse_pades::lopdf::Dictionary, fse_pades::lopdf::ObjectId),
) -> Vec<u8> {
    let pdf = fse_pades::SourcePdf::parse(signed).expect("parse");
    let cat_id = pdf.catalog_id().expect("catalog");
    let mut cat = pdf.catalog().expect("catalog").clone();
    let mut up = fse_pades::incremental::IncrementalUpdate::new(&pdf);
    let extra = up.add(fse_pades::lopdf::Dictionary::new());
    edit(&mut cat, extra);
    up.set(cat_id, cat);
    up.write().expect("append").bytes
}

#[test]
fn content_appended_after_the_signature_is_caught() {
    use fse_pades::lopdf::Object;
    // a catalog change (an action run on opening) after signing
    let out = append_catalog_update(signed(), |cat, extra| {
        cat.set("OpenAction", Object::Reference(extra));
    });
    let r = verify(&out);
    assert!(!r.valid);
    let s = r.signatures.last().expect("signature still found");
    assert!(!s.covers_whole_file && s.bytes_after > 0);
    assert!(
        r.problems.iter().any(|p| p.contains("appended after")),
        "{:?}",
        r.problems
    );

    // a new page content stream replacing the signed one
    let base = signed();
    let pdf = fse_pades::SourcePdf::parse(base.clone()).expect("parse");
    let page_id = pdf.doc().page_iter().next().expect("page");
    let mut page = pdf.dict(page_id).expect("page").clone();
    let mut up = fse_pades::incremental::IncrementalUpdate::new(&pdf);
    let content = up.add(fse_pades::lopdf::Stream::new(
        fse_pades::lopdf::Dictionary::new(),
        b"BT /F1 30 Tf 50 400 Td (FORGED) Tj ET".to_vec(),
    ));
    page.set("Contents", Object::Reference(content));
    up.set(page_id, page);
    let out = up.write().expect("append").bytes;
    let r = verify(&out);
    assert!(!r.valid);
    assert!(
        r.problems.iter().any(|p| p.contains("changed")),
        "{:?}",
        r.problems
    );

    // validation data only (a /DSS), as PAdES B-LT updates add: still valid
    let out = append_catalog_update(signed(), |cat, extra| {
        cat.set("DSS", Object::Reference(extra));
    });
    let r = verify(&out);
    assert!(r.valid, "{:?}", r.problems);
    assert!(r.signatures[0].bytes_after > 0);
}

/// Replaces the CMS in `/Contents` by another of at most the same size.
fn replace_contents(pdf: &mut [u8], br: &[i64], cms: &[u8]) {
    let (start, end) = (br[1] as usize + 1, br[2] as usize - 1);
    let hex: String = cms.iter().map(|b| format!("{b:02X}")).collect();
    assert!(hex.len() <= end - start);
    pdf[start..end].fill(b'0');
    pdf[start..start + hex.len()].copy_from_slice(hex.as_bytes());
}

#[test]
fn swapped_certificate_is_caught() {
    use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
    use cms::content_info::ContentInfo;
    use cms::signed_data::{CertificateSet, SignedData, SignerIdentifier};
    use der::{Decode, Encode};
    let mut out = signed();
    let r = verify(&out);
    let br = r.signatures[0].byte_range.clone();
    let hex = &out[br[1] as usize + 1..br[2] as usize - 1];
    let bytes: Vec<u8> = hex
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("hex"), 16).expect("hex"))
        .collect();
    let ci = ContentInfo::from_der(&bytes[..der_len(&bytes)]).expect("cms");
    let mut sd: SignedData = ci.content.decode_as().expect("signed data");
    // another signer of another CA, same shape
    let other = TestPki::generate(KeyKind::Rsa2048).expect("pki");
    let cert = x509_cert::Certificate::from_der(&other.signer.cert_der).expect("cert");
    let mut si = sd.signer_infos.0.iter().next().expect("signer").clone();
    si.sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate.issuer.clone(),
        serial_number: cert.tbs_certificate.serial_number.clone(),
    });
    sd.signer_infos = vec![si].try_into().expect("set");
    sd.certificates =
        Some(CertificateSet::try_from(vec![CertificateChoices::Certificate(cert)]).expect("set"));
    let ci = ContentInfo {
        content_type: ci.content_type,
        content: der::Any::encode_from(&sd).expect("encode"),
    };
    replace_contents(&mut out, &br, &ci.to_der().expect("der"));
    let r = verify(&out);
    assert!(!r.valid);
    let s = &r.signatures[0];
    assert!(!s.intact, "{:?}", r.problems);
    assert!(
        r.problems.iter().any(|p| p.contains("does not verify")),
        "{:?}",
        r.problems
    );
    assert!(
        r.problems
            .iter()
            .any(|p| p.contains("signing-certificate-v2")),
        "{:?}",
        r.problems
    );
}

fn der_len(b: &[u8]) -> usize {
    let l = b[1];
    if l < 0x80 {
        return 2 + l as usize;
    }
    let n = (l & 0x7f) as usize;
    2 + n
        + b[2..2 + n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | x as usize)
}

#[test]
fn pkcs12_round_trip_and_errors() {
    let p = pki();
    let p12 = pkcs12(
        &p.signer.key_der,
        &[p.signer.cert_der.clone(), p.ca.cert_der.clone()],
        TEST_P12_PASSWORD,
        "signer",
    )
    .expect("p12");
    let id = SignerIdentity::from_pkcs12(&p12, TEST_P12_PASSWORD).expect("load p12");
    assert_eq!(id.cert_der(), &p.signer.cert_der[..]);
    assert_eq!(id.chain_der().len(), 1);
    let err = SignerIdentity::from_pkcs12(&p12, "wrong").expect_err("wrong password");
    assert!(err.to_string().contains("password"), "{err}");
    assert!(!err.to_string().contains("wrong\""), "{err}");
    // a bundle with a certificate but no key
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "ca",
        p12_keystore::KeyStoreEntry::Certificate(
            p12_keystore::Certificate::from_der(&p.ca.cert_der).expect("cert"),
        ),
    );
    let nokey = store.writer("pw").write().expect("write");
    let err = SignerIdentity::from_pkcs12(&nokey, "pw").expect_err("no key");
    assert!(err.to_string().contains("no private key"), "{err}");
    let err = SignerIdentity::from_pkcs12(b"not a pkcs12", "pw").expect_err("garbage");
    assert!(matches!(err, Error::Identity(_)));
    // PEM: key and certificate that do not match
    let other = TestPki::generate(KeyKind::EcdsaP256).expect("pki");
    let err = SignerIdentity::from_pem(
        p.signer.key_pem.as_bytes(),
        other.signer.cert_pem.as_bytes(),
    )
    .expect_err("mismatch");
    assert!(err.to_string().contains("no certificate matches"), "{err}");
}

#[test]
fn malformed_pdfs_give_clear_errors() {
    let id = identity(pki());
    let opts = SignOptions::default();
    let plain = plain_pdf();
    // truncated
    let cut = plain[..plain.len() / 2].to_vec();
    let e = inject_and_sign(cut, &cda(), &id, &opts).expect_err("truncated");
    assert!(matches!(e, Error::Malformed(_) | Error::Refused(_)), "{e}");
    // not a PDF
    let e = inject_and_sign(b"hello".to_vec(), &cda(), &id, &opts).expect_err("not pdf");
    assert!(e.to_string().contains("%PDF"), "{e}");
    // huge object count declared
    let huge = tiny_pdf("/Size 999999999", "");
    let e = inject_and_sign(huge, &cda(), &id, &opts).expect_err("huge");
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    // broken xref (offsets pointing nowhere) in an unsigned file: rewritten once, then signed
    let mut broken = plain_pdf();
    let at = broken.len() - 12;
    broken[at..at + 3].copy_from_slice(b"999");
    if let Ok(out) = inject_and_sign(broken, &cda(), &id, &opts) {
        assert!(verify(&out).valid, "a repaired file must verify");
    }
    // broken xref with a signature already present: refused rather than rewritten
    let mut broken = signed();
    let x = broken.len() - 30;
    broken[x..].fill(b' ');
    let r = verify(&broken);
    assert!(!r.valid);
}

/// A one-page PDF with a classic xref table; `trailer_extra` goes into the trailer,
/// `objects_extra` after the page objects.
fn tiny_pdf(trailer_extra: &str, objects_extra: &str) -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offs = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offs.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    out.extend_from_slice(objects_extra.as_bytes());
    let xref = out.len();
    out.extend_from_slice(b"xref\n0 4\n0000000000 65535 f\r\n");
    for o in offs {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    let size = if trailer_extra.contains("/Size") {
        String::new()
    } else {
        "/Size 4 ".into()
    };
    out.extend_from_slice(
        format!("trailer\n<< {size}/Root 1 0 R {trailer_extra} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

#[test]
fn encrypted_pdf_is_refused() {
    let plain = tiny_pdf("", "");
    let id = identity(pki());
    let out = inject_and_sign(plain, &cda(), &id, &SignOptions::default()).expect("tiny PDF signs");
    assert!(verify(&out).valid);
    let enc = tiny_pdf(
        "/Encrypt << /Filter /Standard /V 1 /R 2 /O <00> /U <00> /P -4 >> /ID [<01> <01>]",
        "",
    );
    let e = fse_pades::SourcePdf::parse(enc).expect_err("encrypted");
    assert!(matches!(e, Error::Encrypted), "{e}");
    assert!(e.to_string().contains("encrypted"));
}

#[test]
fn ambiguous_cda_is_refused() {
    let id = identity(pki());
    let once = fse_pades::inject(plain_pdf(), &cda()).expect("inject");
    // replacing keeps exactly one
    let twice = fse_pades::inject(once, &cda()).expect("replace");
    let pdf = fse_pades::SourcePdf::parse(twice.clone()).expect("parse");
    assert_eq!(fse_pades::find_cda(&pdf).expect("found").xml, cda());
    let out = fse_pades::sign(twice, &id, &SignOptions::default()).expect("sign");
    assert!(verify(&out).valid);
    // two entries named cda.xml: refused (the gateway's extractors could disagree)
    let gen = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/pdf/generated/bad_cda_in_kids.pdf"
    );
    let bytes = std::fs::read(gen).expect("shared sample bad_cda_in_kids.pdf");
    let e = fse_pades::inject(bytes, &cda()).expect_err("kids");
    assert!(matches!(e, Error::Refused(_)), "{e}");
    assert!(e.to_string().contains("Kids"), "{e}");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn base() -> &'static Vec<u8> {
        static B: OnceLock<Vec<u8>> = OnceLock::new();
        B.get_or_init(signed)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]
        /// Mutated signed PDFs: reading, verifying, extracting and re-signing never panic.
        #[test]
        fn mutated_pdfs_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let mut b = base().clone();
            for (i, v) in edits {
                let at = i.index(b.len());
                b[at] = v;
            }
            if let Some(c) = cut {
                let at = c.index(b.len());
                b.truncate(at);
            }
            let r = verify(&b);
            let _ = r.valid;
            let _ = fse_pades::extract_cda(&b);
            let _ = fse_pades::inject(b, &cda());
        }
    }
}

#[test]
fn render_shows_header_and_narrative() {
    let s = fse_pades::render::summarize(&cda()).expect("summary");
    assert_eq!(s.title, "Referto di laboratorio (documento di prova)");
    assert!(
        s.header.contains(&"Paziente: Mario Rossi".to_string()),
        "{:?}",
        s.header
    );
    assert!(
        s.header.contains(&"Data: 23/11/2026".to_string()),
        "{:?}",
        s.header
    );
    assert_eq!(s.sections.len(), 1);
    assert_eq!(s.sections[0].0, "Chimica clinica");
    assert!(
        s.sections[0]
            .1
            .iter()
            .any(|p| p.contains("Glucosio | 92 | mg/dL")),
        "{:?}",
        s.sections
    );
    let pdf = fse_pades::render::render_cda(&cda()).expect("render");
    let doc = fse_pades::lopdf::Document::load_mem(&pdf).expect("readable PDF");
    assert_eq!(doc.get_pages().len(), 1);
    let text = doc.extract_text(&[1]).expect("text");
    assert!(text.contains("Mario Rossi"), "{text}");
    assert!(fse_pades::render::render_cda(b"<note/>").is_err());
}

/// A CDA with a long accented narrative: several pages once wrapped.
fn long_cda() -> Vec<u8> {
    let para = "La paziente è stata sottoposta a ecografia: perché il quadro è più chiaro, \
                si consiglia controllo tra sei mesi; nessuna criticità rilevata (città di Pistoia). "
        .repeat(6);
    let paras: String = (0..40)
        .map(|i| format!("<paragraph>{i}: {para}</paragraph>"))
        .collect();
    format!(
        r#"<ClinicalDocument xmlns="urn:hl7-org:v3"><title>Referto ecografico — prova</title>
<effectiveTime value="20261123101500+0100"/>
<component><structuredBody><component><section><title>Esito dell'esame</title>
<text>{paras}</text></section></component></structuredBody></component></ClinicalDocument>"#
    )
    .into_bytes()
}

#[test]
fn render_is_pdfa3b_with_embedded_unicode_fonts() {
    use fse_pades::lopdf::{Document, Object};
    let when = time::macros::datetime!(2026-11-23 10:00:00 UTC);
    let pdf = fse_pades::render::render_cda_at(&long_cda(), when).expect("render");
    // deterministic for a given date
    let again = fse_pades::render::render_cda_at(&long_cda(), when).expect("render");
    if pdf != again {
        std::fs::write("/tmp/pr/a.pdf", &pdf).ok();
        std::fs::write("/tmp/pr/b.pdf", &again).ok();
    }
    assert!(pdf == again, "same input and date, different bytes");
    let doc = Document::load_mem(&pdf).expect("readable PDF");
    let pages = doc.get_pages();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    // wrapped: every line fits, accents extract through the ToUnicode CMap
    let text = doc.extract_text(&[1]).expect("text");
    assert!(text.contains("è stata sottoposta"), "{text}");
    assert!(text.contains("criticità"), "{text}");
    assert!(text.contains("Pagina 1 di"), "{text}");
    for line in text.lines() {
        assert!(line.chars().count() < 110, "unwrapped line: {line}");
    }
    // catalog: XMP with pdfaid, sRGB output intent with an ICC profile
    let catalog = doc.catalog().expect("catalog");
    let md = catalog
        .get(b"Metadata")
        .and_then(Object::as_reference)
        .expect("XMP ref");
    let md = doc.get_object(md).and_then(Object::as_stream).expect("XMP");
    let xmp = String::from_utf8(md.content.clone()).expect("utf-8 XMP");
    assert!(xmp.contains("<pdfaid:part>3</pdfaid:part>"), "{xmp}");
    assert!(xmp.contains("<pdfaid:conformance>B</pdfaid:conformance>"));
    assert!(xmp.contains("Referto ecografico — prova"));
    assert!(xmp.contains("<xmp:CreateDate>2026-11-23T10:00:00+00:00</xmp:CreateDate>"));
    let intents = catalog
        .get(b"OutputIntents")
        .and_then(Object::as_array)
        .expect("intents");
    let intent = intents[0].as_dict().expect("intent");
    assert_eq!(
        intent.get(b"S").and_then(Object::as_name).ok(),
        Some(&b"GTS_PDFA1"[..])
    );
    let icc = intent
        .get(b"DestOutputProfile")
        .and_then(Object::as_reference)
        .and_then(|r| doc.get_object(r))
        .and_then(Object::as_stream)
        .expect("ICC stream");
    let icc = icc.decompressed_content().expect("ICC bytes");
    assert_eq!(&icc[36..40], b"acsp");
    assert_eq!(&icc[12..20], b"mntrRGB ");
    // Info mirrors the XMP; the trailer has an identifier
    let info = doc
        .trailer
        .get(b"Info")
        .and_then(Object::as_reference)
        .and_then(|r| doc.get_dictionary(r))
        .expect("Info");
    assert_eq!(
        info.get(b"CreationDate").and_then(Object::as_str).ok(),
        Some(&b"D:20261123100000+00'00'"[..])
    );
    assert!(doc.trailer.get(b"ID").and_then(Object::as_array).is_ok());
    // every font is an embedded Type0/CIDFontType2 with a ToUnicode CMap
    for (_, obj) in doc.objects.iter() {
        let Ok(d) = obj.as_dict() else { continue };
        if d.get(b"Type").and_then(Object::as_name).ok() != Some(b"Font") {
            continue;
        }
        match d
            .get(b"Subtype")
            .and_then(Object::as_name)
            .expect("subtype")
        {
            b"Type0" => assert!(d.get(b"ToUnicode").is_ok()),
            b"CIDFontType2" => {
                let fd = d
                    .get(b"FontDescriptor")
                    .and_then(Object::as_reference)
                    .and_then(|r| doc.get_dictionary(r))
                    .expect("descriptor");
                assert!(fd.get(b"FontFile2").is_ok(), "font not embedded");
            }
            other => panic!("unexpected font {}", String::from_utf8_lossy(other)),
        }
    }
    // and it signs
    let signed =
        inject_and_sign(pdf, &long_cda(), &identity(pki()), &SignOptions::default()).expect("sign");
    assert!(verify(&signed).valid);
}

/// Another valid CDA than [`cda`] (same document, one comment more).
fn other_cda() -> Vec<u8> {
    let mut x = cda();
    x.extend_from_slice(b"\n<!-- another version -->\n");
    x
}

/// A signed input is never changed nor signed twice: kept as it is with its own `cda.xml`,
/// refused with the reason with another one (issue #19, rule 6).
#[test]
fn signed_input_is_kept_as_it_is_or_refused() {
    let id = identity(pki());
    let opts = SignOptions::default();
    let signed = signed();
    // the same CDA: the input, unchanged, one signature
    let again = inject_and_sign(signed.clone(), &cda(), &id, &opts).expect("kept");
    assert!(again == signed, "a signed input was changed");
    assert!(fse_pades::inject(signed.clone(), &cda()).expect("kept") == signed);
    let prepared = fse_pades::prepare(signed.clone(), Some(&cda())).expect("prepare");
    assert!(prepared.is_already_signed() && prepared.pdf() == signed.as_slice());
    // another CDA: refused, with who signed and why
    for e in [
        inject_and_sign(signed.clone(), &other_cda(), &id, &opts).expect_err("refused"),
        fse_pades::inject(signed.clone(), &other_cda()).expect_err("refused"),
    ] {
        let msg = e.to_string();
        assert!(matches!(e, Error::Refused(_)), "{e:?}");
        assert!(
            msg.contains("already signed (Signature1 by ")
                && msg.contains("fse test signer")
                && msg.contains("is not the CDA to publish"),
            "{msg}"
        );
    }
    // a signed input that does not verify: refused, not signed over
    let mut broken = signed.clone();
    let at = broken.len() / 3;
    broken[at] ^= 1;
    let e = fse_pades::prepare(broken, None).expect_err("refused");
    assert!(e.to_string().contains("does not verify"), "{e}");
}

/// The doctor's signature, then the CDA replaced and a second signature (what `pdf inject`
/// and the batch did): the published CDA is not covered by the first signature, so invalid.
#[test]
fn cda_replaced_after_a_signature_is_reported() {
    let id = identity(pki());
    let pdf = fse_pades::SourcePdf::parse(signed()).expect("parse");
    let replaced = fse_pades::inject_cda(&pdf, &other_cda()).expect("low-level inject");
    let twice = fse_pades::sign(replaced, &id, &SignOptions::default()).expect("sign");
    let r = verify(&twice);
    assert!(!r.valid, "reported VALID");
    assert_eq!(r.signatures.len(), 2);
    let first = &r.signatures[0];
    assert_eq!(first.covers_final_cda, Some(false));
    assert!(!first.changed_after.is_empty());
    assert_eq!(r.signatures[1].covers_final_cda, Some(true));
    assert!(
        r.problems
            .iter()
            .any(|p| p.starts_with("Signature1: the cda.xml it signed is not the file's cda.xml")),
        "{:?}",
        r.problems
    );
}

/// A countersignature over the same content: two signatures, each with its revision.
#[test]
fn twice_signed_pdf_reports_each_signature_and_its_revision() {
    let id = identity(pki());
    let once = signed();
    let twice = fse_pades::sign(once.clone(), &id, &SignOptions::default()).expect("sign");
    let r = verify(&twice);
    assert!(r.valid, "{:?}", r.problems);
    // rendered (1), cda.xml injected (2), signed (3), signed again (4)
    assert_eq!(r.revisions, 4);
    let names: Vec<&str> = r.signatures.iter().map(|s| s.field.as_str()).collect();
    assert_eq!(names, ["Signature1", "Signature2"]);
    let (a, b) = (&r.signatures[0], &r.signatures[1]);
    assert_eq!((a.revision, a.later_revisions), (Some(3), 1));
    assert_eq!((b.revision, b.later_revisions), (Some(4), 0));
    assert!(!a.covers_whole_file && b.covers_whole_file);
    assert_eq!(a.byte_range[2] + a.byte_range[3], once.len() as i64);
    assert!(a.changed_after.is_empty() && b.changed_after.is_empty());
    assert_eq!(
        (a.covers_final_cda, b.covers_final_cda),
        (Some(true), Some(true))
    );
    for s in &r.signatures {
        assert_eq!(
            s.cert_at_signing,
            Some(fse_pades::identity::CertTime::Valid)
        );
        assert_eq!(s.cert_now, Some(fse_pades::identity::CertTime::Valid));
        assert!(s
            .signer
            .as_deref()
            .is_some_and(|x| x.contains("fse test signer")));
    }
}

/// An expired or not yet valid signer certificate is refused, unless allowed (tests), and
/// what it signs is reported `expired` and invalid.
#[test]
fn signer_certificate_outside_its_validity_is_refused() {
    use fse_pades::identity::CertTime;
    let now = time::OffsetDateTime::now_utc();
    for (valid, state) in [
        (
            (
                now - time::Duration::days(400),
                now - time::Duration::days(2),
            ),
            CertTime::Expired,
        ),
        (
            (
                now + time::Duration::days(2),
                now + time::Duration::days(400),
            ),
            CertTime::NotYetValid,
        ),
    ] {
        let p = TestPki::generate_with_signer_validity(KeyKind::EcdsaP256, valid).expect("pki");
        let id = identity(&p);
        let e = inject_and_sign(plain_pdf(), &cda(), &id, &SignOptions::default())
            .expect_err("refused");
        match &e {
            Error::CertificateTime {
                subject,
                state: s,
                not_after,
                ..
            } => {
                assert!(subject.contains("fse test signer"));
                assert_eq!(*s, state);
                assert_eq!(not_after, &fse_pades::identity::rfc3339(valid.1));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains(&format!("is {state}")), "{e}");
        let allowed = SignOptions {
            allow_invalid_cert_time: true,
            ..SignOptions::default()
        };
        let out = inject_and_sign(plain_pdf(), &cda(), &id, &allowed).expect("allowed");
        let r = verify(&out);
        assert!(!r.valid);
        assert_eq!(r.signatures[0].cert_at_signing, Some(state));
        assert_eq!(r.signatures[0].cert_now, Some(state));
        assert!(
            r.problems.iter().any(|p| p.contains(&format!(
                "the signer certificate was {state} at the signing time"
            ))),
            "{:?}",
            r.problems
        );
    }
}

#[test]
fn pdf_dates_are_read() {
    use fse_pades::signature::{parse_pdf_date, pdf_date};
    let t = time::macros::datetime!(2026-03-04 05:06:07 +01:30);
    assert_eq!(parse_pdf_date(&pdf_date(t)), Some(t));
    assert_eq!(
        parse_pdf_date("D:20240102"),
        Some(time::macros::datetime!(2024-01-02 00:00:00 UTC))
    );
    assert_eq!(
        parse_pdf_date("D:20240102030405Z"),
        Some(time::macros::datetime!(2024-01-02 03:04:05 UTC))
    );
    assert_eq!(
        parse_pdf_date("D:20240102030405-05'00'"),
        Some(time::macros::datetime!(2024-01-02 03:04:05 -5))
    );
    for bad in ["", "D:", "D:20241302", "D:2024010", "yesterday"] {
        assert_eq!(parse_pdf_date(bad), None, "{bad}");
    }
}

/// Multi-signature samples of the EU DSS: every signature with its revision; the later
/// revisions of those pyHanko accepts (`expected.tsv`) change nothing they signed.
#[test]
fn shared_multi_signature_samples_report_each_revision() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/pdf/eu-dss");
    for (file, accepted) in [("pades3_Baseline_B.pdf", 2), ("PAdES-LT.pdf", 2)] {
        let bytes = std::fs::read(dir.join(file)).expect(file);
        let r = verify(&bytes);
        assert!(r.signatures.len() >= 2, "{file}");
        let revs: Vec<Option<usize>> = r.signatures.iter().map(|s| s.revision).collect();
        assert!(revs.iter().all(Option::is_some), "{file}: {revs:?}");
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{file}: {revs:?}");
        for s in &r.signatures[..accepted] {
            assert!(
                s.changed_after.is_empty(),
                "{file} {}: {:?}",
                s.field,
                s.changed_after
            );
        }
    }
}
