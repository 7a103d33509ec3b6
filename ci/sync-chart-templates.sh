#!/usr/bin/env bash
# Keep the chart's copy of analysis-templates/ in step with the repository's.
#
# Helm reads only files inside a chart, so charts/canary-engine/files/analysis-templates/ holds
# a copy of analysis-templates/*.yaml (Judge specs and AnalysisTemplates, mounted from a
# ConfigMap at /etc/canary/judges).
#
#   ci/sync-chart-templates.sh          copy: make the chart's copy equal to analysis-templates/
#   ci/sync-chart-templates.sh --check  compare only: exit 1 and list the differences if they differ
set -euo pipefail
cd "$(dirname "$0")/.."

src=analysis-templates
dst=charts/canary-engine/files/analysis-templates

case "${1:-}" in
  "") mode=sync ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

shopt -s nullglob
sources=("$src"/*.yaml)
if [ ${#sources[@]} -eq 0 ]; then
  echo "no $src/*.yaml to copy" >&2
  exit 1
fi

if [ "$mode" = check ]; then
  status=0
  for f in "${sources[@]}"; do
    name=$(basename "$f")
    if [ ! -f "$dst/$name" ]; then
      echo "missing: $dst/$name (copy of $f)"
      status=1
    elif ! cmp -s "$f" "$dst/$name"; then
      echo "differs: $dst/$name from $f"
      diff -u "$f" "$dst/$name" | head -20 || true
      status=1
    fi
  done
  for g in "$dst"/*; do
    name=$(basename "$g")
    if [ ! -f "$src/$name" ]; then
      echo "extra: $g (no $src/$name)"
      status=1
    fi
  done
  if [ "$status" -ne 0 ]; then
    echo "the chart's copy is out of date: run ci/sync-chart-templates.sh" >&2
  else
    echo "chart templates in sync (${#sources[@]} files)"
  fi
  exit "$status"
fi

mkdir -p "$dst"
# Remove files that no longer exist upstream, then copy the current ones.
for g in "$dst"/*; do
  [ -f "$src/$(basename "$g")" ] || rm -f -- "$g"
done
cp -- "${sources[@]}" "$dst/"
echo "copied ${#sources[@]} files to $dst"
