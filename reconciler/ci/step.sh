#!/usr/bin/env bash
# border0-reconciler's CI step: the one logic behind action.yml (GitHub Actions) and
# templates/border0-reconciler.yml (GitLab CI/CD component). docs/ci.md describes it.
#
#   step.sh plan    on a pull/merge request: plan, save the plan (the artifact the merge will
#                   apply), and post the Markdown plan as ONE comment, updated on every push.
#                   Exit 0 with or without changes, 1 when planning failed (said in the comment).
#   step.sh drift   on a schedule: plan; exit 1 (a failed job, which notifies) when border0
#                   differs from the manifests on the default branch, 0 when it matches.
#   step.sh apply   after the merge: fetch the plan saved when the merged request's head was
#                   planned, and apply exactly it. Refused (exit 1, nothing applied) when there
#                   is none, or when it is stale: the manifests or border0 changed since.
#
# Settings (environment): BORDER0_MANIFESTS (default border0), BORDER0_PLAN_DIR (the artifact
# folder, default border0-plan), BORDER0_HEAD_SHA (the commit planned, for the comment),
# BORDER0_CI_COMMENT=false (no comment), BORDER0_RECONCILER_ARGS (more flags for plan, e.g.
# "--instance prod --env-file ci.env"). border0 itself: BORDER0_TOKEN, BORDER0_API. The forge
# (GitHub or GitLab): see reconciler/forge.py. Required: BORDER0_RECONCILER_FINGERPRINT_KEY, the
# key of the secret fingerprints, the same in every job (docs/security.md): a CI job starts
# from a fresh checkout, so the key file the reconciler would make instead is new in each job.
set -euo pipefail

mode="${1:-}"
manifests="${BORDER0_MANIFESTS:-border0}"
out="${BORDER0_PLAN_DIR:-border0-plan}"
python="${BORDER0_CI_PYTHON:-python3}"
head_sha="${BORDER0_HEAD_SHA:-${CI_COMMIT_SHA:-${GITHUB_SHA:-}}}"
# Word splitting is wanted: extra flags, space-separated.
# shellcheck disable=SC2206
extra=(${BORDER0_RECONCILER_ARGS:-})

forge() { "$python" -m reconciler.forge "$@"; }

# Every mode, whatever the manifests hold: a key made for one job differs in the next, so a
# secret's fingerprint written by one job is "made with another key" in all the others (the
# drift check fails forever, a protected socket is re-written by every plan). Refused before
# anything runs, also for manifests without secrets: the first secret would otherwise be found
# out after its merge.
require_key() {
    local key="${BORDER0_RECONCILER_FINGERPRINT_KEY:-}"
    if [ -z "${key//[[:space:]]/}" ]; then
        echo "error: BORDER0_RECONCILER_FINGERPRINT_KEY is not set: every CI job needs the same" \
             "fingerprint key (a secret, e.g. \`openssl rand -hex 32\`; docs/ci.md)" >&2
        exit 1
    fi
}

# $1: where to write the outputs (GitHub's step outputs), as name=value lines.
output() {
    if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1" >> "$GITHUB_OUTPUT"; fi
}

plan() {
    mkdir -p "$out"
    rm -f "$out/plan.json" "$out/plan.md" "$out/plan.err" "$out/comment.md"
    set +e
    border0-reconciler plan "$manifests" "${extra[@]}" --format markdown --detailed-exitcode \
        --out "$out/plan.json" > "$out/plan.md" 2> "$out/plan.err"
    code=$?
    set -e
    cat "$out/plan.err" >&2
    {
        echo "<!-- border0-reconciler-plan -->"
        echo "<sub>\`border0-reconciler plan $manifests\` at ${head_sha:0:7}</sub>"
        echo
        case "$code" in
            0|2) cat "$out/plan.md"
                 echo
                 echo "<sub>Merging applies exactly this plan; it is refused if the manifests" \
                      "or border0 change before then.</sub>" ;;
            *)   echo "**The plan failed** (exit code $code):"
                 echo
                 echo '```'
                 cat "$out/plan.err"
                 echo '```' ;;
        esac
    } > "$out/comment.md"
    # forge.py cuts a comment too long for the forge (on a character boundary).
    if [ "${BORDER0_CI_COMMENT:-true}" != "false" ]; then
        forge comment "$out/comment.md"
    fi
    output "exitcode=$code"
    case "$code" in
        0) echo "No changes." ;;
        2) echo "Changes planned." ;;
        *) exit "$code" ;;
    esac
    output "artifact-name=border0-plan-$head_sha"
}

apply() {
    mkdir -p "$out"
    set +e
    forge fetch-plan "$out/plan.json"
    code=$?
    set -e
    if [ "$code" = 3 ]; then
        echo "error: refusing to apply: no reviewed plan (plan the pull/merge request, then" \
             "merge it; or run the plan again for its head and re-run this job)" >&2
        exit 1
    elif [ "$code" != 0 ]; then
        exit "$code"
    fi
    # apply FILE applies the saved plan and nothing else: it plans again only to refuse a
    # stale one (the manifests or border0 changed since it was reviewed).
    border0-reconciler apply "$out/plan.json" "${extra[@]}" --format markdown > "$out/apply.md"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$out/apply.md" >> "$GITHUB_STEP_SUMMARY"; fi
    cat "$out/apply.md"
}

drift() {
    mkdir -p "$out"
    set +e
    border0-reconciler plan "$manifests" "${extra[@]}" --format markdown --detailed-exitcode \
        > "$out/drift.md"
    code=$?
    set -e
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$out/drift.md" >> "$GITHUB_STEP_SUMMARY"; fi
    cat "$out/drift.md"
    case "$code" in
        0) echo "No drift: border0 matches the manifests." ;;
        2) echo "error: drift: border0 differs from the manifests (the plan above would" \
                "repair it)" >&2
           exit 1 ;;
        *) exit "$code" ;;
    esac
}

case "$mode" in
    plan|apply|drift) require_key; "$mode" ;;
    *) echo "usage: border0-reconciler-ci plan|apply|drift" >&2; exit 2 ;;
esac
