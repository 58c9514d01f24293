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
#   api_requests  requests it made until /readyz (pullpolicy_api_requests_total), and
#   requests_by_verb  the same by HTTP verb (a list or watch is one GET: streamed lists are
#                 watches, still open at /readyz, counted once they end, so mostly not here)
#   rss_kb        VmRSS BENCH_SETTLE_S (20) seconds after /readyz ("steady")
#   hwm_kb        VmHWM (peak) at the same moment
#   ns_B, sa_B    pullpolicy_cache_bytes over pullpolicy_cache_objects, per cached
#                 Namespace and per ServiceAccount
#   storm_hwm_kb  on the last row: the peak RSS during a relist storm (bench_relist_storm: the
#                 API server restarted and etcd compacted past every resourceVersion, so that
#                 every reflector gets a 410 at once), from the storm until BENCH_SETTLE_S
#                 after its first relist; storm_rss_kb the RSS then; storm_relists how many
#                 reflectors relisted after a 410 (pullpolicy_cache_relists). BENCH_STORM=0: none
#   steady_B_obj  (rss_kb - rss_kb of row (0, 0)) over the Namespaces and ServiceAccounts
#                 cached beyond that row: what one object costs the process beyond the
#                 empty one; peak_B_obj the same with hwm_kb
#
#   BENCH_N="1000 5000"   BENCH_K="0 10000 30000"   (ascending; smaller for a quick run)
#   BENCH_BINS="new=build/pullpolicy-controller"    name=path pairs, e.g. old=/tmp/old/ctrl
#   BENCH_KEEP=1   keep the control plane (and its objects) for the next run; rows smaller
#                  than what a kept one holds are skipped (their B/obj columns then need the
#                  reference row of another run: "-")
# Results: $BUILD/bench/scale.csv, and a table on stdout.
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init scale
ns_sizes=${BENCH_N:-"1000 5000"}
k_sizes=${BENCH_K:-"0 10000 30000"}
storm=${BENCH_STORM:-1}
bench_cluster "$dir"

bench_sample_policy "$nns"

gen_ns() {
        printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-scale-%05d, labels: {team: t%d}}\n---\n' "$1" $(($1 % 50))
        for sa in builder deployer app; do
                printf 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: bench-scale-%05d}\n---\n' "$sa" "$1"
        done
}
add_namespaces() { # up to $1 bench namespaces, then waits for their default accounts
        local have_ns
        have_ns=$(bench_state namespaces)
        [ "$have_ns" -lt "$1" ] || return 0
        bench_apply_chunks gen_ns "$have_ns" "$1"
        have_ns=$1
        bench_state namespaces "$have_ns"
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
by_verb() { # the requests of $m by verb: "GET 12 POST 3"
        awk 'index($1, "pullpolicy_api_requests_total{") == 1 && match($1, /verb="[A-Z]+"/) {
                s[substr($1, RSTART + 6, RLENGTH - 7)] += $NF }
             END {for (v in s) printf "%s %d\n", v, s[v]}' <<<"$m" | sort | paste -sd' ' -
}
# storm: the relist storm on the running controller (bench_relist_storm); sets storm_hwm (peak
# RSS from the storm on, in kB), storm_rss and storm_relists (relists after a 410 it counted).
storm() {
        local before t=0 now
        m=$(bench_metrics)
        before=$(metric pullpolicy_cache_relists 'reason="gone"')
        bench_reset_peak
        bench_relist_storm >/dev/null
        # every standing reflector relists: wait for the first, then for the count to settle
        while m=$(bench_metrics) && now=$(metric pullpolicy_cache_relists 'reason="gone"') &&
                [ "$now" -le "$before" ] && [ "$t" -lt 120 ]; do
                sleep 1
                t=$((t + 1))
        done
        sleep "$settle"
        m=$(bench_metrics)
        storm_relists=$(($(metric pullpolicy_cache_relists 'reason="gone"') - before))
        storm_rss=$(bench_status VmRSS)
        storm_hwm=$(bench_status VmHWM)
}
measure() { # name path n k storm(0/1)
        local name=$1 bin=$2 n=$3 kk=$4 req verbs rss hwm nsb nso sab sao
        bench_run_controller "$bin" "$out/scale-controller.log"
        m=$(bench_metrics)
        req=$(metric pullpolicy_api_requests_total '')
        verbs=$(by_verb)
        sleep "$settle"
        m=$(bench_metrics)
        rss=$(bench_status VmRSS)
        hwm=$(bench_status VmHWM)
        nsb=$(metric pullpolicy_cache_bytes 'kind="namespace"')
        nso=$(metric pullpolicy_cache_objects 'source="namespaces"')
        sab=$(metric pullpolicy_cache_bytes 'kind="serviceaccount"')
        sao=$(metric pullpolicy_cache_objects 'source="serviceaccounts"')
        storm_hwm=- storm_rss=- storm_relists=-
        [ "$5" = 1 ] && storm
        bench_stop_controller
        printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$name" "$n" "$kk" "$bench_ready_s" "$req" "$verbs" \
                "$rss" "$hwm" $((nsb / (nso ? nso : 1))) $((sab / (sao ? sao : 1))) "$nso" "$sao" \
                "$storm_hwm" "$storm_rss" "$storm_relists"
}

rows="0:0" n=0
for n in $ns_sizes; do rows="$rows $n:0"; done
maxn=$n
for kk in $k_sizes; do [ "$kk" -gt 0 ] && rows="$rows $maxn:$kk"; done

csv="$out/scale.csv"
echo "binary,n,k,ready_s,api_requests,requests_by_verb,rss_kb,hwm_kb,ns_B,sa_B,namespaces,serviceaccounts,storm_hwm_kb,storm_rss_kb,storm_relists,steady_B_obj,peak_B_obj" >"$csv"
declare -A base_rss base_hwm base_objs
for row in $rows; do
        n=${row%%:*} kk=${row#*:}
        if [ "$(bench_state namespaces)" -gt "$n" ] || [ "$(bench_state secrets)" -gt "$kk" ]; then
                echo "bench: row N=$n K=$kk skipped: the kept control plane holds more (run the reference row on a fresh one)" >&2
                continue
        fi
        add_namespaces "$n"
        bench_add_secrets "$kk" "$nns"
        for pair in $bins; do
                name=${pair%%=*} bin=${pair#*=}
                last=0
                [ "$storm" = 1 ] && [ "$row" = "${rows##* }" ] && last=1
                line=$(measure "$name" "$bin" "$n" "$kk" "$last")
                IFS=, read -r _ _ _ _ _ _ rss hwm _ _ nso sao _ _ _ <<<"$line"
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
