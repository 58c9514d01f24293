/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R4 against each form of OpenShift's per-service-account pull secret, as the
 * simulation (build/pullpolicy-sim, test/sim) reproduces openshift-controller-manager:
 *
 *  - test_long_name_legacy: before 4.16 a name of 48+ characters gets the hashed secret
 *    name "<first 38>-<fnv32a>-dockercfg-<5>"; the account is linked within a second of
 *    being provisioned, and no DockercfgTimeout follows.
 *  - test_current_sequence: 4.16+ lists the name (annotation, .secrets, .imagePullSecrets,
 *    one write) BEFORE the secret exists, then creates it empty and fills it later: the
 *    account counts as provisioned from that write and is linked while the secret is still
 *    absent or empty.
 *  - test_registry_removed: the image-registry ClusterOperator says Removed, or the
 *    ImageRegistry capability is disabled: Auto does not wait (a new account is linked at
 *    once although nothing provisions it), status.dockercfgForm says RegistryRemoved, and
 *    setting the registry back to managed re-plans without a restart.
 *  - test_unguarded_writer: a tool that force-applies the whole .imagePullSecrets list:
 *    a link it drops is put back within a second; a link it puts back after the
 *    controller removed it (policy deleted) is removed again within a second; the
 *    controller's writes stop.
 *  - test_early416_race: the simulation's early 4.16 writer (forced apply of its cached
 *    list at every event and every second, --cache-lag 1) and, on top, a stale writer in the
 *    test (every second, the list as it was a second ago, force-applied) race the controller
 *    for 60 s while policies are created, changed and deleted: the final state is exactly
 *    the policy, and the controller's writes to service accounts are bounded and stop. (The
 *    simulation's lag alone changed the list only a few times a minute: too weak a race.)
 *
 * Each test runs its own provisioner on its own namespace prefix. Latencies are measured
 * by polling the API server with the C client every 20 ms (kubectl is too slow for a
 * one-second bound); under $PULLPOLICY_CONTROLLER_WRAPPER (valgrind) the bounds are x10.
 */
#include <ev.h>

#include "e2e.h"
#include "kubeclient.h"

#define SIM_LOG_MAX 4096

static struct {
        struct ev_loop *loop;
        kube_config *cfg;
        kube_client *client;
        tproc sim;
        bool sim_running;
        bool registry_changed; /* the registry objects must be set back to managed */
} T;

/* One second, or ten under a wrapper such as valgrind. */
static double bound_s(void) {
        const char *w = getenv("PULLPOLICY_CONTROLLER_WRAPPER");
        return w && *w ? 10.0 : 1.0;
}

/* ---- the API server, directly --------------------------------------------------------- */

typedef struct sync_resp {
        bool done;
        int error;
        char *body;
} sync_resp;

static void sync_done(kube_client *c, const kube_response *r, void *ud) {
        sync_resp *s = ud;
        s->done = true;
        s->error = r->error;
        if (r->body) s->body = strndup(r->body, r->body_len);
}

/* GET path; the object, or NULL (404 or another failure). */
static json_object *api_get(const char *path) {
        sync_resp s = {0};
        kube_request_opts o = {.method = KUBE_GET,
                               .path = path,
                               .timeout_ms = 10000,
                               .on_done = sync_done,
                               .userdata = &s};
        if (kube_client_request(T.client, &o, NULL) < 0) return NULL;
        while (!s.done) ev_run(T.loop, EVRUN_ONCE);
        json_object *j = s.error == 0 && s.body ? json_tokener_parse(s.body) : NULL;
        free(s.body);
        return j;
}

static json_object *get_sa(const char *ns, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/serviceaccounts/%s", ns, name);
        return api_get(path);
}

static json_object *get_secret(const char *ns, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", ns, name);
        return api_get(path);
}

/* ---- the provisioner ------------------------------------------------------------------ */

