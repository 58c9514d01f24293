/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the e2e test programs (test/e2e/test_*.c). Each program is one
 * translation unit built on its own (the Makefile links only the test/support sources), so this
 * header holds static inline functions and one static suite state per program.
 *
 * A program runs ONE controller (build/pullpolicy-controller, started by
 * e2e_controller_start() in its group setup) and, usually, ONE dockercfg provisioner
 * (build/pullpolicy-sim) restricted to the program's unique namespace prefix. Every
 * namespace a test makes is "<prefix>-<suffix>" and carries the labels
 *     e2e.pullpolicy.io/suite=<suite>   (to clean up what a crashed earlier run left)
 *     e2e.pullpolicy.io/run=<prefix>    (to clean up this run)
 * so runs are independent and rerunnable against the same control plane. Everything is
 * observed with kubectl, as a user would.
 *
 * Test code: helpers assert with cmocka (they may only be called from inside a test or a
 * setup) and print diagnostics to stderr.
 */
#ifndef PP_TEST_E2E_H
#define PP_TEST_E2E_H

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

#include "kubetest.h"
#include "procs.h"
#include "util/macro.h"
#include "testenv.h"

/* Generous bounds: the controller may run under valgrind. No test asserts speed. */
#define E2E_WAIT_S         30.0
#define E2E_READY_S        120.0
#define E2E_CLEANUP_S      90.0
#define E2E_LABEL_SUITE    "e2e.pullpolicy.io/suite"
#define E2E_LABEL_RUN      "e2e.pullpolicy.io/run"
#define E2E_LABEL_HOLD     "e2e.pullpolicy.io/hold"
#define E2E_JSONPATH_READY "{.status.conditions[?(@.type==\"Ready\")]"

typedef struct e2e_state {
        const char *suite; /* "seed", "subjects", ... */
        char *prefix;      /* unique per run: "e2e-<suite>-<pid>-<salt>0" */
        tproc controller;
        bool controller_running;
        char *controller_log;
        tproc sim;
        bool sim_running;
        const char *sim_mode;  /* the suite provisioner's mode (e2e_sim_mode()), or NULL */
        bool registry_removed; /* the suite set the registry objects to removed */
        /*
         * The last e2e_wait*(): when the poll that saw the condition and the poll before it
         * started, relative to the wait's start. The change happened after wait_lo (less the
         * time a poll takes to read) and before the wait returned: polls are kubectl runs,
         * which take long on a loaded machine, so latencies are reported as such a bracket.
         */
        double wait_lo, wait_hi;
        unsigned wait_polls; /* 1: the first poll saw it (it may have happened before) */
} e2e_state;

static e2e_state E2E;

/* ---- JSON ----------------------------------------------------------------------------- */

/* How many {name: X} entries of the array at path are named name. */
static inline size_t e2e_count_name(json_object *o, const char *path, const char *name) {
        size_t c = 0;
        for (size_t i = 0; i < kt_jlen(o, path); i++) {
                const char *n = kt_jstr(kt_jidx(o, path, i), "name");
                if (n && strcmp(n, name) == 0) c++;
        }
        return c;
}

/* The first name of the array at path that starts with prefix, or NULL. */
static inline const char *e2e_find_prefix(json_object *o, const char *path, const char *prefix) {
        for (size_t i = 0; i < kt_jlen(o, path); i++) {
                const char *n = kt_jstr(kt_jidx(o, path, i), "name");
                if (n && strncmp(n, prefix, strlen(prefix)) == 0) return n;
        }
        return NULL;
}

/* Names of the array at path joined with ',' (for messages); a new string. */
static inline char *e2e_names(json_object *o, const char *path) {
        size_t cap = 1;
        for (size_t i = 0; i < kt_jlen(o, path); i++) {
                const char *n = kt_jstr(kt_jidx(o, path, i), "name");
                cap += (n ? strlen(n) : 1) + 1;
        }
        char *s = calloc(1, cap);
        assert_non_null(s);
        for (size_t i = 0; i < kt_jlen(o, path); i++) {
                const char *n = kt_jstr(kt_jidx(o, path, i), "name");
                if (i) strcat(s, ",");
                strcat(s, n ? n : "?");
        }
        return s;
}

