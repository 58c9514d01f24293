/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What an SRE sees of the controller, checked on a real process run in-cluster:
 *
 *  - probes: /healthz is 200 as long as the loop turns; /readyz is 503 until every cache
 *    has synced (caught for certain by starting the controller behind a fault proxy that
 *    refuses connections), then 200; unknown paths are 404;
 *  - /metrics: a strict parser of the Prometheus text format 0.0.4 (types declared before
 *    samples, families contiguous, no duplicate series, cumulative histogram buckets whose
 *    +Inf bucket equals _count), `promtool check metrics` when promtool is installed, the
 *    controller-runtime names, and that they move when a policy is reconciled;
 *  - logs: with --log-format=json every line is a JSON object with ts, level, msg and the
 *    object it concerns; with text every line starts with a timestamp and a level.
 */
#include "prod.h"

#include <math.h>
#include <regex.h>

#include "faultproxy.h"

static struct {
        char *prefix;
        char *home;
        incluster *ic;
        tproc p[2];
        faultproxy *proxy;
        unsigned counter;
} S;

static const char *const REQUIRED[] = {
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_retries_total",
    "workqueue_queue_duration_seconds",
    "workqueue_work_duration_seconds",
    "leader_election_master_status",
    "pullpolicy_policies",
    "pullpolicy_linked_service_accounts",
    "pullpolicy_waiting_service_accounts",
};

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (prod_install(NULL) != 0) return -1;
        S.prefix = testenv_unique_name("prod-obs");
        if (!S.prefix) return -1;
        S.home = prod_namespace(S.prefix, "home", NULL);
        if (!S.home) return -1;
        int r = incluster_new(PROD_NS, PROD_SA, NULL, "1h", &S.ic);
        if (r < 0) {
                fprintf(stderr, "cannot lay out the in-cluster identity (%d)\n", r);
                return -1;
        }
        return 0;
}

static int test_teardown(void **state) {
        for (size_t i = 0; i < ARRAY_SIZE(S.p); i++)
                if (S.p[i].pid > 0) tproc_stop(&S.p[i], 30);
        S.proxy = faultproxy_stop(S.proxy);
        return 0;
}

static int group_teardown(void **state) {
        if (S.prefix && S.ic) {
                tproc p = {0};
                incluster_controller_opts o = {.wait_ready = true};
                bool up = incluster_start_controller(&p, S.ic, "prod-obs-cleanup", &o, NULL,
                                                     PROD_READY_S) == 0;
                prod_cleanup_policies(S.prefix, up);
                if (p.pid > 0) tproc_stop(&p, 30);
        }
        if (S.prefix) prod_delete_namespaces(S.prefix);
        if (S.prefix) prod_delete_leases(S.prefix);
        S.ic = incluster_free(S.ic);
        free(S.prefix);
        free(S.home);
        return 0;
}

static char *unique(const char *what) {
        char *s = NULL;
        assert_true(asprintf(&s, "%s-%s%u", S.prefix, what, S.counter++) > 0);
        return s;
}

/* Starts S.p[i] with its own Lease (so it leads), optionally through a port. */
static void start(size_t i, const char *name, const char *format, int service_port, bool wait) {
        char lease[256];
        snprintf(lease, sizeof(lease), "--leader-election-id=%s-%s", S.prefix, name);
        const char *extra[] = {"--leader-elect", lease, NULL};
        char *log = incluster_log_path(name);
        assert_non_null(log);
        unlink(log);
        free(log);
        incluster_controller_opts o = {.wait_ready = wait,
                                       .service_port = service_port,
                                       .log_format = format,
                                       .pod_name = name};
        int r = incluster_start_controller(&S.p[i], S.ic, name, &o, extra, PROD_READY_S);
        if (r < 0) fprintf(stderr, "%s did not start (%d)\n", name, r);
        assert_int_equal(r, 0);
}

/* ---- probes ---------------------------------------------------------------------------------- */

