/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flags_parse() on arbitrary command lines and environments.
 *
 * The input is split at NUL bytes into at most FL_MAX_ARGS tokens. A token
 * that starts with byte 0x01 is an environment entry "NAME=value" (served by
 * a fake getenv, so the real environment plays no part); the others are argv
 * after "pullpolicy-controller". Checks:
 *   - success leaves settings inside every documented bound and consistent
 *     (renew deadline below the lease, above 1.2 retry periods);
 *   - failure is -EINVAL with a message (or -ENOMEM) and leaves *ret untouched;
 *   - flags_parse_duration() on every token: 0, -EINVAL or -ERANGE, and a
 *     duration in [0, 10000 h];
 *   - parsing is repeatable (getopt's globals are reset) and frees all it took.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "flags.h"
#include "fuzz.h"

#define FL_MAX_ARGS 64

typedef struct fl_env {
        const char *entries[FL_MAX_ARGS];
        size_t n;
} fl_env;

static const char *fl_getenv(const char *name, void *userdata) {
        const fl_env *e = userdata;
        size_t nl = strlen(name);
        for (size_t i = 0; i < e->n; i++)
                if (strncmp(e->entries[i], name, nl) == 0 && e->entries[i][nl] == '=')
                        return e->entries[i] + nl + 1;
        return NULL;
}

static void fl_check_list(char *const *v, size_t n) {
        FUZZ_CHECK(n <= FLAGS_LIST_MAX);
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(v[i] && strlen(v[i]) <= FLAGS_VALUE_MAX);
}

static void fl_check_str(const char *s, bool may_be_null) {
        if (!s) {
                FUZZ_CHECK(may_be_null);
                return;
        }
        FUZZ_CHECK(strlen(s) <= FLAGS_VALUE_MAX);
}

static void fl_check_settings(const pp_settings *s) {
        fl_check_str(s->kubeconfig, true);
        fl_check_str(s->namespace, true);
        FUZZ_CHECK(s->allowed_cluster_roles != NULL);
        fl_check_list(s->allowed_cluster_roles, s->n_allowed_cluster_roles);
        fl_check_list(s->distribution_namespaces, s->n_distribution_namespaces);
        if (!s->distribution_namespaces_set) FUZZ_CHECK(s->n_distribution_namespaces == 0);
        fl_check_str(s->global_pull_secret_namespace, false);
        fl_check_str(s->global_pull_secret_name, false);
        fl_check_str(s->leader_election_namespace, true);
        fl_check_str(s->leader_election_id, false);
        fl_check_str(s->metrics_bind_address, true);
        fl_check_str(s->health_probe_bind_address, true);
        FUZZ_CHECK(isfinite(s->lease_duration) && isfinite(s->renew_deadline) &&
                   isfinite(s->retry_period) && isfinite(s->resync_period));
        FUZZ_CHECK(s->retry_period >= 0 && s->resync_period >= 0);
        FUZZ_CHECK(s->renew_deadline < s->lease_duration);
        FUZZ_CHECK(s->renew_deadline > 1.2 * s->retry_period);
        FUZZ_CHECK(isfinite(s->qps) && s->qps >= 0 && s->qps <= FLAGS_QPS_MAX); /* 0: no cap */
        FUZZ_CHECK(s->requests_in_flight >= 1 && s->requests_in_flight <= FLAGS_IN_FLIGHT_MAX);
        FUZZ_CHECK(s->max_requests_in_flight >= 1 &&
                   s->max_requests_in_flight <= FLAGS_IN_FLIGHT_MAX);
        FUZZ_CHECK(s->burst >= 1 && s->burst <= FLAGS_BURST_MAX);
        FUZZ_CHECK(s->workers >= 1 && s->workers <= FLAGS_WORKERS_MAX);
        FUZZ_CHECK(s->log_format >= 0 && s->log_format < _LOG_FORMAT_MAX);
        FUZZ_CHECK(s->log_level >= 0 && s->log_level < _LOG_LEVEL_MAX);
}

static void fl_check_duration(const char *s) {
        double d = -12.5;
        int r = flags_parse_duration(s, &d);
        if (r == 0) {
                FUZZ_CHECK(isfinite(d) && d >= 0 && d <= 10000.0 * 3600.0);
        } else {
                FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
                FUZZ_CHECK(d == -12.5);
        }
}

int fuzz_flags_one(const uint8_t *data, size_t size) {
        char *buf = malloc(size + 1);
        if (!buf) abort();
        memcpy(buf, data, size);
        buf[size] = 0;

        char *argv[FL_MAX_ARGS + 2];
        int argc = 0;
        fl_env env = {.n = 0};
        argv[argc++] = (char *)"pullpolicy-controller";
        for (size_t off = 0; off <= size && argc <= FL_MAX_ARGS && env.n < FL_MAX_ARGS;) {
                char *t = buf + off;
                size_t l = strlen(t);
                if (t[0] == '\x01')
                        env.entries[env.n++] = t + 1;
                else if (off < size)
                        argv[argc++] = t;
                fl_check_duration(t[0] == '\x01' ? t + 1 : t);
                off += l + 1;
        }
        argv[argc] = NULL;

        pp_settings s;
        memset(&s, 0xa5, sizeof(s));
        pp_settings untouched = s;
        char *err = (char *)0x1;
        int r = flags_parse(argc, argv, fl_getenv, &env, &s, &err);
        if (r == 0) {
                FUZZ_CHECK(err == NULL);
                fl_check_settings(&s);
        } else {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                FUZZ_CHECK(memcmp(&s, &untouched, sizeof(s)) == 0);
                if (r == -EINVAL) FUZZ_CHECK(err != NULL && *err);
        }

        /* the same again: same verdict, same message (getopt state reset) */
        pp_settings s2;
        char *err2 = NULL;
        int r2 = flags_parse(argc, argv, fl_getenv, &env, &s2, &err2);
        if (r != -ENOMEM && r2 != -ENOMEM) {
                FUZZ_CHECK(r2 == r);
                if (r == -EINVAL) FUZZ_CHECK(err2 && strcmp(err, err2) == 0);
                if (r == 0) {
                        FUZZ_CHECK(s2.workers == s.workers && s2.burst == s.burst &&
                                   s2.n_allowed_cluster_roles == s.n_allowed_cluster_roles);
                }
        }
        if (r2 == 0) flags_settings_done(&s2);
        free(err2);

        if (r == 0) {
                flags_settings_done(&s);
                FUZZ_CHECK(s.kubeconfig == NULL && s.allowed_cluster_roles == NULL);
        } else {
                free(err);
        }
        free(buf);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_flags_one(data, size);
}
#endif
