/* SPDX-License-Identifier: Apache-2.0 */
#include "httpserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics.h"
#include "util/macro.h"

#define TEXT_PLAIN "text/plain; charset=utf-8"

typedef struct route {
        char *path;
        httpserver_handler handler;
        void *userdata;
} route;

struct httpserver {
        struct ev_loop *loop;
        struct MHD_Daemon *daemon;
        ev_io io;
        ev_timer timer;
        uint16_t port;
        route routes[HTTPSERVER_ROUTES_MAX];
        size_t n_routes;
        /* For the health routes. */
        httpserver_check_fn healthz;
        httpserver_check_fn ready;
        void *health_userdata;
};

int httpserver_parse_bind_address(const char *s, httpserver_addr *ret) {
        httpserver_addr a = {0};
        if (!s) return -EINVAL;
        const char *colon;
        char host[INET6_ADDRSTRLEN + 1];
        size_t hl;

        if (s[0] == '[') {
                const char *close = strchr(s, ']');
                if (!close || close[1] != ':') return -EINVAL;
                hl = close - s - 1;
                if (hl == 0 || hl >= sizeof(host)) return -EINVAL;
                memcpy(host, s + 1, hl);
                host[hl] = 0;
                colon = close + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon) return -EINVAL;
                hl = colon - s;
                if (hl >= sizeof(host)) return -EINVAL;
                memcpy(host, s, hl);
                host[hl] = 0;
                /* An unbracketed IPv6 address would be ambiguous. */
                if (strchr(host, ':')) return -EINVAL;
        }

        const char *p = colon + 1;
        if (!*p || strlen(p) > 5) return -EINVAL;
        unsigned long port = 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9') return -EINVAL;
                port = port * 10 + (unsigned long)(*p - '0');
        }
        if (port > 65535) return -EINVAL;
        a.port = (uint16_t)port;

        if (s[0] == '[') {
                a.family = AF_INET6;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(a.port);
                if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1) return -EINVAL;
        } else if (hl == 0) {
                a.any = true;
                a.family = AF_INET6;
                a.in6.sin6_family = AF_INET6;
                a.in6.sin6_port = htons(a.port);
                a.in6.sin6_addr = in6addr_any;
        } else {
                a.family = AF_INET;
                a.in.sin_family = AF_INET;
                a.in.sin_port = htons(a.port);
                if (streq(host, "localhost"))
                        a.in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                else if (inet_pton(AF_INET, host, &a.in.sin_addr) != 1)
                        return -EINVAL;
        }
        *ret = a;
        return 0;
}

/* ---- request handling (always on the loop's thread) ---- */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, const char *ctype,
                             char *body, size_t len) {
        struct MHD_Response *resp;
        if (body)
                resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        else
                resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype ? ctype : TEXT_PLAIN);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result r = MHD_queue_response(c, status, resp);
        MHD_destroy_response(resp);
        return r;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned status, const char *text) {
        char *b = strdup(text);
        if (!b) return MHD_NO;
        return queue(c, status, TEXT_PLAIN, b, strlen(b));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
        httpserver *s = cls;
        if (!streq(method, MHD_HTTP_METHOD_GET) && !streq(method, MHD_HTTP_METHOD_HEAD))
                return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        for (size_t i = 0; i < s->n_routes; i++) {
                if (!streq(url, s->routes[i].path)) continue;
                httpserver_reply reply = {.status = 200};
                int r = s->routes[i].handler(s, url, &reply, s->routes[i].userdata);
                if (r < 0) {
                        free(reply.body);
                        return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
                }
                return queue(c, reply.status, reply.content_type, reply.body,
                             reply.body ? reply.body_len : 0);
        }
        return queue_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---- the loop integration ---- */

static void rearm(httpserver *s) {
        MHD_UNSIGNED_LONG_LONG ms;
        ev_timer_stop(s->loop, &s->timer);
        /* MHD_NO: no connection has a timeout and nothing is pending; the fd wakes us. */
        if (MHD_get_timeout(s->daemon, &ms) == MHD_YES) {
                ev_timer_set(&s->timer, (double)ms / 1000.0, 0.);
                ev_timer_start(s->loop, &s->timer);
        }
}

static void drive(httpserver *s) {
        MHD_run(s->daemon);
        rearm(s);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents) {
        drive(w->data);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents) {
        drive(w->data);
}

static int open_listener(const httpserver_addr *a, int *ret_fd, uint16_t *ret_port) {
        int family = a->family;
        int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        httpserver_addr v4 = {0};
        const struct sockaddr *sa = (const struct sockaddr *)&a->in6;
        socklen_t salen = family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);

        if (fd < 0 && a->any && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
                /* No IPv6 on this host: every IPv4 interface then. */
                family = AF_INET;
                v4.in.sin_family = AF_INET;
                v4.in.sin_port = htons(a->port);
                v4.in.sin_addr.s_addr = htonl(INADDR_ANY);
                sa = (const struct sockaddr *)&v4.in;
                salen = sizeof(v4.in);
                fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        }
        if (fd < 0) return -errno;
        int one = 1, zero = 0;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) goto fail;
        if (family == AF_INET6 && a->any &&
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
                goto fail;
        if (bind(fd, sa, salen) < 0) goto fail;
        if (listen(fd, 64) < 0) goto fail;

        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) goto fail;
        *ret_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
        *ret_fd = fd;
        return family;
