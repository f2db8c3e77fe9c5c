#!/usr/bin/env bash
# Makes (or resumes) the phantom-quick v4 board: every recipe it runs x its noise grid x seeds 0-4, then the recipes
# that need trusted samples (with baseline and loss-refurb to pair them) on phantom-quick-trusted6 v4, all from one
# commit (BOARD_COMMIT) checked out in a clean worktree, records written straight into this checkout's leaderboard/
# (commit them as they land; never edit one). Interrupt it at any time; run it again to resume.
# v4 is v3 with recipe generation 3 (the revised shared flag rule); v3's smoke cells (one per recipe at omission:0.75,
# every one a valid record) cover what generation 3 did not change, so this board starts with the grid.
# It runs in blocks of one noise spec and one seed (every recipe of that pair, the unit a paired test compares), so
# that a block lands on one machine: records are bit-reproducible within a CPU kind only (leaderboard/README.md), and
# sessions get machines of different kinds. Specs run in SPECS order, the error levels the study's claims are about
# first. The order changes which records exist when, never a record.
# Within a block the longest recipes start first (adele, trinet, coteaching, confident-cv-refurb: 2-4x a baseline
# trial), so the block does not end on one long trial with the other core idle (about a tenth of a block's time).
#   leaderboard/phantom-quick/v4/run.sh [WORKTREE]      (default: ../echo-noise-bench-board-v4 beside this checkout)
# PARTS="grid trusted" (the default) runs both; PARTS=trusted runs the trusted protocol alone. Its recipes pair with
# its own `baseline`, so it can run on a CPU kind whose numbers differ from the grid's `baseline` records' kind
# without any pair crossing kinds (leaderboard/README.md: "Records come from more than one CPU kind").
# Needs `make install` here (the worktree runs this checkout's .venv with its own sources first on the path).
# To stop it, end this script before its `bench run` (else the next block starts): pkill -f phantom-quick/v4/run.sh,
# then pkill -f "bench run --resume"; the interrupted trials' failed records are redone by the next run.
set -euo pipefail
BOARD_COMMIT=7aa4e63a3f9d0d1fc123638c0f2eb089177d289e
METHODS=adele,trinet,coteaching,confident-cv-refurb,baseline,oracle-restore,loss-refurb,confident-refurb,vog-refurb,gce,nr-dice,t-loss,mean-teacher,selfie,loss-discard,vog-discard,forgetting-refurb,entropy-refurb,oracle-refurb,oracle-discard,bootstrap-soft,bootstrap-hard,sce
TRUSTED=baseline,loss-refurb,loss-trusted-refurb,spatial-correction
SPECS="none systematic:0.75 omission:0.75 random:0.75 systematic:0.5 omission:0.5 random:0.5 systematic:0.25 omission:0.25 random:0.25"
SEEDS="0 1 2 3 4"
here="$(cd "$(dirname "$0")/../../.." && pwd)"
tree="${1:-$here/../echo-noise-bench-board-v4}"
if [ ! -d "$tree" ]; then
  git -C "$here" worktree add --detach "$tree" "$BOARD_COMMIT"
fi
test "$(git -C "$tree" rev-parse HEAD)" = "$BOARD_COMMIT" || { echo "$tree is not at $BOARD_COMMIT" >&2; exit 2; }
test -z "$(git -C "$tree" status --porcelain --untracked-files=no)" || { echo "$tree has local changes" >&2; exit 2; }
cd "$tree"
export PYTHONPATH="$tree"
run() {
  "$here/.venv/bin/bench" run --resume --max-concurrent "${MAX_CONCURRENT:-2}" --out "$here/leaderboard" "$@"
}
failed=0
PARTS="${PARTS:-grid trusted}"
for spec in $SPECS; do
  [[ " $PARTS " == *" grid "* ]] || break
  for seed in $SEEDS; do
    run --protocol phantom-quick@v4 --method "$METHODS" --noise "$spec" --seed "$seed" --storage "${TMPDIR:-/tmp}/phantom-quick-v4-tune" \
      || { echo "block $spec seed $seed did not finish (exit $?); the next run resumes it" >&2; failed=1; }
  done
done
for spec in $SPECS; do
  [[ " $PARTS " == *" trusted "* ]] || break
  run --protocol phantom-quick-trusted6@v4 --method "$TRUSTED" --noise "$spec" --storage "${TMPDIR:-/tmp}/phantom-quick-trusted6-v4-tune" \
    || { echo "trusted block $spec did not finish (exit $?); the next run resumes it" >&2; failed=1; }
done
exit "$failed"
