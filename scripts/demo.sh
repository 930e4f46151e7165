#!/usr/bin/env bash
# The main job on the embedded default: a local repository and the SQLite job database. Backs up this
# project's sources, changes a file, backs up again (incremental), restores the latest snapshot, compares
# it with the source, verifies every pack, and shows what the job database recorded.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/coffer-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export COFFER_PASSWORD=${COFFER_PASSWORD:-demo-passphrase}
export COFFER_REPO="$work/repo" COFFER_DATA_DIR="$work/state" COFFER_CONFIG="$work/config.yaml"
coffer() { node src/cli/main.ts "$@"; }

mkdir -p "$work/data"
cp -r src docs test "$work/data/"
echo "== coffer init"; coffer init
echo "== coffer backup (first)"; coffer backup "$work/data"
echo "change" >> "$work/data/docs/FORMAT.md"
echo "== coffer backup (incremental)"; coffer backup "$work/data"
echo "== coffer snapshots"; coffer snapshots
echo "== coffer restore latest"; coffer restore latest --target "$work/restored"
# Sources are stored at their full paths, so the tree comes back at that path under the target. A
# difference ends the demo with an error (set -e does not stop on the left of an &&).
diff -r "$work/data" "$work/restored$work/data"
echo "restored tree is identical to the source"
echo "== coffer check --read-data"; coffer check --read-data
echo "== coffer status (from the SQLite job database)"; coffer status
echo "== coffer logs"; coffer logs
