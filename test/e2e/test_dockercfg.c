/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R4, waiting for OpenShift's per-service-account dockercfg secret.
 *
 * image.openshift.io is served (the simulation's CRD), so `wait: Auto` waits. Each test
 * starts its own provisioner (build/pullpolicy-sim) on its own namespace prefix, in the
 * mode it needs:
 *  - legacy, early416 and current with --delay: while an account is unprovisioned the
 *    policy reports it waiting (status.waitingServiceAccounts > 0, reason Waiting) and the
 *    account carries no link; once provisioned it is linked. Throughout, a poller checks the
 *    invariant that a link never appears on an unprovisioned account. legacy and early416
 *    list the secret only once it is made and filled (after the delay), so the policy is seen
 *    waiting; current lists it (annotation, .secrets, .imagePullSecrets) before the secret
 *    exists, so the account counts as provisioned at once and is linked while its secret
 *    still holds "{}". A deleted secret: legacy unlinks it and makes a new one (the account is
 *    unprovisioned meanwhile); early416 and current make it again under the same name, the
 *    account staying provisioned.
 *  - removed (nothing is provisioned, while the registry objects still say Managed: an
 *    OpenShift whose provisioning is stuck) with timeoutSeconds 3: the account is linked
 *    after the timeout, with a Warning event DockercfgTimeout and a DockercfgTimeout problem.
 *  - wait: Never: linked at once, no provisioner needed.
 *  - without image.openshift.io (removed, controller restarted): Auto links at once, Always
 *    waits until its timeout.
 */
#include "e2e.h"

/* Long enough to see the waiting state through kubectl polls on a loaded machine. */
#define DELAY_S 12.0

/* The provisioner of the running test; stopped by its teardown if the test failed. */
static tproc test_sim;
static bool test_sim_running;

static int sim_teardown(void **state) {
        if (test_sim_running) {
                test_sim_running = false;
                e2e_sim_stop(&test_sim);
        }
        return 0;
}

typedef struct sa_state {
        bool linked;      /* "creds" in .imagePullSecrets */
        bool provisioned; /* R4's definition, for the given mode */
        char desc[512];
} sa_state;

/* Reads ns/sa and judges R4 provisioning as API.md defines it. */
static bool read_sa(const char *ns, const char *name, sa_state *st) {
        json_object *sa = e2e_sa(ns, name);
        memset(st, 0, sizeof(*st));
        if (!sa) return false;
        st->linked = e2e_count_name(sa, "imagePullSecrets", "creds") > 0;
        const char *ref = kt_annotation(sa, "openshift.io/internal-registry-pull-secret-ref");
        if (ref && e2e_count_name(sa, "imagePullSecrets", ref) > 0) st->provisioned = true;
        char pfx[300];
        snprintf(pfx, sizeof(pfx), "%s-dockercfg-", name);
        for (size_t i = 0; i < kt_jlen(sa, "secrets"); i++) {
                const char *s = kt_jstr(kt_jidx(sa, "secrets", i), "name");
                if (s && strncmp(s, pfx, strlen(pfx)) == 0 &&
                    e2e_count_name(sa, "imagePullSecrets", s) > 0)
                        st->provisioned = true;
        }
        char *ips = e2e_names(sa, "imagePullSecrets"), *sec = e2e_names(sa, "secrets");
        snprintf(st->desc, sizeof(st->desc), "imagePullSecrets=[%s] secrets=[%s] ref=%s", ips, sec,
                 ref ? ref : "-");
        free(ips);
        free(sec);
        json_object_put(sa);
        return true;
}

typedef struct policy_view {
        char ready[32], reason[64];
        long long waiting, linked;
        bool current; /* observedGeneration == generation */
} policy_view;

static void read_policy(const char *ns, const char *name, policy_view *v) {
        json_object *p = e2e_policy(ns, name);
        memset(v, 0, sizeof(*v));
        for (size_t i = 0; i < kt_jlen(p, "status.conditions"); i++) {
                json_object *c = kt_jidx(p, "status.conditions", i);
                if (kt_jstr(c, "type") && strcmp(kt_jstr(c, "type"), "Ready") == 0) {
                        snprintf(v->ready, sizeof(v->ready), "%s", kt_jstr(c, "status"));
                        snprintf(v->reason, sizeof(v->reason), "%s", kt_jstr(c, "reason"));
                }
        }
        v->waiting = kt_jint(p, "status.waitingServiceAccounts");
        v->linked = kt_jint(p, "status.linkedServiceAccounts");
        v->current = kt_jint(p, "status.observedGeneration") == kt_jint(p, "metadata.generation");
        json_object_put(p);
}

/*
 * Watches ns/sa until it is linked (bounded by timeout_s), asserting at every poll that a
 * link never precedes provisioning, and records whether the policy was seen reporting the
 * account as waiting while it was unprovisioned and unlinked.
 */
static void watch_until_linked(const char *ns, const char *policy, const char *sa, double timeout_s,
                               bool *ret_seen_waiting) {
        double t0 = kt_now(), seen_wait_at = -1, provisioned_at = -1;
        sa_state st;
        bool seen_waiting = false;
        for (;;) {
                assert_true(read_sa(ns, sa, &st));
                if (st.linked && !st.provisioned) {
                        fprintf(stderr, "%s/%s linked before it was provisioned: %s\n", ns, sa,
                                st.desc);
                        fail();
                }
                if (st.provisioned && provisioned_at < 0) provisioned_at = kt_now() - t0;
                if (st.linked) break;
                if (!st.provisioned) {
                        policy_view v;
                        read_policy(ns, policy, &v);
                        /* re-read: the account must still be unprovisioned after the status */
                        sa_state again;
                        assert_true(read_sa(ns, sa, &again));
                        if (v.current && v.waiting > 0 && strcmp(v.ready, "False") == 0 &&
                            strcmp(v.reason, "Waiting") == 0 && !again.provisioned &&
                            !again.linked && !seen_waiting) {
                                seen_waiting = true;
                                seen_wait_at = kt_now() - t0;
                                fprintf(stderr,
                                        "%s/%s waiting at %.1f s: Ready=%s/%s waiting=%lld "
                                        "linked=%lld; %s\n",
                                        ns, sa, seen_wait_at, v.ready, v.reason, v.waiting,
                                        v.linked, again.desc);
                        }
                }
                if (kt_now() - t0 > timeout_s) {
                        fprintf(stderr, "%s/%s not linked after %.0f s: %s (controller log %s)\n",
                                ns, sa, timeout_s, st.desc, E2E.controller_log);
                        fail();
                }
                kt_sleep(0.1);
        }
        fprintf(stderr, "%s/%s provisioned (first seen) at %.1f s, linked (seen) at %.1f s: %s\n",
                ns, sa, provisioned_at, kt_now() - t0, st.desc);
        *ret_seen_waiting = seen_waiting;
}

static void apply_policy(const char *ns, const char *name, const char *dockercfg) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n  - name: creds\n%s",
                 name, ns, dockercfg ? dockercfg : "");
}

