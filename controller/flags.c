/* SPDX-License-Identifier: Apache-2.0 */
#include "flags.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "httpserver.h"
#include "names.h"
#include "util/macro.h"
#include "util/strv.h"

#define ENV_PREFIX "PULLPOLICY_"

static char *mfree_str(char *p) {
        free(p);
        return NULL;
}

typedef struct flag_def flag_def;

/* Setters parse one value; on failure they return -EINVAL and a message without the flag name. */
typedef int (*flag_set_fn)(pp_settings *s, const char *v, char **why);

struct flag_def {
        const char *name;
        const char *metavar; /* NULL: boolean, no value required */
        const char *def;     /* applied through the setter; NULL: unset */
        const char *help;
        flag_set_fn set;
};

static int _printf_(2, 3) fail(char **why, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *m = NULL;
        if (vasprintf(&m, fmt, ap) < 0) m = NULL;
        va_end(ap);
        if (!m) return -ENOMEM;
        free(*why);
        *why = m;
        return -EINVAL;
}

/* ---- value checkers ---- */

/* ClusterRole names are path segment names ("system:image-puller" is one). */
static bool path_segment_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253) return false;
        if (streq(s, ".") || streq(s, "..")) return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '/' || c == '%' || c <= ' ' || c == 0x7f) return false;
        }
        return true;
}

