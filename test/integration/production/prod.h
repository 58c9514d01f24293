/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the production-readiness suites (test/integration/production/test_*.c).
 * Each program is one translation unit linked only with the test/support sources, so this header
 * holds static inline functions.
 *
 * Every program installs the operator the way a user does (`kubectl apply -k manifests/`,
 * idempotent, in its group setup) and runs build/pullpolicy-controller as a real process,
 * in-cluster as system:serviceaccount:pullpolicy-system:pullpolicy-controller
 * (incluster.h). Namespaces a test makes are unique ("prod-<suite>-<pid>-<salt><n>") and
 * labelled prod.pullpolicy.io/run=<prefix>, so that suites are independent of each other
 * and of other suites running against the same control plane; objects a test puts into the
 * shared namespace pullpolicy-system have unique names and are deleted by the test. Each
 * program uses its own Lease name (--leader-election-id), so that its controllers do not
 * compete with those of other programs.
 *
 * Test code: the helpers may assert with cmocka (only from inside a test) and print to
 * stderr. Never print a secret's payload (R11).
 */
#ifndef PP_TEST_PRODUCTION_PROD_H
#define PP_TEST_PRODUCTION_PROD_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "incluster.h"
#include "kubetest.h"
#include "procs.h"
#include "testenv.h"
#include "util/macro.h"

#define PROD_NS        "pullpolicy-system"
#define PROD_SA        "pullpolicy-controller"
#define PROD_USER      "system:serviceaccount:" PROD_NS ":" PROD_SA
#define PROD_LABEL_RUN "prod.pullpolicy.io/run"
/* Generous: the controller may run under valgrind on a loaded 2-core machine. */
#define PROD_WAIT_S  60.0
#define PROD_READY_S 120.0

/* A string for cmocka's string asserts, which do not take NULL. */
static inline const char *prod_s(const char *s) {
        return s ? s : "(null)";
}
#define PROD_S(s) prod_s(s)

/* ---- time ------------------------------------------------------------------------------ */

/* $PROD_TEST_FILTER (a cmocka pattern such as "test_token*") runs only matching tests. */
static inline void prod_test_filter(void) {
        const char *f = getenv("PROD_TEST_FILTER");
        if (f && *f) cmocka_set_test_filter(f);
        setvbuf(stdout, NULL, _IOLBF, 0);
}

/* ---- kubectl (admin) ------------------------------------------------------------------- */

/*
 * The install a user runs: `kubectl apply -k manifests/`, server-side, every object
 * validated strictly by the server (unknown or duplicate fields are errors), after the
 * OpenShift simulation's objects (hack/openshift-sim.sh install). Idempotent.
 * Returns kubectl's exit status; its output in *out when out is not NULL.
 */
static inline int prod_install(char **out) {
        /*
         * OpenShift's bits the scenarios need: system:image-puller and the global pull
         * secret. Installed only when missing: the install re-applies the pull secret's
         * data, which would drop entries that a running suite has merged.
         */
        if (kt_kubectl("get clusterrole system:image-puller >/dev/null 2>&1") != 0 ||
            kt_kubectl("get secret -n openshift-config pull-secret >/dev/null 2>&1") != 0) {
                char *sim = NULL;
                if (asprintf(&sim, "bash '%s/hack/openshift-sim.sh' install '%s' >/dev/null 2>&1",
                             kt_root(), testenv_dir()) < 0)
                        return -ENOMEM;
                int st = system(sim);
                free(sim);
                if (st != 0) {
                        fprintf(stderr, "hack/openshift-sim.sh install failed (%d)\n", st);
                        return st < 0 ? -errno : 1;
                }
        }
        char *o = NULL;
        int r = testenv_kubectl(&o,
                                "apply -k '%s/manifests' --server-side --force-conflicts "
                                "--validate=strict 2>&1",
                                kt_root());
        if (r != 0)
                fprintf(stderr, "kubectl apply -k manifests/ failed (%d):\n%s\n", r, o ? o : "");
        if (out)
                *out = o;
        else
                free(o);
        return r;
}

/* ---- JSON ------------------------------------------------------------------------------- */

/* v's string value, or "" (never NULL, so that cmocka's string asserts print a mismatch). */
static inline const char *prod_jstr_or(json_object *v) {
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
}

/* Does array arr hold an object whose key equals value? */
static inline bool prod_jarray_has(json_object *arr, const char *key, const char *value) {
        if (!arr || !json_object_is_type(arr, json_type_array)) return false;
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                const char *s = kt_jstr(json_object_array_get_idx(arr, i), key);
                if (s && streq(s, value)) return true;
        }
        return false;
}

/* The condition of type `type` in o.status.conditions, or NULL. */
static inline json_object *prod_condition(json_object *o, const char *type) {
        json_object *conds = kt_jpath(o, "status.conditions");
        if (!conds || !json_object_is_type(conds, json_type_array)) return NULL;
        for (size_t i = 0; i < json_object_array_length(conds); i++) {
                json_object *c = json_object_array_get_idx(conds, i);
                const char *t = kt_jstr(c, "type");
                if (t && streq(t, type)) return c;
        }
        return NULL;
}