/* The decoded .dockercfg of ns/name, a new string, or NULL. */
static char *dockercfg_text(const char *ns, const char *name) {
        json_object *sec = e2e_get("secret", ns, name);
        char *t = sec ? e2e_secret_text(sec, ".dockercfg") : NULL;
        json_object_put(sec);
        return t;
}

/* The provisioner delays; the controller waits (unless current lists it at once), then links. */
static void run_delayed(const char *mode) {
        bool listed_first = strcmp(mode, "current") == 0;
        bool same_name = strcmp(mode, "legacy") != 0;
        char sim_prefix[128], log[128];
        snprintf(sim_prefix, sizeof(sim_prefix), "%s-%s", E2E.prefix, mode);
        snprintf(log, sizeof(log), "e2e-dockercfg-sim-%s", mode);
        assert_int_equal(e2e_sim_start(&test_sim, log, sim_prefix, mode, DELAY_S), 0);
        test_sim_running = true;

        char suffix[64];
        snprintf(suffix, sizeof(suffix), "%s-n", mode);
        char *ns = e2e_ns(suffix, NULL);
        e2e_pull_secret(ns, "creds", "registry.dockercfg.example.com", "dc");
        apply_policy(ns, "wait-auto", NULL);
        bool seen = false;
        double t0 = kt_now();
        /* the namespace's default account: made by kube-controller-manager just now */
        watch_until_linked(ns, "wait-auto", "default", DELAY_S + E2E_WAIT_S, &seen);
        if (listed_first) {
                /* linked while OpenShift's secret is still empty: it counts as provisioned */
                json_object *sa = e2e_sa(ns, "default");
                const char *ref =
                    kt_annotation(sa, "openshift.io/internal-registry-pull-secret-ref");
                assert_non_null(ref);
                char *cfg = dockercfg_text(ns, ref);
                fprintf(stderr, "current: linked after %.1f s; %s holds %s\n", kt_now() - t0, ref,
                        cfg ? (strcmp(cfg, "{}") == 0 ? "{}" : "a token") : "(no secret)");
                if (kt_now() - t0 < DELAY_S - 1) assert_true(!cfg || strcmp(cfg, "{}") == 0);
                free(cfg);
                json_object_put(sa);
        } else {
                assert_true(seen);
        }
        e2e_wait_applied(ns, "wait-auto", E2E_WAIT_S);
        if (!listed_first) assert_true(e2e_events(ns, "wait-auto", "WaitingForDockercfg") >= 1);
        assert_true(e2e_events(ns, "wait-auto", "Linked") >= 1);

        /* an account made later waits in turn */
        e2e_sa_create(ns, "later");
        watch_until_linked(ns, "wait-auto", "later", DELAY_S + E2E_WAIT_S, &seen);
        if (!listed_first) assert_true(seen);
        e2e_wait_applied(ns, "wait-auto", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "2/0",
                     "get ppol wait-auto -n '%s' -o jsonpath='{.status.linkedServiceAccounts}/"
                     "{.status.waitingServiceAccounts}'",
                     ns);
        /* a pod made now gets OpenShift's secret and the linked one */
        char *pod = e2e_pod_pull_secrets(ns, "later");
        fprintf(stderr, "pod as later: %s\n", pod);
        assert_int_equal(e2e_csv_count(pod, "creds"), 1);
        json_object *sa = e2e_sa(ns, "later");
        const char *dcfg = e2e_find_prefix(sa, "imagePullSecrets", "later-dockercfg-");
        assert_non_null(dcfg);
        assert_true(e2e_csv_has(pod, dcfg));
        json_object_put(sa);
        free(pod);
        /* nothing timed out here */
        assert_int_equal(e2e_events(ns, "wait-auto", "DockercfgTimeout"), 0);

        /*
         * OpenShift's secret is deleted. legacy takes the account back to unprovisioned and
         * provisions it again (a new name) after the delay; early416 and current make the
         * secret again under the same name and keep the account's entry. The link stays all
         * along, once.
         */
        sa = e2e_sa(ns, "later");
        char *old_dcfg = strdup(e2e_find_prefix(sa, "imagePullSecrets", "later-dockercfg-"));
        json_object_put(sa);
        char *old_uid =
            kt_kout("get secret '%s' -n '%s' -o jsonpath='{.metadata.uid}'", old_dcfg, ns);
        assert_int_equal(kt_kubectl("delete secret '%s' -n '%s' >/dev/null", old_dcfg, ns), 0);
        t0 = kt_now();
        bool was_unprovisioned = false;
        for (;;) {
                sa_state st2;
                assert_true(read_sa(ns, "later", &st2));
                if (!st2.linked) fail_msg("the link went while re-provisioning: %s", st2.desc);
                assert_int_equal(e2e_sa_count(ns, "later", "pull", "creds"), 1);
                if (!st2.provisioned) was_unprovisioned = true;
                if (same_name) {
                        if (!st2.provisioned) fail_msg("unprovisioned: %s", st2.desc);
                        assert_int_equal(e2e_sa_count(ns, "later", "pull", old_dcfg), 1);
                        char *uid = kt_kout("get secret '%s' -n '%s' -o jsonpath='{.metadata.uid}' "
                                            "2>/dev/null",
                                            old_dcfg, ns);
                        bool again = uid && *uid && old_uid && strcmp(uid, old_uid) != 0;
                        free(uid);
                        if (again) {
                                fprintf(stderr, "%s made again under its name after %.1f s: %s\n",
                                        old_dcfg, kt_now() - t0, st2.desc);
                                break;
                        }
                } else if (st2.provisioned && was_unprovisioned) {
                        fprintf(stderr, "re-provisioned after %.1f s, still linked: %s\n",
                                kt_now() - t0, st2.desc);
                        break;
                }
                if (kt_now() - t0 > DELAY_S + E2E_WAIT_S)
                        fail_msg("not re-provisioned: %s", st2.desc);
                kt_sleep(0.2);
        }
        free(old_uid);
        free(old_dcfg);
        e2e_wait_applied(ns, "wait-auto", E2E_WAIT_S);

        e2e_policy_delete(ns, "wait-auto");
        e2e_ns_delete(ns);
        free(ns);
        test_sim_running = false;
        assert_int_equal(e2e_sim_stop(&test_sim), 0);
}

