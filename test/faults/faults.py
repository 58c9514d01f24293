#!/usr/bin/env python3
# The fault scenarios of issue 10, on a control plane that test/faults/run.sh has
# started (hack/testenv.sh in DIR, the OpenShift simulation, the CRD). Starts the
# controller behind test/faults/proxy.py, then for each fault: makes changes while
# the fault lasts, ends it, and measures until the cluster is exactly what the
# policies declare (check_state()). One line per fault; exit 1 when any fault
# failed (not converged, a duplicate or lost entry, a concurrent writer's entry
# lost, the controller gone, or a failed-request rate beyond FAILED_RPS_MAX).
#
# Usage: faults.py --dir DIR --mode short|full [--only N,N...]
import argparse
import base64
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOME = "fault-src"  # the policies' home, on the controller's distribution list
SYSNS = "fault-system"  # the controller's own namespace (Lease, identity)
CTRL_SA = "pullpolicy-controller"
FAILED_RPS_MAX = 50  # failed requests a second: more is a reconnect loop without backoff
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def log(*a):
    print("faults: " + " ".join(str(x) for x in a), file=sys.stderr, flush=True)


# ---- API client (admin, straight to the API server) --------------------------------------


class Api:
    def __init__(self, d):
        self.d = d
        ports = dict(
            line.strip().split("=", 1) for line in open(os.path.join(d, "ports")) if "=" in line
        )
        self.port = int(ports["APISERVER_PORT"])
        self.etcd_port = int(ports["ETCD_PORT"])
        ctx = ssl.create_default_context(cafile=os.path.join(d, "pki/ca.crt"))
        ctx.load_cert_chain(os.path.join(d, "pki/admin.crt"), os.path.join(d, "pki/admin.key"))
        self.ctx = ctx
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "c", None)
        if c is None:
            c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
            self.local.c = c
        return c

    def req(self, method, path, body=None, ctype="application/json"):
        """(status, parsed body or None); status 0 on a transport error."""
        hdrs = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = ctype
        try:
            c = self.conn()
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException):
            try:
                self.local.c.close()
            except Exception:
                pass
            self.local.c = None
            return 0, None
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None

    def raw(self, path):
        """The body of a GET as text ("" on any failure)."""
        try:
            c = self.conn()
            c.request("GET", path)
            return c.getresponse().read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            self.local.c = None
            return ""

    def must(self, method, path, body=None, ok=(200, 201), ctype="application/json", tries=600):
        """Retries transport errors, 429 and 5xx (the API server may be down: a fault)."""
        for _ in range(tries):
            st, b = self.req(method, path, body, ctype)
            if st in ok:
                return b
            if st in (0, 429) or st >= 500:
                time.sleep(0.1)
                continue
            raise RuntimeError("%s %s: %d %s" % (method, path, st, (b or {}).get("message")))
        raise RuntimeError("%s %s: gave up" % (method, path))

    def items(self, path):
        out, cont = [], ""
        while True:
            b = self.must("GET", path + ("&" if "?" in path else "?") + "limit=500" + cont)
            out += b.get("items") or []
            c = (b.get("metadata") or {}).get("continue")
            if not c:
                return out
            cont = "&continue=" + c


# ---- objects -----------------------------------------------------------------------------

DOCKERCFG = {"auths": {"registry.faults.example.com": {"auth": base64.b64encode(b"u:p").decode()}}}


def ensure_ns(api, name, labels=None):
    st, _ = api.req("GET", "/api/v1/namespaces/" + name)
    if st == 200:
        return
    api.must("POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels or {}}},
             ok=(201, 409))


def ensure_sa(api, ns, name):
    api.must("POST", "/api/v1/namespaces/%s/serviceaccounts" % ns, {"metadata": {"name": name}},
             ok=(201, 409))


