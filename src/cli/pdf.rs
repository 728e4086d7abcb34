//! `fse pdf …`: embed the CDA in a PDF, sign it PAdES B-B, verify, extract, render.

use super::{EXIT_INVALID, EXIT_OK, EXIT_USAGE};
use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use fse_pades::{SignOptions, SignerIdentity};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum PdfCommand {
    /// Embed a CDA document as the `cda.xml` attachment (replacing an existing one). A signed
    /// PDF is never changed: kept as it is when it verifies and already carries this CDA,
    /// refused otherwise.
    Inject(InjectArgs),
    /// Sign PDFs with a PAdES baseline B-B signature, by incremental update. A PDF that is
    /// already signed is not signed again: kept as it is when it verifies (and carries the
    /// --cda given), refused otherwise.
    Sign(Box<SignArgs>),
    /// Verify signed FSE PDFs (signature, byte range, /M, PAdES B-B, cda.xml).
    Verify(VerifyArgs),
    /// Extract the embedded `cda.xml` (exit 1 and nothing written when it is missing or empty).
    Extract(ExtractArgs),
    /// Render a PDF/A-3b of a CDA's header and narrative sections (fonts embedded).
    Render(RenderArgs),
}

#[derive(Debug, Args)]
pub struct InjectArgs {
    /// The PDF to update.
    #[arg(long)]
    pdf: PathBuf,
    /// The CDA XML to embed.
    #[arg(long)]
    cda: PathBuf,
    /// Output PDF.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// PDFs to sign.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file (one input only).
    #[arg(short, long, conflicts_with = "out_dir")]
    output: Option<PathBuf>,
    /// Output directory (any number of inputs; files keep their names).
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Parallel signing jobs (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// PKCS#12 bundle with the signer's key and certificate chain.
    #[arg(long, conflicts_with_all = ["key", "cert"])]
    p12: Option<PathBuf>,
    /// Name of the environment variable holding the PKCS#12 password.
    #[arg(long, default_value = "FSE_P12_PASSWORD")]
    p12_password_env: String,
    /// File whose first line is the PKCS#12 password.
    #[arg(long)]
    p12_password_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1; unencrypted).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// PEM certificate of the signer, optionally followed by its chain.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Embed this CDA as `cda.xml` before signing.
    #[arg(long)]
    cda: Option<PathBuf>,
    /// /Reason of the signature.
    #[arg(long)]
    reason: Option<String>,
    /// /Location of the signature.
    #[arg(long)]
    location: Option<String>,
    /// Sign even with a signer certificate that is expired or not yet valid (tests only;
    /// `pdf verify` then reports the signature invalid).
    #[arg(long)]
    allow_invalid_cert_time: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Signed PDFs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// The PDF.
    file: PathBuf,
    /// Where to write the CDA.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The CDA XML.
    cda: PathBuf,
    /// Output PDF.
    #[arg(short, long)]
    output: PathBuf,
}

fn code_of(e: &fse_pades::Error) -> u8 {
    match e {
        fse_pades::Error::Refused(_) | fse_pades::Error::Attachment(_) => EXIT_INVALID,
        _ => EXIT_USAGE,
    }
}

fn read(p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))
}

fn write(p: &Path, data: &[u8]) -> anyhow::Result<()> {
    // write beside the target, then rename: no half-written PDF is left on a crash
    let tmp = p.with_extension("fse-tmp");
    std::fs::write(&tmp, data).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))
}

pub fn run(cmd: PdfCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PdfCommand::Inject(a) => inject(a),
        PdfCommand::Sign(a) => sign(*a),
        PdfCommand::Verify(a) => verify(a),
        PdfCommand::Extract(a) => extract(a),
        PdfCommand::Render(a) => render(a),
    }
}

/// Tells the user when a damaged input will be rewritten once before it is updated.
fn note_rewrite(path: &Path, pdf: &[u8]) {
    if let Ok(src) = fse_pades::SourcePdf::parse(pdf.to_vec()) {
        if let Err(why) = src.appendable() {
            eprintln!(
                "fse: note: {}: {why}; strict readers refuse such a file, so it is rewritten \
                 once (new cross-reference table) before it is updated",
                path.display()
            );
        }
    }
}

