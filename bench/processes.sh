# Sourced by bench/flows_ab.sh and bench/audit_ab.sh: a scratch directory ($WORK) and
# the servers started into PIDS, all stopped and removed when the script exits; a step
# that fails names its line and command.
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "$(basename "$0"): stopped at line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