/* ---- base64 ----------------------------------------------------------------------------- */

/* The decoded data[key] of a secret (raw text, a new string), or NULL. */
static inline char *e2e_secret_text(json_object *secret, const char *key) {
        json_object *v = kt_jget(kt_jget(secret, "data"), key);
        return v && json_object_is_type(v, json_type_string)
                   ? kt_b64decode(json_object_get_string(v))
                   : NULL;
}

/* ---- waiting ------------------------------------------------------------------------------ */

typedef struct e2e_timed {
        int (*cond)(void *);
        void *ud;
        double t0, prev_start, last_start;
        unsigned polls;
} e2e_timed;

static inline int e2e_timed_check(void *ud) {
        e2e_timed *t = ud;
        t->prev_start = t->last_start;
        t->last_start = kt_now() - t->t0;
        t->polls++;
        return t->cond(t->ud);
}

/* testenv_wait_until() that records the bracket of E2E.wait_lo / wait_hi. */
static inline int e2e_wait_until(int (*cond)(void *), void *ud, double timeout_s) {
        e2e_timed t = {.cond = cond, .ud = ud, .t0 = kt_now()};
        int r = testenv_wait_until(e2e_timed_check, &t, timeout_s);
        E2E.wait_lo = t.prev_start;
        E2E.wait_hi = kt_now() - t.t0;
        E2E.wait_polls = t.polls;
        return r;
}

typedef struct e2e_jp_cond {
        const char *cmd;
        const char *want;
        char *last;
} e2e_jp_cond;

static inline int e2e_jp_check(void *ud) {
        e2e_jp_cond *c = ud;
        free(c->last);
        c->last = kt_kout("%s", c->cmd);
        return c->last && strcmp(c->last, c->want) == 0;
}

/*
 * Polls `kubectl ARGS` (e.g. a get with -o jsonpath) until its trimmed stdout equals want;
 * fails the test, showing the last output, after timeout_s. Returns the seconds it took.
 */
__attribute__((format(printf, 3, 4))) static inline double
e2e_wait_out(double timeout_s, const char *want, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = kt_vfmt(fmt, ap);
        va_end(ap);
        assert_non_null(cmd);
        e2e_jp_cond c = {.cmd = cmd, .want = want};
        double t0 = kt_now();
        int r = e2e_wait_until(e2e_jp_check, &c, timeout_s);
        double took = kt_now() - t0;
        if (r < 0) {
                fprintf(stderr, "waited %.1f s for `kubectl %s` to print \"%s\"; last: \"%s\"\n",
                        took, cmd, want, c.last ? c.last : "(kubectl failed)");
                fprintf(stderr, "controller log: %s\n",
                        E2E.controller_log ? E2E.controller_log : "(none)");
        }
        free(c.last);
        free(cmd);
        assert_int_equal(r, 0);
        return took;
}

/* Like e2e_wait_out() but asserts the output STAYS equal to want for hold_s seconds. */
__attribute__((format(printf, 3, 4))) static inline void
e2e_hold_out(double hold_s, const char *want, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *cmd = kt_vfmt(fmt, ap);
        va_end(ap);
        assert_non_null(cmd);
        double end = kt_now() + hold_s;
        do {
                char *got = kt_kout("%s", cmd);
                if (!got || strcmp(got, want) != 0) {
                        fprintf(stderr, "`kubectl %s` printed \"%s\", expected it to stay \"%s\"\n",
                                cmd, got ? got : "(kubectl failed)", want);
                        free(got);
                        free(cmd);
                        fail();
                }
                free(got);
                kt_sleep(0.25);
        } while (kt_now() < end);
        free(cmd);
}