/* Starts pullpolicy-sim for "<prefix>-<sub>-*" namespaces with mode and extra flags. */
static void sim_start(const char *sub, const char *mode, const char *const *extra) {
        char bin[4096], log[4096], kc[4096], pfx[512], md[64];
        snprintf(bin, sizeof(bin), "%s/pullpolicy-sim", kt_build());
        snprintf(log, sizeof(log), "%s/test-logs", kt_build());
        mkdir(log, 0755);
        snprintf(log, sizeof(log), "%s/test-logs/e2e-openshift-sim-%s.log", kt_build(), sub);
        snprintf(kc, sizeof(kc), "--kubeconfig=%s", testenv_kubeconfig());
        snprintf(pfx, sizeof(pfx), "--namespace-prefix=%s-%s-", E2E.prefix, sub);
        snprintf(md, sizeof(md), "--mode=%s", mode);
        char *argv[32] = {bin, kc, pfx, md};
        size_t n = 4;
        for (size_t i = 0; extra && extra[i] && n < 31; i++) argv[n++] = (char *)extra[i];
        argv[n] = NULL;
        unlink(log);
        assert_int_equal(tproc_spawn(&T.sim, log, argv), 0);
        T.sim_running = true;
        double deadline = kt_now() + E2E_WAIT_S;
        while (tproc_log_count(&T.sim, " synced", NULL) <= 0) {
                if (waitpid(T.sim.pid, NULL, WNOHANG) == T.sim.pid || kt_now() > deadline)
                        fail_msg("pullpolicy-sim did not start/sync; see %s", log);
                kt_sleep(0.05);
        }
}

static void sim_stop(void) {
        if (!T.sim_running) return;
        T.sim_running = false;
        assert_int_equal(tproc_stop(&T.sim, 15.0), 0);
}

static int test_teardown(void **state) {
        if (T.sim_running) {
                T.sim_running = false;
                tproc_stop(&T.sim, 15.0);
        }
        if (T.registry_changed) {
                e2e_sim_script("registry '%s' managed >/dev/null 2>&1", testenv_dir());
                T.registry_changed = false;
        }
        return 0;
}

/* ---- helpers ---------------------------------------------------------------------------- */

/* FNV-1a 32, computed here apart from the controller's code. */
static uint32_t fnv1a32(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 16777619u;
        }
        return h;
}

static bool list_has(json_object *sa, const char *list, const char *name) {
        return e2e_count_name(sa, list, name) > 0;
}

/* The account's own pull secret when OpenShift has put it in place, as R4 defines it. */
static const char *provisioned_name(json_object *sa, const char *prefix) {
        const char *ref = kt_annotation(sa, "openshift.io/internal-registry-pull-secret-ref");
        if (ref && *ref && list_has(sa, "imagePullSecrets", ref)) return ref;
        const char *s = prefix ? e2e_find_prefix(sa, "secrets", prefix) : NULL;
        return s && list_has(sa, "imagePullSecrets", s) ? s : NULL;
}

static void apply_policy(const char *ns, const char *name, const char *secrets_yaml,
                         const char *extra) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n%s%s",
                 name, ns, secrets_yaml, extra ? extra : "");
}

static char *policy_form(const char *ns, const char *name) {
        return kt_kout("get ppol '%s' -n '%s' -o jsonpath='{.status.dockercfgForm}'", name, ns);
}

/* pullpolicy_writes_total{resource="serviceaccounts"} of the suite's controller; -1 if unread. */
static double sa_writes(void) {
        long code = 0;
        char *body = NULL;
        double v = -1;
        if (tproc_http_get(E2E.controller.metrics_port, "/metrics", &code, &body) == 0 &&
            code == 200 && body &&
            testenv_metric_sum(body, "pullpolicy_writes_total", "resource=\"serviceaccounts\"",
                               &v) < 0)
                v = -1;
        free(body);
        return v;
}

/* The names of ns/sa's .imagePullSecrets, sorted, joined by ','. */
static char *pull_names_sorted(const char *ns, const char *sa) {
        return kt_kout("get sa '%s' -n '%s' -o jsonpath='{range .imagePullSecrets[*]}{.name}"
                       "{\"\\n\"}{end}' | LC_ALL=C sort | paste -sd, -",
                       sa, ns);
}

