#!/usr/bin/env bash
# make stop: ends what make run started; keeps logs in the run directory.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
RUN_DIR=${RUN_DIR:-$root/.run}
if [ -f "$RUN_DIR/controller.pid" ]; then
        pid=$(cat "$RUN_DIR/controller.pid")
        if kill -0 "$pid" 2>/dev/null; then
                kill -TERM "$pid"
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$RUN_DIR/controller.pid"
        echo "controller stopped"
fi
[ -d "$RUN_DIR/registry" ] && bash "$root/hack/test-registry.sh" stop "$RUN_DIR/registry" && echo "registry stopped"
[ -x "$root/hack/openshift-sim.sh" ] || [ -f "$root/hack/openshift-sim.sh" ] && bash "$root/hack/openshift-sim.sh" stop "$RUN_DIR" || true
bash "$root/hack/testenv.sh" stop "$RUN_DIR"
echo "logs kept in $RUN_DIR/logs"
