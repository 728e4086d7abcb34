//! Hostile PDF inputs (issue #19, items 5 and 7): `fse pdf sign` refuses what readers could
//! read differently (owner-password encryption, trailers that disagree on `/Root`, a `/Root`
//! that points nowhere, `/Prev` cycles, overflowing cross-reference stream fields, subsections
//! that claim more entries than they hold) with exit 2, a message naming the problem and no
//! output file; `fse pdf extract` never exits 0 without a non-empty `cda.xml`; and a legitimate
//! input whose `/EmbeddedFiles` name tree uses `/Kids` is signed so that the independent
//! verifiers and the gateway's two extractors accept it. The inputs are made at run time from
//! a rendered PDF (byte edits, appended updates, `qpdf`).

mod common;

use common::{fse_bin, oracles_dir, workspace_root};
use fse_pades::lopdf::{self, Dictionary, Object, StringFormat};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn fse(args: &[&str]) -> Output {
    Command::new(fse_bin())
        .args(args)
        .output()
        .expect("run fse")
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn cda_fixture() -> PathBuf {
    workspace_root().join("fixtures/pdf/referto.xml")
}

/// A scratch folder with a test PKI, a rendered PDF (`plain.pdf`, cross-reference stream) and
/// the same PDF with a classic cross-reference table (`table.pdf`, by qpdf), made once.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let out = fse(&["dev", "certs", p(&dir.join("pki"))]);
        assert!(out.status.success(), "{}", stderr(&out));
        let plain = dir.join("plain.pdf");
        let out = fse(&["pdf", "render", p(&cda_fixture()), "-o", p(&plain)]);
        assert!(out.status.success(), "{}", stderr(&out));
        let table = dir.join("table.pdf");
        qpdf(&["--object-streams=disable", p(&plain), p(&table)]);
        let t = std::fs::read(&table).expect("read");
        assert!(startxref(&t) < t.len() && t[startxref(&t)..].starts_with(b"xref"));
        Setup { _tmp: tmp, dir }
    })
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read")
    }

    /// Writes `bytes` as `name` in a fresh folder of its own and returns the path.
    fn input(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let d = tempfile::Builder::new()
            .prefix(name)
            .tempdir_in(&self.dir)
            .expect("tempdir")
            .keep();
        let f = d.join(name);
        std::fs::write(&f, bytes).expect("write");
        f
    }

    /// `fse pdf sign INPUT -o OUT [--cda referto.xml]` with the test signer.
    fn sign(&self, input: &Path, out: &Path, with_cda: bool) -> Output {
        let key = self.path("pki/signer-key.pem");
        let chain = self.path("pki/signer-chain.pem");
        let mut args = vec![
            "pdf",
            "sign",
            p(input),
            "-o",
            p(out),
            "--key",
            p(&key),
            "--cert",
            p(&chain),
        ];
        let cda = cda_fixture();
        if with_cda {
            args.extend(["--cda", p(&cda)]);
        }
        fse(&args)
    }
}

/// The `startxref` value of a file.
fn startxref(b: &[u8]) -> usize {
    let at = b
        .windows(9)
        .rposition(|w| w == b"startxref")
        .expect("startxref");
    let digits: String = b[at + 9..]
        .iter()
        .map(|&c| c as char)
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("startxref value")
}

/// The last trailer's `/Size` and `/Root` object number, and the catalog's `/Pages`.
fn facts(b: &[u8]) -> (u32, u32, u32) {
    let doc = lopdf::Document::load_mem(b).expect("lopdf reads the base");
    let size = doc
        .trailer
        .get(b"Size")
        .and_then(Object::as_i64)
        .expect("size");
    let root = doc
        .trailer
        .get(b"Root")
        .and_then(Object::as_reference)
        .expect("root");
    let pages = doc
        .get_dictionary(root)
        .and_then(|c| c.get(b"Pages"))
        .and_then(Object::as_reference)
        .expect("pages");
    (size as u32, root.0, pages.0)
}