/* Waits until cond(ud) > 0; fails the test with what after timeout_s. Returns seconds taken. */
static inline double e2e_wait(int (*cond)(void *), void *ud, double timeout_s, const char *what) {
        double t0 = kt_now();
        int r = e2e_wait_until(cond, ud, timeout_s);
        double took = kt_now() - t0;
        if (r < 0) {
                fprintf(stderr, "timed out after %.1f s waiting for %s (controller log: %s)\n",
                        took, what, E2E.controller_log ? E2E.controller_log : "(none)");
        }
        assert_int_equal(r, 0);
        return took;
}

/* ---- objects ----------------------------------------------------------------------------- */

/*
 * Namespace `name` (a new string; outside the "<prefix>-" space, so the suite's provisioner
 * does not serve it) with the suite's labels and extra "k: v" label lines.
 */
static inline char *e2e_ns_named(const char *name, const char *extra_labels) {
        char *ns = strdup(name);
        assert_non_null(ns);
        assert_true(strlen(ns) <= 63);
        kt_apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n"
                 "    %s: %s\n    %s: %s\n%s%s",
                 ns, E2E_LABEL_SUITE, E2E.suite, E2E_LABEL_RUN, E2E.prefix,
                 extra_labels ? "    " : "", extra_labels ? extra_labels : "");
        return ns;
}

/* A new namespace "<prefix>-<suffix>" with the suite's labels and extra "k: v" label lines. */
static inline char *e2e_ns(const char *suffix, const char *extra_labels) {
        char *ns = NULL;
        assert_true(asprintf(&ns, "%s-%s", E2E.prefix, suffix) > 0);
        assert_true(strlen(ns) <= 63);
        kt_apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n"
                 "    %s: %s\n    %s: %s\n%s%s",
                 ns, E2E_LABEL_SUITE, E2E.suite, E2E_LABEL_RUN, E2E.prefix,
                 extra_labels ? "    " : "", extra_labels ? extra_labels : "");
        return ns;
}

/* Deletes a namespace without waiting (the group teardown waits for all of them). */
static inline void e2e_ns_delete(const char *ns) {
        kt_kubectl("delete namespace '%s' --ignore-not-found --wait=false >/dev/null 2>&1", ns);
}

static inline void e2e_sa_create(const char *ns, const char *name) {
        assert_int_equal(kt_kubectl("create serviceaccount '%s' -n '%s' >/dev/null", name, ns), 0);
}

/* A kubernetes.io/dockerconfigjson secret holding one registry entry. */
static inline void e2e_pull_secret(const char *ns, const char *name, const char *registry,
                                   const char *user) {
        char *up = NULL;
        assert_true(asprintf(&up, "%s:pw-%s", user, name) > 0);
        char *auth = kt_b64encode(up);
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n"
                 "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                 "  .dockerconfigjson: '{\"auths\":{\"%s\":{\"auth\":\"%s\","
                 "\"email\":\"%s@example.com\"}}}'\n",
                 name, ns, registry, auth, user);
        free(auth);
        free(up);
}

static inline json_object *e2e_get(const char *kind, const char *ns, const char *name) {
        return kt_kjson("get %s '%s' -n '%s' -o json", kind, name, ns);
}

static inline json_object *e2e_sa(const char *ns, const char *name) {
        return e2e_get("serviceaccount", ns, name);
}

/* Times `name` is listed in the SA's .imagePullSecrets ("pull") or .secrets (other). */
static inline int e2e_sa_count(const char *ns, const char *sa, const char *list, const char *name) {
        json_object *o = e2e_sa(ns, sa);
        if (!o) return -1;
        int n = (int)e2e_count_name(o, strcmp(list, "pull") == 0 ? "imagePullSecrets" : "secrets",
                                    name);
        json_object_put(o);
        return n;
}

typedef struct e2e_link_cond {
        const char *ns, *sa, *list, *secret;
        int want;
} e2e_link_cond;