static void test_probes(void **state) {
        /* behind a proxy that refuses every connection: nothing can sync */
        assert_int_equal(faultproxy_start("127.0.0.1", S.ic->apiserver_port, &S.proxy), 0);
        faultproxy_refuse(S.proxy, true);
        start(0, "prod-obs-probes", NULL, faultproxy_port(S.proxy), false);
        tproc *p = &S.p[0];

        long code = 0;
        char *body = NULL;
        double t0 = kt_now();
        while (tproc_http_get(p->health_port, "/healthz", &code, NULL) < 0) {
                assert_true(kt_now() - t0 < PROD_WAIT_S);
                kt_sleep(0.05);
        }
        assert_int_equal(code, 200);
        kt_sleep(2.0); /* several refused attempts later, still not ready */
        assert_int_equal(tproc_http_get(p->health_port, "/readyz", &code, &body), 0);
        printf("/readyz before the caches synced: %ld %s\n", code, body);
        assert_int_equal(code, 503);
        free(body);
        assert_int_equal(tproc_http_get(p->health_port, "/healthz", &code, NULL), 0);
        assert_int_equal(code, 200);
        faultproxy_stats st;
        faultproxy_get_stats(S.proxy, &st);
        assert_true(st.refused > 0);

        /* the way opens: ready soon */
        faultproxy_refuse(S.proxy, false);
        t0 = kt_now();
        for (;;) {
                code = 0;
                if (tproc_http_get(p->health_port, "/readyz", &code, NULL) == 0 && code == 200)
                        break;
                assert_true(kt_now() - t0 < PROD_WAIT_S);
                kt_sleep(0.05);
        }
        printf("/readyz 200 %.2f s after the apiserver became reachable\n", kt_now() - t0);
        assert_int_equal(tproc_http_get(p->health_port, "/healthz", &code, NULL), 0);
        assert_int_equal(code, 200);
        assert_int_equal(tproc_http_get(p->health_port, "/no-such-path", &code, NULL), 0);
        assert_int_equal(code, 404);
        assert_int_equal(tproc_http_get(p->metrics_port, "/metrics", &code, NULL), 0);
        assert_int_equal(code, 200);
        assert_int_equal(tproc_stop(p, 30), 0);
}

/* ---- a strict reader of the text exposition format ------------------------------------------ */

typedef struct family {
        char name[128];
        char type[16];
        bool help, closed;
} family;

typedef struct expo {
        family fam[256];
        size_t n_fam;
        char **series; /* "name{labels}" normalised, for duplicates */
        size_t n_series, cap_series;
        int errors;
} expo;

static void expo_error(expo *e, size_t lineno, const char *line, const char *why) {
        if (e->errors < 10) fprintf(stderr, "  /metrics line %zu: %s: %.160s\n", lineno, why, line);
        e->errors++;
}

static family *find_family(expo *e, const char *name) {
        for (size_t i = 0; i < e->n_fam; i++)
                if (streq(e->fam[i].name, name)) return &e->fam[i];
        return NULL;
}

static bool is_name(const char *s, size_t n, bool colon) {
        if (n == 0) return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                          (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
                if (!ok) return false;
        }
        return true;
}

static bool parse_value(const char *s, double *v) {
        if (streq(s, "+Inf")) {
                *v = INFINITY;
                return true;
        }
        if (streq(s, "-Inf")) {
                *v = -INFINITY;
                return true;
        }
        if (streq(s, "NaN")) {
                *v = NAN;
                return true;
        }
        char *end = NULL;
        errno = 0;
        *v = strtod(s, &end);
        return end && end != s && *end == 0 && errno == 0;
}

/* The family a sample name belongs to, given the declared families. */
static family *sample_family(expo *e, const char *name, const char **suffix) {
        family *f = find_family(e, name);
        *suffix = "";
        if (f) return f;
        static const char *const sfx[] = {"_bucket", "_sum", "_count"};
        size_t n = strlen(name);
        for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
                size_t k = strlen(sfx[i]);
                if (n <= k || !streq(name + n - k, sfx[i])) continue;
                char base[128];
                snprintf(base, sizeof(base), "%.*s", (int)(n - k), name);
                f = find_family(e, base);
                if (f && (streq(f->type, "histogram") || streq(f->type, "summary"))) {
                        *suffix = sfx[i];
                        return f;
                }
        }
        return NULL;
}