/// `base` followed by an incremental update holding `objects` (numbered from `first`), a
/// classic cross-reference table and a trailer made of `trailer` plus `/Size`; `prev` is the
/// `/Prev` value (`None`: the base's `startxref`; `Some(None)`: the update's own table).
fn append_update(
    base: &[u8],
    first: u32,
    objects: &[&str],
    trailer: &str,
    prev: Option<Option<usize>>,
) -> Vec<u8> {
    let mut out = base.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", first + i as u32).as_bytes());
    }
    let xref = out.len();
    let prev = match prev {
        None => startxref(base),
        Some(None) => xref,
        Some(Some(v)) => v,
    };
    out.extend_from_slice(format!("xref\n{first} {}\n", objects.len()).as_bytes());
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n\r\n").as_bytes());
    }
    let size = first + objects.len() as u32;
    out.extend_from_slice(
        format!("trailer\n<< /Size {size} {trailer} /Prev {prev} >>\nstartxref\n{xref}\n%%EOF\n")
            .as_bytes(),
    );
    out
}

/// Signs `bytes` and expects the refusal: exit 2, `expect` in the message, no output file.
fn assert_refused(case: &str, bytes: &[u8], expect: &str) {
    let s = setup();
    let input = s.input(&format!("{case}.pdf"), bytes);
    let out_pdf = input.with_file_name("signed.pdf");
    for with_cda in [false, true] {
        let out = s.sign(&input, &out_pdf, with_cda);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{case} (cda {with_cda}): {err}");
        assert!(err.contains(expect), "{case}: {err}");
        assert!(err.lines().count() == 1, "{case}: one line expected: {err}");
        assert!(!out_pdf.exists(), "{case}: an output file was written");
    }
}