/* ---- 1. long names, before 4.16 ------------------------------------------------------ */

#define LONG_SA "pipeline-service-account-for-the-nightly-image-builds-xyz" /* 57 */

static void test_long_name_legacy(void **state) {
        assert_int_equal(strlen(LONG_SA), 57);
        static const char *const extra[] = {"--delay=2", NULL};
        sim_start("long", "legacy", extra);
        char *ns = e2e_ns("long-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.long.example.com", "lg");
        /* a short timeout makes a false DockercfgTimeout visible within the test */
        apply_policy(ns, "long", "  - name: creds\n",
                     "  dockercfg:\n    wait: Auto\n    timeoutSeconds: 20\n");
        e2e_wait_applied(ns, "long", E2E_WAIT_S);
        e2e_sa_create(ns, LONG_SA);

        char prefix[128];
        snprintf(prefix, sizeof(prefix), "%.38s-%08x-dockercfg-", LONG_SA, fnv1a32(LONG_SA));
        double t0 = kt_now(), provisioned = -1, linked = -1;
        char dcfg[256] = "";
        while (kt_now() - t0 < E2E_WAIT_S + 20) {
                json_object *sa = get_sa(ns, LONG_SA);
                assert_non_null(sa);
                const char *p = provisioned_name(sa, prefix);
                double now = kt_now() - t0;
                if (p && provisioned < 0) {
                        provisioned = now;
                        snprintf(dcfg, sizeof(dcfg), "%s", p);
                }
                bool l = list_has(sa, "imagePullSecrets", "creds");
                json_object_put(sa);
                if (l) {
                        linked = now;
                        break;
                }
                kt_sleep(0.02);
        }
        fprintf(stderr, "%s: provisioned as %s at %.2f s, linked at %.2f s\n", LONG_SA, dcfg,
                provisioned, linked);
        assert_true(provisioned >= 0);
        assert_true(strncmp(dcfg, prefix, strlen(prefix)) == 0); /* the hashed form */
        assert_true(linked >= 0);
        assert_true(linked - provisioned <= bound_s());
        e2e_wait_applied(ns, "long", E2E_WAIT_S);
        assert_int_equal(e2e_events(ns, "long", "DockercfgTimeout"), 0);
        char *form = policy_form(ns, "long");
        assert_string_equal(form, "InternalRegistry");
        free(form);

        e2e_policy_delete(ns, "long");
        e2e_ns_delete(ns);
        free(ns);
        sim_stop();
}

/* ---- 2. current 4.16+ ------------------------------------------------------------------ */