typedef struct bucket_state {
        char key[512]; /* family + labels without le */
        double last_le, last_count, inf_count;
        bool have_inf;
} bucket_state;

/*
 * Parses labels at *p ("{a="x",b="y"}"), writing them normalised into out (without the le
 * label, which goes to *le when present). Returns false on a syntax error.
 */
static bool parse_labels(const char **p, char *out, size_t outsz, char *le, size_t lesz) {
        const char *s = *p;
        size_t o = 0;
        out[0] = 0;
        le[0] = 0;
        if (*s != '{') return true;
        s++;
        while (*s && *s != '}') {
                const char *k = s;
                while (*s && *s != '=') s++;
                if (*s != '=' || !is_name(k, (size_t)(s - k), false)) return false;
                size_t klen = (size_t)(s - k);
                s++;
                if (*s != '"') return false;
                s++;
                char val[512];
                size_t v = 0;
                while (*s && *s != '"') {
                        if (*s == '\\') {
                                s++;
                                if (*s != '\\' && *s != '"' && *s != 'n') return false;
                        }
                        if (v + 1 < sizeof(val)) val[v++] = *s;
                        s++;
                }
                if (*s != '"') return false;
                s++;
                val[v] = 0;
                if (klen == 2 && strncmp(k, "le", 2) == 0)
                        snprintf(le, lesz, "%.*s", (int)(lesz - 1), val);
                else
                        o += (size_t)snprintf(out + o, o < outsz ? outsz - o : 0, "%.*s=%s,",
                                              (int)klen, k, val);
                if (*s == ',') s++;
        }
        if (*s != '}') return false;
        *p = s + 1;
        return true;
}

