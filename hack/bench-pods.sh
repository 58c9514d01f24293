#!/usr/bin/env bash
# make bench-pods: the controller's memory beside K running pods (issue 11: "10,000 running pods
# must not change RSS by more than 1 MB"). The controller watches Pending pods only (R13, field
# selector status.phase=Pending), so running pods should cost it nothing.
#
# K pods are created in namespaces that hold no policy (cumulative: each K adds to the previous)
# and set to phase Running through the pods/status subresource, as a kubelet would report them
# (the control plane has no kubelet and no scheduler: a pod is Pending until then), plus one
# policy with one pull secret in its home. For each K and each controller binary, the controller
# is started on that cluster and measured:
#   ready_s       from its start to /readyz
#   rss_kb        VmRSS BENCH_SETTLE_S (20) seconds after /readyz
#   hwm_kb        VmHWM (peak) at the same moment
#   cached_pods   pullpolicy_cache_objects{source="pods-pending"}
#   pod_bytes     bytes the API server sent for pod LISTs and watch events meanwhile
# rss_delta_kb and the ratios compare with the same binary's figures at K = 0, in the same run.
#
#   BENCH_K="0 10000"                           the sizes (ascending)
#   BENCH_BINS="new=build/pullpolicy-controller" name=path pairs
# Results: $BUILD/bench/pods.csv
set -euo pipefail
. "$(dirname "$0")/bench-lib.sh"
bench_init pods
sizes=${BENCH_K:-"0 10000"}
bench_cluster "$dir"

bench_sample_policy "$nns"
# admission needs each namespace's default service account, which kube-controller-manager makes
for i in $(seq 1 "$nns"); do
        for _ in $(seq 100); do k get sa default -n "bench-unrelated-$i" >/dev/null 2>&1 && break; sleep 0.2; done
done

bench_gen_pod() {
        printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: running-%d, namespace: bench-unrelated-%d, labels: {bench: running}}\nspec:\n  automountServiceAccountToken: false\n  containers: [{name: c, image: registry.bench.example.com/app:1}]\n---\n' \
                "$1" $(($1 % nns + 1))
}

# Phase Running with a running container, per namespace: one `kubectl replace
# --subresource=status` of the namespace's pods (each a PUT of pods/status) instead of a
# kubectl run per pod.
set_running() {
        local i f
        f=$(mktemp)
        for i in $(seq 1 "$nns"); do
                k get pods -n "bench-unrelated-$i" -l bench=running --field-selector=status.phase=Pending -o json |
                        python3 -c '
import json, sys
l = json.load(sys.stdin)
now = "2026-01-01T00:00:00Z"
for p in l["items"]:
    p["status"] = {"phase": "Running", "startTime": now,
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
        "containerStatuses": [{"name": "c", "image": p["spec"]["containers"][0]["image"],
            "imageID": "", "ready": True, "restartCount": 0, "started": True,
            "state": {"running": {"startedAt": now}}}]}
json.dump(l, sys.stdout)' >"$f"
                [ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$f")" = 0 ] ||
                        k replace --subresource=status -f "$f" >/dev/null
        done
        rm -f "$f"
}

add_pods() {
        local have
        have=$(bench_state pods)
        [ "$have" -lt "$1" ] || return 0
        bench_apply_chunks bench_gen_pod "$have" "$1"
        set_running
        bench_state pods "$1"
}

measure() { # name path k
        bench_measure_beside "$1" "$2" "$3" pods 'pods-pending"' "$out/pods-controller.log"
}

echo "binary,k,running_pods,ready_s,rss_kb,hwm_kb,cached_pods,pod_bytes,rss_delta_kb,rss_ratio,hwm_ratio" >"$out/pods.csv"
declare -A base_rss base_hwm
for kk in $sizes; do
        add_pods "$kk"
        running=$(k get pods -A -l bench=running --field-selector=status.phase=Running -o name | wc -l)
        for pair in $bins; do
                name=${pair%%=*} bin=${pair#*=}
                line=$(measure "$name" "$bin" "$kk")
                IFS=, read -r _ _ _ rss hwm _ _ <<<"$line"
                [ -z "${base_rss[$name]:-}" ] && base_rss[$name]=$rss base_hwm[$name]=$hwm
                IFS=, read -r n1 k1 rest <<<"$line"
                printf '%s,%s,%s,%s,%d,%.3f,%.3f\n' "$n1" "$k1" "$running" "$rest" $((rss - base_rss[$name])) \
                        "$(python3 -c "print($rss / ${base_rss[$name]})")" \
                        "$(python3 -c "print($hwm / ${base_hwm[$name]})")" | tee -a "$out/pods.csv"
        done
done
echo "bench: results in $out/pods.csv"
