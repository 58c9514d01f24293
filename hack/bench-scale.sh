#!/usr/bin/env bash
# make bench-scale: the controller's memory and start-up as the cluster grows (issue 9).
#
# N namespaces with 4 service accounts each (default, made by kube-controller-manager,
# plus builder, deployer, app) and K unrelated Opaque secrets of 10 KB in 10 namespaces
# without policies, plus one policy in its own home. Objects only ever get added, so the
# runs go (N, K) = (0, 0), then (n, 0) for each n of BENCH_N, then (max N, k) for each k of
# BENCH_K: the first row is the empty process's reference of the same run. For each row and
# each binary the controller is started on that cluster and measured:
#   ready_s       from its start to /readyz
#   api_requests  requests it made until /readyz (pullpolicy_api_requests_total)
#   rss_kb        VmRSS BENCH_SETTLE_S (20) seconds after /readyz ("steady")
#   hwm_kb        VmHWM (peak) at the same moment
#   ns_B, sa_B    pullpolicy_cache_bytes over pullpolicy_cache_objects, per cached
#                 Namespace and per ServiceAccount
#   steady_B_obj  (rss_kb - rss_kb of row (0, 0)) over the Namespaces and ServiceAccounts
#                 cached beyond that row: what one object costs the process beyond the
#                 empty one; peak_B_obj the same with hwm_kb
#
#   BENCH_N="1000 5000"   BENCH_K="0 10000 30000"   (ascending; smaller for a quick run)
#   BENCH_BINS="new=build/pullpolicy-controller"    name=path pairs, e.g. old=/tmp/old/ctrl
# Results: $BUILD/bench/scale.csv, and a table on stdout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
dir=${BENCH_DIR:-$root/.bench-scale}
out="$root/$BUILD/bench"
mkdir -p "$out"
ns_sizes=${BENCH_N:-"1000 5000"}
k_sizes=${BENCH_K:-"0 10000 30000"}
bins=${BENCH_BINS:-"new=$BUILD/pullpolicy-controller"}
settle=${BENCH_SETTLE_S:-20}
nns=10

. hack/bench-lib.sh
bench_cluster "$dir"

bench_sample_policy "$nns"

gen_ns() {
        printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-scale-%05d, labels: {team: t%d}}\n---\n' "$1" $(($1 % 50))
        for sa in builder deployer app; do
                printf 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: bench-scale-%05d}\n---\n' "$sa" "$1"
        done
}
have_ns=0
add_namespaces() { # up to $1 bench namespaces, then waits for their default accounts
        [ "$have_ns" -lt "$1" ] || return 0
        bench_apply_chunks gen_ns "$have_ns" "$1"
        have_ns=$1
        local want=$((4 * have_ns)) got t=0
        while got=$(k get serviceaccounts -A --no-headers 2>/dev/null | awk '$1 ~ /^bench-scale-/' | wc -l)
                [ "$got" -lt "$want" ]; do
                t=$((t + 1))
                [ "$t" -lt 600 ] || { echo "bench: $got of $want service accounts after 10 min" >&2; exit 1; }
                sleep 1
        done
}
metric() { # NAME LABEL: the sum of that metric's series matching LABEL in $m
        awk -v n="$1" -v l="$2" 'index($1, n) == 1 && index($0, l) {s += $NF} END {printf "%.0f\n", s}' <<<"$m"
}
measure() { # name path n k
        local name=$1 bin=$2 n=$3 kk=$4 req rss hwm nsb nso sab sao
        bench_run_controller "$bin" "$out/scale-controller.log"
        m=$(bench_metrics)
        req=$(metric pullpolicy_api_requests_total '')
        sleep "$settle"
        m=$(bench_metrics)
        rss=$(bench_status VmRSS)
        hwm=$(bench_status VmHWM)
        bench_stop_controller
        nsb=$(metric pullpolicy_cache_bytes 'kind="namespace"')
        nso=$(metric pullpolicy_cache_objects 'source="namespaces"')
        sab=$(metric pullpolicy_cache_bytes 'kind="serviceaccount"')
        sao=$(metric pullpolicy_cache_objects 'source="serviceaccounts"')
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$name" "$n" "$kk" "$bench_ready_s" "$req" "$rss" "$hwm" \
                $((nsb / (nso ? nso : 1))) $((sab / (sao ? sao : 1))) "$nso" "$sao"
}

rows="0:0" n=0
for n in $ns_sizes; do rows="$rows $n:0"; done
maxn=$n
for kk in $k_sizes; do [ "$kk" -gt 0 ] && rows="$rows $maxn:$kk"; done

csv="$out/scale.csv"
echo "binary,n,k,ready_s,api_requests,rss_kb,hwm_kb,ns_B,sa_B,namespaces,serviceaccounts,steady_B_obj,peak_B_obj" >"$csv"
declare -A base_rss base_hwm base_objs
for row in $rows; do
        n=${row%%:*} kk=${row#*:}
        add_namespaces "$n"
        bench_add_secrets "$kk" "$nns"
        for pair in $bins; do
                name=${pair%%=*} bin=${pair#*=}
                line=$(measure "$name" "$bin" "$n" "$kk")
                IFS=, read -r _ _ _ _ _ rss hwm _ _ nso sao <<<"$line"
                if [ -z "${base_hwm[$name]:-}" ]; then
                        base_rss[$name]=$rss base_hwm[$name]=$hwm base_objs[$name]=$((nso + sao))
                fi
                objs=$((nso + sao - base_objs[$name]))
                if [ "$objs" -gt 0 ]; then
                        per="$(((rss - base_rss[$name]) * 1024 / objs)),$(((hwm - base_hwm[$name]) * 1024 / objs))"
                else
                        per="-,-"
                fi
                echo "$line,$per" | tee -a "$csv"
        done
done
echo
column -s, -t <"$csv"
echo "bench: results in $csv"
