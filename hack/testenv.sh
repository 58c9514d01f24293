#!/usr/bin/env bash
# A real, local Kubernetes control plane for tests: etcd, kube-apiserver and
# kube-controller-manager on 127.0.0.1, on free ports, with a private CA.
#
# Usage: hack/testenv.sh COMMAND DIR
#   start              start everything (a no-op if it already runs) and wait until the
#                      apiserver is ready and the controller-manager has made the `default`
#                      ServiceAccount in namespace `default`
#   stop               stop everything (TERM, then KILL after a grace period); keeps DIR/logs
#   status             exit 0 iff every component runs and is healthy
#   stop-apiserver     stop the apiserver alone
#   start-apiserver    start the apiserver alone (same port, same flags) and wait for /readyz
#   restart-apiserver  both of the above
#   start-etcd         start etcd alone (same port, same data) after it was killed; waits for /health
#   env                print `export KUBECONFIG=DIR/kubeconfig` (and TESTENV_DIR, PATH)
#
# What DIR holds once started:
#   kubeconfig        admin (O=system:masters) with the CA, certificate and key inline
#   kubeconfig-files  the same credentials as file paths (pki/ca.crt, pki/admin.{crt,key})
#   bindir            the directory of etcd, kube-apiserver, kube-controller-manager, kubectl
#   ports             ETCD_PORT, ETCD_PEER_PORT, APISERVER_PORT, KCM_PORT (shell syntax)
#   server            https://127.0.0.1:<APISERVER_PORT>
#   pki/              ca, apiserver serving cert, admin and controller-manager client certs,
#                     service-account signing pair sa.{key,pub}. admin.key is RSA in PKCS#1
#                     ("RSA PRIVATE KEY", as kubeadm and kind write them); the others are
#                     P-256 EC keys in PKCS#8 ("PRIVATE KEY"), quicker to generate
#   *.pid, logs/      one per component; logs survive `stop` (the previous run's are moved
#                     to logs.prev/ by the next fresh `start`)
#
# Environment: PULLPOLICY_BINDIR uses binaries from that directory instead of
# hack/build-control-plane.sh; TESTENV_TIMEOUT (seconds, default 180) bounds the waits;
# TESTENV_APISERVER_FLAGS (default none) adds flags to the apiserver started by start,
# start-apiserver and restart-apiserver (e.g. --feature-gates=WatchList=false);
# TESTENV_APISERVER_ONLY_FLAGS adds flags to the apiserver alone (not the controller-manager).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
components=(etcd kube-apiserver kube-controller-manager)
timeout=${TESTENV_TIMEOUT:-180}
# Seconds between TERM and KILL.
grace_for() { [[ $1 == kube-apiserver ]] && echo 10 || echo 15; }

log() { echo "testenv: $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}
usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
    exit 2
}