static void expo_parse(expo *e, const char *text, bucket_state *bs, size_t max_bs, size_t *n_bs) {
        char *copy = strdup(text);
        assert_non_null(copy);
        char *save = NULL;
        size_t lineno = 0;
        family *current = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                lineno++;
                if (!*line) continue;
                if (line[0] == '#') {
                        char kw[8] = "", name[160] = "";
                        if (sscanf(line, "# %7s %159s", kw, name) < 2 ||
                            (!streq(kw, "HELP") && !streq(kw, "TYPE")))
                                continue; /* a plain comment */
                        family *f = find_family(e, name);
                        if (!f) {
                                if (e->n_fam >= ARRAY_SIZE(e->fam)) {
                                        expo_error(e, lineno, line, "too many families");
                                        continue;
                                }
                                f = &e->fam[e->n_fam++];
                                snprintf(f->name, sizeof(f->name), "%s", name);
                        } else if (f->closed) {
                                expo_error(e, lineno, line, "family metadata after its samples");
                        }
                        if (current && current != f) current->closed = true;
                        current = f;
                        if (!is_name(name, strlen(name), true))
                                expo_error(e, lineno, line, "bad metric name");
                        if (streq(kw, "HELP")) {
                                if (f->help) expo_error(e, lineno, line, "second HELP");
                                f->help = true;
                        } else {
                                char type[32] = "";
                                sscanf(line, "# TYPE %*s %31s", type);
                                if (f->type[0]) expo_error(e, lineno, line, "second TYPE");
                                if (!streq(type, "counter") && !streq(type, "gauge") &&
                                    !streq(type, "histogram") && !streq(type, "summary") &&
                                    !streq(type, "untyped"))
                                        expo_error(e, lineno, line, "unknown type");
                                snprintf(f->type, sizeof(f->type), "%s", type);
                        }
                        continue;
                }
                /* a sample */
                const char *s = line;
                while (*s && *s != '{' && *s != ' ') s++;
                char name[160];
                snprintf(name, sizeof(name), "%.*s", (int)(s - line), line);
                if (!is_name(name, strlen(name), true)) {
                        expo_error(e, lineno, line, "bad sample name");
                        continue;
                }
                char labels[512], le[64];
                if (!parse_labels(&s, labels, sizeof(labels), le, sizeof(le)) || *s != ' ') {
                        expo_error(e, lineno, line, "bad labels");
                        continue;
                }
                while (*s == ' ') s++;
                char valstr[64] = "";
                sscanf(s, "%63s", valstr);
                double v;
                if (!parse_value(valstr, &v)) {
                        expo_error(e, lineno, line, "bad value");
                        continue;
                }
                const char *suffix;
                family *f = sample_family(e, name, &suffix);
                if (!f || !f->type[0]) {
                        expo_error(e, lineno, line, "sample without a TYPE before it");
                        continue;
                }
                if (f != current) {
                        if (f->closed) expo_error(e, lineno, line, "family not contiguous");
                        if (current) current->closed = true;
                        current = f;
                }
                if (streq(f->type, "counter") && !(v >= 0))
                        expo_error(e, lineno, line, "negative counter");
                /* duplicates */
                char key[800];
                snprintf(key, sizeof(key), "%s{%s%s%s}", name, labels, le[0] ? "le=" : "", le);
                for (size_t i = 0; i < e->n_series; i++)
                        if (streq(e->series[i], key)) expo_error(e, lineno, line, "duplicate");
                if (e->n_series == e->cap_series) {
                        e->cap_series = e->cap_series ? 2 * e->cap_series : 256;
                        char **ns = realloc(e->series, e->cap_series * sizeof(char *));
                        assert_non_null(ns);
                        e->series = ns;
                }
                e->series[e->n_series++] = strdup(key);
                /* histograms: cumulative buckets, +Inf == _count */
                if (!streq(f->type, "histogram")) continue;
                char bkey[512];
                snprintf(bkey, sizeof(bkey), "%s{%s}", f->name, labels);
                bucket_state *b = NULL;
                for (size_t i = 0; i < *n_bs; i++)
                        if (streq(bs[i].key, bkey)) b = &bs[i];
                if (!b) {
                        assert_true(*n_bs < max_bs);
                        b = &bs[(*n_bs)++];
                        memset(b, 0, sizeof(*b));
                        snprintf(b->key, sizeof(b->key), "%s", bkey);
                        b->last_le = -INFINITY;
                }
                if (streq(suffix, "_bucket")) {
                        double lev;
                        if (!le[0] || !parse_value(le, &lev)) {
                                expo_error(e, lineno, line, "bucket without a valid le");
                                continue;
                        }
                        if (!(lev > b->last_le) || v < b->last_count)
                                expo_error(e, lineno, line, "buckets not cumulative/increasing");
                        b->last_le = lev;
                        b->last_count = v;
                        if (isinf(lev)) {
                                b->have_inf = true;
                                b->inf_count = v;
                        }
                } else if (streq(suffix, "_count")) {
                        if (!b->have_inf)
                                expo_error(e, lineno, line, "histogram without a +Inf bucket");
                        else if (b->inf_count != v)
                                expo_error(e, lineno, line, "+Inf bucket != _count");
                }
        }
        free(copy);
}

static void expo_done(expo *e) {
        for (size_t i = 0; i < e->n_series; i++) free(e->series[i]);
        free(e->series);
}

/* Parses a scrape strictly; the number of problems (printed). */
static int check_exposition(const char *text, expo *e) {
        static bucket_state bs[512];
        size_t n_bs = 0;
        memset(e, 0, sizeof(*e));
        expo_parse(e, text, bs, ARRAY_SIZE(bs), &n_bs);
        return e->errors;
}

/* The parser itself must reject what is wrong (so the checks above cannot pass vacuously). */
static void test_exposition_parser_rejects(void **state) {
        static const char *const bad[] = {
            "foo 1\n", /* no TYPE */
            "# TYPE foo counter\nfoo -1\n",
            "# TYPE foo gauge\nfoo{a=\"1\"} 1\nfoo{a=\"1\"} 2\n",
            "# TYPE foo gauge\n# TYPE bar gauge\nbar 1\nfoo 1\nbar 2\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
            "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"
            "h_count 3\n",
            "# TYPE foo gauge\nfoo{a=1} 1\n",
            "# TYPE foo gauge\nfoo one\n",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                expo e;
                int n = check_exposition(bad[i], &e);
                expo_done(&e);
                if (n == 0) fprintf(stderr, "accepted bad exposition #%zu\n", i);
                assert_true(n > 0);
        }
        expo e;
        assert_int_equal(check_exposition("# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
                                          "h_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
                                          "# TYPE c_total counter\nc_total{a=\"x\\\"y\"} 3\n",
                                          &e),
                         0);
        expo_done(&e);
}