static void test_legacy_delay(void **state) {
        run_delayed("legacy");
}

static void test_early416_delay(void **state) {
        run_delayed("early416");
}

static void test_current_delay(void **state) {
        run_delayed("current");
}

/* Whether status.problems has {namespace, name, reason}. */
static bool has_problem(const char *ns, const char *policy, const char *sa, const char *reason) {
        json_object *p = e2e_policy(ns, policy);
        bool found = false;
        for (size_t i = 0; i < kt_jlen(p, "status.problems"); i++) {
                json_object *pr = kt_jidx(p, "status.problems", i);
                const char *a = kt_jstr(pr, "namespace"), *b = kt_jstr(pr, "name"),
                           *c = kt_jstr(pr, "reason");
                if (a && b && c && !strcmp(a, ns) && !strcmp(b, sa) && !strcmp(c, reason))
                        found = true;
        }
        json_object_put(p);
        return found;
}

/*
 * Nothing is provisioned (mode removed) while the registry objects still say Managed: linked
 * after timeoutSeconds.
 */
static void test_removed_timeout(void **state) {
        char sim_prefix[128];
        snprintf(sim_prefix, sizeof(sim_prefix), "%s-removed", E2E.prefix);
        assert_int_equal(
            e2e_sim_start(&test_sim, "e2e-dockercfg-sim-removed", sim_prefix, "removed", 0), 0);
        test_sim_running = true;
        char *ns = e2e_ns("removed-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.dockercfg.example.com", "dc");
        apply_policy(ns, "timeout", "  dockercfg:\n    wait: Auto\n    timeoutSeconds: 3\n");
        e2e_wait_link(ns, "default", "pull", "creds", 1, E2E_WAIT_S);

        e2e_sa_create(ns, "fresh");
        double t0 = kt_now();
        /* not at once: creationTimestamp has whole seconds, so allow 1 s of the 3 */
        e2e_hold_out(
            1.5, "",
            "get sa fresh -n '%s' -o jsonpath='{.imagePullSecrets[?(@.name==\"creds\")].name}'",
            ns);
        e2e_wait_link(ns, "fresh", "pull", "creds", 1, E2E_WAIT_S);
        fprintf(stderr, "fresh linked (seen) %.1f s after its creation (timeoutSeconds 3)\n",
                kt_now() - t0);
        assert_true(kt_now() - t0 >= 1.5);
        sa_state st;
        assert_true(read_sa(ns, "fresh", &st));
        assert_false(st.provisioned);

        /* the Warning event and the reason in status */
        e2e_wait_out(E2E_WAIT_S, "Warning",
                     "get events -n '%s' --field-selector involvedObject.kind=PullPolicy,"
                     "involvedObject.name=timeout,reason=DockercfgTimeout "
                     "-o jsonpath='{.items[0].type}'",
                     ns);
        char *msg = kt_kout("get events -n '%s' --field-selector involvedObject.name=timeout,"
                            "reason=DockercfgTimeout -o jsonpath='{.items[*].message}'",
                            ns);
        fprintf(stderr, "DockercfgTimeout events: %s\n", msg ? msg : "(none)");
        assert_non_null(msg);
        assert_non_null(strstr(msg, "fresh"));
        free(msg);
        assert_true(has_problem(ns, "timeout", "fresh", "DockercfgTimeout"));
        policy_view v;
        read_policy(ns, "timeout", &v);
        fprintf(stderr, "policy after the timeout: Ready=%s/%s waiting=%lld linked=%lld\n", v.ready,
                v.reason, v.waiting, v.linked);
        assert_int_equal(v.waiting, 0);
        assert_int_equal(v.linked, 2);
        char *pod = e2e_pod_pull_secrets(ns, "fresh");
        assert_int_equal(e2e_csv_count(pod, "creds"), 1);
        free(pod);

        e2e_policy_delete(ns, "timeout");
        e2e_ns_delete(ns);
        free(ns);
        test_sim_running = false;
        assert_int_equal(e2e_sim_stop(&test_sim), 0);
}