(($# == 2)) || usage
cmd=$1
if [[ $cmd == start ]]; then
    mkdir -p "$2"
elif [[ ! -d $2 ]]; then
    die "$2: no such directory (run: $0 start $2)"
fi
dir=$(cd "$2" && pwd -P)
pki="$dir/pki"
logs="$dir/logs"

# --- processes -------------------------------------------------------------------------------

# PID of component $1 if it runs the expected binary (a recycled PID does not count).
running_pid() {
    local pidfile="$dir/$1.pid" pid exe
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
    [[ ${exe##*/} == "$1" ]] || return 1
    echo "$pid"
}

is_running() { running_pid "$1" >/dev/null; }

# Starts component $1 with arguments $2...; output goes to logs/$1.log.
spawn() {
    local name=$1 pid
    shift
    mkdir -p "$logs"
    echo "=== $(date -u +%FT%TZ) $name $*" >>"$logs/$name.log"
    # setsid: the control plane outlives the shell that started it and a Ctrl-C in it. In a
    # script (no job control) the background child is no group leader, so setsid does not
    # fork and $! is the component's PID.
    setsid "$bindir/$name" "$@" </dev/null >>"$logs/$name.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$dir/$name.pid"
}

terminate() {
    local name=$1 pid i grace
    grace=$(grace_for "$name")
    pid=$(running_pid "$name") || {
        rm -f "$dir/$name.pid"
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do
        is_running "$name" || break
        sleep 0.1
    done
    if is_running "$name"; then
        log "$name (pid $pid) did not stop within ${grace}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            is_running "$name" || break
            sleep 0.1
        done
    fi
    # A process that is gone but whose zombie lingers (it is not our child) still has
    # /proc/PID/exe unreadable, so is_running is false here.
    rm -f "$dir/$name.pid"
}

# --- state -----------------------------------------------------------------------------------

load_state() {
    [[ -s $dir/ports && -s $dir/bindir ]] || die "$dir holds no test environment (run start)"
    # shellcheck disable=SC1091
    source "$dir/ports"
    bindir=$(<"$dir/bindir")
}

pick_ports() {
    # Bind all four at once so they differ; the kernel hands out free ephemeral ports.
    local py=python3
    # Debian's interpreter starts quicker than a version-manager shim would.
    [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
    "$py" - <<'EOF'
import socket
socks = []
for name in ("ETCD_PORT", "ETCD_PEER_PORT", "APISERVER_PORT", "KCM_PORT"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
    print(f"{name}={s.getsockname()[1]}")
for s in socks:
    s.close()
EOF
}

etcd_datadir() {
    # tmpfs keeps etcd's writes off the disk; the name is derived from DIR so two test
    # environments never share it.
    local id
    id=$(printf '%s' "$dir" | sha256sum | cut -c1-16)
    if [[ -d /dev/shm && -w /dev/shm ]]; then
        echo "/dev/shm/pullpolicy-testenv-$id"
    else
        echo "$dir/etcd-data"
    fi
}

# Data directories in /dev/shm of environments that were never stopped hold ~120 MB of RAM
# each (etcd preallocates its WAL). Removes those that no running etcd uses and that are
# older than a few minutes (so a start in progress elsewhere keeps its own).
gc_stale_datadirs() {
    local p d live=" "
    for p in $(pgrep -x etcd || true); do
        live+="$(tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | sed -n 's/^--data-dir=//p') "
    done
    for d in /dev/shm/pullpolicy-testenv-*; do
        [[ -d $d && $live != *" $d "* ]] || continue
        [[ -n $(find "$d" -maxdepth 0 -mmin +10 2>/dev/null) ]] || continue
        rm -rf "$d"
    done
}

# --- certificates ----------------------------------------------------------------------------

gen_key() { # name
    if [[ $1 == admin ]]; then
        openssl genrsa -traditional -out "$pki/$1.key" 2048 2>/dev/null
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -out "$pki/$1.key" 2>/dev/null
    fi
}

gen_cert() { # name subject extensions
    local name=$1 subj=$2 ext=$3
    gen_key "$name"
    printf '%s\n' "$ext" >"$pki/$name.ext"
    openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days 3650 -sha256 \
        -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
    rm -f "$pki/$name.csr" "$pki/$name.ext"
}

gen_pki() {
    rm -rf "$pki"
    mkdir -p "$pki"
    chmod 700 "$pki"
    cat >"$pki/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = pullpolicy-testenv-ca
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
EOF
    gen_key ca
    openssl req -x509 -new -key "$pki/ca.key" -config "$pki/ca.cnf" -extensions v3_ca \
        -days 3650 -sha256 -out "$pki/ca.crt" 2>/dev/null
    rm -f "$pki/ca.cnf"

    local client="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth"
    gen_cert apiserver "/CN=kube-apiserver" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
    gen_cert admin "/O=system:masters/CN=pullpolicy-testenv-admin" "$client"
    gen_cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"

    gen_key sa
    openssl pkey -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    chmod 600 "$pki"/*.key
}

b64() { base64 -w0 <"$1"; }

# Writes kubeconfig $1 for user $2: inline data when $3 = inline, file paths otherwise.
write_kubeconfig() {
    local out=$1 user=$2 form=$3 tmp
    tmp=$(mktemp "$out.XXXXXX")
    {
        echo "apiVersion: v1"
        echo "kind: Config"
        echo "clusters:"
        echo "- name: testenv"
        echo "  cluster:"
        echo "    server: https://127.0.0.1:$APISERVER_PORT"
        if [[ $form == inline ]]; then
            echo "    certificate-authority-data: $(b64 "$pki/ca.crt")"
        else
            echo "    certificate-authority: $pki/ca.crt"
        fi
        echo "users:"
        echo "- name: $user"
        echo "  user:"
        if [[ $form == inline ]]; then
            echo "    client-certificate-data: $(b64 "$pki/$user.crt")"
            echo "    client-key-data: $(b64 "$pki/$user.key")"
        else
            echo "    client-certificate: $pki/$user.crt"
            echo "    client-key: $pki/$user.key"
        fi
        echo "contexts:"
        echo "- name: testenv"
        echo "  context:"
        echo "    cluster: testenv"
        echo "    user: $user"
        echo "    namespace: default"
        echo "current-context: testenv"
    } >"$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$out"
}

# --- components ------------------------------------------------------------------------------

start_etcd() {
    local data
    data=$(etcd_datadir)
    mkdir -p "$data"
    chmod 700 "$data"
    local args=(
        --name=testenv
        --data-dir="$data"
        --listen-client-urls="http://127.0.0.1:$ETCD_PORT"
        --advertise-client-urls="http://127.0.0.1:$ETCD_PORT"
        --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT"
        --initial-cluster="testenv=http://127.0.0.1:$ETCD_PEER_PORT"
        --log-level=warn
    )
    # Tests never need durability; fsync dominates etcd's write latency.
    # (No `| grep -q`: with pipefail, etcd's SIGPIPE would read as "no such flag".)
    local help
    help=$("$bindir/etcd" --help 2>&1 || true)
    [[ $help == *--unsafe-no-fsync* ]] && args+=(--unsafe-no-fsync)
    spawn etcd "${args[@]}"
}

# --endpoint-reconciler-type=none: the `kubernetes` Endpoints may not hold a loopback address.
# --shutdown-send-retry-after: otherwise a TERM waits up to --request-timeout (60 s) for the
#   connections of open watches to go idle; with it, requests arriving during the short drain
#   get 429 + Retry-After and the server is gone within about 2 s.
start_apiserver_proc() {
    spawn kube-apiserver \
        --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
        --bind-address=127.0.0.1 \
        --advertise-address=127.0.0.1 \
        --secure-port="$APISERVER_PORT" \
        --tls-cert-file="$pki/apiserver.crt" \
        --tls-private-key-file="$pki/apiserver.key" \
        --client-ca-file="$pki/ca.crt" \
        --authorization-mode=RBAC \
        --service-account-issuer=https://kubernetes.default.svc \
        --service-account-key-file="$pki/sa.pub" \
        --service-account-signing-key-file="$pki/sa.key" \
        --api-audiences=https://kubernetes.default.svc \
        --service-cluster-ip-range=10.0.0.0/24 \
        --endpoint-reconciler-type=none \
        --shutdown-send-retry-after=true \
        --enable-admission-plugins=NamespaceLifecycle,ServiceAccount \
        --profiling=false \
        --v=1 \
        ${TESTENV_APISERVER_FLAGS:-} ${TESTENV_APISERVER_ONLY_FLAGS:-}
}

start_kcm() {
    spawn kube-controller-manager \
        --kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --authentication-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --authorization-kubeconfig="$dir/kube-controller-manager.kubeconfig" \
        --client-ca-file="$pki/ca.crt" \
        --authentication-skip-lookup \
        --bind-address=127.0.0.1 \
        --secure-port="$KCM_PORT" \
        --cert-dir="$dir/kcm-certs" \
        --use-service-account-credentials \
        --service-account-private-key-file="$pki/sa.key" \
        --root-ca-file="$pki/ca.crt" \
        --leader-elect=false \
        --controllers='*' \
        --profiling=false \
        --v=1 \
        ${TESTENV_APISERVER_FLAGS:-}
}

# --- readiness -------------------------------------------------------------------------------

# GET $1 on the apiserver as admin; prints the body, fails on a non-2xx answer.
api_get() {
    curl -sf --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" \
        --key "$pki/admin.key" "https://127.0.0.1:$APISERVER_PORT$1"
}

# wait_for DEADLINE LOG WHAT CHECK...: polls CHECK every 0.1 s until it succeeds.
wait_for() {
    local deadline=$1 logname=$2 what=$3
    shift 3
    while ! "$@" >/dev/null 2>&1; do
        local c
        for c in "${components[@]}"; do
            if [[ -s $dir/$c.pid ]] && ! is_running "$c"; then
                log "$c exited while waiting for $what; last lines of $logs/$c.log:"
                tail -n 30 "$logs/$c.log" >&2 || true
                exit 1
            fi
        done
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for $what; last lines of $logs/$logname.log:"
            tail -n 30 "$logs/$logname.log" >&2 || true
            exit 1
        fi
        sleep 0.1
    done
}

etcd_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"true"'; }
apiserver_ready() { [[ $(api_get /readyz) == ok ]]; }
default_sa_exists() { api_get /api/v1/namespaces/default/serviceaccounts/default; }
kcm_healthy() {
    [[ $(curl -sf --max-time 2 -k "https://127.0.0.1:$KCM_PORT/healthz") == ok ]]
}

# --- commands --------------------------------------------------------------------------------

fresh_setup() {
    local c
    for c in "${components[@]}"; do terminate "$c"; done
    rm -rf "$(etcd_datadir)" "$dir/etcd-data" "$dir/kcm-certs" "$pki" "$dir/logs.prev"
    gc_stale_datadirs
    [[ -d $logs ]] && mv "$logs" "$dir/logs.prev"
    rm -f "$dir/ports" "$dir/server" "$dir/kubeconfig" "$dir/kubeconfig-files" \
        "$dir/kube-controller-manager.kubeconfig"

    if [[ -n ${PULLPOLICY_BINDIR:-} ]]; then
        bindir=$(cd "$PULLPOLICY_BINDIR" && pwd -P)
    else
        bindir=$("$root/hack/build-control-plane.sh" --print-bindir)
    fi
    for c in etcd kube-apiserver kube-controller-manager kubectl; do
        [[ -x $bindir/$c ]] || die "no $c in $bindir"
    done
    echo "$bindir" >"$dir/bindir"

    pick_ports >"$dir/ports.tmp"
    mv "$dir/ports.tmp" "$dir/ports"
    # shellcheck disable=SC1091
    source "$dir/ports"
    echo "https://127.0.0.1:$APISERVER_PORT" >"$dir/server"
}

# Needs no etcd: runs while etcd starts.
write_credentials() {
    gen_pki
    write_kubeconfig "$dir/kubeconfig" admin inline
    write_kubeconfig "$dir/kubeconfig-files" admin files
    write_kubeconfig "$dir/kube-controller-manager.kubeconfig" kube-controller-manager files
}

# Seconds since $1 (an ${EPOCHREALTIME} value), one decimal.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

cmd_start() {
    local t0=$EPOCHREALTIME t started=0 fresh=0 stages=""
    if [[ -s $dir/ports && -s $dir/bindir && -s $dir/kube-controller-manager.kubeconfig ]] &&
        is_running etcd; then
        load_state
    else
        fresh_setup
        fresh=1
    fi
    local deadline=$((SECONDS + timeout))
    t=$EPOCHREALTIME
    if ! is_running etcd; then
        start_etcd
        started=1
    fi
    ((fresh)) && write_credentials
    wait_for "$deadline" etcd "etcd /health" etcd_healthy
    stages+="certificates+etcd $(since "$t")s"
    t=$EPOCHREALTIME
    if ! is_running kube-apiserver; then
        start_apiserver_proc
        started=1
    fi
    wait_for "$deadline" kube-apiserver "kube-apiserver /readyz" apiserver_ready
    stages+=", kube-apiserver $(since "$t")s"
    t=$EPOCHREALTIME
    if ! is_running kube-controller-manager; then
        start_kcm
        started=1
    fi
    wait_for "$deadline" kube-controller-manager "the default ServiceAccount in namespace default" \
        default_sa_exists
    stages+=", kube-controller-manager $(since "$t")s"
    if ((started)); then
        log "control plane ready in $(since "$t0")s ($stages):" \
            "apiserver https://127.0.0.1:$APISERVER_PORT, KUBECONFIG=$dir/kubeconfig"
    else
        log "already running: apiserver https://127.0.0.1:$APISERVER_PORT," \
            "KUBECONFIG=$dir/kubeconfig"
    fi
}

cmd_stop() {
    local c
    for c in kube-controller-manager kube-apiserver etcd; do terminate "$c"; done
    if [[ -s $dir/ports ]]; then
        rm -rf "$(etcd_datadir)"
    fi
    log "stopped (logs in $logs)"
}

cmd_status() {
    load_state
    local ok=0 c
    for c in "${components[@]}"; do
        if is_running "$c"; then
            echo "$c: running (pid $(running_pid "$c"))"
        else
            echo "$c: not running"
            ok=1
        fi
    done
    if etcd_healthy; then echo "etcd /health: ok"; else
        echo "etcd /health: failing"
        ok=1
    fi
    if apiserver_ready; then echo "kube-apiserver /readyz: ok"; else
        echo "kube-apiserver /readyz: failing"
        ok=1
    fi
    if kcm_healthy; then echo "kube-controller-manager /healthz: ok"; else
        echo "kube-controller-manager /healthz: failing"
        ok=1
    fi
    return $ok
}

cmd_stop_apiserver() {
    load_state
    terminate kube-apiserver
    log "kube-apiserver stopped"
}

cmd_start_apiserver() {
    load_state
    is_running etcd || die "etcd is not running (use start)"
    if is_running kube-apiserver; then
        log "kube-apiserver already running on port $APISERVER_PORT"
        return 0
    fi
    local t0=$SECONDS
    start_apiserver_proc
    wait_for $((SECONDS + timeout)) kube-apiserver "kube-apiserver /readyz" apiserver_ready
    log "kube-apiserver ready on port $APISERVER_PORT in $((SECONDS - t0))s"
}

cmd_start_etcd() {
    load_state
    if is_running etcd; then
        log "etcd already running on port $ETCD_PORT"
        return 0
    fi
    start_etcd
    wait_for $((SECONDS + timeout)) etcd "etcd /health" etcd_healthy
    log "etcd ready on port $ETCD_PORT"
}

# One command at a time per DIR: a start racing a stop would leave orphans.
exec 9>"$dir/.lock"
flock 9

case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
stop-apiserver) cmd_stop_apiserver ;;
start-apiserver) cmd_start_apiserver ;;
start-etcd) cmd_start_etcd ;;
restart-apiserver)
    cmd_stop_apiserver
    cmd_start_apiserver
    ;;
env)
    load_state
    printf 'export KUBECONFIG=%q\n' "$dir/kubeconfig"
    printf 'export TESTENV_DIR=%q\n' "$dir"
    printf 'export PATH=%q:"$PATH"\n' "$bindir"
    ;;
*) usage ;;
esac