static inline int e2e_link_check(void *ud) {
        e2e_link_cond *c = ud;
        return e2e_sa_count(c->ns, c->sa, c->list, c->secret) == c->want;
}

/* Waits until secret is listed want times (0 or 1) in ns/sa's list ("pull"/"mount"). */
static inline double e2e_wait_link(const char *ns, const char *sa, const char *list,
                                   const char *secret, int want, double timeout_s) {
        e2e_link_cond c = {ns, sa, list, secret, want};
        char what[512];
        snprintf(what, sizeof(what), "%s listed %d time(s) in %s/%s %s", secret, want, ns, sa,
                 list);
        return e2e_wait(e2e_link_check, &c, timeout_s, what);
}

/*
 * Creates a Pod running as service account sa (no kubelet: it stays Pending) and returns
 * the names in its spec.imagePullSecrets joined by ',' — what the ServiceAccount admission
 * plugin copied from the account.
 */
static inline char *e2e_pod_pull_secrets(const char *ns, const char *sa) {
        char *name = testenv_unique_name("pod");
        assert_non_null(name);
        kt_apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  serviceAccountName: %s\n  automountServiceAccountToken: false\n"
                 "  containers:\n  - name: c\n    image: registry.example.com/app:1\n",
                 name, ns, sa);
        json_object *p = e2e_get("pod", ns, name);
        assert_non_null(p);
        char *names = e2e_names(p, "spec.imagePullSecrets");
        json_object_put(p);
        free(name);
        return names;
}

/* Whether comma list has item. */
static inline bool e2e_csv_has(const char *list, const char *item) {
        size_t n = strlen(item);
        for (const char *p = list; p && *p;) {
                const char *e = strchr(p, ',');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len == n && strncmp(p, item, n) == 0) return true;
                p = e ? e + 1 : NULL;
        }
        return false;
}

static inline size_t e2e_csv_count(const char *list, const char *item) {
        size_t c = 0, n = strlen(item);
        for (const char *p = list; p && *p;) {
                const char *e = strchr(p, ',');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len == n && strncmp(p, item, n) == 0) c++;
                p = e ? e + 1 : NULL;
        }
        return c;
}

/* ---- policies ------------------------------------------------------------------------------- */

static inline json_object *e2e_policy(const char *ns, const char *name);

typedef struct e2e_ready_cond {
        const char *ns, *name, *status, *reason;
        char last[512];
} e2e_ready_cond;

/* "status/reason/observedGeneration/generation" of the policy's Ready condition. */
static inline int e2e_ready_check(void *ud) {
        e2e_ready_cond *c = ud;
        json_object *p = e2e_policy(c->ns, c->name);
        const char *st = NULL, *re = NULL;
        long long cg = -1;
        for (size_t i = 0; i < kt_jlen(p, "status.conditions"); i++) {
                json_object *cd = kt_jidx(p, "status.conditions", i);
                const char *t = kt_jstr(cd, "type");
                if (t && strcmp(t, "Ready") == 0) {
                        st = kt_jstr(cd, "status");
                        re = kt_jstr(cd, "reason");
                        cg = kt_jint(cd, "observedGeneration");
                }
        }
        long long og = kt_jint(p, "status.observedGeneration");
        long long g = kt_jint(p, "metadata.generation");
        snprintf(c->last, sizeof(c->last),
                 "%s/%s observedGeneration=%lld (condition %lld) "
                 "generation=%lld",
                 st ? st : "-", re ? re : "-", og, cg, g);
        int ok = p && st && re && strcmp(st, c->status) == 0 && strcmp(re, c->reason) == 0 &&
                 og == g && g > 0;
        json_object_put(p);
        return ok;
}

/*
 * Waits until the policy's Ready condition has status and reason for its current
 * generation (status.observedGeneration == metadata.generation); returns seconds taken.
 */