static int parse_bool(const char *v, bool *ret) {
        static const char *const yes[] = {"true", "1", "yes", "on"};
        static const char *const no[] = {"false", "0", "no", "off"};
        for (size_t i = 0; i < ARRAY_SIZE(yes); i++)
                if (strcasecmp(v, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ARRAY_SIZE(no); i++)
                if (strcasecmp(v, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

/* Plain decimal numbers only: strtod alone would take "inf", "nan" and hex. */
static int parse_number(const char *v, double *ret) {
        if (!*v) return -EINVAL;
        for (const char *p = v; *p; p++)
                if (!isdigit((unsigned char)*p) && !strchr(".eE+-", *p)) return -EINVAL;
        char *end = NULL;
        errno = 0;
        double d = strtod(v, &end);
        if (errno != 0 || !end || *end || !isfinite(d)) return -EINVAL;
        *ret = d;
        return 0;
}

static int parse_integer(const char *v, long *ret) {
        if (!*v) return -EINVAL;
        const char *p = v;
        if (*p == '+' || *p == '-') p++;
        if (!*p) return -EINVAL;
        for (; *p; p++)
                if (!isdigit((unsigned char)*p)) return -EINVAL;
        char *end = NULL;
        errno = 0;
        long l = strtol(v, &end, 10);
        if (errno != 0 || *end) return -ERANGE;
        *ret = l;
        return 0;
}

int flags_parse_duration(const char *s, double *ret) {
        static const struct {
                const char *unit;
                double seconds;
        } units[] = {
            /* Longest first so that "ms" is not read as "m" then "s". */
            {"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
            {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600},
        };
        if (!s || !*s) return -EINVAL;
        if (streq(s, "0")) {
                *ret = 0;
                return 0;
        }
        const char *p = s;
        if (*p == '-') return -ERANGE;
        if (*p == '+') p++;
        if (!*p) return -EINVAL;
        double total = 0;
        while (*p) {
                const char *start = p;
                while (isdigit((unsigned char)*p)) p++;
                if (*p == '.') {
                        p++;
                        while (isdigit((unsigned char)*p)) p++;
                }
                /* "." alone is no number; ".5s" and "5.s" are, as in Go. */
                if (p == start || (p == start + 1 && *start == '.')) return -EINVAL;
                char num[64];
                if ((size_t)(p - start) >= sizeof(num)) return -ERANGE;
                memcpy(num, start, p - start);
                num[p - start] = 0;
                double d = strtod(num, NULL);
                size_t best = 0;
                double mult = 0;
                for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                        size_t n = strlen(units[i].unit);
                        if (strncmp(p, units[i].unit, n) == 0 && n > best) {
                                best = n;
                                mult = units[i].seconds;
                        }
                }
                if (best == 0) return -EINVAL; /* a number without a unit */
                p += best;
                total += d * mult;
                if (total > 10000.0 * 3600) return -ERANGE;
        }
        *ret = total;
        return 0;
}

/*
 * Splits a comma list, trimming blanks around entries. An empty or all-blank
 * value is an empty list; an empty entry between commas is an error; duplicates
 * are dropped.
 */
static int split_list(const char *v, bool (*valid)(const char *), const char *what, char ***ret,
                      size_t *ret_n, char **why) {
        char **items = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        const char *p = v;
        while (*p == ' ' || *p == '\t') p++;
        if (*p) {
                for (;;) {
                        const char *end = strchr(p, ',');
                        size_t len = end ? (size_t)(end - p) : strlen(p);
                        const char *a = p, *b = p + len;
                        while (a < b && (*a == ' ' || *a == '\t')) a++;
                        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
                        _cleanup_free_ char *item = strndup(a, b - a);
                        if (!item) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        if (!*item) {
                                r = fail(why, "empty entry in list: \"%s\"", v);
                                goto fail;
                        }
                        if (!valid(item)) {
                                r = fail(why, "not a valid %s: \"%s\"", what, item);
                                goto fail;
                        }
                        bool dup = false;
                        for (size_t i = 0; i < n; i++)
                                if (streq(items[i], item)) dup = true;
                        if (!dup) {
                                if (n >= FLAGS_LIST_MAX) {
                                        r = fail(why, "more than %d entries", FLAGS_LIST_MAX);
                                        goto fail;
                                }
                                if (GROW(items, cap, n + 1) < 0) {
                                        r = -ENOMEM;
                                        goto fail;
                                }
                                items[n++] = TAKE_PTR(item);
                        }
                        if (!end) break;
                        p = end + 1;
                }
        }
        if (!items) {
                /* Never NULL, so that callers can iterate without a check. */
                items = calloc(1, sizeof(char *));
                if (!items) return -ENOMEM;
        }
        *ret = items;
        *ret_n = n;
        return 0;
fail:
        strv_free(items, n);
        return r;
}

static int set_string(char **field, const char *v) {
        char *c = strdup(v);
        if (!c) return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

/* A namespace name, or an empty value that unsets the field (its default). */
static int set_optional_namespace(char **field, const char *v, char **why) {
        if (!*v) {
                *field = mfree_str(*field);
                return 0;
        }
        if (!names_is_dns1123_label(v)) return fail(why, "not a valid namespace name: \"%s\"", v);
        return set_string(field, v);
}

static int set_bool(bool *field, const char *v, char **why) {
        if (parse_bool(v, field) < 0) return fail(why, "not a boolean: \"%s\"", v);
        return 0;
}

/* A comma list (see split_list()) that replaces *list. */
static int set_list(char ***list, size_t *n_list, const char *v, bool (*valid)(const char *),
                    const char *what, char **why) {
        char **l;
        size_t n;
        int r = split_list(v, valid, what, &l, &n, why);
        if (r < 0) return r;
        strv_free(*list, *n_list);
        *list = l;
        *n_list = n;
        return 0;
}

/* ---- setters, one per flag ---- */

static int set_kubeconfig(pp_settings *s, const char *v, char **why) {
        if (!*v) return fail(why, "must not be empty");
        return set_string(&s->kubeconfig, v);
}

static int set_namespace(pp_settings *s, const char *v, char **why) {
        /* An empty value means all namespaces, the default. */
        return set_optional_namespace(&s->namespace, v, why);
}

static int set_allowed_cluster_roles(pp_settings *s, const char *v, char **why) {
        return set_list(&s->allowed_cluster_roles, &s->n_allowed_cluster_roles, v,
                        path_segment_name, "ClusterRole name", why);
}

static int set_distribution_namespaces(pp_settings *s, const char *v, char **why) {
        int r = set_list(&s->distribution_namespaces, &s->n_distribution_namespaces, v,
                         names_is_dns1123_label, "namespace name", why);
        if (r < 0) return r;
        s->distribution_namespaces_set = true;
        return 0;
}

static int set_global_pull_secret(pp_settings *s, const char *v, char **why) {
        const char *slash = strchr(v, '/');
        if (!slash) return fail(why, "expected NAMESPACE/NAME: \"%s\"", v);
        _cleanup_free_ char *ns = strndup(v, slash - v);
        _cleanup_free_ char *name = strdup(slash + 1);
        if (!ns || !name) return -ENOMEM;
        if (!names_is_dns1123_label(ns)) return fail(why, "not a valid namespace name: \"%s\"", ns);
        if (!names_is_dns1123_subdomain(name))
                return fail(why, "not a valid secret name: \"%s\"", name);
        free(s->global_pull_secret_namespace);
        free(s->global_pull_secret_name);
        s->global_pull_secret_namespace = TAKE_PTR(ns);
        s->global_pull_secret_name = TAKE_PTR(name);
        return 0;
}

static int set_allow_insecure_http_token(pp_settings *s, const char *v, char **why) {
        return set_bool(&s->allow_insecure_http_token, v, why);
}

static int set_leader_elect(pp_settings *s, const char *v, char **why) {
        return set_bool(&s->leader_elect, v, why);
}

static int set_leader_election_namespace(pp_settings *s, const char *v, char **why) {
        return set_optional_namespace(&s->leader_election_namespace, v, why);
}

static int set_leader_election_id(pp_settings *s, const char *v, char **why) {
        if (!names_is_dns1123_subdomain(v)) return fail(why, "not a valid Lease name: \"%s\"", v);
        return set_string(&s->leader_election_id, v);
}

static int duration_in(const char *v, double min, double max, bool zero_ok, double *ret,
                       char **why) {
        double d;
        int r = flags_parse_duration(v, &d);
        if (r == -EINVAL) return fail(why, "not a duration (like 15s, 2m, 500ms): \"%s\"", v);
        if (r < 0 || ((d < min || d > max) && !(zero_ok && d == 0)))
                return fail(why, "out of range [%gs, %gs]%s: \"%s\"", min, max,
                            zero_ok ? " or 0" : "", v);
        *ret = d;
        return 0;
}

static int set_lease_duration(pp_settings *s, const char *v, char **why) {
        double d = 0;
        int r = duration_in(v, 1, 3600, false, &d, why);
        if (r < 0) return r;
        /* The Lease stores whole seconds (leaseDurationSeconds). */
        if (d != floor(d)) return fail(why, "must be whole seconds: \"%s\"", v);
        s->lease_duration = d;
        return 0;
}

static int set_renew_deadline(pp_settings *s, const char *v, char **why) {
        return duration_in(v, 0.1, 3600, false, &s->renew_deadline, why);
}

static int set_retry_period(pp_settings *s, const char *v, char **why) {
        return duration_in(v, 0.1, 3600, false, &s->retry_period, why);
}

static int set_bind(char **field, const char *v, char **why) {
        if (streq(v, "0")) {
                *field = mfree_str(*field);
                return 0;
        }
        httpserver_addr a;
        if (httpserver_parse_bind_address(v, &a) < 0)
                return fail(why,
                            "not an address like :8080, 127.0.0.1:8080 or [::1]:8080, "
                            "or 0 to disable: \"%s\"",
                            v);
        return set_string(field, v);
}

static int set_metrics_bind_address(pp_settings *s, const char *v, char **why) {
        return set_bind(&s->metrics_bind_address, v, why);
}

static int set_health_probe_bind_address(pp_settings *s, const char *v, char **why) {
        return set_bind(&s->health_probe_bind_address, v, why);
}

static int set_qps(pp_settings *s, const char *v, char **why) {
        double d;
        if (parse_number(v, &d) < 0) return fail(why, "not a number: \"%s\"", v);
        if (d < 0 || d > FLAGS_QPS_MAX)
                return fail(why, "out of range [0, %g]: \"%s\"", FLAGS_QPS_MAX, v);
        s->qps = d;
        return 0;
}

static int int_in(const char *v, long min, long max, int *ret, char **why) {
        long l;
        int r = parse_integer(v, &l);
        if (r == -EINVAL) return fail(why, "not an integer: \"%s\"", v);
        if (r < 0 || l < min || l > max)
                return fail(why, "out of range [%ld, %ld]: \"%s\"", min, max, v);
        *ret = (int)l;
        return 0;
}

static int set_burst(pp_settings *s, const char *v, char **why) {
        return int_in(v, 1, FLAGS_BURST_MAX, &s->burst, why);
}

static int set_requests_in_flight(pp_settings *s, const char *v, char **why) {
        return int_in(v, 1, FLAGS_IN_FLIGHT_MAX, &s->requests_in_flight, why);
}

static int set_max_requests_in_flight(pp_settings *s, const char *v, char **why) {
        return int_in(v, 1, FLAGS_IN_FLIGHT_MAX, &s->max_requests_in_flight, why);
}

static int set_workers(pp_settings *s, const char *v, char **why) {
        return int_in(v, 1, FLAGS_WORKERS_MAX, &s->workers, why);
}

static int set_log_format(pp_settings *s, const char *v, char **why) {
        log_format f = log_format_from_string(v);
        if (f < 0) return fail(why, "expected text or json: \"%s\"", v);
        s->log_format = f;
        return 0;
}

static int set_log_level(pp_settings *s, const char *v, char **why) {
        log_level l = log_level_from_string(v);
        if (l < 0) return fail(why, "expected error, warn, info or debug: \"%s\"", v);
        s->log_level = l;
        return 0;
}

static int set_resync_period(pp_settings *s, const char *v, char **why) {
        return duration_in(v, 10, 10000.0 * 3600, true, &s->resync_period, why);
}

static int set_verify_credentials(pp_settings *s, const char *v, char **why) {
        return set_bool(&s->verify_credentials, v, why);
}

static int set_registry_ca_file(pp_settings *s, const char *v, char **why) {
        if (!*v) return fail(why, "must not be empty");
        return set_string(&s->registry_ca_file, v);
}

static int set_verify_interval(pp_settings *s, const char *v, char **why) {
        return duration_in(v, 60, 7 * 24 * 3600.0, false, &s->verify_interval, why);
}

static int set_verify_concurrency(pp_settings *s, const char *v, char **why) {
        return int_in(v, 1, 16, &s->verify_concurrency, why);
}

static int set_version(pp_settings *s, const char *v, char **why) {
        return set_bool(&s->show_version, v, why);
}

static int set_help(pp_settings *s, const char *v, char **why) {
        return set_bool(&s->show_help, v, why);
}

static const flag_def flag_defs[] = {
    {"kubeconfig", "PATH", NULL,
     "kubeconfig file (also $KUBECONFIG); default: in-cluster configuration", set_kubeconfig},
    {"allow-insecure-http-token", NULL, "false",
     "send the bearer token to an http:// server in clear text (refused otherwise)",
     set_allow_insecure_http_token},
    {"namespace", "NAME", NULL, "watch only this namespace; default: all namespaces",
     set_namespace},
    {"allowed-cluster-roles", "LIST", "system:image-puller",
     "comma list of ClusterRoles that policies may grant (R2)", set_allowed_cluster_roles},
    {"distribution-namespaces", "LIST", NULL,
     "comma list of namespaces whose policies may copy secrets and merge the global pull "
     "secret (R5, R6); default: the controller's own namespace",
     set_distribution_namespaces},
    {"global-pull-secret", "NS/NAME", "openshift-config/pull-secret",
     "the cluster's global pull secret (R6)", set_global_pull_secret},
    {"leader-elect", NULL, "false", "elect a leader with a Lease; only the leader writes",
     set_leader_elect},
    {"leader-election-namespace", "NAME", NULL,
     "namespace of the Lease; default: the controller's own namespace",
     set_leader_election_namespace},
    {"leader-election-id", "NAME", "pullpolicy-controller", "name of the Lease",
     set_leader_election_id},
    {"lease-duration", "DURATION", "15s",
     "how long others wait after the last renewal before taking over (whole seconds)",
     set_lease_duration},
    {"renew-deadline", "DURATION", "10s",
     "the leader gives up when it could not renew for this long", set_renew_deadline},
    {"retry-period", "DURATION", "2s", "interval between acquire and renew attempts",
     set_retry_period},
    {"metrics-bind-address", "ADDR", ":8080", "address of /metrics; 0 disables",
     set_metrics_bind_address},
    {"health-probe-bind-address", "ADDR", ":8081", "address of /healthz and /readyz; 0 disables",
     set_health_probe_bind_address},
    {"requests-in-flight", "NUMBER", "8",
     "API requests in flight at first; the window grows while the API server answers promptly, "
     "halves on 429/503 or rising latency, and waits as Retry-After asks",
     set_requests_in_flight},
    {"max-requests-in-flight", "NUMBER", "128",
     "the most API requests in flight the window grows to", set_max_requests_in_flight},
    {"qps", "NUMBER", "0",
     "a hard cap of API requests per second (client-side token bucket) on top of the window; 0: "
     "none",
     set_qps},
    {"burst", "NUMBER", "30", "API request burst above --qps (when --qps is set)", set_burst},
    {"log-format", "FORMAT", "text", "text or json", set_log_format},
    {"log-level", "LEVEL", "info", "error, warn, info or debug", set_log_level},
    {"workers", "NUMBER", "4", "policies reconciled concurrently", set_workers},
    {"resync-period", "DURATION", "10h", "requeue every policy this often; 0 disables",
     set_resync_period},
    {"verify-credentials", NULL, "false",
     "let policies ask (spec.verifyCredentials) that the controller prove their registry "
     "credentials: it then connects to every registry their secrets name and sends those "
     "credentials there",
     set_verify_credentials},
    {"registry-ca-file", "PATH", NULL,
     "PEM bundle that registry certificates are verified against; default: the system's CAs",
     set_registry_ca_file},
    {"verify-credentials-interval", "DURATION", "1h",
     "prove unchanged credentials again this often (at least 1m)", set_verify_interval},
    {"verify-credentials-concurrency", "NUMBER", "2", "registry handshakes at once (1-16)",
     set_verify_concurrency},
    {"version", NULL, NULL, "print the version and exit", set_version},
    {"help", NULL, NULL, "print this help and exit", set_help},
};

static char *env_name(const char *flag) {
        char *e = malloc(strlen(ENV_PREFIX) + strlen(flag) + 1);
        if (!e) return NULL;
        char *p = stpcpy(e, ENV_PREFIX);
        for (const char *f = flag; *f; f++)
                *p++ = *f == '-' ? '_' : (char)toupper((unsigned char)*f);
        *p = 0;
        return e;
}

static bool is_cli_only(const flag_def *d) {
        return d->set == set_version || d->set == set_help;
}

void flags_settings_done(pp_settings *s) {
        if (!s) return;
        free(s->kubeconfig);
        free(s->registry_ca_file);
        free(s->namespace);
        strv_free(s->allowed_cluster_roles, s->n_allowed_cluster_roles);
        strv_free(s->distribution_namespaces, s->n_distribution_namespaces);
        free(s->global_pull_secret_namespace);
        free(s->global_pull_secret_name);
        free(s->leader_election_namespace);
        free(s->leader_election_id);
        free(s->metrics_bind_address);
        free(s->health_probe_bind_address);
        *s = (pp_settings){0};
}

static const char *default_getenv(const char *name, void *userdata) {
        return getenv(name);
}

/* Applies one value, prefixing the setter's message with where it came from. */
static int apply(pp_settings *s, const flag_def *d, const char *source, const char *v,
                 char **ret_error) {
        _cleanup_free_ char *why = NULL;
        if (strlen(v) > FLAGS_VALUE_MAX) {
                if (ret_error &&
                    asprintf(ret_error, "%s: longer than %d bytes", source, FLAGS_VALUE_MAX) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        int r = d->set(s, v, &why);
        if (r == -EINVAL && ret_error) {
                if (asprintf(ret_error, "%s: %s", source, why ? why : "invalid value") < 0) {
                        *ret_error = NULL;
                        return -ENOMEM;
                }
        }
        return r;
}

static int _printf_(2, 3) error_msg(char **ret_error, const char *fmt, ...) {
        if (!ret_error) return -EINVAL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(ret_error, fmt, ap);
        va_end(ap);
        if (n < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static const char *fmt_duration(double d, char *buf, size_t n) {
        snprintf(buf, n, "%gs", d);
        return buf;
}

static int check_consistency(const pp_settings *s, char **ret_error) {
        char a[32], b[32];
        if (s->renew_deadline >= s->lease_duration)
                return error_msg(ret_error,
                                 "--renew-deadline (%s) must be less than --lease-duration (%s)",
                                 fmt_duration(s->renew_deadline, a, sizeof(a)),
                                 fmt_duration(s->lease_duration, b, sizeof(b)));
        /* client-go's rule: retries are jittered by up to 1.2 times the period. */
        if (s->renew_deadline <= 1.2 * s->retry_period)
                return error_msg(
                    ret_error,
                    "--renew-deadline (%s) must be more than 1.2 times --retry-period (%s)",
                    fmt_duration(s->renew_deadline, a, sizeof(a)),
                    fmt_duration(s->retry_period, b, sizeof(b)));
        if (s->metrics_bind_address && s->health_probe_bind_address &&
            streq(s->metrics_bind_address, s->health_probe_bind_address)) {
                httpserver_addr m;
                if (httpserver_parse_bind_address(s->metrics_bind_address, &m) == 0 && m.port != 0)
                        return error_msg(ret_error,
                                         "--metrics-bind-address and --health-probe-bind-address "
                                         "must differ: \"%s\"",
                                         s->metrics_bind_address);
        }
        return 0;
}

int flags_parse(int argc, char *const *argv, flags_getenv_fn getenv_fn, void *userdata,
                pp_settings *ret, char **ret_error) {
        pp_settings s = {0};
        struct option longopts[ARRAY_SIZE(flag_defs) + 1];
        int r;

        if (ret_error) *ret_error = NULL;
        if (!getenv_fn) getenv_fn = default_getenv;

        /* 1. Defaults, through the same setters as everything else. */
        for (size_t i = 0; i < ARRAY_SIZE(flag_defs); i++) {
                const flag_def *d = &flag_defs[i];
                if (!d->def) continue;
                r = apply(&s, d, d->name, d->def, ret_error);
                if (r < 0) goto fail; /* a bug in the table; the unit tests catch it */
        }
        if (!s.allowed_cluster_roles) {
                r = -ENOMEM;
                goto fail;
        }
        s.distribution_namespaces_set = false;

        /* 2. The environment. KUBECONFIG first, so that PULLPOLICY_KUBECONFIG wins. */
        const char *kc = getenv_fn("KUBECONFIG", userdata);
        if (kc && *kc) {
                r = apply(&s, &flag_defs[0], "KUBECONFIG", kc, ret_error);
                if (r < 0) goto fail;
        }
        for (size_t i = 0; i < ARRAY_SIZE(flag_defs); i++) {
                const flag_def *d = &flag_defs[i];
                if (is_cli_only(d)) continue;
                _cleanup_free_ char *name = env_name(d->name);
                if (!name) {
                        r = -ENOMEM;
                        goto fail;
                }
                const char *v = getenv_fn(name, userdata);
                if (!v) continue;
                r = apply(&s, d, name, v, ret_error);
                if (r < 0) goto fail;
        }

        /* 3. The command line. */
        for (size_t i = 0; i < ARRAY_SIZE(flag_defs); i++)
                longopts[i] = (struct option){
                    flag_defs[i].name, flag_defs[i].metavar ? required_argument : optional_argument,
                    NULL, 256 + (int)i};
        longopts[ARRAY_SIZE(flag_defs)] = (struct option){0};

        optind = 0; /* GNU: full re-initialisation, so that tests can parse many times */
        opterr = 0;
        for (;;) {
                int cur = optind == 0 ? 1 : optind;
                int idx = -1;
                int c = getopt_long(argc, argv, "+:h", longopts, &idx);
                if (c == -1) break;
                const char *text = cur < argc ? argv[cur] : "";
                if (c == 'h') {
                        s.show_help = true;
                        continue;
                }
                if (c == '?') {
                        if (optopt)
                                r = error_msg(ret_error, "unknown flag: -%c", optopt);
                        else
                                r = error_msg(ret_error, "unknown flag: %s", argv[optind - 1]);
                        goto fail;
                }
                if (c == ':') {
                        const char *t = argv[optind - 1];
                        bool exact = false;
                        for (size_t i = 0; i < ARRAY_SIZE(flag_defs); i++)
                                if (strncmp(t, "--", 2) == 0 && streq(t + 2, flag_defs[i].name))
                                        exact = true;
                        if (exact)
                                r = error_msg(ret_error, "%s: requires a value", t);
                        else
                                r = error_msg(ret_error, "unknown flag: %s", t);
                        goto fail;
                }
                if (c < 256 || c >= 256 + (int)ARRAY_SIZE(flag_defs)) {
                        r = error_msg(ret_error, "unknown flag: %s", text);
                        goto fail;
                }
                const flag_def *d = &flag_defs[c - 256];
                /* getopt_long takes unique prefixes ("--kube"); we want the exact names. */
                size_t nl = strlen(d->name);
                if (strncmp(text, "--", 2) != 0 || strncmp(text + 2, d->name, nl) != 0 ||
                    (text[2 + nl] != 0 && text[2 + nl] != '=')) {
                        r = error_msg(ret_error, "unknown flag: %.*s (did you mean --%s?)",
                                      (int)strcspn(text, "="), text, d->name);
                        goto fail;
                }
                char src[96];
                snprintf(src, sizeof(src), "--%s", d->name);
                r = apply(&s, d, src, optarg ? optarg : "true", ret_error);
                if (r < 0) goto fail;
        }
        if (optind < argc) {
                const char *a = argv[optind];
                bool boolish;
                if (parse_bool(a, &boolish) == 0 && optind > 1 &&
                    strncmp(argv[optind - 1], "--", 2) == 0)
                        r = error_msg(ret_error,
                                      "unexpected argument: \"%s\" (boolean flags take "
                                      "their value as %s=%s)",
                                      a, argv[optind - 1], a);
                else
                        r = error_msg(ret_error, "unexpected argument: \"%s\"", a);
                goto fail;
        }

        r = check_consistency(&s, ret_error);
        if (r < 0) goto fail;

        *ret = s;
        return 0;
fail:
        flags_settings_done(&s);
        if (r != -EINVAL && ret_error) *ret_error = mfree_str(*ret_error);
        return r;
}

void flags_usage(FILE *f, const char *program) {
        fprintf(f,
                "Usage: %s [FLAGS]\n\n"
                "pullpolicy controller: keeps image-puller RoleBindings and pull-secret links\n"
                "as PullPolicy objects declare them.\n\n"
                "Flags (each also read from the variable in brackets; a flag wins):\n",
                program ? program : "pullpolicy-controller");
        for (size_t i = 0; i < ARRAY_SIZE(flag_defs); i++) {
                const flag_def *d = &flag_defs[i];
                char head[96];
                if (d->metavar)
                        snprintf(head, sizeof(head), "--%s=%s", d->name, d->metavar);
                else
                        snprintf(head, sizeof(head), "--%s", d->name);
                fprintf(f, "  %-38s %s", head, d->help);
                if (d->def && !streq(d->def, "false")) fprintf(f, " (default %s)", d->def);
                if (!is_cli_only(d)) {
                        _cleanup_free_ char *e = env_name(d->name);
                        if (e) fprintf(f, " [%s]", e);
                }
                fputc('\n', f);
        }
}
