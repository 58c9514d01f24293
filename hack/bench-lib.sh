# shellcheck shell=bash
# Pieces shared by the memory benchmarks (hack/bench-secrets.sh, hack/bench-scale.sh): their
# common settings, a control plane of their own, bulk objects, one controller run measured from
# start to /readyz and after it settles, and etcd's JSON API (revision, compaction) for relist
# storms. Sourced; the caller has `set -euo pipefail`.

# bench_init NAME: the settings every bench reads: root (cd'ed to), BUILD, dir (the control
# plane's, $BENCH_DIR or .bench-NAME), out (results), bins (BENCH_BINS), settle
# (BENCH_SETTLE_S), nns (namespaces of the unrelated secrets).
bench_init() {
        root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
        cd "$root"
        BUILD=${BUILD:-build}
        dir=${BENCH_DIR:-$root/.bench-$1}
        out="$root/$BUILD/bench"
        mkdir -p "$out"
        bins=${BENCH_BINS:-"new=$BUILD/pullpolicy-controller"}
        settle=${BENCH_SETTLE_S:-20}
        nns=10
}

# bench_cluster DIR: (re)starts a control plane in DIR, exports KUBECONFIG, defines k()
# (kubectl) and installs the CRDs; the control plane and any controller left running stop on exit.
# BENCH_KEEP=1 keeps the control plane running after the bench and reuses a running one (with the
# objects an earlier run made: see bench_state), so that a second run skips the bulk creation.
bench_cluster() {
        local dir=$1
        bench_dir=$dir
        if [ "${BENCH_KEEP:-0}" = 1 ] && bash hack/testenv.sh status "$dir" >/dev/null 2>&1; then
                trap '[ -n "${bench_ctrl:-}" ] && kill "$bench_ctrl" 2>/dev/null' EXIT
        else
                bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true
                rm -f "$dir/bench-state"
                bash hack/testenv.sh start "$dir" >/dev/null
                if [ "${BENCH_KEEP:-0}" = 1 ]; then
                        trap '[ -n "${bench_ctrl:-}" ] && kill "$bench_ctrl" 2>/dev/null' EXIT
                else
                        trap '[ -n "${bench_ctrl:-}" ] && kill "$bench_ctrl" 2>/dev/null; bash hack/testenv.sh stop "$bench_dir" >/dev/null 2>&1 || true' EXIT
                fi
        fi
        export KUBECONFIG="$dir/kubeconfig"
        bench_bindir=$(bash hack/build-control-plane.sh --print-bindir)
        k apply --server-side -k crds/ >/dev/null
        k wait --for=condition=Established crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null
}
k() { "$bench_bindir/kubectl" "$@"; }

# bench_apply_chunks GEN FROM TO: runs `GEN i` for i in [FROM, TO) and creates the YAML it
# prints, 1,000 objects per kubectl call.
bench_apply_chunks() {
        local gen=$1 from=$2 to=$3 f i end
        f=$(mktemp)
        while [ "$from" -lt "$to" ]; do
                end=$((from + 1000 < to ? from + 1000 : to))
                : >"$f"
                for i in $(seq "$from" $((end - 1))); do "$gen" "$i" >>"$f"; done
                k create -f "$f" >/dev/null
                from=$end
        done
        rm -f "$f"
}

# bench_state NAME [VALUE]: a count the bench keeps beside its control plane (how many objects
# of a kind it made), so that a kept control plane (BENCH_KEEP=1) is not filled twice. Prints
# the count (0 when unknown); with VALUE, records it.
bench_state() {
        local f=$bench_dir/bench-state
        if [ $# -gt 1 ]; then
                { grep -v "^$1=" "$f" 2>/dev/null || true; echo "$1=$2"; } >"$f.tmp"
                mv "$f.tmp" "$f"
        else
                awk -F= -v n="$1" '$1 == n {v = $2} END {print v + 0}' "$f" 2>/dev/null || echo 0
        fi
}

# bench_add_secrets WANT NNS: Opaque secrets of 10 KB in namespaces bench-unrelated-1..NNS
# (which must exist), up to WANT in all (cumulative over calls).
bench_blob=
bench_gen_secret() {
        printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated-%d, namespace: bench-unrelated-%d}\ntype: Opaque\ndata: {blob: %s}\n---\n' \
                "$1" $(($1 % bench_nns + 1)) "$bench_blob"
}
bench_add_secrets() {
        bench_nns=$2
        [ -n "$bench_blob" ] || bench_blob=$(head -c 7680 /dev/urandom | base64 -w0) # 10 KB encoded
        local have
        have=$(bench_state secrets)
        [ "$have" -lt "$1" ] || return 0
        bench_apply_chunks bench_gen_secret "$have" "$1"
        bench_state secrets "$1"
}

