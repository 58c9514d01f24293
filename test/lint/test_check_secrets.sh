#!/usr/bin/env bash
# hack/check-secrets.sh, which make lint runs: it must find PEM private keys
# and kubeconfigs with credentials, pass files without them, and pass the
# repository as tracked.
set -uo pipefail
root=${PULLPOLICY_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=../support/check.sh
source "$root/test/support/check.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check_secrets() { bash "$root/hack/check-secrets.sh" "$@" 2>"$tmp/err"; }

# Generated at run time, so no key is ever committed, not even for this test.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ec.key" 2>/dev/null
openssl genrsa -traditional -out "$tmp/rsa.key" 1024 2>/dev/null ||
        openssl genrsa -out "$tmp/rsa.key" 1024 2>/dev/null
{ echo "some text"; cat "$tmp/ec.key"; echo "more text"; } >"$tmp/embedded.txt"

# The kubeconfigs are written here with a credential made at run time, and the field names
# put together, so that this file holds no credential, nor anything shaped like one.
random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
kubeconfig_with() { # FIELD VALUE: a kubeconfig whose one user carries FIELD: VALUE
        printf 'apiVersion: v1\nkind: Config\nclusters:\n- name: c\n'
        printf '  cluster: {server: "https://127.0.0.1:6443"}\nusers:\n- name: u\n  user:\n'
        printf '    %s: %s\n' "$1" "$2"
}
kubeconfig_with "to""ken" "$(random_hex)" >"$tmp/kubeconfig-token"
kubeconfig_with "client-key""-data" "$(random_hex | base64 -w0)" >"$tmp/kubeconfig-keydata"
kubeconfig_with exec "{command: oc, apiVersion: client.authentication.k8s.io/v1}" >"$tmp/kubeconfig-exec"
# Prose that names the PEM header without a key after it.
printf 'Keys are written as "%s" blocks; see testenv.sh.\n' "-----BEGIN PRIVATE"" KEY-----" >"$tmp/doc.md"

finds() { ! check_secrets "$1" && grep -q "$2" "$tmp/err"; }
passes() { check_secrets "$1"; }
tracked_tree_clean() { (cd "$root" && bash hack/check-secrets.sh); }

check_begin 8
check finds_pkcs8_ec_key finds "$tmp/ec.key" "PEM private key"
check finds_rsa_key finds "$tmp/rsa.key" "PEM private key"
check finds_key_inside_other_text finds "$tmp/embedded.txt" "PEM private key"
check finds_kubeconfig_with_token finds "$tmp/kubeconfig-token" "kubeconfig with credentials"
check finds_kubeconfig_with_client_key_data finds "$tmp/kubeconfig-keydata" "kubeconfig with credentials"
check passes_kubeconfig_with_exec_plugin passes "$tmp/kubeconfig-exec"
check passes_prose_naming_pem_header passes "$tmp/doc.md"
check tracked_files_hold_no_secrets tracked_tree_clean
check_end