/* ---- metrics ----------------------------------------------------------------------------------
 */

static double metric(const tproc *p, const char *name, const char *filter) {
        return prod_metric(p, name, filter);
}

typedef struct metric_wait {
        const tproc *p;
        const char *name, *filter;
        double min;
} metric_wait;

static int metric_cond(void *ud) {
        metric_wait *w = ud;
        return metric(w->p, w->name, w->filter) >= w->min;
}

static void wait_metric(const tproc *p, const char *name, const char *filter, double min) {
        metric_wait w = {p, name, filter, min};
        int r = testenv_wait_until(metric_cond, &w, PROD_WAIT_S);
        if (r < 0)
                fprintf(stderr, "%s{%s} stayed below %g (now %g)\n", name, filter ? filter : "",
                        min, metric(p, name, filter));
        assert_int_equal(r, 0);
}

static void promtool_check(const char *scrape) {
        if (system("command -v promtool >/dev/null 2>&1") != 0) {
                printf("promtool not installed (Debian package prometheus): "
                       "`promtool check metrics` skipped\n");
                return;
        }
        char path[] = "/tmp/pp-scrape-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        size_t len = strlen(scrape);
        assert_int_equal(write(fd, scrape, len), (ssize_t)len);
        close(fd);
        char *cmd = NULL;
        assert_true(asprintf(&cmd, "promtool check metrics < '%s' 2>&1", path) > 0);
        FILE *f = popen(cmd, "r");
        free(cmd);
        assert_non_null(f);
        char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = 0;
        int st = pclose(f);
        unlink(path);
        printf("promtool check metrics: exit %d%s%s\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1,
               n ? "\n" : "", buf);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Prints the lines of a scrape for the given families (no buckets), as a report excerpt. */
static void print_excerpt(const char *scrape) {
        char *copy = strdup(scrape);
        assert_non_null(copy);
        char *save = NULL;
        printf("--- /metrics excerpt\n");
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                if (l[0] == '#' || strstr(l, "_bucket{")) continue;
                for (size_t i = 0; i < ARRAY_SIZE(REQUIRED); i++)
                        if (strncmp(l, REQUIRED[i], strlen(REQUIRED[i])) == 0) {
                                printf("%s\n", l);
                                break;
                        }
        }
        printf("---\n");
        free(copy);
}

