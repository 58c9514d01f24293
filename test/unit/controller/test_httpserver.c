/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The server runs on an ev loop in the test's main thread, exactly as in the
 * controller; a helper thread plays the client with libcurl and wakes the loop
 * (ev_async) when its request is done.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <ev.h>

#include "httpserver.h"
#include "metrics.h"
#include "util/macro.h"

typedef struct fetch {
        /* in */
        char url[256];
        const char *method; /* NULL: GET */
        int repeat;         /* same request this many times on one connection (keep-alive) */
        /* out */
        long status;
        char body[16384];
        size_t body_len;
        char ctype[128];
        char allow[64];
        CURLcode rc;
        int ok_count;
        /* plumbing */
        ev_async done;
        struct ev_loop *loop;
} fetch;

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
        fetch *f = ud;
        size_t len = size * n;
        size_t room = sizeof(f->body) - 1 - f->body_len;
        size_t take = len < room ? len : room;
        memcpy(f->body + f->body_len, p, take);
        f->body_len += take;
        f->body[f->body_len] = 0;
        return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
        fetch *f = ud;
        size_t len = size * n;
        if (len > 6 && strncasecmp(p, "Allow:", 6) == 0)
                snprintf(f->allow, sizeof(f->allow), "%.*s", (int)strcspn(p + 7, "\r\n"), p + 7);
        return len;
}

static void *client_thread(void *arg) {
        fetch *f = arg;
        CURL *c = curl_easy_init();
        if (c) {
                curl_easy_setopt(c, CURLOPT_URL, f->url);
                curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
                curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
                curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
                curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
                curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
                curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
                if (f->method && streq(f->method, "HEAD"))
                        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
                else if (f->method) {
                        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, f->method);
                        if (streq(f->method, "POST"))
                                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
                }
                int times = f->repeat > 0 ? f->repeat : 1;
                for (int i = 0; i < times; i++) {
                        f->body_len = 0;
                        f->body[0] = 0;
                        f->rc = curl_easy_perform(c);
                        if (f->rc != CURLE_OK) break;
                        f->ok_count++;
                }
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
                char *ct = NULL;
                curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
                if (ct) snprintf(f->ctype, sizeof(f->ctype), "%s", ct);
                curl_easy_cleanup(c);
        } else
                f->rc = CURLE_FAILED_INIT;
        ev_async_send(f->loop, &f->done);
        return NULL;
}

static void on_done(struct ev_loop *loop, ev_async *w, int revents) {
        ev_break(loop, EVBREAK_ALL);
}

/* Runs the loop while a client thread makes the request. */
static void do_fetch(struct ev_loop *loop, fetch *f) {
        f->loop = loop;
        ev_async_init(&f->done, on_done);
        ev_async_start(loop, &f->done);
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, client_thread, f), 0);
        ev_run(loop, 0);
        pthread_join(t, NULL);
        ev_async_stop(loop, &f->done);
}

static fetch *get(struct ev_loop *loop, const char *host, uint16_t port, const char *path,
                  const char *method) {
        fetch *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->url, sizeof(f->url), "http://%s:%u%s", host, port, path);
        f->method = method;
        do_fetch(loop, f);
        return f;
}

typedef struct health_state {
        const char *not_ready;
        const char *unhealthy;
        int ready_calls;
} health_state;

static const char *check_ready(void *ud) {
        health_state *h = ud;
        h->ready_calls++;
        return h->not_ready;
}

static const char *check_health(void *ud) {
        health_state *h = ud;
        return h->unhealthy;
}

