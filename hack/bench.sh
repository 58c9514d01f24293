#!/usr/bin/env bash
# make bench: how the controller scales, measured on the local control plane.
#
# For each size N (namespaces) × M (service accounts per namespace), one policy
# selects the N namespaces by label, grants image pulls and links one pull
# secret to every service account. Measured per size:
#   converge_s      from the policy's creation to Ready=True with every SA linked
#   requests        API requests the controller made (by its own metrics)
#   writes          POST/PUT/PATCH/DELETE the apiserver counted on the resources it writes
#   rss_kb          the controller's peak resident memory (VmHWM)
#   cpu_s           the controller's user+system CPU time
#   restart_writes  writes after a controller restart on the converged cluster (R10: 0)
#   bare_s          the same writes made by a bare client (hack/bench-bare.sh: curl over HTTP/2,
#                   no limit, no reads) on a twin set of namespaces, in the same run
#   ratio           converge_s / bare_s (issue 10's target: <= 1.5 at 1,000 x 4)
#   sa_p50_ms, sa_p99_ms  new SA -> linked, 100 accounts created one by one in a namespace of
#                   the converged policy (hack/bench-sa-latency.py; BENCH_SA_SAMPLES)
#   bare_sa_p50_ms, bare_sa_p99_ms  the same, linked by a bare client (bench-sa-latency.py --bare)
#                   in a twin namespace, in the same run: the API server's round trips alone
#   BENCH_SA_COMPARE=BINARY  the new-SA latency measured again with BINARY (another build of
#                   the controller, e.g. before a change) on the same converged cluster, after the
#                   build's own: a comparison within one run (its 100 accounts come after the
#                   build's 100)
#   BENCH_SA_PERF=FILE  perf record -g of the controller during each latency run (FILE.build,
#                   FILE.compare), when perf exists
# The controller runs with its default flags (no --qps: flow control, README).
# Results: build/bench/results.csv, and build/bench/results.png when gnuplot exists.
# Sizes: BENCH_SIZES="10x5 50x5 100x10" (default); e.g. BENCH_SIZES="200x4 1000x4".
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
dir=${BENCH_DIR:-$root/.bench}
out="$root/$BUILD/bench"
mkdir -p "$out"
sizes=${BENCH_SIZES:-"10x5 50x5 100x10"}

# Every run starts from an empty cluster: what an earlier run left would change the numbers.
bash hack/openshift-sim.sh stop "$dir" >/dev/null 2>&1 || true
bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true
bash hack/testenv.sh start "$dir" >/dev/null
trap '[ -n "${ctrl:-}" ] && kill "$ctrl" 2>/dev/null; bash hack/openshift-sim.sh stop "$dir" >/dev/null 2>&1 || true; bash hack/testenv.sh stop "$dir" >/dev/null 2>&1 || true' EXIT
export KUBECONFIG="$dir/kubeconfig"
bindir=$(bash hack/build-control-plane.sh --print-bindir)
k() { "$bindir/kubectl" "$@"; }
bash hack/openshift-sim.sh install "$dir" >/dev/null
bash hack/openshift-sim.sh start "$dir" --mode="${PULLPOLICY_SIM_MODE:-current}" --delay=0 >/dev/null
k apply --server-side -k crds/ >/dev/null
k wait --for=condition=Established crd/pullpolicies.pullpolicy.io --timeout=60s >/dev/null