static void test_current_sequence(void **state) {
        /* the secret stays empty ({}) for 6 s after the account lists it */
        static const char *const extra[] = {"--delay=6", NULL};
        sim_start("cur", "current", extra);
        char *ns = e2e_ns("cur-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.cur.example.com", "cu");
        apply_policy(ns, "cur", "  - name: creds\n", NULL);
        e2e_wait_applied(ns, "cur", E2E_WAIT_S);
        e2e_sa_create(ns, "deployer");

        double t0 = kt_now(), provisioned = -1, linked = -1;
        char ref[256] = "", secret_state[64] = "";
        while (kt_now() - t0 < E2E_WAIT_S) {
                json_object *sa = get_sa(ns, "deployer");
                assert_non_null(sa);
                const char *p = provisioned_name(sa, NULL);
                double now = kt_now() - t0;
                if (p && provisioned < 0) {
                        provisioned = now;
                        snprintf(ref, sizeof(ref), "%s", p);
                        /* 4.16+: listed in both lists by that one write */
                        assert_true(list_has(sa, "secrets", p));
                }
                bool l = list_has(sa, "imagePullSecrets", "creds");
                json_object_put(sa);
                if (l) {
                        linked = now;
                        /* the secret as it is when the link is seen */
                        json_object *sec = *ref ? get_secret(ns, ref) : NULL;
                        if (!sec)
                                snprintf(secret_state, sizeof(secret_state), "absent");
                        else {
                                char *d = e2e_secret_text(sec, ".dockercfg");
                                const char *b = kt_annotation(
                                    sec, "openshift.io/internal-registry-auth-token.binding");
                                snprintf(secret_state, sizeof(secret_state), "%s",
                                         b                           ? "filled"
                                         : d && strcmp(d, "{}") == 0 ? "empty {}"
                                                                     : "other");
                                free(d);
                                json_object_put(sec);
                        }
                        break;
                }
                kt_sleep(0.02);
        }
        fprintf(stderr, "deployer: listed %s at %.2f s, linked at %.2f s; secret then: %s\n", ref,
                provisioned, linked, secret_state);
        assert_true(provisioned >= 0);
        assert_true(linked >= 0);
        assert_true(linked - provisioned <= bound_s());
        /* linked before OpenShift filled its secret: the secret's state is not waited for */
        assert_true(strcmp(secret_state, "absent") == 0 || strcmp(secret_state, "empty {}") == 0);

        /* then filled; the link stays, once, next to OpenShift's own entry */
        e2e_wait_out(E2E_WAIT_S, "bound",
                     "get secret '%s' -n '%s' -o jsonpath='{.metadata.annotations."
                     "openshift\\.io/internal-registry-auth-token\\.binding}'",
                     ref, ns);
        assert_int_equal(e2e_sa_count(ns, "deployer", "pull", "creds"), 1);
        assert_int_equal(e2e_sa_count(ns, "deployer", "pull", ref), 1);
        e2e_wait_applied(ns, "cur", E2E_WAIT_S);
        assert_int_equal(e2e_events(ns, "cur", "DockercfgTimeout"), 0);

        e2e_policy_delete(ns, "cur");
        e2e_ns_delete(ns);
        free(ns);
        sim_stop();
}

/* ---- 3. registry removed / capability disabled ------------------------------------------ */

/* A new account in ns is linked at once (bound_s() + a kubectl round) without provisioning. */
static void linked_at_once(const char *ns, const char *sa_name) {
        e2e_sa_create(ns, sa_name);
        double t0 = kt_now(), linked = -1;
        while (kt_now() - t0 < E2E_WAIT_S) {
                json_object *sa = get_sa(ns, sa_name);
                if (sa && list_has(sa, "imagePullSecrets", "creds")) {
                        assert_null(provisioned_name(sa, NULL));
                        linked = kt_now() - t0;
                }
                json_object_put(sa);
                if (linked >= 0) break;
                kt_sleep(0.02);
        }
        fprintf(stderr, "%s/%s linked %.2f s after it was made (nothing provisions it)\n", ns,
                sa_name, linked);
        assert_true(linked >= 0);
        /* creation is a kubectl run: allow it on top of the bound */
        assert_true(linked <= bound_s() + 2.0);
}