#[test]
fn owner_password_encryption_is_refused_by_sign_and_extract() {
    let s = setup();
    let enc = s.path("owner-encrypted.pdf");
    qpdf(&[
        "--encrypt",
        "",
        "owner",
        "256",
        "--",
        p(&s.path("plain.pdf")),
        p(&enc),
    ]);
    let bytes = std::fs::read(&enc).expect("read");
    assert_refused(
        "owner-encrypted",
        &bytes,
        "input PDF is encrypted (owner password): decrypt it first, e.g. `qpdf --decrypt in.pdf out.pdf`",
    );
    // and the same file with its CDA: extract refuses too, writing nothing
    let injected = s.path("plain-cda.pdf");
    let out = fse(&[
        "pdf",
        "inject",
        "--pdf",
        p(&s.path("plain.pdf")),
        "--cda",
        p(&cda_fixture()),
        "-o",
        p(&injected),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let enc_cda = s.path("owner-encrypted-cda.pdf");
    qpdf(&[
        "--encrypt",
        "",
        "owner",
        "256",
        "--",
        p(&injected),
        p(&enc_cda),
    ]);
    assert_extract_refused(&enc_cda, 2, "input PDF is encrypted (owner password)");
}

/// Runs qpdf, which must succeed.
fn qpdf(args: &[&str]) {
    let st = Command::new("qpdf")
        .args(args)
        .status()
        .expect("qpdf is installed");
    assert!(st.success(), "qpdf {args:?}");
}

/// `fse pdf extract PDF` exits `code` with `expect` in its message and writes no file.
fn assert_extract_refused(pdf: &Path, code: i32, expect: &str) {
    let xml = pdf.with_extension("extracted.xml");
    let out = fse(&["pdf", "extract", p(pdf), "-o", p(&xml)]);
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    assert!(stderr(&out).contains(expect), "{}", stderr(&out));
    assert!(!xml.exists(), "extract wrote a file");
}

#[test]
fn extract_without_a_cda_exits_non_zero_and_writes_nothing() {
    let s = setup();
    // no attachment at all
    assert_extract_refused(&s.path("plain.pdf"), 1, "cda.xml: no /Names /EmbeddedFiles");
    // an empty cda.xml attachment (added by qpdf)
    let empty = s.path("empty.xml");
    std::fs::write(&empty, b"").expect("write");
    let with_empty = s.path("empty-cda.pdf");
    qpdf(&[
        p(&s.path("plain.pdf")),
        "--add-attachment",
        p(&empty),
        "--key=cda.xml",
        "--filename=cda.xml",
        "--",
        p(&with_empty),
    ]);
    assert_extract_refused(&with_empty, 1, "the cda.xml attachment is empty");
}

#[test]
fn trailers_disagreeing_on_root_are_refused() {
    let s = setup();
    let base = s.bytes("table.pdf");
    let (size, root, pages) = facts(&base);
    // a second catalog in an update whose trailer names it: readers that follow the newest
    // trailer and readers that repair from an older one show different documents
    let hostile = append_update(
        &base,
        size,
        &[&format!("<< /Type /Catalog /Pages {pages} 0 R >>")],
        &format!("/Root {size} 0 R"),
        None,
    );
    assert!(root != size);
    assert_refused(
        "roots-disagree",
        &hostile,
        &format!(
            "the trailers disagree on /Root ({size} 0 R in the newest, {root} 0 R in an older one)"
        ),
    );
}

#[test]
fn root_pointing_nowhere_is_refused() {
    let s = setup();
    let base = s.bytes("table.pdf");
    let (size, root, _) = facts(&base);
    let tail = base.len() - 200;
    let text = String::from_utf8_lossy(&base[tail..]).into_owned();
    let from = format!("/Root {root} 0 R");
    let missing = size + 50;
    assert!(text.contains(&from), "{text}");
    let mut hostile = base[..tail].to_vec();
    hostile.extend_from_slice(
        text.replace(&from, &format!("/Root {missing} 0 R"))
            .as_bytes(),
    );
    assert_refused(
        "root-missing",
        &hostile,
        &format!("the trailer's /Root {missing} 0 R points to no object"),
    );
}

#[test]
fn prev_cycle_is_refused() {
    let s = setup();
    let base = s.bytes("table.pdf");
    let (size, root, _) = facts(&base);
    // the update's /Prev names its own cross-reference table
    let hostile = append_update(
        &base,
        size,
        &["<< /Producer (cycle) >>"],
        &format!("/Root {root} 0 R"),
        Some(None),
    );
    let at = startxref(&hostile);
    assert_refused(
        "prev-cycle",
        &hostile,
        &format!("the /Prev chain loops back to the cross-reference section at byte {at}"),
    );
}

#[test]
fn subsection_claiming_more_entries_than_it_holds_is_refused() {
    let s = setup();
    let base = s.bytes("table.pdf");
    let at = startxref(&base);
    // `xref\n0 N\n`: claim N+1 entries (same number of digits when N does not end in 9)
    let head_end = at
        + 5
        + base[at + 5..]
            .iter()
            .position(|&c| c == b'\n')
            .expect("eol");
    let header = String::from_utf8_lossy(&base[at + 5..head_end]).into_owned();
    let n: u64 = header
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("count");
    let mut hostile = base[..at + 5].to_vec();
    hostile.extend_from_slice(format!("0 {}", n + 1).as_bytes());
    hostile.extend_from_slice(&base[head_end..]);
    assert_refused(
        "subsection-count",
        &hostile,
        &format!(
            "cross-reference subsection `0 {}` at byte {} holds {n} entries",
            n + 1,
            at + 5
        ),
    );
}

/// An update ending in a cross-reference stream with `/W [1 w 2]` whose entry for a new object
/// holds `offset + extra`: lopdf keeps the low 32 bits of a field, other readers all of them.
fn xref_stream_update(base: &[u8], w: usize, extra: u64) -> Vec<u8> {
    let (size, root, _) = facts(base);
    let mut out = base.to_vec();
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let obj_at = out.len();
    out.extend_from_slice(format!("{size} 0 obj\n<< /Producer (overflow) >>\nendobj\n").as_bytes());
    let xref_at = out.len();
    let mut data = Vec::new();
    for off in [obj_at as u64 + extra, xref_at as u64] {
        data.push(1u8);
        let be = off.to_be_bytes();
        if w <= 8 {
            data.extend_from_slice(&be[8 - w..]);
        } else {
            data.extend(std::iter::repeat_n(0u8, w - 8));
            data.extend_from_slice(&be);
        }
        data.extend_from_slice(&[0, 0]);
    }
    out.extend_from_slice(
        format!(
            "{} 0 obj\n<< /Type /XRef /Size {} /Root {root} 0 R /Prev {} /Index [{size} 2] /W [1 {w} 2] /Length {} >>\nstream\n",
            size + 1,
            size + 2,
            startxref(base),
            data.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&data);
    out.extend_from_slice(format!("\nendstream\nendobj\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    out
}

#[test]
fn overflowing_xref_stream_fields_are_refused() {
    let s = setup();
    let base = s.bytes("plain.pdf");
    // the control: the same update without overflow signs
    let fine = xref_stream_update(&base, 8, 0);
    let input = s.input("xref-stream-fine.pdf", &fine);
    let out = s.sign(&input, &input.with_file_name("signed.pdf"), false);
    assert!(out.status.success(), "control: {}", stderr(&out));
    // an offset beyond 32 bits: lopdf would read it as the object's real offset
    let (size, _, _) = facts(&base);
    let hostile = xref_stream_update(&base, 8, 1 << 32);
    let at = startxref(&hostile);
    assert_refused(
        "xref-stream-offset",
        &hostile,
        &format!("cross-reference stream at byte {at}: the offset"),
    );
    assert!(
        stderr(&s.sign(&s.input("o.pdf", &hostile), &s.path("o-signed.pdf"), false))
            .contains(&format!("of object {size} is beyond the end of the file")),
    );
    // a field wider than 8 bytes
    let hostile = xref_stream_update(&base, 9, 0);
    let at = startxref(&hostile);
    assert_refused(
        "xref-stream-width",
        &hostile,
        &format!("cross-reference stream at byte {at}: /W [1, 9, 2] is not three field widths"),
    );
}

fn lit(s: &str) -> Object {
    Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
}

/// `plain.pdf` with an attachment `allegato.txt` in an `/EmbeddedFiles` tree whose root has
/// only `/Kids` (one leaf), as PDF writers with many attachments make them.
fn with_kids_tree(plain: &Path, out: &Path) {
    let mut doc = lopdf::Document::load(plain).expect("load rendered PDF");
    let mut sd = Dictionary::new();
    sd.set("Type", Object::Name(b"EmbeddedFile".to_vec()));
    let file = doc.add_object(lopdf::Stream::new(sd, b"allegato di prova\n".to_vec()));
    let mut ef = Dictionary::new();
    ef.set("F", file);
    let mut spec = Dictionary::new();
    spec.set("Type", Object::Name(b"Filespec".to_vec()));
    spec.set("F", lit("allegato.txt"));
    spec.set("UF", lit("allegato.txt"));
    spec.set("EF", ef);
    let spec = doc.add_object(spec);
    let mut leaf = Dictionary::new();
    leaf.set("Names", vec![lit("allegato.txt"), spec.into()]);
    leaf.set("Limits", vec![lit("allegato.txt"), lit("allegato.txt")]);
    let leaf = doc.add_object(leaf);
    let mut root = Dictionary::new();
    root.set("Kids", vec![Object::Reference(leaf)]);
    let root = doc.add_object(root);
    let mut names = Dictionary::new();
    names.set("EmbeddedFiles", root);
    doc.catalog_mut().expect("catalog").set("Names", names);
    doc.save(out).expect("save");
}

#[test]
fn embedded_files_tree_with_kids_is_flattened_and_passes_the_gateway() {
    let s = setup();
    let input = s.path("kids.pdf");
    with_kids_tree(&s.path("plain.pdf"), &input);
    let signed = s.path("kids-signed.pdf");
    let out = s.sign(&input, &signed, true);
    assert!(out.status.success(), "{}", stderr(&out));

    // our extract: the injected CDA, byte for byte
    let xml = s.path("kids-cda.xml");
    let out = fse(&["pdf", "extract", p(&signed), "-o", p(&xml)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&xml).expect("read"),
        std::fs::read(cda_fixture()).expect("read")
    );

    // the other attachment is kept, beside cda.xml, in the root /Names array
    let doc = lopdf::Document::load(&signed).expect("load");
    let names = doc
        .catalog()
        .and_then(|c| c.get(b"Names"))
        .and_then(|n| doc.dereference(n))
        .and_then(|(_, n)| n.as_dict())
        .and_then(|n| n.get(b"EmbeddedFiles"))
        .and_then(|e| doc.dereference(e))
        .and_then(|(_, e)| e.as_dict())
        .expect("EmbeddedFiles");
    assert!(!names.has(b"Kids"));
    let keys: Vec<Vec<u8>> = names
        .get(b"Names")
        .and_then(Object::as_array)
        .expect("root /Names")
        .chunks(2)
        .map(|p| p[0].as_str().expect("key").to_vec())
        .collect();
    assert_eq!(keys, vec![b"allegato.txt".to_vec(), b"cda.xml".to_vec()]);

    // the independent verifiers and the gateway's two extractors
    let oracle = Command::new(oracles_dir().join("check_pdf.sh"))
        .arg("--trust")
        .arg(s.path("pki/ca.pem"))
        .arg(&signed)
        .output()
        .expect("run check_pdf.sh");
    let text = String::from_utf8_lossy(&oracle.stdout);
    assert!(text.contains("VERDICT: PASS"), "{text}");
    assert!(text.contains("gateway : ACCEPT"), "{text}");
    assert!(oracle.status.success(), "{text}");
}
