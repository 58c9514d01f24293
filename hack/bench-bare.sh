#!/usr/bin/env bash
# The bare-client baseline of make bench (hack/bench.sh): exactly the writes a policy over
# the namespaces PREFIX-1..PREFIX-N (M service accounts each, home HOME holding the
# dockerconfigjson secret bench-creds) needs, made with no client-side limit and as many
# requests in flight as curl's HTTP/2 multiplexing allows, then timed:
#   per namespace N  one RoleBinding in HOME (system:image-puller to system:serviceaccounts:N, R2),
#                    one copy of the secret in N (R5),
#   per account      one JSON patch appending bench-creds to .imagePullSecrets (R3).
# No reads: the baseline knows the source and the accounts already.
#
#   bench-bare.sh KUBECONFIG_FILES_DIR HOME PREFIX N M   prints seconds, then failures (non-2xx)
# KUBECONFIG_FILES_DIR is a testenv directory (pki/ca.crt, pki/admin.{crt,key}, ports).
set -euo pipefail
dir=$1 home=$2 prefix=$3 n=$4 m=$5
server=$(awk '/server:/ {print $2; exit}' "$dir/kubeconfig-files")
pki="$dir/pki"
cfg=$(mktemp)
out=$(mktemp)
trap 'rm -f "$cfg" "$out"' EXIT
# The secret's payload as the home holds it (the bench creates it with this value).
payload=$(printf '%s' '{"auths":{"registry.bench.example.com":{"auth":"YmVuY2g6YmVuY2g="}}}' | base64 -w0)
common="cacert = \"$pki/ca.crt\"
cert = \"$pki/admin.crt\"
key = \"$pki/admin.key\"
silent
output = \"/dev/null\"
write-out = \"%{http_code}\\n\"
header = \"Content-Type: application/json\""
{
        for i in $(seq 1 "$n"); do
                ns="$prefix-$i"
                printf 'url = "%s/apis/rbac.authorization.k8s.io/v1/namespaces/%s/rolebindings"\nrequest = "POST"\n%s\n' "$server" "$home" "$common"
                printf 'data = "{\\"apiVersion\\":\\"rbac.authorization.k8s.io/v1\\",\\"kind\\":\\"RoleBinding\\",\\"metadata\\":{\\"name\\":\\"bare-%s\\"},\\"roleRef\\":{\\"apiGroup\\":\\"rbac.authorization.k8s.io\\",\\"kind\\":\\"ClusterRole\\",\\"name\\":\\"system:image-puller\\"},\\"subjects\\":[{\\"apiGroup\\":\\"rbac.authorization.k8s.io\\",\\"kind\\":\\"Group\\",\\"name\\":\\"system:serviceaccounts:%s\\"}]}"\nnext\n' "$ns" "$ns"
                printf 'url = "%s/api/v1/namespaces/%s/secrets"\nrequest = "POST"\n%s\n' "$server" "$ns" "$common"
                printf 'data = "{\\"apiVersion\\":\\"v1\\",\\"kind\\":\\"Secret\\",\\"metadata\\":{\\"name\\":\\"bench-creds\\"},\\"type\\":\\"kubernetes.io/dockerconfigjson\\",\\"data\\":{\\".dockerconfigjson\\":\\"%s\\"}}"\nnext\n' "$payload"
                for j in $(seq 1 "$m"); do
                        sa=default
                        [ "$j" -gt 1 ] && sa="sa-$j"
                        printf 'url = "%s/api/v1/namespaces/%s/serviceaccounts/%s"\nrequest = "PATCH"\n%s\n' "$server" "$ns" "$sa" "$common" |
                                sed 's|Content-Type: application/json|Content-Type: application/json-patch+json|'
                        printf 'data = "[{\\"op\\":\\"add\\",\\"path\\":\\"/imagePullSecrets/-\\",\\"value\\":{\\"name\\":\\"bench-creds\\"}}]"\nnext\n'
                done
        done
} >"$cfg"
t0=$(date +%s.%N)
# 100 streams: kube-apiserver's HTTP/2 limit per connection.
sed -i '$ d' "$cfg" # no "next" after the last transfer
curl -s --http2 --parallel --parallel-max 100 -K "$cfg" >"$out" 2>/dev/null || true
t1=$(date +%s.%N)
python3 -c "print(f'{$t1 - $t0:.3f}')"
grep -cv '^2' "$out" || true