/* ---- waiting ---------------------------------------------------------------------------- */

typedef struct prod_ready_wait {
        const char *ns, *name;
        const char *want_status; /* "True" or "False" */
        const char *want_reason; /* NULL: any */
        char last[256];          /* the last seen status/reason, for messages */
} prod_ready_wait;

static inline int prod_ready_cond(void *ud) {
        prod_ready_wait *w = ud;
        json_object *o =
            kt_kjson("get pullpolicies.pullpolicy.io -n '%s' '%s' -o json", w->ns, w->name);
        if (!o) return 0;
        json_object *c = prod_condition(o, "Ready");
        const char *st = kt_jstr(c, "status"), *reason = kt_jstr(c, "reason");
        json_object *gen = kt_jpath(o, "metadata.generation");
        json_object *og = kt_jpath(o, "status.observedGeneration");
        snprintf(w->last, sizeof(w->last), "Ready=%s reason=%s generation=%d observed=%d",
                 st ? st : "-", reason ? reason : "-", gen ? json_object_get_int(gen) : -1,
                 og ? json_object_get_int(og) : -1);
        int done = st && streq(st, w->want_status) &&
                   (!w->want_reason || (reason && streq(reason, w->want_reason))) && gen && og &&
                   json_object_get_int64(gen) == json_object_get_int64(og);
        json_object_put(o);
        return done;
}

/*
 * Waits until policy ns/name reports Ready=<status> (and reason, if not NULL) for its
 * current generation. Returns the seconds it took, or a negative number on time-out (with a
 * message naming what was last seen).
 */
static inline double prod_wait_ready(const char *ns, const char *name, const char *status,
                                     const char *reason, double timeout_s) {
        prod_ready_wait w = {.ns = ns, .name = name, .want_status = status, .want_reason = reason};
        double t0 = kt_now();
        int r = testenv_wait_until(prod_ready_cond, &w, timeout_s);
        if (r < 0) {
                fprintf(stderr, "policy %s/%s: no Ready=%s%s%s after %.0f s; last: %s\n", ns, name,
                        status, reason ? " reason=" : "", reason ? reason : "", timeout_s, w.last);
                return -1;
        }
        return kt_now() - t0;
}

typedef struct prod_exists_wait {
        const char *args; /* kubectl get ARGS */
        bool want;        /* true: until it exists; false: until it is gone */
} prod_exists_wait;

static inline int prod_exists_cond(void *ud) {
        prod_exists_wait *w = ud;
        char *out = NULL;
        int r = testenv_kubectl(&out, "get %s -o name 2>&1", w->args);
        bool exists = r == 0;
        bool gone = r != 0 && out && strstr(out, "NotFound");
        free(out);
        return w->want ? exists : gone;
}

/* Waits until `kubectl get ARGS` finds (want) or no longer finds (!want) the object. */
static inline int prod_wait_exists(const char *args, bool want, double timeout_s) {
        prod_exists_wait w = {.args = args, .want = want};
        int r = testenv_wait_until(prod_exists_cond, &w, timeout_s);
        if (r < 0)
                fprintf(stderr, "kubectl get %s: still %s after %.0f s\n", args,
                        want ? "missing" : "present", timeout_s);
        return r;
}

/* ---- namespaces ------------------------------------------------------------------------- */

/* Creates a unique namespace "<prefix>-<suffix>" labelled with the run; returns its name. */
static inline char *prod_namespace(const char *prefix, const char *suffix, const char *labels) {
        char *ns = NULL;
        if (asprintf(&ns, "%s-%s", prefix, suffix) < 0) return NULL;
        int r = kt_kubectl("create namespace '%s' >/dev/null", ns);
        if (r != 0) {
                fprintf(stderr, "cannot create namespace %s\n", ns);
                free(ns);
                return NULL;
        }
        r = kt_kubectl("label namespace '%s' %s=%s %s >/dev/null", ns, PROD_LABEL_RUN, prefix,
                       labels ? labels : "");
        if (r != 0) {
                free(ns);
                return NULL;
        }
        return ns;
}

/* Deletes this run's namespaces (without waiting: kcm finishes it). */
static inline void prod_delete_namespaces(const char *prefix) {
        kt_kubectl("delete namespace -l %s=%s --wait=false >/dev/null 2>&1", PROD_LABEL_RUN,
                   prefix);
}

/*
 * Deletes the PullPolicies this run left (in its namespaces, and those named "<prefix>*"
 * in pullpolicy-system) while a controller still runs to finish them, then strips the
 * finalizer of any that remain, so that no namespace is stuck Terminating. For teardowns.
 */