static inline double e2e_wait_ready(const char *ns, const char *name, const char *status,
                                    const char *reason, double timeout_s) {
        e2e_ready_cond c = {.ns = ns, .name = name, .status = status, .reason = reason};
        double t0 = kt_now();
        int r = e2e_wait_until(e2e_ready_check, &c, timeout_s);
        double took = kt_now() - t0;
        if (r < 0)
                fprintf(stderr,
                        "policy %s/%s: waited %.1f s for Ready %s/%s; last: %s "
                        "(controller log: %s)\n",
                        ns, name, took, status, reason, c.last,
                        E2E.controller_log ? E2E.controller_log : "(none)");
        assert_int_equal(r, 0);
        return took;
}

static inline double e2e_wait_applied(const char *ns, const char *name, double timeout_s) {
        return e2e_wait_ready(ns, name, "True", "Applied", timeout_s);
}

static inline json_object *e2e_policy(const char *ns, const char *name) {
        return e2e_get("pullpolicy", ns, name);
}

/* The number of events of the policy with this reason (in its namespace). */
static inline int e2e_events(const char *ns, const char *policy, const char *reason) {
        json_object *l = kt_kjson("get events -n '%s' --field-selector "
                                  "involvedObject.kind=PullPolicy,involvedObject.name=%s,"
                                  "reason=%s -o json",
                                  ns, policy, reason);
        if (!l) return -1;
        int n = (int)kt_jlen(l, "items");
        json_object_put(l);
        return n;
}

/* Deletes a policy and waits until it is gone (its finalizer done). */
static inline double e2e_policy_delete(const char *ns, const char *name) {
        assert_int_equal(kt_kubectl("delete ppol '%s' -n '%s' --wait=false >/dev/null", name, ns),
                         0);
        return e2e_wait_out(E2E_WAIT_S, "gone",
                            "get ppol '%s' -n '%s' -o name 2>/dev/null | grep -q . "
                            "&& echo present || echo gone",
                            name, ns);
}

/* ---- processes ------------------------------------------------------------------------------ */