/// Tells the user that a signed input is kept as it is.
fn note_kept(path: &Path, prepared: &fse_pades::Prepared) {
    if let fse_pades::Prepared::AlreadySigned { report, .. } = prepared {
        let by: Vec<String> = report
            .signatures
            .iter()
            .map(|s| format!("{} by {}", s.field, s.signer.as_deref().unwrap_or("?")))
            .collect();
        eprintln!(
            "fse: note: {}: already signed ({}), verified and carrying this cda.xml: kept as it \
             is, not signed again",
            path.display(),
            by.join(", ")
        );
    }
}

fn inject(a: InjectArgs) -> anyhow::Result<ExitCode> {
    let pdf = read(&a.pdf)?;
    let cda = read(&a.cda)?;
    match fse_pades::prepare(pdf, Some(&cda)) {
        Ok(prepared) => {
            note_kept(&a.pdf, &prepared);
            if !prepared.is_already_signed() {
                note_rewrite(&a.pdf, &read(&a.pdf)?);
            }
            write(&a.output, prepared.pdf())?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            eprintln!("fse: {}: {e}", a.pdf.display());
            Ok(ExitCode::from(code_of(&e)))
        }
    }
}

fn p12_password(a: &SignArgs) -> anyhow::Result<String> {
    if let Some(f) = &a.p12_password_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("cannot read the password file {}", f.display()))?;
        return Ok(text.lines().next().unwrap_or_default().to_string());
    }
    if let Ok(p) = std::env::var(&a.p12_password_env) {
        return Ok(p);
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return rpassword::prompt_password("PKCS#12 password: ")
            .context("cannot read the password from the terminal");
    }
    bail!(
        "no PKCS#12 password: set ${} or use --p12-password-file (passwords are never taken \
         on the command line)",
        a.p12_password_env
    )
}

fn identity(a: &SignArgs) -> anyhow::Result<SignerIdentity> {
    match (&a.p12, &a.key, &a.cert) {
        (Some(p12), _, _) => {
            let pw = p12_password(a)?;
            Ok(SignerIdentity::from_pkcs12_file(p12, &pw)?)
        }
        (None, Some(k), Some(c)) => Ok(SignerIdentity::from_pem_files(k, c)?),
        _ => bail!("give the signer as --p12 FILE or as --key KEY.pem --cert CERT.pem"),
    }
}

/// One file's signing outcome: `Err((exit code, message))`.
type Outcome = Result<(), (u8, String)>;

fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let outputs: Vec<(PathBuf, PathBuf)> = match (&a.output, &a.out_dir) {
        (Some(o), None) => {
            if a.inputs.len() != 1 {
                bail!("-o takes one input; use --out-dir for several");
            }
            vec![(a.inputs[0].clone(), o.clone())]
        }
        (None, Some(dir)) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            a.inputs
                .iter()
                .map(|i| {
                    let name = i
                        .file_name()
                        .ok_or_else(|| anyhow!("{} has no file name", i.display()))?;
                    Ok((i.clone(), dir.join(name)))
                })
                .collect::<anyhow::Result<_>>()?
        }
        _ => bail!("give -o OUT.pdf (one input) or --out-dir DIR"),
    };
    let mut seen = std::collections::HashSet::new();
    for (input, output) in &outputs {
        if !seen.insert(output) {
            bail!(
                "two inputs would be written to {} (same file name, e.g. {}): sign them in \
                 separate runs",
                output.display(),
                input.display()
            );
        }
    }
    let id = identity(&a)?;
    if !a.allow_invalid_cert_time {
        if let Err(e) = id.check_valid_now() {
            eprintln!("fse: {e} (renew it; --allow-invalid-cert-time signs anyway, for tests)");
            return Ok(ExitCode::from(code_of(&e)));
        }
    }
    let cda = a.cda.as_deref().map(read).transpose()?;
    let opts = SignOptions {
        reason: a.reason.clone(),
        location: a.location.clone(),
        allow_invalid_cert_time: a.allow_invalid_cert_time,
        ..SignOptions::default()
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(a.jobs.unwrap_or(0))
        .build()
        .context("cannot start the signing threads")?;
    let started = std::time::Instant::now();
    let results: Vec<(PathBuf, Outcome)> = pool.install(|| {
        outputs
            .par_iter()
            .map(|(input, output)| {
                let r = (|| {
                    let pdf = std::fs::read(input).map_err(|e| (EXIT_USAGE, e.to_string()))?;
                    let prepared = fse_pades::prepare(pdf, cda.as_deref())
                        .map_err(|e| (code_of(&e), e.to_string()))?;
                    note_kept(input, &prepared);
                    if !prepared.is_already_signed() {
                        note_rewrite(input, prepared.pdf());
                    }
                    let signed = prepared
                        .sign(&id, &opts)
                        .map_err(|e| (code_of(&e), e.to_string()))?;
                    write(output, &signed).map_err(|e| (EXIT_USAGE, format!("{e:#}")))
                })();
                (input.clone(), r)
            })
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut code = EXIT_OK;
    let mut failed = 0usize;
    for (input, r) in &results {
        if let Err((c, msg)) = r {
            eprintln!("fse: {}: {msg}", input.display());
            code = code.max(*c);
            failed += 1;
        }
    }
    if let Some(dir) = &a.out_dir {
        let signed = results.len() - failed;
        eprintln!(
            "fse: signed {signed} of {} PDF(s) into {} in {elapsed:.2} s ({:.0}/s, {} jobs){}",
            results.len(),
            dir.display(),
            signed as f64 / elapsed.max(1e-9),
            pool.current_num_threads(),
            if failed > 0 {
                format!("; {failed} failed")
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::from(code))
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut code = EXIT_OK;
    let mut json = Vec::new();
    for f in &a.files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("fse: cannot read {}: {e}", f.display());
                code = code.max(EXIT_USAGE);
                continue;
            }
        };
        let r = fse_pades::verify(&bytes);
        if !r.valid {
            code = code.max(EXIT_INVALID);
        }
        match a.format {
            Format::Human => {
                println!(
                    "{}: {}",
                    f.display(),
                    if r.valid { "VALID" } else { "INVALID" }
                );
                for s in &r.signatures {
                    println!(
                        "  signature {} ({}): intact={} level={} M={} signer={} covers-whole-file={}{}",
                        s.field,
                        s.sub_filter,
                        s.intact,
                        s.level,
                        s.signing_time.as_deref().unwrap_or("-"),
                        s.signer.as_deref().unwrap_or("-"),
                        s.covers_whole_file,
                        if s.bytes_after > 0 {
                            format!(" ({} bytes after)", s.bytes_after)
                        } else {
                            String::new()
                        }
                    );
                    let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
                    println!(
                        "    revision {} of {} ({} later); covers the final cda.xml: {}; \
                         certificate {} .. {}: {} at signing, {} now",
                        opt(s.revision.map(|n| n.to_string())),
                        r.revisions,
                        s.later_revisions,
                        opt(s.covers_final_cda.map(|b| b.to_string())),
                        s.cert_not_before.as_deref().unwrap_or("-"),
                        s.cert_not_after.as_deref().unwrap_or("-"),
                        opt(s.cert_at_signing.map(|c| c.to_string())),
                        opt(s.cert_now.map(|c| c.to_string())),
                    );
                }
                if let Some(n) = r.cda_bytes {
                    println!("  cda.xml: {n} bytes");
                }
                println!("  sha256: {}", r.sha256);
                for p in &r.problems {
                    println!("  problem: {p}");
                }
                for w in &r.warnings {
                    println!("  warning: {w}");
                }
            }
            Format::Json => json.push(serde_json::json!({
                "file": f.display().to_string(),
                "report": r,
            })),
        }
    }
    if let Format::Json = a.format {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(ExitCode::from(code))
}

fn extract(a: ExtractArgs) -> anyhow::Result<ExitCode> {
    let bytes = read(&a.file)?;
    match fse_pades::extract_cda(&bytes) {
        Ok(xml) => {
            write(&a.output, &xml)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            eprintln!("fse: {}: {e}", a.file.display());
            Ok(ExitCode::from(code_of(&e)))
        }
    }
}

fn render(a: RenderArgs) -> anyhow::Result<ExitCode> {
    let xml = read(&a.cda)?;
    match fse_pades::render::render_cda(&xml) {
        Ok(pdf) => {
            write(&a.output, &pdf)?;
            Ok(ExitCode::from(EXIT_OK))
        }
        Err(e) => {
            eprintln!("fse: {}: {e}", a.cda.display());
            Ok(ExitCode::from(code_of(&e)))
        }
    }
}