static inline void prod_cleanup_policies(const char *prefix, bool controller_running) {
        char *list = kt_kout("get pullpolicies.pullpolicy.io -A -o "
                             "'jsonpath={range .items[*]}{.metadata.namespace}/"
                             "{.metadata.name}{\"\\n\"}{end}'");
        if (!list) return;
        size_t plen = strlen(prefix);
        for (int pass = 0; pass < 2; pass++) {
                if (pass == 0 && !controller_running) continue;
                char *save = NULL;
                char *copy = strdup(list);
                for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
                     l = strtok_r(NULL, "\n", &save)) {
                        char *slash = strchr(l, '/');
                        if (!slash) continue;
                        *slash = 0;
                        const char *ns = l, *name = slash + 1;
                        bool ours = strncmp(ns, prefix, plen) == 0 ||
                                    (streq(ns, PROD_NS) && strncmp(name, prefix, plen) == 0);
                        if (!ours) continue;
                        if (pass == 0)
                                kt_kubectl("delete pullpolicy.pullpolicy.io -n '%s' '%s' "
                                           "--timeout=60s >/dev/null 2>&1",
                                           ns, name);
                        else
                                kt_kubectl("patch pullpolicy.pullpolicy.io -n '%s' '%s' "
                                           "--type=merge -p '{\"metadata\":{\"finalizers\":null}}' "
                                           ">/dev/null 2>&1",
                                           ns, name);
                }
                free(copy);
        }
        free(list);
}

/* Deletes this run's Leases ("<prefix>*" in pullpolicy-system): released ones stay. */
static inline void prod_delete_leases(const char *prefix) {
        char *names = kt_kout("get leases -n " PROD_NS " -o name");
        if (!names) return;
        size_t plen = strlen(prefix);
        char *save = NULL;
        for (char *l = strtok_r(names, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                const char *slash = strrchr(l, '/');
                const char *name = slash ? slash + 1 : l;
                if (strncmp(name, prefix, plen) == 0)
                        kt_kubectl("delete lease -n " PROD_NS " '%s' >/dev/null 2>&1", name);
        }
        free(names);
}

/* The default service account of a new namespace is made by kube-controller-manager. */
static inline int prod_wait_default_sa(const char *ns) {
        char args[512];
        snprintf(args, sizeof(args), "serviceaccount default -n '%s'", ns);
        return prod_wait_exists(args, true, PROD_WAIT_S);
}

/* ---- secrets ---------------------------------------------------------------------------- */

/*
 * Applies a kubernetes.io/dockerconfigjson secret ns/name for registry `host` with user and
 * password (made up per test). The payload is never printed.
 */
static inline void prod_pull_secret(const char *ns, const char *name, const char *host,
                                    const char *user, const char *password) {
        char raw[512];
        snprintf(raw, sizeof(raw), "%s:%s", user, password);
        char *auth = NULL;
        /* base64 by hand: a few bytes, standard alphabet with padding */
        static const char tbl[] =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(raw);
        auth = calloc(1, 4 * ((n + 2) / 3) + 1);
        assert_non_null(auth);
        size_t j = 0;
        for (size_t i = 0; i < n; i += 3) {
                unsigned v = (unsigned char)raw[i] << 16;
                if (i + 1 < n) v |= (unsigned char)raw[i + 1] << 8;
                if (i + 2 < n) v |= (unsigned char)raw[i + 2];
                auth[j++] = tbl[(v >> 18) & 63];
                auth[j++] = tbl[(v >> 12) & 63];
                auth[j++] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
                auth[j++] = i + 2 < n ? tbl[v & 63] : '=';
        }
        char *yaml = NULL;
        int r = asprintf(&yaml,
                         "apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n"
                         "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                         "  .dockerconfigjson: '{\"auths\":{\"%s\":{\"auth\":\"%s\"}}}'\n",
                         name, ns, host, auth);
        free(auth);
        assert_true(r > 0);
        char *out = NULL;
        r = testenv_kubectl_input(yaml, &out, "apply -f - 2>&1");
        if (r != 0) fprintf(stderr, "cannot apply secret %s/%s (%d)\n", ns, name, r);
        free(out);
        free(yaml);
        assert_int_equal(r, 0);
}

/* ---- metrics ---------------------------------------------------------------------------- */

/* A scrape of the controller's /metrics (malloc'd), or NULL. */
static inline char *prod_scrape(const tproc *p) {
        long code = 0;
        char *body = NULL;
        if (tproc_http_get(p->metrics_port, "/metrics", &code, &body) < 0) return NULL;
        if (code != 200) {
                free(body);
                return NULL;
        }
        return body;
}

/* Sum of metric name{filter} on p's /metrics; -1 when it cannot be scraped. */
static inline double prod_metric(const tproc *p, const char *name, const char *filter) {
        char *body = prod_scrape(p);
        if (!body) return -1;
        double v = 0;
        int r = testenv_metric_sum(body, name, filter, &v);
        free(body);
        return r < 0 ? -1 : v;
}

/* ---- controller logs -------------------------------------------------------------------- */

/* Lines of file `path` that contain needle (case-insensitive), printed (at most 5). */
static inline int prod_log_grep(const char *path, const char *needle, bool print) {
        FILE *f = fopen(path, "r");
        if (!f) return -errno;
        char *line = NULL;
        size_t cap = 0;
        int n = 0;
        while (getline(&line, &cap, f) > 0) {
                if (!strcasestr(line, needle)) continue;
                if (print && n < 5) fprintf(stderr, "  %s: %s", path, line);
                n++;
        }
        free(line);
        fclose(f);
        return n;
}

#endif