static void test_parse_bind_address(void **state) {
        httpserver_addr a;
        assert_int_equal(httpserver_parse_bind_address(":8080", &a), 0);
        assert_true(a.any);
        assert_int_equal(a.family, AF_INET6);
        assert_int_equal(a.port, 8080);
        assert_int_equal(httpserver_parse_bind_address("127.0.0.1:9", &a), 0);
        assert_false(a.any);
        assert_int_equal(a.family, AF_INET);
        assert_int_equal(a.port, 9);
        assert_int_equal(ntohl(a.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(ntohs(a.in.sin_port), 9);
        assert_int_equal(httpserver_parse_bind_address("localhost:0", &a), 0);
        assert_int_equal(ntohl(a.in.sin_addr.s_addr), INADDR_LOOPBACK);
        assert_int_equal(httpserver_parse_bind_address("[::1]:65535", &a), 0);
        assert_int_equal(a.family, AF_INET6);
        assert_int_equal(a.port, 65535);
        assert_true(IN6_IS_ADDR_LOOPBACK(&a.in6.sin6_addr));
        const char *bad[] = {
            NULL,     "",        "8080",  ":",     ":65536",       ":123456",      ":8o",
            "::1:80", "[::1]80", "[::1]", "[]:80", "[1.2.3.4]:80", "1.2.3.4.5:80", "example.com:80",
            " :80",   ":80 ",    ":-1",   ":+1"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                httpserver_addr b = {.port = 4242};
                if (httpserver_parse_bind_address(bad[i], &b) != -EINVAL)
                        fail_msg("accepted \"%s\"", bad[i] ? bad[i] : "(null)");
                assert_int_equal(b.port, 4242);
        }
}

static void test_health_and_ready(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        uint16_t port = httpserver_port(s);
        assert_true(port != 0);
        health_state h = {.not_ready = "caches not synced"};
        assert_int_equal(httpserver_add_health(s, NULL, check_ready, &h), 0);
        assert_int_equal(httpserver_add_health(s, NULL, check_ready, &h), -EEXIST);

        fetch *f = get(loop, "127.0.0.1", port, "/healthz", NULL);
        assert_int_equal(f->rc, CURLE_OK);
        assert_int_equal(f->status, 200);
        assert_string_equal(f->body, "ok\n");
        assert_string_equal(f->ctype, "text/plain; charset=utf-8");
        free(f);

        f = get(loop, "127.0.0.1", port, "/readyz", NULL);
        assert_int_equal(f->status, 503);
        assert_string_equal(f->body, "not ready: caches not synced\n");
        free(f);
        assert_int_equal(h.ready_calls, 1);

        /* The caches sync: /readyz turns to 200 without restarting anything. */
        h.not_ready = NULL;
        f = get(loop, "127.0.0.1", port, "/readyz", NULL);
        assert_int_equal(f->status, 200);
        assert_string_equal(f->body, "ok\n");
        free(f);
        assert_int_equal(h.ready_calls, 2);

        /* The query string does not matter. */
        f = get(loop, "127.0.0.1", port, "/readyz?verbose=1", NULL);
        assert_int_equal(f->status, 200);
        free(f);

        httpserver_free(s);
        ev_loop_destroy(loop);
}

static void test_healthz_check(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        health_state h = {.unhealthy = "leader election lost"};
        assert_int_equal(httpserver_add_health(s, check_health, NULL, &h), 0);
        fetch *f = get(loop, "127.0.0.1", httpserver_port(s), "/healthz", NULL);
        assert_int_equal(f->status, 503);
        assert_string_equal(f->body, "unhealthy: leader election lost\n");
        free(f);
        /* No ready check: always ready. */
        f = get(loop, "127.0.0.1", httpserver_port(s), "/readyz", NULL);
        assert_int_equal(f->status, 200);
        free(f);
        httpserver_free(s);
        ev_loop_destroy(loop);
}

static void test_metrics_endpoint(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        controller_metrics *m;
        assert_int_equal(controller_metrics_new(&m), 0);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        assert_int_equal(httpserver_add_metrics(s, m->registry), 0);
        assert_int_equal(httpserver_add_metrics(s, NULL), -EINVAL);

        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_SUCCESS, 0.01);
        fetch *f = get(loop, "127.0.0.1", httpserver_port(s), "/metrics", NULL);
        assert_int_equal(f->status, 200);
        assert_string_equal(f->ctype, METRICS_CONTENT_TYPE);
        char *want;
        size_t len;
        assert_int_equal(metrics_render(m->registry, &want, &len), 0);
        assert_int_equal(f->body_len, len);
        assert_string_equal(f->body, want);
        free(want);
        assert_non_null(strstr(f->body,
                               "controller_runtime_reconcile_total{controller=\"pullpolicy\","
                               "result=\"success\"} 1\n"));
        free(f);

        /* Every scrape is fresh. */
        metrics_reconcile_done(m, "pullpolicy", METRICS_RESULT_SUCCESS, 0.01);
        f = get(loop, "127.0.0.1", httpserver_port(s), "/metrics", NULL);
        assert_non_null(strstr(f->body,
                               "controller_runtime_reconcile_total{controller=\"pullpolicy\","
                               "result=\"success\"} 2\n"));
        free(f);

        httpserver_free(s);
        controller_metrics_free(m);
        ev_loop_destroy(loop);
}

static int failing_handler(httpserver *s, const char *path, httpserver_reply *reply, void *ud) {
        reply->body = strdup("partial");
        reply->body_len = 7;
        return -EIO;
}

static int teapot_handler(httpserver *s, const char *path, httpserver_reply *reply, void *ud) {
        int *calls = ud;
        (*calls)++;
        reply->status = 418;
        reply->content_type = "application/json";
        reply->body = strdup("{\"tea\":true}");
        reply->body_len = strlen(reply->body);
        return 0;
}

static void test_errors_and_methods(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        uint16_t port = httpserver_port(s);
        int calls = 0;
        assert_int_equal(httpserver_route(s, "/fail", failing_handler, NULL), 0);
        assert_int_equal(httpserver_route(s, "/tea", teapot_handler, &calls), 0);
        assert_int_equal(httpserver_route(s, "/tea", teapot_handler, &calls), -EEXIST);
        assert_int_equal(httpserver_route(s, "nope", teapot_handler, &calls), -EINVAL);
        assert_int_equal(httpserver_route(s, "/x", NULL, &calls), -EINVAL);

        fetch *f = get(loop, "127.0.0.1", port, "/fail", NULL);
        assert_int_equal(f->status, 500);
        assert_string_equal(f->body, "internal error\n");
        free(f);

        f = get(loop, "127.0.0.1", port, "/tea", NULL);
        assert_int_equal(f->status, 418);
        assert_string_equal(f->ctype, "application/json");
        assert_string_equal(f->body, "{\"tea\":true}");
        free(f);

        f = get(loop, "127.0.0.1", port, "/tea", "HEAD");
        assert_int_equal(f->rc, CURLE_OK);
        assert_int_equal(f->status, 418);
        assert_int_equal(f->body_len, 0);
        free(f);

        f = get(loop, "127.0.0.1", port, "/tea", "POST");
        assert_int_equal(f->status, 405);
        assert_string_equal(f->allow, "GET, HEAD");
        free(f);
        f = get(loop, "127.0.0.1", port, "/tea", "DELETE");
        assert_int_equal(f->status, 405);
        free(f);
        assert_int_equal(calls, 2); /* GET and HEAD only */

        f = get(loop, "127.0.0.1", port, "/nothing-here", NULL);
        assert_int_equal(f->status, 404);
        free(f);
        f = get(loop, "127.0.0.1", port, "/tea/", NULL);
        assert_int_equal(f->status, 404);
        free(f);

        /* The route table's limit. */
        char path[32];
        int added = 0, r = 0;
        for (int i = 0; i < 100 && r == 0; i++) {
                snprintf(path, sizeof(path), "/r%d", i);
                r = httpserver_route(s, path, teapot_handler, &calls);
                if (r == 0) added++;
        }
        assert_int_equal(r, -E2BIG);
        assert_int_equal(added, HTTPSERVER_ROUTES_MAX - 2);

        httpserver_free(s);
        ev_loop_destroy(loop);
}

static void test_keepalive_many(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        assert_int_equal(httpserver_add_health(s, NULL, NULL, NULL), 0);
        fetch *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%u/healthz", httpserver_port(s));
        f->repeat = 50;
        do_fetch(loop, f);
        assert_int_equal(f->rc, CURLE_OK);
        assert_int_equal(f->ok_count, 50);
        assert_string_equal(f->body, "ok\n");
        free(f);
        httpserver_free(s);
        ev_loop_destroy(loop);
}

static void test_bind_errors(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s, *t = NULL;
        assert_int_equal(httpserver_new(loop, "bogus", &s), -EINVAL);
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", httpserver_port(s));
        assert_int_equal(httpserver_new(loop, addr, &t), -EADDRINUSE);
        assert_null(t);
        httpserver_free(s);
        /* Free releases the port: binding it again works. */
        assert_int_equal(httpserver_new(loop, addr, &t), 0);
        httpserver_free(t);
        assert_null(httpserver_free(NULL));
        assert_int_equal(httpserver_port(NULL), 0);
        ev_loop_destroy(loop);
}

static bool have_ipv6_loopback(void) {
        int fd = socket(AF_INET6, SOCK_STREAM, 0);
        if (fd < 0) return false;
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        close(fd);
        return ok;
}

static void test_ipv6_and_any(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        /* ":0" listens everywhere: IPv4 loopback reaches it (dual stack or IPv4 fallback). */
        assert_int_equal(httpserver_new(loop, ":0", &s), 0);
        assert_int_equal(httpserver_add_health(s, NULL, NULL, NULL), 0);
        fetch *f = get(loop, "127.0.0.1", httpserver_port(s), "/healthz", NULL);
        assert_int_equal(f->status, 200);
        free(f);
        httpserver_free(s);

        if (!have_ipv6_loopback()) {
                print_message("no IPv6 loopback here: [::1] part skipped\n");
                ev_loop_destroy(loop);
                return;
        }
        assert_int_equal(httpserver_new(loop, "[::1]:0", &s), 0);
        assert_int_equal(httpserver_add_health(s, NULL, NULL, NULL), 0);
        f = get(loop, "[::1]", httpserver_port(s), "/healthz", NULL);
        assert_int_equal(f->rc, CURLE_OK);
        assert_int_equal(f->status, 200);
        free(f);
        httpserver_free(s);
        ev_loop_destroy(loop);
}

/* A client that connects and sends half a request must not stall the loop or others. */
static void test_slow_client_does_not_block(void **state) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        httpserver *s;
        assert_int_equal(httpserver_new(loop, "127.0.0.1:0", &s), 0);
        assert_int_equal(httpserver_add_health(s, NULL, NULL, NULL), 0);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(httpserver_port(s))};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        const char *half = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
        assert_int_equal(write(fd, half, strlen(half)), (ssize_t)strlen(half));
        fetch *f = get(loop, "127.0.0.1", httpserver_port(s), "/healthz", NULL);
        assert_int_equal(f->status, 200);
        free(f);
        /* Freeing with that connection still open closes it cleanly. */
        httpserver_free(s);
        char buf[16];
        ssize_t n = read(fd, buf, sizeof(buf));
        assert_true(n <= 0);
        close(fd);
        ev_loop_destroy(loop);
}

int main(void) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_bind_address),
            cmocka_unit_test(test_health_and_ready),
            cmocka_unit_test(test_healthz_check),
            cmocka_unit_test(test_metrics_endpoint),
            cmocka_unit_test(test_errors_and_methods),
            cmocka_unit_test(test_keepalive_many),
            cmocka_unit_test(test_bind_errors),
            cmocka_unit_test(test_ipv6_and_any),
            cmocka_unit_test(test_slow_client_does_not_block),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return r;
}
