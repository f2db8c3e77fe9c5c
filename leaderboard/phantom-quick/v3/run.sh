#!/usr/bin/env bash
# STOPPED on 2026-12-03 at 284 of 1,350 records: its recipe generation's flag rule flagged nothing where detectors
# separated the corrupted samples perfectly (bench/flagging.py), so its refurbishers mostly trained as baseline did; the
# board that ranks methods is phantom-quick v4's (leaderboard/phantom-quick/v4/run.sh). Kept to say how v3 was made.
# Makes (or resumes) the phantom-quick v3 board: every recipe it runs x its noise grid x seeds 0-4, then the recipes
# that need trusted samples (with baseline and loss-refurb to pair them) on phantom-quick-trusted6 v3, all from one
# commit (BOARD_COMMIT) checked out in a clean worktree, records written straight into this checkout's leaderboard/
# (commit them as they land; never edit one). Interrupt it at any time; run it again to resume.
# It starts with one cell per recipe (omission:0.75, seed 0, the hardest), so that a recipe that cannot make a valid
# record at this protocol shows in the first half hour, not after its 50 trials failed; the grid then skips those cells.
#   leaderboard/phantom-quick/v3/run.sh [WORKTREE]      (default: ../echo-noise-bench-board-v3 beside this checkout)
# Needs `make install` here (the worktree runs this checkout's .venv with its own sources first on the path).
set -euo pipefail
BOARD_COMMIT=38452830c8ee3e31e706967f0090368410b78e91
METHODS=baseline,oracle-restore,loss-refurb,vog-refurb,confident-refurb,coteaching,gce,nr-dice,t-loss,mean-teacher,selfie,loss-discard,vog-discard,forgetting-refurb,entropy-refurb,oracle-refurb,oracle-discard,bootstrap-soft,bootstrap-hard,sce,confident-cv-refurb,trinet,adele
TRUSTED=baseline,loss-refurb,loss-trusted-refurb,spatial-correction
here="$(cd "$(dirname "$0")/../../.." && pwd)"
tree="${1:-$here/../echo-noise-bench-board-v3}"
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
run --protocol phantom-quick@v3 --method "$METHODS" --noise omission:0.75 --seed 0 --storage "${TMPDIR:-/tmp}/phantom-quick-v3-smoke-tune"
run --protocol phantom-quick-trusted6@v3 --method "$TRUSTED" --noise omission:0.75 --seed 0 \
  --storage "${TMPDIR:-/tmp}/phantom-quick-trusted6-v3-smoke-tune"
run --protocol phantom-quick@v3 --method "$METHODS" --noise protocol --storage "${TMPDIR:-/tmp}/phantom-quick-v3-tune"
run --protocol phantom-quick-trusted6@v3 --method "$TRUSTED" --noise protocol --storage "${TMPDIR:-/tmp}/phantom-quick-trusted6-v3-tune"