static void test_metrics(void **state) {
        start(0, "prod-obs-metrics", NULL, 0, true);
        tproc *p = &S.p[0];
        char lease[256];
        snprintf(lease, sizeof(lease), "name=\"%s-prod-obs-metrics\"", S.prefix);
        wait_metric(p, "leader_election_master_status", lease, 1);

        double rec0 = metric(p, "controller_runtime_reconcile_total", NULL);
        double adds0 = metric(p, "workqueue_adds_total", NULL);
        double qd0 = metric(p, "workqueue_queue_duration_seconds_count", NULL);
        double wd0 = metric(p, "workqueue_work_duration_seconds_count", NULL);
        double rt0 = metric(p, "controller_runtime_reconcile_time_seconds_count", NULL);
        assert_true(rec0 >= 0 && adds0 >= 0);

        /* one policy that links (R3) and one whose account waits for dockercfg (R4) */
        char *linkp = unique("link"), *waitp = unique("wait");
        kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: linked, namespace: %s}\n"
                 "---\napiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: waiter, namespace: %s}\n",
                 S.home, S.home);
        prod_pull_secret(S.home, "obs-creds", "obs.registry.test", "obs-user", "obs-pass-Ob1");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {serviceAccounts: [linked]}\n"
                 "  pullSecrets: [{name: obs-creds}]\n  dockercfg: {wait: Never}\n",
                 linkp, S.home);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {serviceAccounts: [waiter]}\n"
                 "  pullSecrets: [{name: obs-creds}]\n"
                 "  dockercfg: {wait: Always, timeoutSeconds: 3600}\n",
                 waitp, S.home);
        assert_true(prod_wait_ready(S.home, linkp, "True", "Applied", PROD_WAIT_S) >= 0);
        assert_true(prod_wait_ready(S.home, waitp, "False", "Waiting", PROD_WAIT_S) >= 0);

        /* counters move at once; gauges within the publishing interval (about 5 s) */
        assert_true(metric(p, "controller_runtime_reconcile_total", NULL) > rec0);
        assert_true(metric(p, "workqueue_adds_total", NULL) > adds0);
        assert_true(metric(p, "workqueue_queue_duration_seconds_count", NULL) > qd0);
        assert_true(metric(p, "workqueue_work_duration_seconds_count", NULL) > wd0);
        assert_true(metric(p, "controller_runtime_reconcile_time_seconds_count", NULL) > rt0);
        assert_true(metric(p, "controller_runtime_reconcile_total",
                           "controller=\"pullpolicy\",result=\"success\"") > 0);
        wait_metric(p, "pullpolicy_policies", "reason=\"Applied\"", 1);
        wait_metric(p, "pullpolicy_policies", "reason=\"Waiting\"", 1);
        wait_metric(p, "pullpolicy_linked_service_accounts", NULL, 1);
        wait_metric(p, "pullpolicy_waiting_service_accounts", NULL, 1);

        char *scrape = prod_scrape(p);
        assert_non_null(scrape);
        expo e;
        int problems = check_exposition(scrape, &e);
        int missing = 0;
        for (size_t i = 0; i < ARRAY_SIZE(REQUIRED); i++) {
                family *f = find_family(&e, REQUIRED[i]);
                double v = 0;
                int n = testenv_metric_sum(scrape, REQUIRED[i], NULL, &v);
                if (!f || !f->type[0]) {
                        fprintf(stderr, "  missing family %s\n", REQUIRED[i]);
                        missing++;
                } else if (n <= 0) {
                        /* histograms: their _count series */
                        char cnt[160];
                        snprintf(cnt, sizeof(cnt), "%s_count", REQUIRED[i]);
                        if (!streq(f->type, "histogram") ||
                            testenv_metric_sum(scrape, cnt, NULL, &v) <= 0) {
                                fprintf(stderr, "  family %s has no sample\n", REQUIRED[i]);
                                missing++;
                        }
                }
        }
        /* the controller-runtime types */
        assert_string_equal(PROD_S(find_family(&e, "controller_runtime_reconcile_total")
                                       ? find_family(&e, "controller_runtime_reconcile_total")->type
                                       : NULL),
                            "counter");
        assert_string_equal(PROD_S(find_family(&e, "workqueue_queue_duration_seconds")
                                       ? find_family(&e, "workqueue_queue_duration_seconds")->type
                                       : NULL),
                            "histogram");
        print_excerpt(scrape);
        printf("exposition: %zu families, %zu series, %d problem(s), %d required missing\n",
               e.n_fam, e.n_series, problems, missing);
        expo_done(&e);
        promtool_check(scrape);
        free(scrape);
        kt_kubectl("delete pullpolicy.pullpolicy.io -n '%s' '%s' '%s' --timeout=60s >/dev/null",
                   S.home, linkp, waitp);
        free(linkp);
        free(waitp);
        assert_int_equal(problems, 0);
        /*
         * controller-runtime creates its series at 0 when a controller starts (errors and
         * retries included), so that alerts on increase() fire on the first error; a
         * family that appears only with its first increment fails here.
         */
        if (missing) fprintf(stderr, "  see /work/notes/prod-bugs.md (metrics zero-init)\n");
        assert_int_equal(missing, 0);
        assert_int_equal(tproc_stop(p, 30), 0);
}

/* ---- logs --------------------------------------------------------------------------------------
 */

