#!/usr/bin/env bash
# Signed documents per second: `fse pdf sign` (one core and all cores) against pyHanko signing
# the same PDF with the same RSA-2048 key in the same run (one Python process, API calls in a
# loop, so Python's start-up is not counted against it). Our figures include process start and
# file I/O; pyHanko's do not. Needs a release build and pyHanko (the PDF oracle's venv).
# Usage: benches/sign_vs_pyhanko.sh [N documents, default 400]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-400}"
venv="${FSE_PDF_ORACLE_VENV:-/tmp/fse-pdf-oracle-venv}"
if [ ! -x "$venv/bin/python" ]; then
  "$root/../shared/oracles/check_pdf.sh" --help >/dev/null   # creates the venv with pyHanko
fi
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin fse
fse="$root/target/release/fse"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$fse" dev certs "$work/pki" >/dev/null
"$fse" pdf render "$root/fixtures/pdf/referto.xml" -o "$work/plain.pdf"
"$fse" pdf inject --pdf "$work/plain.pdf" --cda "$root/fixtures/pdf/referto.xml" -o "$work/in.pdf"
mkdir -p "$work/in"
for i in $(seq 1 "$n"); do cp "$work/in.pdf" "$work/in/doc$i.pdf"; done

rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]):.1f}')" "$@"; }
now() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$@"; }

run_fse() {
  local jobs="$1" out="$work/out-$1"
  local t0 t1
  t0=$(now)
  "$fse" pdf sign "$work"/in/*.pdf --out-dir "$out" --jobs "$jobs" \
    --key "$work/pki/signer-key.pem" --cert "$work/pki/signer-chain.pem"
  t1=$(now)
  rate "$n" "$(elapsed "$t0" "$t1")"
}

one=$(run_fse 1)
cores=$(nproc)
all=$(run_fse "$cores")
"$fse" pdf verify "$work/out-1/doc1.pdf" >/dev/null

cat > "$work/pyhanko_bench.py" <<'PY'
import io, sys, time
from pyhanko.sign import signers, fields
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
key, cert, chain, pdf, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
signer = signers.SimpleSigner.load(key, cert, ca_chain_files=(chain,), key_passphrase=None)
data = open(pdf, 'rb').read()
meta = signers.PdfSignatureMetadata(field_name='Signature1', subfilter=fields.SigSeedSubFilter.PADES)
t0 = time.perf_counter()
for _ in range(n):
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    signers.sign_pdf(w, meta, signer=signer, output=io.BytesIO())
dt = time.perf_counter() - t0
print(f'{n / dt:.1f}')
PY
py_n=$(( n < 100 ? n : 100 ))
py=$("$venv/bin/python" "$work/pyhanko_bench.py" "$work/pki/signer-key.pem" "$work/pki/signer.pem" \
  "$work/pki/ca.pem" "$work/in.pdf" "$py_n")

echo "documents: $n (pyHanko: $py_n), cores: $cores"
echo "fse one core      : $one docs/s"
echo "fse $cores cores  : $all docs/s"
echo "pyHanko one core  : $py docs/s"
python3 -c "import sys; o,a,p=map(float,sys.argv[1:]); print(f'fse/pyHanko one core: {o/p:.1f}x; all cores: {a/p:.1f}x')" "$one" "$all" "$py"