static void test_registry_removed(void **state) {
        static const char *const extra[] = {"--cleanup-min-age=0", NULL};
        T.registry_changed = true;
        assert_int_equal(e2e_sim_script("registry '%s' removed >/dev/null", testenv_dir()), 0);
        sim_start("rm", "removed", extra);
        char *ns = e2e_ns("rm-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.rm.example.com", "rm");
        /* the default timeout (300 s): waiting would show as a missing link */
        apply_policy(ns, "rm", "  - name: creds\n", NULL);
        e2e_wait_applied(ns, "rm", E2E_WAIT_S);
        /* the controller's watch has seen the state (a log line; the assertions follow) */
        double t0 = kt_now();
        while (tproc_log_count(&E2E.controller, "\"dockercfgForm\":\"RegistryRemoved\"", NULL) <
                   1 &&
               kt_now() - t0 < E2E_WAIT_S)
                kt_sleep(0.05);
        linked_at_once(ns, "fresh");
        e2e_wait_out(E2E_WAIT_S, "RegistryRemoved",
                     "get ppol rm -n '%s' -o jsonpath='{.status.dockercfgForm}'", ns);
        e2e_wait_applied(ns, "rm", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "0",
                     "get ppol rm -n '%s' -o jsonpath='{.status.waitingServiceAccounts}'", ns);
        assert_int_equal(e2e_events(ns, "rm", "WaitingForDockercfg"), 0);

        /* the capability disabled (no ClusterOperator at all): the same */
        assert_int_equal(
            e2e_sim_script("registry '%s' capability-disabled >/dev/null", testenv_dir()), 0);
        linked_at_once(ns, "fresh2");
        char *form = policy_form(ns, "rm");
        assert_string_equal(form, "RegistryRemoved");
        free(form);

        /* the registry back: re-planned without a restart, a new account waits again */
        assert_int_equal(e2e_sim_script("registry '%s' managed >/dev/null", testenv_dir()), 0);
        T.registry_changed = false;
        e2e_wait_out(E2E_WAIT_S, "InternalRegistry",
                     "get ppol rm -n '%s' -o jsonpath='{.status.dockercfgForm}'", ns);
        e2e_sa_create(ns, "after");
        e2e_wait_ready(ns, "rm", "False", "Waiting", E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(ns, "after", "pull", "creds"), 0);
        /* the controller said what it detected, each time */
        assert_true(
            tproc_log_count(&E2E.controller, "\"dockercfgForm\":\"RegistryRemoved\"", NULL) >= 1);
        assert_true(
            tproc_log_count(&E2E.controller, "\"dockercfgForm\":\"InternalRegistry\"", NULL) >= 1);

        e2e_policy_delete(ns, "rm");
        e2e_ns_delete(ns);
        free(ns);
        sim_stop();
}

/* ---- 4. unguarded writers ---------------------------------------------------------------- */

/* A tool that server-side applies the whole .imagePullSecrets list with force. */
static void rogue_apply(const char *ns, const char *sa, const char *names_yaml) {
        char *f = NULL;
        assert_true(asprintf(&f, "%s/rogue-%d.yaml", kt_build(), (int)getpid()) > 0);
        FILE *fp = fopen(f, "w");
        assert_non_null(fp);
        fprintf(fp,
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: %s\n  namespace: %s\n"
                "imagePullSecrets: %s\n",
                sa, ns, names_yaml);
        fclose(fp);
        assert_int_equal(kt_kubectl("apply --server-side --force-conflicts "
                                    "--field-manager=rogue-writer -f '%s' >/dev/null",
                                    f),
                         0);
        unlink(f);
        free(f);
}

/* Seconds until creds is listed want times in ns/sa (polled every 20 ms); -1 on timeout. */
static double until_link(const char *ns, const char *sa_name, int want, double timeout_s) {
        double t0 = kt_now();
        while (kt_now() - t0 < timeout_s) {
                json_object *sa = get_sa(ns, sa_name);
                int n = sa ? (int)e2e_count_name(sa, "imagePullSecrets", "creds") : -1;
                json_object_put(sa);
                if (n == want) return kt_now() - t0;
                kt_sleep(0.02);
        }
        return -1;
}

