#!/usr/bin/env python3
"""New service account -> linked latency, for make bench (hack/bench.sh).

  bench-sa-latency.py TESTENV_DIR NAMESPACE SECRET COUNT [--bare]

Watches the service accounts of NAMESPACE, then COUNT times, one after the other: creates a
service account and waits for the watch event that shows SECRET in its .imagePullSecrets.
Prints "p50_ms p99_ms max_ms". Timed from before the POST to the event's arrival, so the
figure includes the create itself (a few ms on loopback).

--bare: the reference for a namespace no controller links in: this script links each account
itself as soon as the watch shows it (one JSON patch appending SECRET), then times the same
event; the floor that the API server's round trips leave (create, watch, patch, watch).
"""
import http.client
import json
import ssl
import sys
import time
import urllib.parse


def conn(server, pki):
    ctx = ssl.create_default_context(cafile=pki + "/ca.crt")
    ctx.load_cert_chain(pki + "/admin.crt", pki + "/admin.key")
    u = urllib.parse.urlparse(server)
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)


def main():
    tdir, ns, secret, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    bare = "--bare" in sys.argv[5:]
    server = None
    with open(tdir + "/kubeconfig-files") as f:
        for line in f:
            if line.strip().startswith("server:"):
                server = line.split()[1]
                break
    pki = tdir + "/pki"
    w = conn(server, pki)
    w.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts")
    lst = json.loads(w.getresponse().read())
    rv = lst["metadata"]["resourceVersion"]
    w.request("GET", f"/api/v1/namespaces/{ns}/serviceaccounts?watch=1&resourceVersion={rv}")
    stream = w.getresponse()
    c = conn(server, pki)
    samples = []
    stamp = int(time.time())
    for i in range(count):
        name = f"lat-{stamp}-{i}"
        body = json.dumps({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}})
        t0 = time.monotonic()
        c.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", body,
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            sys.exit(f"bench-sa-latency: create {name}: HTTP {r.status}")
        while True:
            line = stream.readline()
            if not line:
                sys.exit("bench-sa-latency: the watch ended")
            ev = json.loads(line)
            o = ev.get("object", {})
            if o.get("metadata", {}).get("name") != name:
                continue
            if bare and ev.get("type") == "ADDED":
                patch = json.dumps([{"op": "add", "path": "/imagePullSecrets",
                                     "value": (o.get("imagePullSecrets") or []) + [{"name": secret}]}])
                c.request("PATCH", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}", patch,
                          {"Content-Type": "application/json-patch+json"})
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    sys.exit(f"bench-sa-latency: patch {name}: HTTP {r.status}")
            if any(x.get("name") == secret for x in o.get("imagePullSecrets") or []):
                samples.append((time.monotonic() - t0) * 1000)
                break
    samples.sort()
    pick = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    print(f"{pick(0.50):.1f} {pick(0.99):.1f} {samples[-1]:.1f}")


main()
