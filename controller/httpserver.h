/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small HTTP server on the controller's libev loop (libmicrohttpd underneath)
 * for /metrics and the /healthz and /readyz probes.
 *
 * It runs in the loop's thread: MHD is started without a thread of its own, in
 * epoll mode, and its one epoll fd is watched with an ev_io; MHD_run() is called
 * when it is readable and when MHD_get_timeout() says so (an ev_timer). So the
 * handlers read the controller's state (metrics, cache sync) without locks, and
 * /healthz answering at all proves that the loop is turning.
 *
 * Limits: at most HTTPSERVER_CONNECTIONS_MAX concurrent connections; a
 * connection idle for HTTPSERVER_IDLE_TIMEOUT seconds is closed; only GET and
 * HEAD are served (405 otherwise), request bodies are not read; unknown paths
 * are 404. Paths are matched exactly (the query string is ignored).
 *
 * Ownership: the server borrows the loop; routes' userdata are borrowed and must
 * outlive the server. Handlers' reply bodies are malloc'd and handed over.
 */
#ifndef PP_CONTROLLER_HTTPSERVER_H
#define PP_CONTROLLER_HTTPSERVER_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct metrics_registry;

#define HTTPSERVER_CONNECTIONS_MAX 64
#define HTTPSERVER_IDLE_TIMEOUT    10
#define HTTPSERVER_ROUTES_MAX      16

typedef struct httpserver httpserver;

/* A parsed bind address: ":8080" (every interface), "127.0.0.1:8080", "[::1]:8080". */
typedef struct httpserver_addr {
        bool any;   /* no host: every interface, IPv6 and IPv4 where possible */
        int family; /* AF_INET or AF_INET6 (AF_INET6 for any) */
        uint16_t port;
        union {
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        };
} httpserver_addr;

/*
 * Parses a bind address. The host is a numeric IPv4 address, a bracketed IPv6
 * address, "localhost" (127.0.0.1) or empty (every interface); the port is
 * 0..65535 (0: the kernel picks one, see httpserver_port()). Returns 0 or -EINVAL.
 */
int httpserver_parse_bind_address(const char *s, httpserver_addr *ret);

typedef struct httpserver_reply {
        unsigned status;          /* set by the server to 200 before the handler runs */
        const char *content_type; /* a static string; default text/plain; charset=utf-8 */
        char *body;               /* malloc'd, taken by the server; NULL: empty */
        size_t body_len;
} httpserver_reply;

/* Serves GET (and HEAD) of one path. A negative return is answered with a 500. */
typedef int (*httpserver_handler)(httpserver *s, const char *path, httpserver_reply *reply,
                                  void *userdata);

/*
 * Binds and starts listening on address (see httpserver_parse_bind_address).
 * Returns 0 and *ret, -EINVAL for a bad address, -EADDRINUSE, -EACCES or
 * another errno from socket/bind/listen, -ENOMEM, or -EIO if MHD fails to start.
 */
int httpserver_new(struct ev_loop *loop, const char *address, httpserver **ret);

/* Stops the watchers, closes every connection and the socket. */
httpserver *httpserver_free(httpserver *s);

/* The port actually bound (useful with port 0). */
uint16_t httpserver_port(const httpserver *s);

/* Adds a route; path must start with '/'. -EEXIST for a duplicate, -E2BIG past the limit. */
int httpserver_route(httpserver *s, const char *path, httpserver_handler h, void *userdata);

/* GET /metrics: metrics_render() of the registry, in text format 0.0.4. */
int httpserver_add_metrics(httpserver *s, struct metrics_registry *registry);

/*
 * A check for the probes: NULL when fine, else a short reason (a string that
 * stays valid until the loop turns again; e.g. a literal).
 */
typedef const char *(*httpserver_check_fn)(void *userdata);

/*
 * GET /healthz: 200 "ok" (if healthz is non-NULL, 503 and its reason when it
 * fails). GET /readyz: 200 "ok" once ready returns NULL, 503 "not ready: <reason>"
 * before; ready NULL means always ready.
 */
int httpserver_add_health(httpserver *s, httpserver_check_fn healthz, httpserver_check_fn ready,
                          void *userdata);

#endif
