#!/usr/bin/env bash
# A throw-away container registry for tests: Debian's docker-registry (the distribution
# registry 2.8) on 127.0.0.1, TLS with a CA and certificate made here, htpasswd (bcrypt)
# authentication. Everything lives in DIR (under an ignored folder; never committed):
#
#   test-registry.sh start DIR   makes DIR/{ca.pem,cert.pem,key.pem,htpasswd,config.yml},
#                                DIR/user, DIR/password (random), picks a free port (DIR/port),
#                                starts the registry (DIR/pid, DIR/registry.log) and waits until
#                                /v2/ answers 401
#   test-registry.sh stop DIR    stops it (the files stay; start again reuses them)
#   test-registry.sh oci-layout OUT   writes a one-layer OCI image layout (tag "latest") to OUT:
#                                a file in a tar layer, its config, manifest and index, with
#                                the digests computed here (no image tool needed)
#
# DIR/certs.d/127.0.0.1:PORT/ca.crt is there for skopeo's --cert-dir.
set -euo pipefail

cmd=${1:?start|stop}
dir=${2:?DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

die() { echo "test-registry.sh: $*" >&2; exit 1; }

stop() {
        [ -f "$dir/pid" ] || return 0
        local pid
        pid=$(cat "$dir/pid")
        if kill "$pid" 2>/dev/null; then
                for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
                kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$dir/pid"
}

# bcrypt: what the registry's htpasswd reader accepts ($2a$/$2b$/$2y$); Python's crypt
# module makes it without apache2-utils (htpasswd -B and mkpasswd are tried too).
bcrypt() {
        local pw=$1
        if python3 -W ignore -c 'import crypt' 2>/dev/null; then
                python3 -W ignore -c 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))' "$pw"
        elif command -v htpasswd >/dev/null; then
                htpasswd -nbB x "$pw" | cut -d: -f2
        elif command -v mkpasswd >/dev/null; then
                mkpasswd -m bcrypt "$pw"
        else
                die "no bcrypt tool (python3 crypt, htpasswd, mkpasswd)"
        fi
}

start() {
        command -v docker-registry >/dev/null || die "docker-registry not installed (hack/install-deps.sh)"
        stop
        if [ ! -f "$dir/ca.pem" ]; then
                openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pullpolicy test CA" \
                        -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
                openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
                        -keyout "$dir/key.pem" -out "$dir/cert.csr" 2>/dev/null
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$dir/ext.cnf"
                openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
                        -CAcreateserial -days 2 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null
                echo puller >"$dir/user"
                head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password"
                printf '%s:%s\n' "$(cat "$dir/user")" "$(bcrypt "$(cat "$dir/password")")" >"$dir/htpasswd"
                chmod 600 "$dir"/*.pem "$dir/password" "$dir/htpasswd"
        fi
        local port
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        echo "$port" >"$dir/port"
        mkdir -p "$dir/storage" "$dir/certs.d/127.0.0.1:$port"
        cp "$dir/ca.pem" "$dir/certs.d/127.0.0.1:$port/ca.crt"
        cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  tls:
    certificate: $dir/cert.pem
    key: $dir/key.pem
auth:
  htpasswd:
    realm: pullpolicy-test
    path: $dir/htpasswd
YAML
        setsid docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
        echo $! >"$dir/pid"
        for _ in $(seq 100); do
                code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/ca.pem" \
                        "https://127.0.0.1:$port/v2/" || true)
                [ "$code" = 401 ] && return 0
                kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "registry exited: $(tail -5 "$dir/registry.log")"
                sleep 0.1
        done
        die "registry did not answer on 127.0.0.1:$port: $(tail -5 "$dir/registry.log")"
}

blob() { # FILE -> moves it to blobs/sha256/<digest>, prints "digest size"
        local d s
        d=$(sha256sum "$1" | cut -d' ' -f1)
        s=$(stat -c %s "$1")
        mv "$1" "$out/blobs/sha256/$d"
        echo "$d $s"
}

oci_layout() {
        out=$dir
        rm -rf "$out"
        mkdir -p "$out/blobs/sha256" "$out/rootfs"
        echo "hello from the pullpolicy credential test" >"$out/rootfs/hello.txt"
        tar -C "$out/rootfs" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out/layer.tar" hello.txt
        local diff_id layer config manifest
        diff_id=$(sha256sum "$out/layer.tar" | cut -d' ' -f1)
        gzip -n "$out/layer.tar"
        read -r layer layer_size < <(blob "$out/layer.tar.gz")
        printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
                "$diff_id" >"$out/config.json"
        read -r config config_size < <(blob "$out/config.json")
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' \
                "$config" "$config_size" "$layer" "$layer_size" >"$out/manifest.json"
        read -r manifest manifest_size < <(blob "$out/manifest.json")
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
                "$manifest" "$manifest_size" >"$out/index.json"
        echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
        rm -rf "$out/rootfs"
        echo "sha256:$manifest" >"$out/digest"
}

case $cmd in
start) start ;;
oci-layout) oci_layout ;;
stop) stop ;;
*) die "unknown command $cmd" ;;
esac