def ensure_secret(api, ns, name):
    body = {"metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(DOCKERCFG).encode()).decode()}}
    api.must("POST", "/api/v1/namespaces/%s/secrets" % ns, body, ok=(201, 409))


def policy(name, spec):
    return {"apiVersion": "pullpolicy.io/v1alpha1", "kind": "PullPolicy",
            "metadata": {"name": name, "namespace": HOME}, "spec": spec}


PPOL = "/apis/pullpolicy.io/v1alpha1/namespaces/%s/pullpolicies" % HOME


def put_policy(api, name, spec):
    # A read-modify-write: the controller's status writes change the resourceVersion between
    # the GET and the PUT, so a 409 reads again and retries, as any client of the API must.
    for _ in range(50):
        b = api.must("GET", PPOL + "/" + name, ok=(200, 404))
        if (b or {}).get("kind", "Status") == "Status":  # 404: not there yet
            api.must("POST", PPOL, policy(name, spec), ok=(201,))
            return
        b["spec"] = spec
        if (api.must("PUT", PPOL + "/" + name, b, ok=(200, 409)) or {}).get("kind", "Status") != "Status":
            return
    raise RuntimeError("PUT %s/%s: 409 fifty times" % (PPOL, name))


def patch_labels(api, ns, labels):
    api.must("PATCH", "/api/v1/namespaces/" + ns, {"metadata": {"labels": labels}},
             ctype="application/merge-patch+json")


# ---- the expected state and the checker ---------------------------------------------------


def selects(sel, labels):
    for k, v in ((sel or {}).get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in (sel or {}).get("matchExpressions") or []:
        has, val = e["key"] in labels, labels.get(e["key"])
        op = e["operator"]
        if op == "In" and val not in e.get("values", []):
            return False
        if op == "NotIn" and has and val in e.get("values", []):
            return False
        if op == "Exists" and not has:
            return False
        if op == "DoesNotExist" and has:
            return False
    return True


def check_state(api, writer=None):
    """Compares the cluster with what the policies declare (the subset of docs/API.md the
    suite uses: subjects.namespaces/namespaceSelector/serviceAccounts, imagePuller, pullSecrets
    for pull, copies out of the home). Returns a dict of counts; converged when lost, extra
    and dup are 0."""
    pols = api.items("/apis/pullpolicy.io/v1alpha1/pullpolicies")
    nss = {n["metadata"]["name"]: n for n in api.items("/api/v1/namespaces")}
    sas = api.items("/api/v1/serviceaccounts")
    rbs = api.items("/apis/rbac.authorization.k8s.io/v1/rolebindings?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dpullpolicy-controller")
    secs = api.items("/api/v1/secrets?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dpullpolicy-controller")
    sa_by_ns = {}
    for sa in sas:
        sa_by_ns.setdefault(sa["metadata"]["namespace"], []).append(sa)
    want_rb, want_copy, want_link = {}, set(), set()
    our_secrets = set()
    for p in pols:
        home, name, spec = p["metadata"]["namespace"], p["metadata"]["name"], p.get("spec") or {}
        for s in spec.get("pullSecrets") or []:
            our_secrets.add(s["name"])
        if p["metadata"].get("deletionTimestamp"):
            continue
        subj = spec.get("subjects") or {}
        targets = set(subj.get("namespaces") or [])
        if subj.get("namespaceSelector") is not None:
            targets |= {n for n, o in nss.items()
                        if selects(subj["namespaceSelector"], o["metadata"].get("labels") or {})}
        if not subj.get("namespaces") and subj.get("namespaceSelector") is None:
            targets = {home}
        targets = {n for n in targets if n in nss and not nss[n]["metadata"].get("deletionTimestamp")}
        only = subj.get("serviceAccounts")
        for n in targets:
            names = sorted(sa["metadata"]["name"] for sa in sa_by_ns.get(n, []))
            chosen = [x for x in names if x in only] if only else names
            if "imagePuller" in spec:
                if only:
                    subjects = sorted(("ServiceAccount", n, x) for x in only)
                else:
                    subjects = [("Group", "", "system:serviceaccounts:" + n)]
                want_rb[(home, name, n)] = subjects
            for s in spec.get("pullSecrets") or []:
                if n != home:
                    want_copy.add((n, s["name"]))
                for x in chosen:
                    want_link.add((n, x, s["name"]))
    r = {"lost": 0, "extra": 0, "dup": 0, "writer_lost": 0, "detail": []}

    def bad(kind, what):
        r[kind] += 1
        if len(r["detail"]) < 8:
            r["detail"].append("%s %s" % (kind, what))

    seen_rb = {}
    for rb in rbs:
        m = rb["metadata"]
        lab = m.get("labels") or {}
        key = (m["namespace"], lab.get("pullpolicy.io/policy"), None)
        for (home, name, n) in want_rb:
            if home == m["namespace"] and name == key[1] and m["name"].startswith("ppol-%s-%s-" % (name, n)) \
                    and re.fullmatch(r"[0-9a-f]{10}", m["name"][len("ppol-%s-%s-" % (name, n)):]):
                key = (home, name, n)
        if key not in want_rb:
            bad("extra", "rolebinding %s/%s" % (m["namespace"], m["name"]))
            continue
        seen_rb[key] = seen_rb.get(key, 0) + 1
        got = sorted((s["kind"], s.get("namespace", ""), s["name"]) for s in rb.get("subjects") or [])
        if got != want_rb[key] or rb["roleRef"]["name"] != "system:image-puller":
            bad("lost", "rolebinding %s/%s subjects %s" % (m["namespace"], m["name"], got))
    for key in want_rb:
        if seen_rb.get(key, 0) == 0:
            bad("lost", "rolebinding for %s" % (key,))
        elif seen_rb[key] > 1:
            bad("dup", "rolebinding for %s" % (key,))
    got_copy = set()
    for s in secs:
        k = (s["metadata"]["namespace"], s["metadata"]["name"])
        if k not in want_copy:
            bad("extra", "copy %s/%s" % k)
        got_copy.add(k)
    for k in want_copy - got_copy:
        bad("lost", "copy %s/%s" % k)
    for sa in sas:
        ns, nm = sa["metadata"]["namespace"], sa["metadata"]["name"]
        ips = [e.get("name") for e in sa.get("imagePullSecrets") or []]
        counts = {}
        for e in ips:
            counts[e] = counts.get(e, 0) + 1
        for e, c in counts.items():
            if c > 1:
                bad("dup", "%s/%s imagePullSecrets %s x%d" % (ns, nm, e, c))
        sec = [e.get("name") for e in sa.get("secrets") or []]
        for e in set(sec):
            if sec.count(e) > 1:
                bad("dup", "%s/%s secrets %s x%d" % (ns, nm, e, sec.count(e)))
        for e in counts:
            if e in our_secrets and (ns, nm, e) not in want_link:
                bad("extra", "link %s/%s -> %s" % (ns, nm, e))
        if writer is not None:
            for e in writer.added.get((ns, nm), ()):
                if e not in counts:
                    r["writer_lost"] += 1
                    if len(r["detail"]) < 8:
                        r["detail"].append("writer_lost %s/%s %s" % (ns, nm, e))
    have = {(sa["metadata"]["namespace"], sa["metadata"]["name"], e.get("name"))
            for sa in sas for e in sa.get("imagePullSecrets") or []}
    for k in want_link - have:
        bad("lost", "link %s/%s -> %s" % k)
    r["converged"] = r["lost"] == 0 and r["extra"] == 0 and r["dup"] == 0
    return r


# ---- processes ----------------------------------------------------------------------------


class Procs:
    """Every process the suite starts; run.sh's trap kills what the pid file lists."""

    def __init__(self, d):
        self.pidfile = os.path.join(d, "faults.pids")
        self.procs = []

    def spawn(self, argv, logpath, env=None):
        f = open(logpath, "ab")
        p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
        f.close()
        self.procs.append(p)
        with open(self.pidfile, "a") as pf:
            pf.write("%d\n" % p.pid)
        return p

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.terminate()
                except OSError:
                    pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class ProxyCtl:
    def __init__(self, procs, d, upstream_port):
        self.sock = os.path.join(d, "proxy.sock")
        pf = os.path.join(d, "proxy.port")
        if os.path.exists(pf):
            os.unlink(pf)
        self.p = procs.spawn([sys.executable, os.path.join(ROOT, "test/faults/proxy.py"),
                              "--upstream", "127.0.0.1:%d" % upstream_port, "--control", self.sock,
                              "--port-file", pf], os.path.join(d, "logs/proxy.log"))
        for _ in range(100):
            if os.path.exists(pf):
                break
            time.sleep(0.05)
        self.port = int(open(pf).read())

    def cmd(self, line):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.sock)
        with s, s.makefile("rw") as f:
            f.write(line + "\n")
            f.flush()
            ans = f.readline().strip()
        if not ans.startswith("ok"):
            raise RuntimeError("proxy: %s: %s" % (line, ans))
        return ans


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Controller:
    def __init__(self, suite, name, leader_elect=False):
        self.suite, self.name = suite, name
        self.metrics_port, self.health_port = free_port(), free_port()
        argv = [os.path.join(suite.build, "pullpolicy-controller"),
                "--kubeconfig=" + suite.ctrl_kubeconfig,
                "--distribution-namespaces=" + HOME,
                "--metrics-bind-address=127.0.0.1:%d" % self.metrics_port,
                "--health-probe-bind-address=127.0.0.1:%d" % self.health_port]
        if leader_elect:
            argv += ["--leader-elect", "--leader-election-namespace=" + SYSNS]
        argv += os.environ.get("FAULTS_CONTROLLER_FLAGS", "").split()
        env = dict(os.environ, POD_NAMESPACE=SYSNS, POD_NAME=name)
        self.log = os.path.join(suite.d, "logs", name + ".log")
        self.p = suite.procs.spawn(argv, self.log, env)
        self.base = None  # counters at the last restart of the sampler

    def alive(self):
        return self.p.poll() is None

    def http(self, port, path):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        except (OSError, http.client.HTTPException):
            return 0, ""

    def ready(self):
        return self.http(self.health_port, "/readyz")[0] == 200

    def wait_ready(self, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            if self.ready():
                return True
            if not self.alive():
                raise RuntimeError("%s exited (%s); see %s" % (self.name, self.p.returncode, self.log))
            time.sleep(0.2)
        raise RuntimeError("%s not ready in %ds" % (self.name, timeout))

    def counters(self):
        """(requests, writes, failed) from /metrics, or None."""
        st, body = self.http(self.metrics_port, "/metrics")
        if st != 200:
            return None
        req = wr = failed = 0
        for m in re.finditer(r'^pullpolicy_api_requests_total\{([^}]*)\} ([0-9.e+]+)$', body, re.M):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            v = float(m.group(2))
            req += v
            if lab.get("verb") in WRITE_VERBS:
                wr += v
            code = lab.get("code", "")
            if code == "error" or code == "429" or code.startswith("5"):
                failed += v
        return req, wr, failed

    def rss_kib(self):
        try:
            for line in open("/proc/%d/status" % self.p.pid):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def kill(self, sig=signal.SIGKILL):
        try:
            self.p.send_signal(sig)
        except OSError:
            pass
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


class Sampler:
    """Once a second: each controller's counters (summed across restarts), RSS, rates."""

    def __init__(self):
        self.ctrls = []
        self.lock = threading.Lock()
        self.total = [0.0, 0.0, 0.0]
        self.last = {}
        self.window_max_rps = 0.0
        self.window_max_failed_rps = 0.0
        self.window_peak_rss = 0
        self.stop = False
        threading.Thread(target=self.loop, daemon=True).start()

    def watch(self, ctrls):
        with self.lock:
            self.ctrls = list(ctrls)

    def sample(self):
        with self.lock:
            ctrls = list(self.ctrls)
        d_req = d_failed = 0.0
        for c in ctrls:
            v = c.counters()
            rss = c.rss_kib() if c.alive() else 0
            with self.lock:
                self.window_peak_rss = max(self.window_peak_rss, rss)
            if v is None:
                continue
            prev = self.last.get(id(c))
            delta = v if prev is None else tuple(max(0.0, a - b) for a, b in zip(v, prev))
            self.last[id(c)] = v
            with self.lock:
                for i in range(3):
                    self.total[i] += delta[i]
            d_req += delta[0]
            d_failed += delta[2]
        return d_req, d_failed

    def loop(self):
        t = time.time()
        while not self.stop:
            time.sleep(max(0.0, t + 1 - time.time()))
            now = time.time()
            dt = max(now - t, 0.001)
            t = now
            d_req, d_failed = self.sample()
            with self.lock:
                self.window_max_rps = max(self.window_max_rps, d_req / dt)
                self.window_max_failed_rps = max(self.window_max_failed_rps, d_failed / dt)

    def snapshot(self):
        self.sample()
        with self.lock:
            return tuple(self.total)

    def reset_window(self):
        with self.lock:
            self.window_max_rps = self.window_max_failed_rps = 0.0
            self.window_peak_rss = 0

    def window(self):
        with self.lock:
            return self.window_max_rps, self.window_max_failed_rps, self.window_peak_rss


class Writer:
    """The concurrent writer of fault 6: adds its own entries to the service accounts of the
    given namespaces as fast as it can (GET + PUT with resourceVersion); remembers those that
    the server accepted."""

    def __init__(self, api, namespaces, threads=2):
        self.api, self.nss = api, namespaces
        self.added = {}
        self.lock = threading.Lock()
        self.stop = False
        self.writes = self.conflicts = 0
        self.th = [threading.Thread(target=self.loop, args=(i,), daemon=True) for i in range(threads)]
        for t in self.th:
            t.start()

    def loop(self, k):
        n = 0
        while not self.stop:
            for ns in self.nss:
                st, b = self.api.req("GET", "/api/v1/namespaces/%s/serviceaccounts" % ns)
                if st != 200:
                    continue
                for sa in b.get("items") or []:
                    if self.stop:
                        return
                    n += 1
                    e = "writer-%d-%d" % (k, n)
                    sa.update(apiVersion="v1", kind="ServiceAccount")
                    sa.setdefault("imagePullSecrets", []).append({"name": e})
                    path = "/api/v1/namespaces/%s/serviceaccounts/%s" % (ns, sa["metadata"]["name"])
                    st2, _ = self.api.req("PUT", path, sa)
                    with self.lock:
                        if st2 == 200:
                            self.writes += 1
                            self.added.setdefault((ns, sa["metadata"]["name"]), []).append(e)
                        elif st2 == 409:
                            self.conflicts += 1

    def end(self):
        self.stop = True
        for t in self.th:
            t.join()


# ---- the suite ---------------------------------------------------------------------------


class Suite:
    def __init__(self, d, mode, build):
        self.d, self.mode, self.build = d, mode, build
        self.full = mode == "full"
        self.api = Api(d)
        self.procs = Procs(d)
        self.seq = 0
        self.labelled = []  # namespaces labelled fault=yes, oldest first
        self.results = []
        self.ctrls = []
        self.sampler = Sampler()
        self.edit_toggle = False
        self.writer = None
        self.burst = 2  # new namespaces per fault

    # -- set-up
    def identity(self):
        """The controller runs as a service account (not system:masters, whom API Priority and
        Fairness exempts), with cluster-admin; its kubeconfig points at the proxy."""
        ensure_ns(self.api, SYSNS)
        ensure_sa(self.api, SYSNS, CTRL_SA)
        self.api.must("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "metadata": {"name": "fault-controller-admin"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "ServiceAccount", "name": CTRL_SA, "namespace": SYSNS}]}, ok=(201, 409))
        tok = self.api.must("POST", "/api/v1/namespaces/%s/serviceaccounts/%s/token" % (SYSNS, CTRL_SA),
                            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                             "spec": {"expirationSeconds": 86400}}, ok=(201,))["status"]["token"]
        ca = base64.b64encode(open(os.path.join(self.d, "pki/ca.crt"), "rb").read()).decode()
        self.proxy = ProxyCtl(self.procs, self.d, self.api.port)
        self.ctrl_kubeconfig = os.path.join(self.d, "controller.kubeconfig")
        with open(self.ctrl_kubeconfig, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: faults\n  cluster:\n"
                    "    server: https://127.0.0.1:%d\n    certificate-authority-data: %s\n"
                    "users:\n- name: ctrl\n  user:\n    token: %s\ncontexts:\n- name: faults\n"
                    "  context:\n    cluster: faults\n    user: ctrl\ncurrent-context: faults\n"
                    % (self.proxy.port, ca, tok))

    def new_namespace(self, sas=2, label=True):
        self.seq += 1
        ns = "fault-ns-%03d" % self.seq
        ensure_ns(self.api, ns, {"fault": "yes"} if label else {})
        for i in range(sas):
            ensure_sa(self.api, ns, "app%d" % i)
        if label:
            self.labelled.append(ns)
        return ns

    def setup(self):
        self.identity()
        ensure_ns(self.api, HOME)
        for s in ("fault-reg", "fault-reg2", "fault-reg3"):
            ensure_secret(self.api, HOME, s)
        for _ in range(6 if not self.full else 20):
            self.new_namespace()
        put_policy(self.api, "fault-main", {
            "subjects": {"namespaceSelector": {"matchLabels": {"fault": "yes"}}},
            "imagePuller": {}, "pullSecrets": [{"name": "fault-reg"}]})
        put_policy(self.api, "fault-edit", {
            "subjects": {"namespaceSelector": {"matchLabels": {"fault": "yes"}}, "serviceAccounts": ["default"]},
            "pullSecrets": [{"name": "fault-reg2"}]})
        self.ctrls = [Controller(self, "controller")]
        self.ctrls[0].wait_ready()
        self.sampler.watch(self.ctrls)
        self.prepare()
        t = self.wait_converged(time.time(), 300)
        if t is None:
            raise RuntimeError("the initial state did not converge: %s" % self.last_check["detail"])
        log("initial state converged in %.1fs" % t)

    def prepare(self):
        """Before each fault: a policy that the fault's changes delete."""
        self.del_name = "fault-del-%d" % (self.seq + 1)
        put_policy(self.api, self.del_name, {
            "subjects": {"namespaces": [self.labelled[-1]]}, "imagePuller": {},
            "pullSecrets": [{"name": "fault-reg3"}]})

    # -- the changes made during every fault
    def changes(self):
        """New namespaces and service accounts, a relabel (one namespace leaves the selector), a
        policy edited, a policy deleted. Every request retries until the API server takes it."""
        for _ in range(self.burst):
            self.new_namespace()
        ensure_sa(self.api, self.labelled[0], "late")
        gone = self.labelled.pop(0)
        patch_labels(self.api, gone, {"fault": None})
        self.edit_toggle = not self.edit_toggle
        put_policy(self.api, "fault-edit", {
            "subjects": {"namespaceSelector": {"matchLabels": {"fault": "yes"}},
                         "serviceAccounts": ["default", "app0"] if self.edit_toggle else ["default"]},
            "pullSecrets": [{"name": "fault-reg2"}]})
        self.api.must("DELETE", PPOL + "/" + self.del_name, ok=(200, 202, 404))

    def changes_async(self):
        self.changes_err = None

        def run():
            try:
                self.changes()
            except Exception as e:  # reported by the fault's line
                self.changes_err = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def wait_converged(self, t_end, timeout):
        deadline = time.time() + timeout
        while True:
            try:
                r = check_state(self.api, self.writer)
            except RuntimeError as e:
                r = {"converged": False, "lost": -1, "extra": -1, "dup": -1, "writer_lost": -1,
                     "detail": [str(e)]}
            self.last_check = r
            if r["converged"]:
                return max(0.0, time.time() - t_end)
            if time.time() > deadline:
                return None
            time.sleep(0.5)

    # -- one fault
    def run_fault(self, num, name, inject, end, during):
        """inject(); changes during the fault; `during` seconds; end(); measure."""
        log("fault %s: %s" % (num, name))
        self.sampler.reset_window()
        c0 = self.sampler.snapshot()
        t0 = time.time()
        info = inject() or {}
        th = self.changes_async()
        time.sleep(during)
        info.update(end() or {})
        t_end = time.time()
        c1 = self.sampler.snapshot()
        # Changes that the fault held up (the API server or etcd down) land now.
        th.join(timeout=120)
        secs = self.wait_converged(t_end, 300 if self.full else 180)
        c2 = self.sampler.snapshot()
        rps, frps, rss = self.sampler.window()
        r = self.last_check
        alive = all(c.alive() for c in self.ctrls)
        ok = (secs is not None and r["dup"] == 0 and r["lost"] == 0 and r["extra"] == 0
              and r["writer_lost"] == 0 and alive and frps <= FAILED_RPS_MAX and not self.changes_err)
        res = {"num": num, "fault": name, "secs": secs, "during": t_end - t0,
               "req_during": c1[0] - c0[0], "req_after": c2[0] - c1[0],
               "wr_during": c1[1] - c0[1], "wr_after": c2[1] - c1[1],
               "failed": c2[2] - c0[2], "dup": r["dup"], "lost": r["lost"] + r["extra"],
               "writer_lost": r["writer_lost"] if self.writer else None, "survived": info.get("survived", alive),
               "rss_mib": rss / 1024.0, "max_rps": rps, "max_failed_rps": frps, "ok": ok,
               "detail": r["detail"] + ([str(self.changes_err)] if self.changes_err else []),
               "note": info.get("note", "")}
        self.results.append(res)
        print(self.line(res), flush=True)
        if not ok:
            log("fault %s FAILED: %s" % (num, "; ".join(res["detail"])))
        self.writer = None
        if alive:
            self.prepare()
        return res

    @staticmethod
    def header():
        return ("| # | fault | during s | converged s after end | requests during/after | writes during/after "
                "| failed req | dup | lost | writer lost | controller survived | peak RSS MiB | max req/s "
                "| max failed req/s | result | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    @staticmethod
    def line(r):
        return ("| %s | %s | %.0f | %s | %d / %d | %d / %d | %d | %d | %d | %s | %s | %.1f | %.0f | %.0f | %s | %s |" % (
            r["num"], r["fault"], r["during"], "%.1f" % r["secs"] if r["secs"] is not None else "NOT",
            r["req_during"], r["req_after"], r["wr_during"], r["wr_after"], r["failed"], r["dup"], r["lost"],
            "-" if r["writer_lost"] is None else r["writer_lost"], r["survived"], r["rss_mib"], r["max_rps"],
            r["max_failed_rps"], "ok" if r["ok"] else "FAIL", r["note"]))

    # -- the faults
    def testenv(self, *args):
        subprocess.run(["bash", os.path.join(ROOT, "hack/testenv.sh")] + list(args) + [self.d], check=True,
                       stdout=subprocess.DEVNULL)

    def pid_of(self, comp):
        return int(open(os.path.join(self.d, comp + ".pid")).read())

    def f1_apiserver_kill(self):
        def inject():
            os.kill(self.pid_of("kube-apiserver"), signal.SIGKILL)

        def end():
            self.testenv("start-apiserver")
        self.run_fault("1", "kube-apiserver SIGKILL, restarted after 10 s", inject, end, 10)

    def f2_etcd_stop(self):
        stop = 20 if self.full else 10

        def inject():
            os.kill(self.pid_of("etcd"), signal.SIGSTOP)

        def end():
            os.kill(self.pid_of("etcd"), signal.SIGCONT)
        self.run_fault("2a", "etcd SIGSTOP %d s, SIGCONT" % stop, inject, end, stop)

    def f2_etcd_kill(self):
        def inject():
            os.kill(self.pid_of("etcd"), signal.SIGKILL)

        def end():
            self.testenv("start-etcd")
        self.run_fault("2b", "etcd SIGKILL, restarted after 5 s", inject, end, 5)

    def f3_reset(self):
        span = 20 if self.full else 10
        stop = threading.Event()

        def resets():
            while not stop.wait(2):
                self.proxy.cmd("reset")

        def inject():
            self.proxy.cmd("reset")
            self.resetter = threading.Thread(target=resets, daemon=True)
            self.resetter.start()

        def end():
            stop.set()
            self.resetter.join()
        self.run_fault("3", "connection reset (proxy, every 2 s for %d s)" % span, inject, end, span)

    def f4_stall(self):
        span = 180 if self.full else 45

        def inject():
            self.proxy.cmd("stall on")

        def end():
            self.proxy.cmd("stall off")
        self.run_fault("4", "stalled connections (proxy, %d s)" % span, inject, end, span)

    def etcd_post(self, path, body):
        c = http.client.HTTPConnection("127.0.0.1", self.api.etcd_port, timeout=30)
        c.request("POST", path, body=json.dumps(body))
        r = c.getresponse()
        return json.loads(r.read())

    def f5_gone(self):
        def inject():
            self.proxy.cmd("refuse on")
            self.proxy.cmd("reset")

        def end():
            # Compact etcd past everything the controller saw, and restart the API server so
            # that its watch cache starts past it too: the controller's re-watch gets 410.
            rev = int(self.etcd_post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"])
            self.etcd_post("/v3/kv/compaction", {"revision": rev, "physical": True})
            self.testenv("restart-apiserver")
            self.proxy.cmd("refuse off")
            return {"note": "compacted at revision %d" % rev}
        self.run_fault("5", "410 Gone: watches cut, etcd compacted, API server restarted", inject, end, 3)

    def f6_conflicts(self):
        span = 60 if self.full else 15

        def inject():
            self.writer = Writer(self.api, list(self.labelled))

        def end():
            self.writer.end()
            return {"note": "writer: %d writes, %d conflicts" % (self.writer.writes, self.writer.conflicts)}
        self.run_fault("6", "409 storm: a concurrent writer on the same SAs for %d s" % span, inject, end, span)

    def f7_apf(self):
        span = 60 if self.full else 20
        plc = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations"
        fs = "/apis/flowcontrol.apiserver.k8s.io/v1/flowschemas"

        def inject():
            self.api.must("POST", plc, {"metadata": {"name": "fault-tiny"}, "spec": {
                "type": "Limited", "limited": {
                    "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
                    "limitResponse": {"type": "Queue", "queuing": {"queues": 1, "handSize": 1,
                                                                   "queueLengthLimit": 1}}}}}, ok=(201,))
            self.api.must("POST", fs, {"metadata": {"name": "fault-tiny"}, "spec": {
                "priorityLevelConfiguration": {"name": "fault-tiny"}, "matchingPrecedence": 100,
                "distinguisherMethod": {"type": "ByUser"},
                "rules": [{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                    "name": CTRL_SA, "namespace": SYSNS}}],
                    "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                       "clusterScope": True, "namespaces": ["*"]}],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}, ok=(201,))

        def end():
            # The API server's own count shows that the FlowSchema took the controller's requests.
            body = self.api.raw("/metrics")
            taken = sum(float(m.group(1)) for m in re.finditer(
                r'^apiserver_flowcontrol_dispatched_requests_total\{[^}]*flow_schema="fault-tiny"[^}]*\} ([0-9.e+]+)$',
                body, re.M))
            rejected = sum(float(m.group(1)) for m in re.finditer(
                r'^apiserver_flowcontrol_rejected_requests_total\{[^}]*flow_schema="fault-tiny"[^}]*\} ([0-9.e+]+)$',
                body, re.M))
            self.api.must("DELETE", fs + "/fault-tiny")
            self.api.must("DELETE", plc + "/fault-tiny")
            # The client retries a 429 itself (honouring Retry-After, halving its window): the
            # request's final answer is counted by code, each 429 by pullpolicy_api_throttled_total.
            return {"note": "429 answers: %d (%d of them final); the API server dispatched %d and rejected %d requests of fault-tiny"
                    % (self.count_metric("pullpolicy_api_throttled_total") - before_throttled,
                       self.count_code("429") - before, taken, rejected)}
        # More work than the other faults' changes, so that requests overlap and queue.
        self.burst = 30 if self.full else 10
        before = self.count_code("429")
        before_throttled = self.count_metric("pullpolicy_api_throttled_total")
        try:
            self.run_fault("7", "API Priority and Fairness: 1 seat, queue of 1, for %d s" % span, inject, end, span)
        finally:
            self.burst = 2

    def count_metric(self, name):
        n = 0
        for c in self.ctrls:
            st, body = c.http(c.metrics_port, "/metrics")
            for m in re.finditer(r'^%s(?:\{[^}]*\})? ([0-9.e+]+)$' % name, body, re.M):
                n += float(m.group(1))
        return int(n)

    def count_code(self, code):
        n = 0
        for c in self.ctrls:
            st, body = c.http(c.metrics_port, "/metrics")
            for m in re.finditer(r'^pullpolicy_api_requests_total\{[^}]*code="%s"[^}]*\} ([0-9.e+]+)$' % code, body, re.M):
                n += float(m.group(1))
        return int(n)

    def wide(self, label, n_ns, n_sa):
        nss = []
        for i in range(n_ns):
            ns = "%s-%03d" % (label, i)
            ensure_ns(self.api, ns, {label: "yes"})
            for j in range(n_sa - 1):  # and "default"
                ensure_sa(self.api, ns, "w%d" % j)
            nss.append(ns)
        return nss

    def writes_now(self):
        return self.sampler.snapshot()[1]

    def f8_controller_kill(self):
        n = 100 if self.full else 15

        def inject():
            self.wide("wide8", n, 4)
            w0 = self.writes_now()
            put_policy(self.api, "fault-wide8", {
                "subjects": {"namespaceSelector": {"matchLabels": {"wide8": "yes"}}},
                "imagePuller": {}, "pullSecrets": [{"name": "fault-reg"}]})
            while self.writes_now() - w0 < n:  # part of the way: about a quarter of n*6 writes
                time.sleep(0.05)
            self.ctrls[0].kill()
            return {"survived": "killed, restarted"}

        def end():
            self.ctrls = [Controller(self, "controller")]
            self.sampler.watch(self.ctrls)
        self.run_fault("8", "controller SIGKILL mid reconcile of %d namespaces x 4 SAs, restarted" % n,
                       inject, end, 0)

    def f9_failover(self):
        n = 250 if self.full else 10
        # Two replicas with leader election in place of the single controller.
        self.ctrls[0].kill(signal.SIGTERM)
        a, b = Controller(self, "replica-a", True), Controller(self, "replica-b", True)
        self.ctrls = [a, b]
        self.sampler.watch(self.ctrls)
        a.wait_ready()
        b.wait_ready()
        self.wide("wide9", n, 4)
        self.wait_converged(time.time(), 300)

        def leader():
            for c in self.ctrls:
                try:
                    if "became leader" in open(c.log).read():
                        return c
                except OSError:
                    pass
            return None

        def inject():
            while leader() is None:
                time.sleep(0.2)
            lead = leader()
            w0 = self.writes_now()
            put_policy(self.api, "fault-wide9", {
                "subjects": {"namespaceSelector": {"matchLabels": {"wide9": "yes"}}},
                "imagePuller": {}, "pullSecrets": [{"name": "fault-reg2"}]})
            while self.writes_now() - w0 < n * 2:  # about a third of n*6 writes
                time.sleep(0.05)
            lead.kill()
            self.ctrls = [c for c in self.ctrls if c is not lead]
            self.sampler.watch(self.ctrls + [lead])
            return {"survived": "leader killed; standby took over"}
        self.run_fault("9", "leader SIGKILL while a %d-SA policy converges (2 replicas)" % (n * 4),
                       inject, lambda: None, 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", choices=("short", "full"), default="short")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", default="")
    ap.add_argument("--results", default="")
    a = ap.parse_args()
    s = Suite(os.path.abspath(a.dir), a.mode, os.path.abspath(a.build))
    order = [("1", s.f1_apiserver_kill), ("2a", s.f2_etcd_stop), ("2b", s.f2_etcd_kill), ("3", s.f3_reset),
             ("4", s.f4_stall), ("5", s.f5_gone), ("6", s.f6_conflicts), ("7", s.f7_apf),
             ("8", s.f8_controller_kill), ("9", s.f9_failover)]
    only = set(x for x in a.only.split(",") if x)
    rc = 0
    try:
        s.setup()
        print(Suite.header(), flush=True)
        for num, f in order:
            if only and num not in only and num.rstrip("ab") not in only:
                continue
            try:
                f()
            except Exception as e:
                log("fault %s aborted: %r" % (num, e))
                s.results.append({"num": num, "ok": False, "fault": f.__name__, "detail": [repr(e)]})
                print("| %s | %s | aborted: %s |" % (num, f.__name__, e), flush=True)
    finally:
        s.sampler.stop = True
        s.procs.stop_all()
    if a.results:
        with open(a.results, "w") as f:
            json.dump(s.results, f, indent=1)
    for r in s.results:
        if not r["ok"]:
            rc = 1
            log("FAILED %s: %s" % (r["num"], "; ".join(r.get("detail") or [])))
    return rc


if __name__ == "__main__":
    sys.exit(main())