/* `bash hack/openshift-sim.sh ARGS` with the test environment; its exit status. */
__attribute__((format(printf, 1, 2))) static inline int e2e_sim_script(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *args = kt_vfmt(fmt, ap);
        va_end(ap);
        if (!args) return -ENOMEM;
        char *cmd = NULL;
        int n = asprintf(&cmd, "PULLPOLICY_BUILD='%s' bash '%s/hack/openshift-sim.sh' %s",
                         kt_build(), kt_root(), args);
        free(args);
        if (n < 0) return -ENOMEM;
        int st = system(cmd);
        free(cmd);
        if (st < 0) return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/*
 * The simulation mode of the suite's provisioner: $PULLPOLICY_SIM_MODE (current, early416,
 * legacy, removed; hack/run-tests.sh sets it for a run "BIN@MODE"), else "current", today's
 * OpenShift. An unknown value ends the program (status 2).
 */
static inline const char *e2e_sim_mode(void) {
        static const char *const modes[] = {"current", "early416", "legacy", "removed"};
        const char *m = getenv("PULLPOLICY_SIM_MODE");
        if (!m || !*m) return "current";
        for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
                if (strcmp(m, modes[i]) == 0) return modes[i];
        fprintf(stderr, "PULLPOLICY_SIM_MODE=%s: not one of current, early416, legacy, removed\n",
                m);
        exit(2);
}

/*
 * Whether the suite's provisioner makes OpenShift's dockercfg secrets: every mode but
 * "removed" (the image registry Removed or its capability disabled: OpenShift makes none).
 */
static inline bool e2e_sim_provisions(void) {
        return E2E.sim_mode && strcmp(E2E.sim_mode, "removed") != 0;
}

/*
 * OpenShift's dockercfg secret of service account `sa` in obj's list ("imagePullSecrets" or
 * "secrets"), asserted as the suite's mode makes it: listed in every provisioning mode (current
 * lists it in both before the secret exists, early416 and legacy once it is made: the suite's
 * provisioner has no delay), and not listed when the registry is removed. Returns the name
 * (borrowed from obj) or NULL.
 */
static inline const char *e2e_assert_dockercfg(json_object *obj, const char *list, const char *sa) {
        char pfx[300];
        snprintf(pfx, sizeof(pfx), "%s-dockercfg-", sa);
        const char *n = e2e_find_prefix(obj, list, pfx);
        if (e2e_sim_provisions() != (n != NULL))
                fail_msg("mode %s: %s's dockercfg secret %s in .%s (found %s)", E2E.sim_mode, sa,
                         e2e_sim_provisions() ? "expected" : "not expected", list, n ? n : "none");
        return n;
}

/*
 * Starts build/pullpolicy-sim serving namespaces that start with "<ns_prefix>-", in mode
 * (current, early416, legacy, removed) after delay_s, with extra flags (NULL-terminated, e.g.
 * "--resync=2", "--cache-lag=2"; NULL for none); waits until it has listed the cluster.
 * Returns 0 or -1 (with a message), so that it can be used from group setups.
 */
static inline int e2e_sim_start_flags(tproc *p, const char *logname, const char *ns_prefix,
                                      const char *mode, double delay_s, const char *const *extra) {
        char bin[4096], log[4096], kc[4096], pfx[512], md[64], dl[64];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-sim", kt_build());
        snprintf(log, sizeof(log), "%s/test-logs", kt_build());
        mkdir(log, 0755);
        snprintf(log, sizeof(log), "%s/test-logs/%s.log", kt_build(), logname);
        snprintf(kc, sizeof(kc), "--kubeconfig=%s", testenv_kubeconfig());
        snprintf(pfx, sizeof(pfx), "--namespace-prefix=%s-", ns_prefix);
        snprintf(md, sizeof(md), "--mode=%s", mode);
        snprintf(dl, sizeof(dl), "--delay=%g", delay_s);
        unlink(log);
        char *argv[32] = {bin, kc, pfx, md, dl};
        size_t n = 5;
        for (size_t i = 0; extra && extra[i] && n < ARRAY_SIZE(argv) - 1; i++)
                argv[n++] = (char *)extra[i];
        argv[n] = NULL;
        if (tproc_spawn(p, log, argv) < 0) {
                fprintf(stderr, "cannot start %s\n", bin);
                return -1;
        }
        double deadline = kt_now() + E2E_WAIT_S;
        while (tproc_log_count(p, " synced", NULL) <= 0) {
                if (waitpid(p->pid, NULL, WNOHANG) == p->pid || kt_now() > deadline) {
                        fprintf(stderr, "pullpolicy-sim did not start/sync; see %s\n", log);
                        tproc_stop(p, 5);
                        return -1;
                }
                kt_sleep(0.05);
        }
        return 0;
}

static inline int e2e_sim_start(tproc *p, const char *logname, const char *ns_prefix,
                                const char *mode, double delay_s) {
        return e2e_sim_start_flags(p, logname, ns_prefix, mode, delay_s, NULL);
}

/* Stops a provisioner; 0 when it exited cleanly. */
static inline int e2e_sim_stop(tproc *p) {
        int st = tproc_stop(p, 15.0);
        if (st != 0) fprintf(stderr, "pullpolicy-sim exited with status %d\n", st);
        return st == 0 ? 0 : -1;
}

/* Starts the suite's controller with extra flags (NULL-terminated); 0 or -1. */
static inline int e2e_controller_start(const char *const *extra) {
        char name[128];
        snprintf(name, sizeof(name), "e2e-%s-controller", E2E.suite);
        free(E2E.controller_log);
        if (asprintf(&E2E.controller_log, "%s/test-logs/%s.log", kt_build(), name) < 0) return -1;
        int r = tproc_start_controller(&E2E.controller, name, extra, E2E_READY_S);
        if (r < 0) {
                fprintf(stderr, "controller did not become ready (%d); see %s\n", r,
                        E2E.controller_log);
                if (E2E.controller.pid > 0) tproc_stop(&E2E.controller, 5);
                return -1;
        }
        E2E.controller_running = true;
        return 0;
}

/* Stops the controller (SIGTERM); its exit status (0 expected), or -1 if not running. */
static inline int e2e_controller_stop(void) {
        if (!E2E.controller_running) return -1;
        E2E.controller_running = false;
        int st = tproc_stop(&E2E.controller, 30.0);
        fprintf(stderr, "controller exited with status %d (log %s)\n", st, E2E.controller_log);
        return st;
}

/* ---- suite set-up and tear-down ----------------------------------------------------------- */

/* Namespaces of the given label selector still present (any phase); -1 when kubectl failed. */
static inline int e2e_ns_left(const char *selector) {
        json_object *l = kt_kjson("get namespaces -l '%s' -o json", selector);
        if (!l) return -1;
        int n = (int)kt_jlen(l, "items");
        json_object_put(l);
        return n;
}

/*
 * Removes what an earlier, crashed run of this suite left: its policies lose their
 * finalizers (their controller is gone) and their namespaces are deleted (not awaited).
 */
static inline void e2e_clean_leftovers(void) {
        char *nss = kt_kout("get namespaces -l '%s=%s' -o jsonpath='{.items[*].metadata.name}'",
                            E2E_LABEL_SUITE, E2E.suite);
        if (!nss || !*nss) {
                free(nss);
                return;
        }
        fprintf(stderr, "cleaning up namespaces of an earlier run: %s\n", nss);
        char *save = NULL;
        for (char *ns = strtok_r(nss, " ", &save); ns; ns = strtok_r(NULL, " ", &save)) {
                char *pols = kt_kout("get ppol -n '%s' -o name", ns);
                char *s2 = NULL;
                for (char *p = pols ? strtok_r(pols, "\n", &s2) : NULL; p;
                     p = strtok_r(NULL, "\n", &s2))
                        kt_kubectl("patch -n '%s' '%s' --type=merge "
                                   "-p '{\"metadata\":{\"finalizers\":null}}' >/dev/null 2>&1",
                                   ns, p);
                free(pols);
                e2e_ns_delete(ns);
        }
        free(nss);
}

/*
 * The common part of a group setup: the control plane answers, the OpenShift simulation
 * (system:image-puller, image.openshift.io, openshift-config/pull-secret) and the CRD are
 * installed, a unique prefix is chosen, leftovers of earlier runs are removed and, when
 * sim_mode is not NULL (pass e2e_sim_mode()), a provisioner serves "<prefix>-*" namespaces in
 * that mode. For "removed" the registry objects say so too (hack/openshift-sim.sh registry
 * DIR removed; the teardown sets them back to managed: the control plane is shared). The
 * caller then starts the controller with the flags it needs.
 */
static inline int e2e_suite_setup(void **state, const char *suite, const char *sim_mode) {
        if (testenv_group_setup(state) < 0) return -1;
        E2E.suite = suite;
        E2E.prefix = NULL;
        char p[64];
        snprintf(p, sizeof(p), "e2e-%s", suite);
        E2E.prefix = testenv_unique_name(p);
        if (!E2E.prefix) return -1;
        if (e2e_sim_script("install '%s' >/dev/null 2>&1", testenv_dir()) != 0) {
                fprintf(stderr, "hack/openshift-sim.sh install failed\n");
                return -1;
        }
        char crd[4096];
        snprintf(crd, sizeof(crd), "%s/crds/pullpolicy.io_pullpolicies.yaml", kt_root());
        if (kt_kubectl("apply --server-side --force-conflicts -f '%s' >/dev/null", crd) != 0 ||
            kt_kubectl("wait --for=condition=Established --timeout=60s "
                       "crd/pullpolicies.pullpolicy.io >/dev/null") != 0) {
                fprintf(stderr, "cannot install the CRD %s\n", crd);
                return -1;
        }
        e2e_clean_leftovers();
        E2E.sim_mode = sim_mode;
        if (sim_mode && strcmp(sim_mode, "removed") == 0) {
                E2E.registry_removed = true;
                if (e2e_sim_script("registry '%s' removed >/dev/null 2>&1", testenv_dir()) != 0) {
                        fprintf(stderr, "hack/openshift-sim.sh registry removed failed\n");
                        return -1;
                }
        }
        if (sim_mode) {
                fprintf(stderr, "suite %s: OpenShift simulation mode %s\n", suite, sim_mode);
                char log[128];
                snprintf(log, sizeof(log), "e2e-%s-sim", suite);
                if (e2e_sim_start(&E2E.sim, log, E2E.prefix, sim_mode, 0) < 0) return -1;
                E2E.sim_running = true;
        }
        return 0;
}

/*
 * Tests keep a namespace Terminating with a ConfigMap labelled E2E_LABEL_HOLD=true that
 * carries a finalizer; this releases every such hold (also those of a failed test).
 */
static inline void e2e_release_holds(void) {
        char *l = kt_kout("get configmaps -A -l '" E2E_LABEL_HOLD "=true' -o "
                          "jsonpath='{range .items[*]}{.metadata.namespace} "
                          "{.metadata.name}{\"\\n\"}{end}'");
        char *save = NULL;
        for (char *line = l ? strtok_r(l, "\n", &save) : NULL; line;
             line = strtok_r(NULL, "\n", &save)) {
                char ns[256], name[256];
                if (sscanf(line, "%255s %255s", ns, name) != 2) continue;
                kt_kubectl("patch configmap '%s' -n '%s' --type=merge "
                           "-p '{\"metadata\":{\"finalizers\":null}}' >/dev/null 2>&1",
                           name, ns);
        }
        free(l);
}

/*
 * The common group teardown: deletes this run's namespaces and waits until they are gone
 * (the controller must still run: policies carry its finalizer), then stops the controller
 * and the provisioner. Returns -1 (failing the group) when the controller did not exit with
 * status 0 (under $PULLPOLICY_CONTROLLER_WRAPPER=valgrind: leaks or memory errors) or when
 * namespaces stayed behind.
 */
static inline int e2e_suite_teardown(void **state) {
        int ret = 0, left = 0;
        char sel[256];
        if (E2E.prefix && testenv_dir()) {
                snprintf(sel, sizeof(sel), "%s=%s", E2E_LABEL_RUN, E2E.prefix);
                kt_kubectl("delete namespaces -l '%s' --wait=false >/dev/null 2>&1", sel);
                e2e_release_holds();
                double deadline = kt_now() + E2E_CLEANUP_S;
                while ((left = e2e_ns_left(sel)) > 0 && kt_now() < deadline) kt_sleep(0.5);
        }
        if (left != 0) {
                fprintf(stderr, "%d namespace(s) of %s still present after %.0f s\n", left, sel,
                        E2E_CLEANUP_S);
                ret = -1;
        }
        if (E2E.controller_running) {
                int st = e2e_controller_stop();
                if (st != 0) {
                        fprintf(stderr, "the controller's exit status is %d, expected 0\n", st);
                        ret = -1;
                }
        }
        if (E2E.sim_running) {
                E2E.sim_running = false;
                if (e2e_sim_stop(&E2E.sim) < 0) ret = -1;
        }
        if (E2E.registry_removed) {
                E2E.registry_removed = false;
                if (e2e_sim_script("registry '%s' managed >/dev/null 2>&1", testenv_dir()) != 0) {
                        fprintf(stderr, "hack/openshift-sim.sh registry managed failed\n");
                        ret = -1;
                }
        }
        if (left > 0) e2e_clean_leftovers();
        free(E2E.prefix);
        E2E.prefix = NULL;
        free(E2E.controller_log);
        E2E.controller_log = NULL;
        return ret;
}

#endif
