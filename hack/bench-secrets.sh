#!/usr/bin/env bash
# make bench-secrets: the controller's memory beside K unrelated secrets (issue 9, item 2).
#
# K Opaque secrets of 10 KB each are created in namespaces that hold no policy (cumulative:
# each K adds to the previous), plus one policy with one pull secret in its home. For each
# K and each controller binary, the controller is started on that cluster and measured:
#   ready_s          from its start to /readyz
#   rss_kb           VmRSS 20 s after /readyz (BENCH_SETTLE_S)
#   hwm_kb           VmHWM (peak) at the same moment
#   cached_secrets   pullpolicy_cache_objects summed over its secret sources
#   secret_bytes     bytes the API server sent for secret LISTs and watch events meanwhile
# The ratio columns are rss_kb and hwm_kb over the same binary's figure at K = 0.
#
#   BENCH_K="0 5000 15000"                      the sizes (ascending)
#   BENCH_BINS="new=build/pullpolicy-controller" name=path pairs, e.g. old=/tmp/old/controller
# Results: $BUILD/bench/secrets.csv
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
dir=${BENCH_DIR:-$root/.bench-secrets}
out="$root/$BUILD/bench"
mkdir -p "$out"
sizes=${BENCH_K:-"0 5000 15000"}
bins=${BENCH_BINS:-"new=$BUILD/pullpolicy-controller"}
settle=${BENCH_SETTLE_S:-20}
nns=10

bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true
bash hack/testenv.sh start "$dir" >/dev/null
trap '[ -n "${ctrl:-}" ] && kill "$ctrl" 2>/dev/null; bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
export KUBECONFIG="$dir/kubeconfig"
bindir=$(bash hack/build-control-plane.sh --print-bindir)
k() { "$bindir/kubectl" "$@"; }
k apply --server-side -k crds/ >/dev/null
k wait --for=condition=Established crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null

# One policy, so that a named-secret watch exists as in any real cluster.
k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: bench-home}
---
apiVersion: v1
kind: Secret
metadata: {name: bench-creds, namespace: bench-home}
type: kubernetes.io/dockerconfigjson
stringData: {.dockerconfigjson: '{"auths":{"registry.bench.example.com":{"auth":"YmVuY2g6YmVuY2g="}}}'}
---
apiVersion: pullpolicy.io/v1alpha1
kind: PullPolicy
metadata: {name: bench, namespace: bench-home}
spec:
  subjects: {serviceAccounts: [default]}
  pullSecrets: [{name: bench-creds}]
  dockercfg: {wait: Never}
YAML
for i in $(seq 1 $nns); do printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-unrelated-%d}\n---\n' "$i"; done | k apply -f - >/dev/null

blob=$(head -c 7680 /dev/urandom | base64 -w0) # 10 KB of data once encoded
have=0
add_secrets() { # up to $1 secrets in all, 1,000 per kubectl call
        local want=$1 f="$out/secrets-chunk.yaml"
        while [ "$have" -lt "$want" ]; do
                local end=$((have + 1000 < want ? have + 1000 : want))
                : >"$f"
                for i in $(seq "$have" $((end - 1))); do
                        printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated-%d, namespace: bench-unrelated-%d}\ntype: Opaque\ndata: {blob: %s}\n---\n' \
                                "$i" $((i % nns + 1)) "$blob" >>"$f"
                done
                k create -f "$f" >/dev/null
                have=$end
        done
        rm -f "$f"
}
secret_bytes() {
        k get --raw /metrics | awk '(/^apiserver_response_sizes_sum/ && /resource="secrets"/ && /verb="LIST"/) ||
                (/^apiserver_watch_events_sizes_sum/ && /resource="secrets"/) {s += $NF} END {printf "%.0f\n", s}'
}
measure() { # name path k
        local name=$1 bin=$2 kk=$3 mport hport t0 t1 b0 b1 rss hwm cached
        read -r mport hport < <(python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])')
        b0=$(secret_bytes)
        t0=$(date +%s.%N)
        "$bin" --kubeconfig="$KUBECONFIG" --metrics-bind-address=127.0.0.1:$mport \
                --health-probe-bind-address=127.0.0.1:$hport --log-level=warn >>"$out/secrets-controller.log" 2>&1 &
        ctrl=$!
        until curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null; do
                kill -0 "$ctrl" 2>/dev/null || { echo "bench: the controller exited; see $out/secrets-controller.log" >&2; exit 1; }
                sleep 0.05
        done
        t1=$(date +%s.%N)
        sleep "$settle"
        b1=$(secret_bytes)
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$ctrl/status")
        hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ctrl/status")
        cached=$(curl -s "http://127.0.0.1:$mport/metrics" |
                awk '/^pullpolicy_cache_objects/ && /source="secrets/ {s += $NF} END {print s + 0}')
        kill "$ctrl"; wait "$ctrl" 2>/dev/null || true
        ctrl=
        printf '%s,%s,%.2f,%s,%s,%s,%s\n' "$name" "$kk" "$(python3 -c "print($t1 - $t0)")" "$rss" "$hwm" "$cached" $((b1 - b0))
}

echo "binary,k,ready_s,rss_kb,hwm_kb,cached_secrets,secret_bytes,rss_ratio,hwm_ratio" >"$out/secrets.csv"
declare -A base_rss base_hwm
for kk in $sizes; do
        add_secrets "$kk"
        for pair in $bins; do
                name=${pair%%=*} bin=${pair#*=}
                line=$(measure "$name" "$bin" "$kk")
                IFS=, read -r _ _ _ rss hwm _ _ <<<"$line"
                [ -z "${base_rss[$name]:-}" ] && base_rss[$name]=$rss base_hwm[$name]=$hwm
                printf '%s,%.2f,%.2f\n' "$line" "$(python3 -c "print($rss / ${base_rss[$name]})")" \
                        "$(python3 -c "print($hwm / ${base_hwm[$name]})")" | tee -a "$out/secrets.csv"
        done
done
echo "bench: results in $out/secrets.csv"
