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
. "$(dirname "$0")/bench-lib.sh"
bench_init secrets
sizes=${BENCH_K:-"0 5000 15000"}
bench_cluster "$dir"

bench_sample_policy "$nns"

measure() { # name path k
        bench_measure_beside "$1" "$2" "$3" secrets 'secrets' "$out/secrets-controller.log"
}

echo "binary,k,ready_s,rss_kb,hwm_kb,cached_secrets,secret_bytes,rss_ratio,hwm_ratio" >"$out/secrets.csv"
declare -A base_rss base_hwm
for kk in $sizes; do
        bench_add_secrets "$kk" "$nns"
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