fail:;
        int e = errno;
        close(fd);
        return -e;
}

int httpserver_new(struct ev_loop *loop, const char *address, httpserver **ret) {
        httpserver_addr a;
        int fd = -1, r;
        uint16_t port = 0;

        if (!loop || !ret) return -EINVAL;
        r = httpserver_parse_bind_address(address, &a);
        if (r < 0) return r;
        int family = open_listener(&a, &fd, &port);
        if (family < 0) return family;

        httpserver *s = calloc(1, sizeof(*s));
        if (!s) {
                close(fd);
                return -ENOMEM;
        }
        s->loop = loop;
        s->port = port;
        /*
         * No MHD_USE_INTERNAL_POLLING_THREAD: the loop drives MHD, so handlers run
         * on the loop's thread. No MHD_USE_ERROR_LOG: pkg-style silence; failures
         * surface as errors of ours.
         */
        unsigned flags = MHD_USE_EPOLL | (family == AF_INET6 ? MHD_USE_IPv6 : 0);
        s->daemon = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
            MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTPSERVER_CONNECTIONS_MAX,
            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTPSERVER_IDLE_TIMEOUT, MHD_OPTION_END);
        if (!s->daemon) {
                /* MHD may or may not have closed the socket on its way out. */
                if (fcntl(fd, F_GETFD) >= 0) close(fd);
                free(s);
                return -EIO;
        }
        const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info || info->epoll_fd < 0) {
                MHD_stop_daemon(s->daemon);
                free(s);
                return -EIO;
        }
        ev_io_init(&s->io, on_io, info->epoll_fd, EV_READ);
        s->io.data = s;
        ev_init(&s->timer, on_timer);
        s->timer.data = s;
        ev_io_start(loop, &s->io);
        rearm(s);
        *ret = s;
        return 0;
}

httpserver *httpserver_free(httpserver *s) {
        if (!s) return NULL;
        ev_io_stop(s->loop, &s->io);
        ev_timer_stop(s->loop, &s->timer);
        /* Closes the connections and the listening socket (ours, handed over). */
        MHD_stop_daemon(s->daemon);
        for (size_t i = 0; i < s->n_routes; i++) free(s->routes[i].path);
        free(s);
        return NULL;
}

uint16_t httpserver_port(const httpserver *s) {
        return s ? s->port : 0;
}

int httpserver_route(httpserver *s, const char *path, httpserver_handler h, void *userdata) {
        if (!s || !path || path[0] != '/' || !h) return -EINVAL;
        for (size_t i = 0; i < s->n_routes; i++)
                if (streq(s->routes[i].path, path)) return -EEXIST;
        if (s->n_routes >= HTTPSERVER_ROUTES_MAX) return -E2BIG;
        char *p = strdup(path);
        if (!p) return -ENOMEM;
        s->routes[s->n_routes++] = (route){p, h, userdata};
        return 0;
}

static int serve_metrics(httpserver *s, const char *path, httpserver_reply *reply, void *userdata) {
        char *text;
        size_t len;
        int r = metrics_render(userdata, &text, &len);
        if (r < 0) return r;
        reply->content_type = METRICS_CONTENT_TYPE;
        reply->body = text;
        reply->body_len = len;
        return 0;
}

int httpserver_add_metrics(httpserver *s, struct metrics_registry *registry) {
        if (!registry) return -EINVAL;
        return httpserver_route(s, "/metrics", serve_metrics, registry);
}

static int reply_text(httpserver_reply *reply, unsigned status, const char *prefix,
                      const char *text) {
        char *b;
        if (asprintf(&b, "%s%s\n", prefix, text) < 0) return -ENOMEM;
        reply->status = status;
        reply->body = b;
        reply->body_len = strlen(b);
        return 0;
}

static int serve_healthz(httpserver *s, const char *path, httpserver_reply *reply, void *userdata) {
        const char *why = s->healthz ? s->healthz(s->health_userdata) : NULL;
        if (why) return reply_text(reply, MHD_HTTP_SERVICE_UNAVAILABLE, "unhealthy: ", why);
        return reply_text(reply, MHD_HTTP_OK, "", "ok");
}

static int serve_readyz(httpserver *s, const char *path, httpserver_reply *reply, void *userdata) {
        const char *why = s->ready ? s->ready(s->health_userdata) : NULL;
        if (why) return reply_text(reply, MHD_HTTP_SERVICE_UNAVAILABLE, "not ready: ", why);
        return reply_text(reply, MHD_HTTP_OK, "", "ok");
}

int httpserver_add_health(httpserver *s, httpserver_check_fn healthz, httpserver_check_fn ready,
                          void *userdata) {
        if (!s) return -EINVAL;
        int r = httpserver_route(s, "/healthz", serve_healthz, NULL);
        if (r < 0) return r;
        r = httpserver_route(s, "/readyz", serve_readyz, NULL);
        if (r < 0) {
                free(s->routes[--s->n_routes].path);
                return r;
        }
        s->healthz = healthz;
        s->ready = ready;
        s->health_userdata = userdata;
        return 0;
}