/* Runs a controller with format, makes it reconcile, stops it; returns its log path. */
static char *run_for_logs(const char *name, const char *format) {
        start(0, name, format, 0, true);
        char *pol = unique("log");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\nspec: {imagePuller: {}}\n",
                 pol, S.home);
        assert_true(prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S) >= 0);
        kt_kubectl("delete pullpolicy.pullpolicy.io -n '%s' '%s' --timeout=60s >/dev/null", S.home,
                   pol);
        free(pol);
        assert_int_equal(tproc_stop(&S.p[0], 30), 0);
        return incluster_log_path(name);
}

/* Lines we did not write: our header, and a wrapper's (valgrind "==pid==") when one is set. */
static bool foreign_line(const char *line) {
        if (strncmp(line, "--- starting controller", 23) == 0) return true;
        const char *w = getenv("PULLPOLICY_CONTROLLER_WRAPPER");
        return w && *w && strncmp(line, "==", 2) == 0;
}

static void test_log_format_json(void **state) {
        char *path = run_for_logs("prod-obs-json", "json");
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char *line = NULL;
        size_t cap = 0, n = 0, bad = 0, levels[4] = {0};
        static const char *const lv[] = {"error", "warn", "info", "debug"};
        regex_t ts;
        assert_int_equal(regcomp(&ts,
                                 "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                                 "(\\.[0-9]+)?Z$",
                                 REG_EXTENDED | REG_NOSUB),
                         0);
        while (getline(&line, &cap, f) > 0) {
                if (foreign_line(line)) continue;
                n++;
                json_object *o = json_tokener_parse(line);
                bool ok = o && json_object_is_type(o, json_type_object);
                const char *t = kt_jstr(o, "ts"), *l = kt_jstr(o, "level");
                const char *m = kt_jstr(o, "msg");
                ok = ok && t && regexec(&ts, t, 0, NULL, 0) == 0 && l && m && *m;
                bool known = false;
                for (size_t i = 0; l && i < 4; i++)
                        if (streq(l, lv[i])) {
                                levels[i]++;
                                known = true;
                        }
                ok = ok && known;
                /* the 4th key names the object the line concerns (component, policy, ...) */
                int k = 0;
                bool obj = false;
                if (ok) {
                        json_object_object_foreach(o, key, val) {
                                if (k++ == 3)
                                        obj = key[0] &&
                                              json_object_is_type(val, json_type_string) &&
                                              json_object_get_string_len(val) > 0;
                        }
                }
                ok = ok && obj;
                if (!ok) {
                        if (bad < 5) fprintf(stderr, "  not a proper JSON log line: %.200s", line);
                        bad++;
                }
                json_object_put(o);
        }
        free(line);
        fclose(f);
        regfree(&ts);
        printf("json log: %zu lines (error %zu, warn %zu, info %zu, debug %zu), %zu bad\n", n,
               levels[0], levels[1], levels[2], levels[3], bad);
        free(path);
        assert_true(n >= 10);
        assert_true(levels[2] > 0 && levels[3] > 0);
        assert_int_equal(bad, 0);
}

static void test_log_format_text(void **state) {
        char *path = run_for_logs("prod-obs-text", "text");
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        regex_t re;
        assert_int_equal(
            regcomp(&re,
                    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z "
                    "(ERROR|WARN|INFO|DEBUG) +[^ ].* [A-Za-z][A-Za-z0-9_.-]*=",
                    REG_EXTENDED | REG_NOSUB),
            0);
        char *line = NULL;
        size_t cap = 0, n = 0, bad = 0;
        while (getline(&line, &cap, f) > 0) {
                if (foreign_line(line)) continue;
                n++;
                if (regexec(&re, line, 0, NULL, 0) != 0) {
                        if (bad < 5) fprintf(stderr, "  not a proper text log line: %.200s", line);
                        bad++;
                }
        }
        free(line);
        fclose(f);
        regfree(&re);
        printf("text log: %zu lines, %zu bad\n", n, bad);
        free(path);
        assert_true(n >= 10);
        assert_int_equal(bad, 0);
}

int main(void) {
        prod_test_filter();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_probes, test_teardown),
            cmocka_unit_test(test_exposition_parser_rejects),
            cmocka_unit_test_teardown(test_metrics, test_teardown),
            cmocka_unit_test_teardown(test_log_format_json, test_teardown),
            cmocka_unit_test_teardown(test_log_format_text, test_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