# bench_run_controller BIN LOG: starts the controller on free ports and waits for /readyz;
# sets bench_ctrl (pid), bench_mport, bench_hport, bench_ready_s.
bench_run_controller() {
        local bin=$1 log=$2 t0 t1 try
        for try in 1 2 3; do
                # a free port can be taken by another process before the controller binds it
                read -r bench_mport bench_hport < <(python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])')
                t0=$(date +%s.%N)
                "$bin" --kubeconfig="$KUBECONFIG" --metrics-bind-address=127.0.0.1:$bench_mport \
                        --health-probe-bind-address=127.0.0.1:$bench_hport --log-level=warn >>"$log" 2>&1 &
                bench_ctrl=$!
                until curl -sf "http://127.0.0.1:$bench_hport/readyz" >/dev/null; do
                        kill -0 "$bench_ctrl" 2>/dev/null || break
                        sleep 0.05
                done
                t1=$(date +%s.%N)
                if kill -0 "$bench_ctrl" 2>/dev/null; then
                        bench_ready_s=$(python3 -c "print('%.2f' % ($t1 - $t0))")
                        return 0
                fi
                wait "$bench_ctrl" 2>/dev/null || true
                bench_ctrl=
                tail -n 3 "$log" | grep -q 'Address already in use' || break
        done
        echo "bench: the controller exited; see $log" >&2
        exit 1
}

# bench_status FIELD: VmRSS, VmHWM ... of the running controller, in kB.
bench_status() { awk -v f="$1:" '$1 == f {print $2}' "/proc/$bench_ctrl/status"; }

# bench_metrics: the running controller's metrics text.
bench_metrics() { curl -s "http://127.0.0.1:$bench_mport/metrics"; }

# bench_reset_peak: restarts the running controller's VmHWM at its current RSS (clear_refs 5),
# so that the next bench_status VmHWM is the peak of what happens from now on.
bench_reset_peak() { echo 5 >"/proc/$bench_ctrl/clear_refs"; }

bench_stop_controller() {
        kill "$bench_ctrl"
        wait "$bench_ctrl" 2>/dev/null || true
        bench_ctrl=
}

# One policy (home bench-home, secret bench-creds, wait Never), so that a named-secret watch
# exists as in any real cluster, and N namespaces bench-unrelated-1..N without policies.
# Bytes the API server has sent for RESOURCE's LISTs and watch events, from its own metrics.
bench_resource_bytes() {
        k get --raw /metrics | awk -v r="resource=\"$1\"" '(/^apiserver_response_sizes_sum/ && index($0, r) && /verb="LIST"/) ||
                (/^apiserver_watch_events_sizes_sum/ && index($0, r)) {s += $NF} END {printf "%.0f\n", s}'
}

# One controller run beside K objects of RESOURCE: prints name,k,ready_s,rss_kb,hwm_kb,cached,bytes
# where cached sums pullpolicy_cache_objects over sources starting with SOURCE and bytes is what
# the API server sent for RESOURCE meanwhile. The settle time is $settle.
bench_measure_beside() { # name binary k resource source log
        local b0 b1 rss hwm cached
        b0=$(bench_resource_bytes "$4")
        bench_run_controller "$2" "$6"
        sleep "$settle"
        b1=$(bench_resource_bytes "$4")
        rss=$(bench_status VmRSS)
        hwm=$(bench_status VmHWM)
        cached=$(bench_metrics | awk -v s="source=\"$5" '/^pullpolicy_cache_objects/ && index($0, s) {n += $NF} END {print n + 0}')
        bench_stop_controller
        printf '%s,%s,%s,%s,%s,%s,%s\n' "$1" "$3" "$bench_ready_s" "$rss" "$hwm" "$cached" $((b1 - b0))
}

bench_sample_policy() {
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
        for i in $(seq 1 "$1"); do printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-unrelated-%d}\n---\n' "$i"; done | k apply -f - >/dev/null
}

# etcd's gRPC gateway (JSON over plain HTTP on the test control plane's loopback port).
# bench_etcd PATH JSON: POSTs JSON to /v3/PATH and prints the answer.
bench_etcd() {
        local port
        port=$(. "$bench_dir/ports" && echo "$ETCD_PORT")
        curl -sf --max-time 60 -X POST "http://127.0.0.1:$port/v3/$1" -d "$2"
}

# bench_etcd_revision: etcd's current revision (header.revision of a range request).
bench_etcd_revision() {
        bench_etcd kv/range '{"key":"AA==","limit":1,"keys_only":true}' |
                python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'
}

# bench_etcd_put KEY VALUE: writes a key of etcd's own (outside /registry), which moves the
# revision on.
bench_etcd_put() {
        bench_etcd kv/put "{\"key\":\"$(printf %s "$1" | base64 -w0)\",\"value\":\"$(printf %s "$2" | base64 -w0)\"}" >/dev/null
}

# bench_etcd_compact REV: compacts etcd's history up to REV (physical: returns once done), so
# that every watch or list from an older resourceVersion answers 410 Gone.
bench_etcd_compact() {
        bench_etcd kv/compaction "{\"revision\":\"$1\",\"physical\":true}" >/dev/null
}

# bench_relist_storm: every reflector of the controller gets a 410 at once. The API server goes
# down (every watch is cut), etcd's revision moves on and its history is compacted up to there,
# then the API server comes back: each reflector resumes from its resourceVersion, now expired,
# and relists. Prints the revision compacted to.
bench_relist_storm() {
        local rev
        bash hack/testenv.sh stop-apiserver "$bench_dir" >/dev/null 2>&1
        bench_etcd_put /bench/relist-storm "$(date +%s.%N)"
        rev=$(bench_etcd_revision)
        bench_etcd_compact "$rev"
        bash hack/testenv.sh start-apiserver "$bench_dir" >/dev/null 2>&1
        echo "$rev"
}
