#!/usr/bin/env bash
# Fails when a tracked file holds a PEM private key or a kubeconfig that carries
# credentials. Test fixtures made for tests may hold fake ones; they live under
# the paths in `allowed` below and nowhere else.
#
#   check-secrets.sh            check the files git tracks in this repository
#   check-secrets.sh FILE...    check these files (used by the check's own test)
set -uo pipefail
cd "$(dirname "$0")/.."

# Fixtures that are fake by construction: unit-test sources and fuzz inputs.
allowed='^(test/unit/|test/fuzz/corpus/|test/fuzz/crashes/)'

if [ $# -gt 0 ]; then
        files=("$@")
else
        mapfile -t files < <(git ls-files | grep -Ev "$allowed")
fi

# A PEM private key: the BEGIN line followed by base64 on the next line.
pem_key() {
        grep -A1 -E -e '-----BEGIN ([A-Z0-9]+ )?PRIVATE KEY-----' "$1" 2>/dev/null |
                grep -qE '^[A-Za-z0-9+/=]{16,}$'
}

# A kubeconfig (kind: Config with users:) whose user entry carries a secret.
kubeconfig_creds() {
        grep -qE '^kind:[[:space:]]*"?Config"?[[:space:]]*$' "$1" 2>/dev/null || return 1
        grep -qE '^users:' "$1" || return 1
        grep -qE '^[[:space:]]+(token|client-key-data|client-key|password|tokenFile):[[:space:]]*[^[:space:]]' "$1"
}

status=0
for f in "${files[@]}"; do
        [ -f "$f" ] || continue
        if pem_key "$f"; then
                echo "check-secrets: $f holds a PEM private key" >&2
                status=1
        fi
        if kubeconfig_creds "$f"; then
                echo "check-secrets: $f is a kubeconfig with credentials" >&2
                status=1
        fi
done
exit "$status"