static void test_unguarded_writer(void **state) {
        char *ns = e2e_ns("rogue-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.rogue.example.com", "rg");
        e2e_sa_create(ns, "app");
        apply_policy(ns, "p", "  - name: creds\n",
                     "  subjects:\n    serviceAccounts: [app]\n  dockercfg:\n    wait: Never\n");
        e2e_wait_link(ns, "app", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_applied(ns, "p", E2E_WAIT_S);
        double w0 = sa_writes();

        /* the writer drops the link: put back within a second */
        rogue_apply(ns, "app", "[]");
        double back = until_link(ns, "app", 1, E2E_WAIT_S);
        fprintf(stderr, "dropped link back after %.2f s\n", back);
        assert_true(back >= 0 && back <= bound_s());

        /* the policy goes: the link goes */
        e2e_policy_delete(ns, "p");
        e2e_wait_link(ns, "app", "pull", "creds", 0, E2E_WAIT_S);
        /* the writer puts it back from its stale copy: removed again within a second */
        rogue_apply(ns, "app", "[{name: creds}]");
        double gone = until_link(ns, "app", 0, E2E_WAIT_S);
        fprintf(stderr, "resurrected link removed again after %.2f s\n", gone);
        assert_true(gone >= 0 && gone <= bound_s());
        /* and it stays away */
        e2e_hold_out(3.0, "0", "get sa app -n '%s' -o json | grep -c '\"name\": \"creds\"' || true",
                     ns);
        double w1 = sa_writes();
        e2e_hold_out(2.0, "0", "get sa app -n '%s' -o json | grep -c '\"name\": \"creds\"' || true",
                     ns);
        double w2 = sa_writes();
        fprintf(stderr,
                "controller writes to service accounts: %.0f before, %.0f after, %.0f 2 s "
                "later\n",
                w0, w1, w2);
        /* re-link, unlink, remove again: three writes; then nothing */
        assert_true(w1 - w0 <= 4);
        assert_true(w2 == w1);
        assert_true(tproc_log_count(&E2E.controller, "removing again a link", NULL) >= 1);

        e2e_ns_delete(ns);
        free(ns);
}

/* ---- 5. early 4.16's writer racing the controller for 60 s ------------------------------ */

#define RACE_S     60.0
#define LAG_S      1.0 /* the stale writer's view: the account as it was this long ago */
#define HISTORY    256
#define RACE_SAS   3
#define NAMES_TEXT 1024

/*
 * A second unguarded writer, in the test, on top of the simulation's: every second it
 * force-applies (server-side apply, no resourceVersion) each account's .imagePullSecrets
 * as the account was LAG_S ago, when that differs from now. It drops links just added and
 * puts back links just removed, every time the policies change, whatever the simulation's
 * own timing does.
 */
typedef struct stale_writer {
        const char *ns;
        const char *const *sas;
        double t[RACE_SAS][HISTORY];
        char names[RACE_SAS][HISTORY][NAMES_TEXT]; /* "a,b," in list order */
        size_t n[RACE_SAS];
        double next_tick;
        unsigned writes;
} stale_writer;

static void names_of(json_object *sa, char *buf, size_t size) {
        size_t off = 0;
        buf[0] = 0;
        for (size_t i = 0; i < kt_jlen(sa, "imagePullSecrets"); i++) {
                const char *n = kt_jstr(kt_jidx(sa, "imagePullSecrets", i), "name");
                int k = snprintf(buf + off, size - off, "%s,", n ? n : "");
                if (k < 0 || (size_t)k >= size - off) break;
                off += (size_t)k;
        }
}

static void api_apply_pull(const char *ns, const char *sa, const char *names) {
        char path[512];
        snprintf(path, sizeof(path),
                 "/api/v1/namespaces/%s/serviceaccounts/%s?fieldManager=stale-writer&force=true",
                 ns, sa);
        char body[4096];
        int off = snprintf(body, sizeof(body),
                           "{\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"metadata\":{"
                           "\"name\":\"%s\",\"namespace\":\"%s\"},\"imagePullSecrets\":[",
                           sa, ns);
        char copy[NAMES_TEXT];
        snprintf(copy, sizeof(copy), "%s", names);
        bool first = true;
        for (char *save = NULL, *n = strtok_r(copy, ",", &save); n;
             n = strtok_r(NULL, ",", &save)) {
                off += snprintf(body + off, sizeof(body) - (size_t)off, "%s{\"name\":\"%s\"}",
                                first ? "" : ",", n);
                first = false;
        }
        snprintf(body + off, sizeof(body) - (size_t)off, "]}");
        sync_resp r = {0};
        kube_request_opts o = {.method = KUBE_PATCH,
                               .patch_type = KUBE_PATCH_APPLY,
                               .path = path,
                               .body = body,
                               .body_len = strlen(body),
                               .timeout_ms = 10000,
                               .on_done = sync_done,
                               .userdata = &r};
        assert_int_equal(kube_client_request(T.client, &o, NULL), 0);
        while (!r.done) ev_run(T.loop, EVRUN_ONCE);
        free(r.body);
        if (r.error != 0) fprintf(stderr, "stale writer: apply %s/%s: %d\n", ns, sa, r.error);
}

/* Samples every account; at each tick, writes the stale views that differ. */
static void stale_writer_step(stale_writer *w) {
        double now = kt_now();
        char cur[RACE_SAS][NAMES_TEXT];
        for (size_t i = 0; i < RACE_SAS; i++) {
                json_object *sa = get_sa(w->ns, w->sas[i]);
                assert_non_null(sa);
                names_of(sa, cur[i], sizeof(cur[i]));
                json_object_put(sa);
                if (w->n[i] == HISTORY) {
                        memmove(w->t[i], w->t[i] + 1, (HISTORY - 1) * sizeof(double));
                        memmove(w->names[i], w->names[i] + 1, (HISTORY - 1) * NAMES_TEXT);
                        w->n[i]--;
                }
                w->t[i][w->n[i]] = now;
                memcpy(w->names[i][w->n[i]], cur[i], NAMES_TEXT);
                w->n[i]++;
        }
        if (now < w->next_tick) return;
        w->next_tick = now + 1.0;
        for (size_t i = 0; i < RACE_SAS; i++) {
                ssize_t v = -1;
                for (size_t k = 0; k < w->n[i]; k++)
                        if (w->t[i][k] <= now - LAG_S) v = (ssize_t)k;
                if (v < 0 || strcmp(w->names[i][v], cur[i]) == 0) continue;
                api_apply_pull(w->ns, w->sas[i], w->names[i][v]);
                w->writes++;
        }
}

/* Runs the stale writer (sampling every 50 ms) for s seconds. */
static void stale_writer_run(stale_writer *w, double s) {
        double end = kt_now() + s;
        while (kt_now() < end) {
                stale_writer_step(w);
                kt_sleep(0.05);
        }
}

static void test_early416_race(void **state) {
        static const char *const extra[] = {"--resync=1", "--cache-lag=1", NULL};
        sim_start("race", "early416", extra);
        char *ns = e2e_ns("race-n", NULL);
        static const char *const secrets[] = {"creds-a", "creds-b", "creds-c"};
        for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
                e2e_pull_secret(ns, secrets[i], "registry.race.example.com", "rc");
        static const char *const sas[RACE_SAS] = {"default", "app1", "app2"};
        e2e_sa_create(ns, "app1");
        e2e_sa_create(ns, "app2");
        /* every account provisioned by the simulation first */
        for (size_t i = 0; i < RACE_SAS; i++)
                e2e_wait_out(E2E_WAIT_S, "yes",
                             "get sa '%s' -n '%s' -o json | grep -q "
                             "'internal-registry-pull-secret-ref' && echo yes || echo no",
                             sas[i], ns);
        double w0 = sa_writes();
        stale_writer *sw = calloc(1, sizeof(*sw));
        assert_non_null(sw);
        sw->ns = ns;
        sw->sas = sas;

        /* toggle: p1 created/deleted, p2 changed between creds-b, creds-c and both */
        static const char *const never = "  dockercfg:\n    wait: Never\n";
        double t0 = kt_now(), next_toggle = t0;
        unsigned step = 0;
        while (kt_now() - t0 < RACE_S) {
                if (kt_now() >= next_toggle) {
                        switch (step % 4) {
                        case 0:
                                apply_policy(ns, "p1", "  - name: creds-a\n", never);
                                break;
                        case 1:
                                apply_policy(ns, "p2",
                                             step % 8 == 1 ? "  - name: creds-b\n"
                                                           : "  - name: creds-c\n",
                                             never);
                                break;
                        case 2:
                                kt_kubectl("delete ppol p1 -n '%s' --wait=false >/dev/null 2>&1",
                                           ns);
                                break;
                        case 3:
                                apply_policy(ns, "p2", "  - name: creds-b\n  - name: creds-c\n",
                                             never);
                                break;
                        }
                        step++;
                        next_toggle = kt_now() + 0.7;
                }
                stale_writer_step(sw);
                kt_sleep(0.05);
        }
        /* the final policy, p1 gone and p2 = creds-c, raced by the stale writer once more */
        apply_policy(ns, "p1", "  - name: creds-a\n", never);
        apply_policy(ns, "p2", "  - name: creds-b\n  - name: creds-c\n", never);
        stale_writer_run(sw, 2.0);
        kt_kubectl("delete ppol p1 -n '%s' --wait=false >/dev/null 2>&1", ns);
        apply_policy(ns, "p2", "  - name: creds-c\n", never);
        stale_writer_run(sw, 3.0 * LAG_S);
        double w_race = sa_writes();
        unsigned stale_writes = sw->writes;
        free(sw);
        e2e_wait_out(E2E_WAIT_S, "gone",
                     "get ppol p1 -n '%s' -o name 2>/dev/null | grep -q . && echo present || "
                     "echo gone",
                     ns);
        e2e_wait_applied(ns, "p2", E2E_WAIT_S);
        for (size_t i = 0; i < RACE_SAS; i++) {
                json_object *sa = get_sa(ns, sas[i]);
                assert_non_null(sa);
                const char *ref =
                    kt_annotation(sa, "openshift.io/internal-registry-pull-secret-ref");
                assert_non_null(ref);
                char want[512];
                snprintf(want, sizeof(want), "%s,%s", strcmp(ref, "creds-c") < 0 ? ref : "creds-c",
                         strcmp(ref, "creds-c") < 0 ? "creds-c" : ref);
                json_object_put(sa);
                /* exactly the policy plus OpenShift's own entry, over several resyncs */
                e2e_wait_out(E2E_WAIT_S, want,
                             "get sa '%s' -n '%s' -o jsonpath='{range .imagePullSecrets[*]}"
                             "{.name}{\"\\n\"}{end}' | LC_ALL=C sort | paste -sd, -",
                             sas[i], ns);
                e2e_hold_out(3.0, want,
                             "get sa '%s' -n '%s' -o jsonpath='{range .imagePullSecrets[*]}"
                             "{.name}{\"\\n\"}{end}' | LC_ALL=C sort | paste -sd, -",
                             sas[i], ns);
                char *got = pull_names_sorted(ns, sas[i]);
                fprintf(stderr, "%s/%s final .imagePullSecrets: %s\n", ns, sas[i], got);
                free(got);
        }
        double w_end = sa_writes();
        /* writes stop: nothing more over several of the simulation's resyncs */
        kt_sleep(4.0);
        double w_quiet = sa_writes();
        long sim_diff = tproc_log_count(&T.sim, "differs from the server", NULL);
        long undone = tproc_log_count(&E2E.controller, "removing again a link", NULL);
        fprintf(stderr,
                "controller writes to service accounts: %.0f during the race (%.0f s, %u policy "
                "changes), %.0f to converge, %.0f in the 4 s after; stale writer's writes: %u; "
                "simulation's writes that changed the list: %ld; resurrections undone (whole "
                "suite): %ld\n",
                w_race - w0, RACE_S, step + 4, w_end - w_race, w_quiet - w_end, stale_writes,
                sim_diff, undone);
        assert_true(w_quiet == w_end);
        /* bounded: a few writes per account and policy change or foreign write, not a loop */
        assert_true(w_race - w0 <= 3.0 * RACE_SAS * (step + 4) + 3.0 * (stale_writes + sim_diff));

        e2e_policy_delete(ns, "p2");
        e2e_ns_delete(ns);
        free(ns);
        sim_stop();
}

/* ---- suite ---------------------------------------------------------------------------------- */

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "openshift", NULL) < 0) return -1;
        if (kubeclient_open(&T.loop, &T.cfg, &T.client) < 0) return -1;
        return e2e_controller_start(NULL);
}

static int group_teardown(void **state) {
        test_teardown(state);
        kubeclient_close(&T.loop, &T.cfg, &T.client);
        return e2e_suite_teardown(state);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_long_name_legacy, test_teardown),
            cmocka_unit_test_teardown(test_current_sequence, test_teardown),
            cmocka_unit_test_teardown(test_registry_removed, test_teardown),
            cmocka_unit_test_teardown(test_unguarded_writer, test_teardown),
            cmocka_unit_test_teardown(test_early416_race, test_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
