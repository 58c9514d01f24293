# shellcheck shell=bash
# Pieces shared by the memory benchmarks (hack/bench-secrets.sh, hack/bench-scale.sh): a
# control plane of their own, bulk objects, and one controller run measured from start to
# /readyz and after it settles. Sourced; the caller has `set -euo pipefail` and root=.

# bench_cluster DIR: (re)starts a control plane in DIR, exports KUBECONFIG, defines k()
# (kubectl) and installs the CRDs; the control plane and any controller left running stop on exit.
bench_cluster() {
        local dir=$1
        bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true
        bash hack/testenv.sh start "$dir" >/dev/null
        bench_dir=$dir
        trap '[ -n "${bench_ctrl:-}" ] && kill "$bench_ctrl" 2>/dev/null; bash hack/testenv.sh stop "$bench_dir" >/dev/null 2>&1 || true' EXIT
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

# bench_add_secrets WANT NNS: Opaque secrets of 10 KB in namespaces bench-unrelated-1..NNS
# (which must exist), up to WANT in all (cumulative over calls).
bench_secrets_have=0
bench_blob=
bench_gen_secret() {
        printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: unrelated-%d, namespace: bench-unrelated-%d}\ntype: Opaque\ndata: {blob: %s}\n---\n' \
                "$1" $(($1 % bench_nns + 1)) "$bench_blob"
}
bench_add_secrets() {
        bench_nns=$2
        [ -n "$bench_blob" ] || bench_blob=$(head -c 7680 /dev/urandom | base64 -w0) # 10 KB encoded
        [ "$bench_secrets_have" -lt "$1" ] || return 0
        bench_apply_chunks bench_gen_secret "$bench_secrets_have" "$1"
        bench_secrets_have=$1
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

bench_stop_controller() {
        kill "$bench_ctrl"
        wait "$bench_ctrl" 2>/dev/null || true
        bench_ctrl=
}

# One policy (home bench-home, secret bench-creds, wait Never), so that a named-secret watch
# exists as in any real cluster, and N namespaces bench-unrelated-1..N without policies.
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
