#!/usr/bin/env bash
# Fuzz every cargo-fuzz target of fuzz/ for a bounded time, then print, per target, the corpus
# size and the CPU time spent.
#
#   ci/fuzz.sh                 # CI: 20 s per target (8 targets, about 3 minutes after the build)
#   ci/fuzz.sh 600             # on demand: 10 minutes per target
#   ci/fuzz.sh 300 template_argo judge_spec
#
# The committed seeds (fuzz/corpus/<target>) are read only; what a run discovers goes to
# fuzz/target/corpus/<target> (not committed; kept between runs on the same machine), and a
# crashing input to fuzz/artifacts/<target>/. Every crash becomes a regression test in
# tests/fuzz_regressions.rs (a plain `cargo test` on stable), its input committed under
# tests/fixtures/fuzz/ or inline.
#
# Needs the nightly toolchain (libFuzzer's instrumentation); without it this script says so
# and exits 0. FUZZ_SANITIZER=address runs under AddressSanitizer (the crate forbids `unsafe`,
# so CI trades it for twice the executions).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
shift || true
CARGO_FUZZ_VERSION=0.13.2
SANITIZER="${FUZZ_SANITIZER:-none}"
# FUZZ_DEV=1 builds without optimisation (cargo fuzz --dev): a few times fewer executions a
# second, but a cold build in a fraction of the release build's ~9 minutes on two cores; CI
# uses it for its short runs.
PROFILE=()
if [ "${FUZZ_DEV:-0}" = 1 ]; then PROFILE=(--dev); fi
export CARGO_TERM_COLOR=never

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "!!!!!!!! the nightly toolchain is not installed (rustup toolchain install nightly):"
  echo "!!!!!!!! SKIPPING the fuzz targets"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo +nightly --version
cargo fuzz --version

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The children's CPU time so far (user + system, seconds) into variable $1, from bash's
# `times` (run in this shell, not in a $(…) subshell, which would start from zero).
times_file=$(mktemp)
trap 'rm -f "$times_file"' EXIT
children_cpu() {
  times >"$times_file"
  printf -v "$1" '%s' "$(tail -n 1 "$times_file" | awk '{
    total = 0
    for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); total += t[1] * 60 + t[2] }
    printf "%.1f", total
  }')"
}

echo "== cargo +nightly fuzz build -s $SANITIZER (all targets)"
start=$(date +%s)
cargo +nightly fuzz build "${PROFILE[@]}" -s "$SANITIZER"
echo "build: $(($(date +%s) - start)) s wall"

mkdir -p fuzz/target/corpus fuzz/target/logs
summary=()
failed=()
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$t"
  work="fuzz/target/corpus/$t"
  log="fuzz/target/logs/$t.log"
  mkdir -p "$seeds" "$work"
  echo "== fuzz $t for ${SECONDS_PER_TARGET} s"
  children_cpu before
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: 2 GiB is a memory bomb.
  # New inputs are written to the first directory only, so the committed seeds stay as they are.
  status=0
  cargo +nightly fuzz run "${PROFILE[@]}" -s "$SANITIZER" "$t" "$work" "$seeds" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  children_cpu after
  cpu=$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.1f", a - b }')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corpus=$(find "$work" "$seeds" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result="ok"
  else
    result="CRASH (exit $status): $(grep -o 'fuzz/artifacts/[^ ]*' "$log" | head -n 1)"
    failed+=("$t")
    tail -n 40 "$log"
  fi
  summary+=("$(printf '%-22s %6s %6s %10s %8s  %s' "$t" "$(find "$seeds" -type f | wc -l)" \
    "$corpus" "${runs:-?}" "$cpu" "$result")")
done

echo
echo "== fuzz summary (${SECONDS_PER_TARGET} s per target)"
printf '%-22s %6s %6s %10s %8s  %s\n' target seeds corpus runs cpu_s result
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "!!!!!!!! fuzz targets that crashed: ${failed[*]}"
  echo "!!!!!!!! reproduce: cargo +nightly fuzz run -s $SANITIZER TARGET fuzz/artifacts/TARGET/<file>"
  exit 1
fi
