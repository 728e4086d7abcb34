#!/usr/bin/env bash
# Validated CDA documents per second: `fse cda validate --format json` (release build, one core
# and all cores) against the independent oracle `validate_cda.sh --json` (Saxon + lxml) on the
# same official samples, in the same run; then the per-stage figures on one core (XML reading,
# XSD, schematron) from the `validate_stages` bench binary of fse-cda (see its header: the XSD
# figure is derived as full − parse − schematron). Both whole-run figures include process
# start-up and rule loading; the oracle's also its Python/Saxon start-up, which is its real cost
# per call. A run of fse takes about half a second on the official corpus, where the machine's
# load moves a single timing by 10-20 %: each fse figure is the median of 5 runs, the oracle's
# (about 10 s a run) the median of 3; the runs of each are printed too.
# Targets (issue 3): ≥ 20× the oracle, ≥ 500 documents/s per core for the whole verdict. The
# oracle is single-threaded; the 20× is read on the whole machine (fse with all its cores), and
# the one-core ratio is printed beside it for the core-for-core view.
# Usage: benches/validate_vs_oracle.sh [FILE_OR_DIR...]  (default: every official sample CDA)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
conf="${FSE_CONFORMANCE:-$root/../shared/conformance}"
conf="$(cd "$conf" && pwd)"
oracles="${FSE_ORACLES:-$root/../shared/oracles}"
rules="$conf/cda"
if [ "$#" -gt 0 ]; then
  inputs=("$@")
else
  inputs=("$conf/cda/samples" "$conf/accreditamento")
fi
for i in "${!inputs[@]}"; do inputs[$i]="$(realpath "${inputs[$i]}")"; done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin fse
fse="$root/target/release/fse"
n=$(find "${inputs[@]}" -iname '*.xml' -type f | wc -l)

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):.1f}')" "$@"; }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.1f}')" "$@"; }

run_fse() {
  local t0 t1
  t0=$(now)
  "$fse" cda validate --rules "$rules" --format json --jobs "$1" "${inputs[@]}" >/dev/null || [ $? -eq 1 ]
  t1=$(now)
  rate "$n" "$t0" "$t1"
}
run_oracle() {
  local t0 t1
  t0=$(now)
  "$oracles/validate_cda.sh" --json "${inputs[@]}" >/dev/null || [ $? -eq 1 ]
  t1=$(now)
  rate "$n" "$t0" "$t1"
}
# median RUNS CMD...: runs CMD RUNS times; prints "median (run, run, ...)".
median() {
  local runs=$1 rates=()
  shift
  for _ in $(seq "$runs"); do rates+=("$("$@")"); done
  python3 -c "import statistics, sys; r = sys.argv[1:]; print(f'{statistics.median(map(float, r)):.1f} ({\", \".join(r)})')" "${rates[@]}"
}

cores=$(nproc)
run_fse 1 >/dev/null # warm the page cache
one_runs=$(median 5 run_fse 1)
all_runs=$(median 5 run_fse "$cores")
one=${one_runs%% *}
all=${all_runs%% *}

"$oracles/validate_cda.sh" --help >/dev/null 2>&1 || true # makes its venv once
oracle_runs=$(median 3 run_oracle)
oracle=${oracle_runs%% *}

stages=$(cargo bench --quiet --manifest-path "$root/Cargo.toml" -p fse-cda \
  --bench validate_stages -- "$rules" "${inputs[@]}" 2>/dev/null | grep '^stage ')
stage() { awk -v s="$1" '$2 == s { print $5 }' <<<"$stages"; }

echo "documents: $n ($(uname -m), $cores cores; shared machine: figures vary run to run)"
echo "fse cda validate --jobs 1:        $one_runs docs/s"
echo "fse cda validate --jobs $cores:        $all_runs docs/s"
echo "validate_cda.sh --json (oracle):  $oracle_runs docs/s"
echo "ratio fse ($cores cores) / oracle:     $(ratio "$all" "$oracle")x   (target >= 20x: the tool as run against the oracle as run)"
echo "ratio fse (1 core) / oracle:      $(ratio "$one" "$oracle")x   (core for core: the oracle runs on one core)"
echo "in-process, one core (validate_stages):"
echo "  whole verdict:                  $(stage full) docs/s   (target >= 500 per core)"
echo "  XML reading:                    $(stage parse) docs/s"
echo "  XSD stage (derived):            $(stage xsd) docs/s"
echo "  schematron + terminology:       $(stage schematron) docs/s"
