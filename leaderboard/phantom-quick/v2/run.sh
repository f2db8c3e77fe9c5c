#!/usr/bin/env bash
# STOPPED on 2026-12-03 at 458 of 1,350 records: v2 is under-trained (leaderboard/phantom-quick/v2/training_budget.md);
# the board that ranks methods is phantom-quick v3's (leaderboard/phantom-quick/v3/run.sh). Kept to say how v2 was made.
# Makes (or resumes) the phantom-quick v2 board: every recipe it runs x its noise grid x seeds 0-4, then the
# recipes that need trusted samples (with baseline and loss-refurb to pair them) on phantom-quick-trusted6 v2, all from
# one commit (BOARD_COMMIT) checked out in a clean worktree, records written straight into this checkout's
# leaderboard/ (commit them as they land; never edit one). Interrupt it at any time; run it again to resume.
# Except t-loss: at BOARD_COMMIT every t-loss trial failed the record check (a final training loss had to be >= 0, and
# T-Loss, a negative log-likelihood, goes below 0), so its records come from FIX_COMMIT, which is BOARD_COMMIT plus that
# one check (`git diff BOARD_COMMIT FIX_COMMIT` shows 3 lines of bench/record.py), in a second worktree.
#   leaderboard/phantom-quick/v2/run.sh [WORKTREE]      (default: ../echo-noise-bench-board beside this checkout;
#                                                        t-loss's: WORKTREE-fix)
# Needs `make install` here (the worktrees run this checkout's .venv with their own sources first on the path).
set -euo pipefail
BOARD_COMMIT=240cc2a0eed1b66a682c8240462744b1cc94a3c4
FIX_COMMIT=3b637ccdbb70d7589d7d6ed6aa4ad32b8c79488d
METHODS=baseline,oracle-restore,loss-refurb,vog-refurb,confident-refurb,coteaching,gce,nr-dice,mean-teacher,selfie,loss-discard,vog-discard,forgetting-refurb,entropy-refurb,oracle-refurb,oracle-discard,bootstrap-soft,bootstrap-hard,sce,confident-cv-refurb,trinet,adele
here="$(cd "$(dirname "$0")/../../.." && pwd)"
tree="${1:-$here/../echo-noise-bench-board}"
worktree() {  # a clean worktree at commit $2 in folder $1
  if [ ! -d "$1" ]; then
    git -C "$here" worktree add --detach "$1" "$2"
  fi
  test "$(git -C "$1" rev-parse HEAD)" = "$2" || { echo "$1 is not at $2" >&2; exit 2; }
  test -z "$(git -C "$1" status --porcelain --untracked-files=no)" || { echo "$1 has local changes" >&2; exit 2; }
}
run() {  # bench run from the worktree $1, the rest its arguments
  (cd "$1" && PYTHONPATH="$1" "$here/.venv/bin/bench" run --noise protocol --resume --max-concurrent "${MAX_CONCURRENT:-2}" \
    --out "$here/leaderboard" "${@:2}")
}
worktree "$tree" "$BOARD_COMMIT"
worktree "$tree-fix" "$FIX_COMMIT"
run "$tree-fix" --protocol phantom-quick --method t-loss --storage "${TMPDIR:-/tmp}/phantom-quick-v2-tloss-tune"
run "$tree" --protocol phantom-quick --method "$METHODS" --storage "${TMPDIR:-/tmp}/phantom-quick-v2-tune"
run "$tree" --protocol phantom-quick-trusted6 --method baseline,loss-refurb,loss-trusted-refurb,spatial-correction \
  --storage "${TMPDIR:-/tmp}/phantom-quick-trusted6-v2-tune"
