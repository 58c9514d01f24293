/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TCP fault proxy for tests: listens on 127.0.0.1:<free port> and forwards
 * every connection to an upstream address, byte for byte (TLS passes through
 * untouched, so a client that trusts the upstream's certificate for
 * 127.0.0.1 trusts the proxy too). Between client and apiserver it injects
 * the faults a real network has:
 *
 *   drop      close every open connection (optionally with a TCP RST), while
 *             the upstream stays up; new connections are accepted as before
 *   stall     stop forwarding on the open connections, sockets kept open
 *             (a dead peer or black-holed route); new connections are not
 *             stalled, so a client that reconnects gets through
 *   refuse    accept new connections and close them at once
 *
 * The proxy runs in its own thread with its own poll loop, so it forwards
 * whatever the test's thread is doing (running an event loop, or blocking in
 * kubectl). Control calls are synchronous: when they return, the fault is in
 * place. Test code only. Not to be used from several test threads at once.
 */
#ifndef PP_TEST_SUPPORT_FAULTPROXY_H
#define PP_TEST_SUPPORT_FAULTPROXY_H

#include <stdbool.h>

typedef struct faultproxy faultproxy;

typedef struct faultproxy_stats {
        unsigned long accepted;        /* connections accepted (refused ones included) */
        unsigned long active;          /* connections open now */
        unsigned long dropped;         /* closed by faultproxy_drop() */
        unsigned long refused;         /* closed at once by refuse mode */
        unsigned long long bytes_up;   /* client -> upstream */
        unsigned long long bytes_down; /* upstream -> client */
} faultproxy_stats;

/*
 * Starts a proxy to upstream_host:upstream_port (a numeric IPv4 address,
 * e.g. "127.0.0.1"). Returns 0 and *ret, or a negative errno.
 */
int faultproxy_start(const char *upstream_host, int upstream_port, faultproxy **ret);

/* The same for a URL "https://127.0.0.1:PORT[/...]" such as testenv_server(). */
int faultproxy_start_url(const char *url, faultproxy **ret);

/* Closes everything, stops the thread and frees; NULL is fine. */
faultproxy *faultproxy_stop(faultproxy *p);

/* The local port to connect to. */
int faultproxy_port(const faultproxy *p);

/* "https://127.0.0.1:<port>" (for kubeconfigs); owned by the proxy. */
const char *faultproxy_url(const faultproxy *p);

/* Closes every open connection; rst: abortive close (RST) instead of FIN. Returns how many. */
int faultproxy_drop(faultproxy *p, bool rst);

/* Stops (on) or resumes (off) forwarding on the connections open now. Returns how many. */
int faultproxy_stall(faultproxy *p, bool on);

/* Refuse mode on/off for new connections. */
void faultproxy_refuse(faultproxy *p, bool on);

void faultproxy_get_stats(faultproxy *p, faultproxy_stats *ret);

/*
 * Writes a copy of the kubeconfig file src to dst with every occurrence of
 * server_url (e.g. testenv_server()) replaced by the proxy's URL, so that a
 * client loading dst goes through the proxy. Returns 0 or a negative errno
 * (-ENOENT when server_url does not occur in src).
 */
int faultproxy_write_kubeconfig(const faultproxy *p, const char *src, const char *server_url,
                                const char *dst);

#endif