writes() {
        k get --raw /metrics | awk '/^apiserver_request_total/ && /verb="(POST|PUT|PATCH|DELETE)"/ &&
                /resource="(serviceaccounts|rolebindings|secrets|pullpolicies)"/ {s += $NF} END {print s + 0}'
}
homes=$(for size in $sizes; do printf 'bench-home-%s,' "${size/x/-}"; done)
homes=${homes%,}
start_controller() {
        local try bin=${1:-$BUILD/pullpolicy-controller}
        for try in 1 2 3; do
                read -r mport hport < <(python3 -c 'import socket
a=socket.socket(); a.bind(("127.0.0.1",0)); b=socket.socket(); b.bind(("127.0.0.1",0))
print(a.getsockname()[1], b.getsockname()[1])')
                "$bin" --kubeconfig="$KUBECONFIG" --metrics-bind-address=127.0.0.1:$mport \
                        --health-probe-bind-address=127.0.0.1:$hport --log-level=warn --distribution-namespaces="$homes" ${BENCH_CONTROLLER_FLAGS:-} >>"$out/controller.log" 2>&1 &
                ctrl=$!
                # Ready: every cache has synced, so what follows is the controller's own work.
                until curl -sf "http://127.0.0.1:$hport/readyz" >/dev/null; do
                        kill -0 "$ctrl" 2>/dev/null || break
                        sleep 0.1
                done
                kill -0 "$ctrl" 2>/dev/null && return 0
                wait "$ctrl" 2>/dev/null || true
                # a free port can be taken by another process before the controller binds it
                tail -n 3 "$out/controller.log" | grep -q 'Address already in use' || break
        done
        echo "bench: the controller exited; see $out/controller.log" >&2
        exit 1
}
# reconciles so far: count, seconds in all; work-queue adds, seconds waited (controller metrics)
recon() {
        curl -s "http://127.0.0.1:$mport/metrics" | awk '
                /^controller_runtime_reconcile_time_seconds_count/ {c = $NF}
                /^controller_runtime_reconcile_time_seconds_sum/ {s = $NF}
                /^workqueue_queue_duration_seconds_count/ {qc = $NF}
                /^workqueue_queue_duration_seconds_sum/ {qs = $NF}
                END {print c + 0, s + 0, qc + 0, qs + 0}'
}
requests() {
        curl -s "http://127.0.0.1:$mport/metrics" |
                awk '/^pullpolicy_api_requests_total/ {s += $NF} END {print s + 0}'
}

# sa_latency NAME: new SA -> linked over BENCH_SA_SAMPLES accounts with the running controller;
# sets lat="p50 p99" and prints where the time went.
sa_latency() {
        local rec0 perf_pid= n_rec t_rec n_q t_q
        rec0=$(recon)
        if [ -n "${BENCH_SA_PERF:-}" ] && command -v perf >/dev/null; then
                perf record -F 499 -g -o "$BENCH_SA_PERF.$1" -p "$ctrl" >/dev/null 2>&1 &
                perf_pid=$!
                sleep 1
        fi
        read -r lat_p50 lat_p99 _ < <(python3 hack/bench-sa-latency.py "$dir" "$label-1" bench-creds "${BENCH_SA_SAMPLES:-100}")
        if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; fi
        lat="$lat_p50 $lat_p99"
        # the status counts the new accounts too (recounted once they are quiet)
        sa_added=$((sa_added + ${BENCH_SA_SAMPLES:-100}))
        local t_end st_now i
        t_end=$(date +%s.%N)
        for i in $(seq 300); do
                st_now=$(k -n "$home" get ppol bench -o jsonpath='{.status.linkedServiceAccounts}' 2>/dev/null || true)
                [ "$st_now" = $((total + sa_added)) ] && break
                sleep 0.1
        done
        python3 -c "print(f'bench: [$1] status linkedServiceAccounts {\"$st_now\"} (want $((total + sa_added))) {$(date +%s.%N) - $t_end:.1f} s after the last sample')"
        # where a new SA's time goes: the reconciles it caused (plan + apply + status), their
        # mean duration and the mean wait in the work queue
        read -r n_rec t_rec n_q t_q < <(echo "$rec0 $(recon)" | awk '{print $5-$1, $6-$2, $7-$3, $8-$4}')
        python3 -c "n=$n_rec; nq=$n_q; print(f'bench: [$1] during the new-SA samples: {n} reconciles, mean {($t_rec)/max(n,1)*1000:.1f} ms each; mean queue wait {($t_q)/max(nq,1)*1000:.1f} ms')"
}

echo "size,namespaces,serviceaccounts,converge_s,requests,writes,rss_kb,cpu_s,restart_writes,bare_s,ratio,sa_p50_ms,sa_p99_ms,bare_sa_p50_ms,bare_sa_p99_ms" >"$out/results.csv"
for size in $sizes; do
        n=${size%x*} m=${size#*x}
        label="bench-$n-$m"
        home="bench-home-$n-$m"
        echo "bench: $n namespaces x $m service accounts"
        {
                printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n' "$home"
                printf 'apiVersion: v1\nkind: Secret\nmetadata: {name: bench-creds, namespace: %s}\ntype: kubernetes.io/dockerconfigjson\nstringData: {.dockerconfigjson: %s}\n---\n' \
                        "$home" "'{\"auths\":{\"registry.bench.example.com\":{\"auth\":\"YmVuY2g6YmVuY2g=\"}}}'"
                # the policy's namespaces, and their twins for the bare client
                for l in "$label" "bare-$n-$m"; do
                        for i in $(seq 1 "$n"); do
                                printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: %s-%d, labels: {bench: "%s"}}\n---\n' "$l" "$i" "$l"
                                for j in $(seq 2 "$m"); do
                                        printf 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa-%d, namespace: %s-%d}\n---\n' "$j" "$l" "$i"
                                done
                        done
                done
        } >"$out/objects-$size.yaml"
        k apply -f "$out/objects-$size.yaml" >/dev/null
        # Let OpenShift's simulated controller provision every SA first: we time the operator only.
        total=$((n * m))
        for _ in $(seq 600); do
                have=$(k get sa -A -l '!nonexistent' -o json 2>/dev/null | python3 -c "
import json,sys
d=json.load(sys.stdin)
print(sum(1 for s in d['items'] if s['metadata']['namespace'].startswith(('$label-', 'bare-$n-$m-')) and any('-dockercfg-' in x['name'] for x in s.get('imagePullSecrets',[]))))")
                [ "$have" -ge $((2 * total)) ] && break
                sleep 0.5
        done
        # The baseline first, while no controller runs: the same writes, as fast as the server allows.
        read -r bare bare_failed < <(bash hack/bench-bare.sh "$dir" "$home" "bare-$n-$m" "$n" "$m" | paste -sd' ')
        [ "$bare_failed" = 0 ] || echo "bench: the bare client had $bare_failed failed writes" >&2
        : >"$out/controller.log"
        start_controller
        sleep 1 # the policies of earlier sizes are re-checked on start (no writes: R10)
        w0=$(writes)
        r0=$(requests)
        t0=$(date +%s.%N)
        cat <<YAML | k apply -f - >/dev/null
apiVersion: pullpolicy.io/v1alpha1
kind: PullPolicy
metadata: {name: bench, namespace: $home}
spec:
  subjects: {namespaceSelector: {matchLabels: {bench: "$label"}}}
  imagePuller: {}
  pullSecrets: [{name: bench-creds}]
  dockercfg: {wait: Never}
  globalPullSecret: {merge: false}
YAML
        # The home is on --distribution-namespaces: the secret is copied into each
        # namespace (R5) and linked there (R3); RoleBindings in the home (R2).
        deadline=$(($(date +%s) + ${BENCH_TIMEOUT_S:-1200}))
        while [ "$(date +%s)" -lt "$deadline" ]; do
                st=$(k -n "$home" get ppol bench -o jsonpath='{.status.conditions[?(@.type=="Ready")].reason}/{.status.linkedServiceAccounts}' 2>/dev/null || true)
                [ "$st" = "Applied/$total" ] && break
                sleep 0.1
        done
        [ "$st" = "Applied/$total" ] || echo "bench: NOT converged within ${BENCH_TIMEOUT_S:-1200} s (converge_s is the wait)" >&2
        t1=$(date +%s.%N)
        w1=$(writes)
        r1=$(requests)
        rss=$(awk '/VmHWM/ {print $2}' "/proc/$ctrl/status")
        cpu=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$ctrl/stat")
        kill "$ctrl"; wait "$ctrl" 2>/dev/null || true
        start_controller
        sleep 3
        w2=$(writes)
        # the floor: the same accounts linked by a bare client in a twin namespace (no controller there)
        read -r bare_p50 bare_p99 _ < <(python3 hack/bench-sa-latency.py "$dir" "bare-$n-$m-1" bench-creds "${BENCH_SA_SAMPLES:-100}" --bare)
        echo "bench: bare client: new SA -> linked p50 $bare_p50 ms, p99 $bare_p99 ms"
        sa_added=0
        # on the converged policy, after the restart check (the simulation's own writes for the new
        # accounts would count there)
        sa_latency build
        read -r p50 p99 <<<"$lat"
        kill "$ctrl"; wait "$ctrl" 2>/dev/null || true
        ctrl=
        if [ -n "${BENCH_SA_COMPARE:-}" ]; then
                start_controller "$BENCH_SA_COMPARE"
                sleep 3
                sa_latency compare
                echo "bench: BENCH_SA_COMPARE ($BENCH_SA_COMPARE): new SA -> linked p50 ${lat% *} ms, p99 ${lat#* } ms (build: p50 $p50 ms, p99 $p99 ms)"
                kill "$ctrl"; wait "$ctrl" 2>/dev/null || true
                ctrl=
        fi
        conv=$(python3 -c "print(f'{$t1 - $t0:.3f}')")
        ratio=$(python3 -c "print(f'{$conv / $bare:.1f}')")
        echo "$size,$n,$total,$conv,$((r1 - r0)),$((w1 - w0)),$rss,$cpu,$((w2 - w1)),$bare,$ratio,$p50,$p99,$bare_p50,$bare_p99" | tee -a "$out/results.csv"
        echo "bench: converge ${conv}s = ${ratio}x the bare client (${bare}s); new SA -> linked p50 ${p50} ms, p99 ${p99} ms"
        echo "bench: final status $st"
done

if command -v gnuplot >/dev/null; then
        gnuplot <<GP
set datafile separator ","
set terminal png size 900,500
set output "$out/results.png"
set title "pullpolicy: convergence by number of service accounts"
set xlabel "service accounts"
set ylabel "seconds"
set y2label "writes"
set y2tics
plot "$out/results.csv" using 3:4 skip 1 with linespoints title "converge_s", \
     "$out/results.csv" using 3:6 skip 1 axes x1y2 with linespoints title "writes"
GP
        echo "bench: plot in $out/results.png"
fi
echo "bench: results in $out/results.csv"
