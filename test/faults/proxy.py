#!/usr/bin/env python3
# A TCP proxy for the fault suite (test/faults/run.sh): listens on 127.0.0.1,
# forwards byte for byte to an upstream (TLS passes through untouched), and takes
# commands, one per line, on a UNIX socket:
#
#   reset        abortive close (RST) of every open connection, watches included
#   stall on     stop forwarding on the connections open now, sockets kept open;
#                new connections still pass (a black-holed route to one server)
#   stall off    forward again
#   refuse on    close new connections at once (with reset: every watch cut
#                and kept cut)
#   refuse off
#   stats        "accepted N active N reset N refused N"
#
# Each command is answered with one line starting "ok". Test code only.
import argparse
import os
import select
import socket
import struct
import threading


class Conn:
    def __init__(self, c, u):
        self.c, self.u = c, u
        self.stalled = False
        self.closed = False
        self.lock = threading.Lock()

    def close(self, rst=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in (self.c, self.u):
            try:
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass


class Proxy:
    def __init__(self, upstream):
        self.upstream = upstream
        self.conns = set()
        self.lock = threading.Lock()
        self.refuse = False
        self.stats = {"accepted": 0, "active": 0, "reset": 0, "refused": 0}

    def pump(self, conn, src, dst):
        try:
            while not conn.closed:
                if conn.stalled:
                    threading.Event().wait(0.1)
                    continue
                r, _, _ = select.select([src], [], [], 0.2)
                if not r or conn.stalled:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        conn.close()
        with self.lock:
            if conn in self.conns:
                self.conns.discard(conn)
                self.stats["active"] = len(self.conns)

    def accept_loop(self, lsock):
        while True:
            c, _ = lsock.accept()
            with self.lock:
                self.stats["accepted"] += 1
                refuse = self.refuse
            if refuse:
                self.stats["refused"] += 1
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
                continue
            try:
                u = socket.create_connection(self.upstream, timeout=5)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            conn = Conn(c, u)
            with self.lock:
                self.conns.add(conn)
                self.stats["active"] = len(self.conns)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(conn, a, b), daemon=True).start()

    def command(self, line):
        words = line.split()
        with self.lock:
            conns = list(self.conns)
        if words == ["reset"]:
            for conn in conns:
                conn.close(rst=True)
            with self.lock:
                self.stats["reset"] += len(conns)
            return "ok %d" % len(conns)
        if len(words) == 2 and words[0] == "stall":
            for conn in conns:
                conn.stalled = words[1] == "on"
            return "ok %d" % len(conns)
        if len(words) == 2 and words[0] == "refuse":
            with self.lock:
                self.refuse = words[1] == "on"
            return "ok"
        if words == ["stats"]:
            with self.lock:
                return "ok " + " ".join("%s %d" % kv for kv in self.stats.items())
        return "error unknown command"

    def control_loop(self, csock):
        while True:
            s, _ = csock.accept()
            with s, s.makefile("rw") as f:
                for line in f:
                    f.write(self.command(line.strip()) + "\n")
                    f.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, help="HOST:PORT")
    ap.add_argument("--control", required=True, help="UNIX socket path")
    ap.add_argument("--port-file", required=True, help="the listening port is written here")
    a = ap.parse_args()
    host, port = a.upstream.rsplit(":", 1)
    p = Proxy((host, int(port)))
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    if os.path.exists(a.control):
        os.unlink(a.control)
    csock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    csock.bind(a.control)
    csock.listen(4)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % lsock.getsockname()[1])
    os.rename(tmp, a.port_file)
    threading.Thread(target=p.control_loop, args=(csock,), daemon=True).start()
    p.accept_loop(lsock)


if __name__ == "__main__":
    main()