/* wait: Never links at once, though nothing is provisioned and the default timeout is 300 s. */
static void test_wait_never(void **state) {
        char *ns = e2e_ns("never-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.dockercfg.example.com", "dc");
        e2e_sa_create(ns, "builder");
        apply_policy(ns, "never", "  dockercfg:\n    wait: Never\n");
        e2e_wait_applied(ns, "never", E2E_WAIT_S);
        e2e_wait_link(ns, "default", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_link(ns, "builder", "pull", "creds", 1, E2E_WAIT_S);
        fprintf(stderr, "wait: Never linked (seen) in (%.2f, %.2f] s\n", E2E.wait_lo, E2E.wait_hi);
        sa_state st;
        assert_true(read_sa(ns, "builder", &st));
        assert_false(st.provisioned);
        e2e_sa_create(ns, "new");
        e2e_wait_link(ns, "new", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "3/0",
                     "get ppol never -n '%s' -o jsonpath='{.status.linkedServiceAccounts}/"
                     "{.status.waitingServiceAccounts}'",
                     ns);
        assert_int_equal(e2e_events(ns, "never", "WaitingForDockercfg"), 0);
        assert_int_equal(e2e_events(ns, "never", "DockercfgTimeout"), 0);
        assert_false(has_problem(ns, "never", "new", "DockercfgTimeout"));

        e2e_policy_delete(ns, "never");
        e2e_ns_delete(ns);
        free(ns);
}

/* ---- plain Kubernetes: image.openshift.io not served ------------------------------------ */

static bool image_api_removed;

static int image_api_teardown(void **state) {
        if (image_api_removed) {
                e2e_sim_script("install-image-api '%s' >/dev/null 2>&1", testenv_dir());
                image_api_removed = false;
        }
        return sim_teardown(state);
}

/*
 * Without the image.openshift.io API (the controller restarted after it went, so that it
 * discovers its absence at once): wait: Auto links at once; wait: Always still waits, and
 * links after its timeout with DockercfgTimeout.
 */
static void test_without_image_api(void **state) {
        assert_int_equal(e2e_controller_stop(), 0);
        image_api_removed = true;
        assert_int_equal(e2e_sim_script("uninstall-image-api '%s' >/dev/null 2>&1", testenv_dir()),
                         0);
        assert_int_equal(e2e_controller_start(NULL), 0);

        char *ns = e2e_ns("plain-n", NULL);
        e2e_pull_secret(ns, "creds", "registry.dockercfg.example.com", "dc");
        apply_policy(ns, "auto", "  subjects:\n    serviceAccounts: [default]\n");
        e2e_wait_applied(ns, "auto", E2E_WAIT_S);
        e2e_wait_link(ns, "default", "pull", "creds", 1, E2E_WAIT_S);
        fprintf(stderr, "Auto without image.openshift.io: linked (seen) in (%.2f, %.2f] s\n",
                E2E.wait_lo, E2E.wait_hi);
        sa_state st;
        assert_true(read_sa(ns, "default", &st));
        assert_false(st.provisioned);
        assert_int_equal(e2e_events(ns, "auto", "WaitingForDockercfg"), 0);

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: always\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [late]\n"
                 "  pullSecrets:\n  - name: creds\n"
                 "  dockercfg:\n    wait: Always\n    timeoutSeconds: 8\n",
                 ns);
        e2e_sa_create(ns, "late");
        double t0 = kt_now();
        e2e_wait_ready(ns, "always", "False", "Waiting", E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(ns, "late", "pull", "creds"), 0);
        e2e_wait_link(ns, "late", "pull", "creds", 1, E2E_WAIT_S);
        double took = kt_now() - t0;
        fprintf(stderr,
                "Always without image.openshift.io: linked (seen) %.1f s after the "
                "account was made (timeoutSeconds 8)\n",
                took);
        assert_true(took >= 6.0); /* creationTimestamp has whole seconds */
        e2e_wait_out(E2E_WAIT_S, "Warning",
                     "get events -n '%s' --field-selector involvedObject.name=always,"
                     "reason=DockercfgTimeout -o jsonpath='{.items[0].type}'",
                     ns);

        e2e_policy_delete(ns, "auto");
        e2e_policy_delete(ns, "always");
        e2e_ns_delete(ns);
        free(ns);
        assert_int_equal(e2e_sim_script("install-image-api '%s' >/dev/null 2>&1", testenv_dir()),
                         0);
        image_api_removed = false;
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "dockercfg", NULL) < 0) return -1;
        return e2e_controller_start(NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_current_delay, sim_teardown),
            cmocka_unit_test_teardown(test_early416_delay, sim_teardown),
            cmocka_unit_test_teardown(test_legacy_delay, sim_teardown),
            cmocka_unit_test_teardown(test_removed_timeout, sim_teardown),
            cmocka_unit_test(test_wait_never),
            /* last: it restarts the controller */
            cmocka_unit_test_teardown(test_without_image_api, image_api_teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
