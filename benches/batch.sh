#!/usr/bin/env bash
# End-to-end batch publication benchmark: N documents (default 10,000) built from the LAB
# fixtures with distinct ids, published by `fse batch publish` against `fse sandbox serve` in
# another process over mutual TLS on loopback. Reports documents/s and the peak RSS of the
# client and of the sandbox (GNU time -v).
#
#   benches/batch.sh [N] [JOBS]        # FSE_BIN=path/to/fse to skip the release build
#
# Target: the client is not the bottleneck (its CPU time well under the wall time) and its
# peak RSS stays under 300 MB.
set -euo pipefail
N=${1:-10000}
JOBS=${2:-4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${FSE_BIN:-}" ]]; then
  cargo build --release --quiet --manifest-path "$ROOT/Cargo.toml" --bin fse
  FSE_BIN="$ROOT/target/release/fse"
fi
WORK=$(mktemp -d)
SANDBOX_PID=
cleanup() {
  if [[ -n "$SANDBOX_PID" ]]; then kill "$SANDBOX_PID" 2>/dev/null || true; wait "$SANDBOX_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$FSE_BIN" sandbox init "$WORK/sb" --listen "127.0.0.1:$PORT" >/dev/null
python3 - "$ROOT/fixtures/build/LAB" "$WORK/in" "$N" <<'PY'
import json, os, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
models = [json.load(open(os.path.join(src, f))) for f in sorted(os.listdir(src)) if f.endswith(".json")]
os.makedirs(dst, exist_ok=True)
for i in range(n):
    m = json.loads(json.dumps(models[i % len(models)]))
    m["id"]["extension"] = "BENCH.%06d" % i
    if isinstance(m.get("set_id"), dict):
        m["set_id"]["extension"] = "BENCH.%06d" % i
    sub = os.path.join(dst, "%03d" % (i // 1000))
    os.makedirs(sub, exist_ok=True)
    json.dump(m, open(os.path.join(sub, "doc%06d.json" % i), "w"))
PY

/usr/bin/time -v -o "$WORK/sandbox.time" "$FSE_BIN" sandbox serve "$WORK/sb" >"$WORK/sandbox.log" 2>&1 &
SANDBOX_PID=$!
for _ in $(seq 100); do
  grep -q listening "$WORK/sandbox.log" 2>/dev/null && break
  sleep 0.1
done

START=$(date +%s.%N)
/usr/bin/time -v -o "$WORK/client.time" "$FSE_BIN" --config "$WORK/sb/fse.toml" batch publish "$WORK/in" \
  --journal "$WORK/j.sqlite" --jobs "$JOBS" --rate 0 --format json >"$WORK/summary.json" 2>"$WORK/progress.log" || true
END=$(date +%s.%N)
pkill -INT -P "$SANDBOX_PID" 2>/dev/null || true
wait "$SANDBOX_PID" 2>/dev/null || true
SANDBOX_PID=

PUBLISHED=$(jq '.counts.published // 0' "$WORK/summary.json")
if [[ "$PUBLISHED" != "$N" ]]; then
  echo "only $PUBLISHED of $N published:" >&2
  jq -c '.failures[:3]' "$WORK/summary.json" >&2 || tail -5 "$WORK/progress.log" >&2
fi
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
python3 - "$N" "$PUBLISHED" "$START" "$END" \
  "$(field 'Maximum resident' "$WORK/client.time")" "$(field 'User time' "$WORK/client.time")" \
  "$(field 'System time' "$WORK/client.time")" \
  "$(field 'Maximum resident' "$WORK/sandbox.time")" "$(field 'User time' "$WORK/sandbox.time")" \
  "$(field 'System time' "$WORK/sandbox.time")" "$JOBS" <<'PY'
import sys
n, pub, start, end, crss, cu, cs, srss, su, ss, jobs = sys.argv[1:]
wall = float(end) - float(start)
print(f"documents: {n}, published: {pub}, jobs: {jobs}")
print(f"wall: {wall:.1f} s, throughput: {int(pub)/wall:.1f} documents/s")
print(f"client:  peak RSS {int(crss)/1024:.1f} MB, CPU {float(cu)+float(cs):.1f} s ({(float(cu)+float(cs))/wall*100:.0f}% of one core)")
print(f"sandbox: peak RSS {int(srss)/1024:.1f} MB, CPU {float(su)+float(ss):.1f} s ({(float(su)+float(ss))/wall*100:.0f}% of one core)")
PY
