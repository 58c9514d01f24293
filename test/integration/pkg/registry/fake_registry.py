#!/usr/bin/env python3
# A scripted V2 registry for the parts of the handshake a real docker-registry with htpasswd
# does not show: Bearer tokens, a redirect after the credentials, an http:// token realm.
# HTTPS with the certificate of hack/test-registry.sh. One port per behaviour:
#   bearer    401 Bearer realm=https://.../token; /token wants Basic USER:PASSWORD and
#             account=USER, answers {"token": ...}; /v2/ with that token is 200
#   redirect  401 Basic; /v2/ with credentials answers 302 to the "sink" port
#   httprealm 401 Bearer realm=http://127.0.0.1:PLAINSINK/token
#   sink, plainsink  (https, http) record every request in DIR/sink-hits (they must see none)
# Usage: fake_registry.py DIR USER PASSWORD
#   (writes DIR/fake-ports: "bearer redirect httprealm sink plainsink")
import base64, json, os, socket, ssl, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

d, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
token = "tok-" + base64.b16encode(os.urandom(8)).decode()
good_basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
ports = {}


def make(mode):
    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, code, headers=(), body=b""):
            self.send_response(code)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            auth = self.headers.get("Authorization")
            if mode in ("sink", "plainsink"):
                with open(os.path.join(d, "sink-hits"), "a") as f:
                    f.write(f"{self.path} auth={'yes' if auth else 'no'}\n")
                return self.answer(404)
            host = f"127.0.0.1:{ports[mode]}"
            if mode == "bearer":
                if self.path.startswith("/token"):
                    ok = auth == good_basic and f"account={user}" in self.path and "service=fake" in self.path
                    return self.answer(200, [("Content-Type", "application/json")],
                                       json.dumps({"token": token}).encode()) if ok else self.answer(401)
                if auth == "Bearer " + token:
                    return self.answer(200)
                return self.answer(401, [("WWW-Authenticate",
                                          f'Bearer realm="https://{host}/token",service="fake"')])
            if mode == "redirect":
                if auth:
                    return self.answer(302, [("Location", f"https://127.0.0.1:{ports['sink']}/v2/")])
                return self.answer(401, [("WWW-Authenticate", 'Basic realm="r"')])
            if mode == "httprealm":
                return self.answer(401, [("WWW-Authenticate",
                                          f'Bearer realm="http://127.0.0.1:{ports["plainsink"]}/token",service="fake"')])
    return H


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
servers = []
modes = ("bearer", "redirect", "httprealm", "sink", "plainsink")
for mode in modes:
    s = ThreadingHTTPServer(("127.0.0.1", 0), make(mode))
    if mode != "plainsink":
        s.socket = ctx.wrap_socket(s.socket, server_side=True)
    ports[mode] = s.server_address[1]
    servers.append(s)
with open(os.path.join(d, "fake-ports.tmp"), "w") as f:
    f.write(" ".join(str(ports[m]) for m in modes) + "\n")
os.rename(os.path.join(d, "fake-ports.tmp"), os.path.join(d, "fake-ports"))
for s in servers[:-1]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[-1].serve_forever()
