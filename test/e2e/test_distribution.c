/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R5 distribution. The controller runs with --distribution-namespaces=<prefix>-allowed.
 *  - A policy of that home copies its secrets into the subject namespaces (same name, type
 *    and data, the R8 labels) and links them; a rotated source is re-copied; a copy edited
 *    or deleted by someone is put back.
 *  - A policy of any other home: Ready=False DistributionNotAllowed, and nothing is written
 *    in the subject namespaces (nor into the global pull secret).
 *  - A same-named secret that the controller did not create: Conflict, never overwritten.
 *  - R6 with two policies (one secret holding two registries) and a person who rewrites the
 *    global pull secret: each policy removes exactly its entries; the person's stay.
 */
#include "e2e.h"

static char *data_of(const char *ns, const char *name) {
        return kt_kout("get secret '%s' -n '%s' -o jsonpath='{.type} {.data}'", name, ns);
}

typedef struct same_cond {
        const char *src_ns, *ns, *name;
        char *last_src, *last;
} same_cond;

static int same_check(void *ud) {
        same_cond *c = ud;
        free(c->last_src);
        free(c->last);
        c->last_src = data_of(c->src_ns, c->name);
        c->last = data_of(c->ns, c->name);
        return c->last_src && c->last && strcmp(c->last_src, c->last) == 0;
}

/* Waits until ns/name has the same type and data as src_ns/name. */
static void wait_same(const char *src_ns, const char *ns, const char *name) {
        same_cond c = {src_ns, ns, name, NULL, NULL};
        char what[512];
        snprintf(what, sizeof(what), "%s/%s to equal %s/%s", ns, name, src_ns, name);
        int r = e2e_wait_until(same_check, &c, E2E_WAIT_S);
        if (r < 0)
                fprintf(stderr, "source: %s\ncopy:   %s\n", c.last_src ? c.last_src : "(none)",
                        c.last ? c.last : "(none)");
        free(c.last_src);
        free(c.last);
        if (r < 0) fail_msg("timed out waiting for %s", what);
}

static const char *exists_cmd = "get %s '%s' -n '%s' -o name 2>/dev/null | grep -q . "
                                "&& echo present || echo absent";

static void policy(const char *home, const char *name, const char *subjects, const char *extra) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  subjects:\n%s  pullSecrets:\n  - name: team-creds\n%s",
                 name, home, subjects, extra ? extra : "");
}

static void test_copies_and_rotation(void **state) {
        char *h = e2e_ns("allowed", NULL), *a = e2e_ns("dist-a", NULL), *b = e2e_ns("dist-b", NULL);
        e2e_pull_secret(h, "team-creds", "registry.team.example.com", "team");
        /* the older type too: kubernetes.io/dockercfg, registries at the top level */
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: legacy-creds\n"
                 "  namespace: %s\ntype: kubernetes.io/dockercfg\nstringData:\n"
                 "  .dockercfg: '{\"legacy.example.com\":{\"auth\":\"bGVnOmxlZw==\"}}'\n",
                 h);
        char subj[256];
        snprintf(subj, sizeof(subj), "    namespaces: [%s, %s]\n", a, b);
        policy(h, "team", subj, "  - name: legacy-creds\n");
        e2e_wait_applied(h, "team", E2E_WAIT_S);

        const char *nss[] = {a, b};
        for (size_t i = 0; i < 2; i++) {
                wait_same(h, nss[i], "team-creds");
                json_object *c = e2e_get("secret", nss[i], "team-creds");
                assert_non_null(c);
                assert_string_equal(kt_jstr(c, "type"), "kubernetes.io/dockerconfigjson");
                assert_string_equal(kt_label(c, "app.kubernetes.io/managed-by"),
                                    "pullpolicy-controller");
                assert_string_equal(kt_label(c, "pullpolicy.io/policy"), "team");
                assert_string_equal(kt_label(c, "pullpolicy.io/policy-namespace"), h);
                json_object_put(c);
                e2e_wait_link(nss[i], "default", "pull", "team-creds", 1, E2E_WAIT_S);
                wait_same(h, nss[i], "legacy-creds");
                char *t = kt_kout("get secret legacy-creds -n '%s' -o jsonpath='{.type}'", nss[i]);
                assert_string_equal(t, "kubernetes.io/dockercfg");
                free(t);
                e2e_wait_link(nss[i], "default", "pull", "legacy-creds", 1, E2E_WAIT_S);
                char *pod = e2e_pod_pull_secrets(nss[i], "default");
                assert_int_equal(e2e_csv_count(pod, "team-creds"), 1);
                assert_int_equal(e2e_csv_count(pod, "legacy-creds"), 1);
                free(pod);
        }
        e2e_wait_out(E2E_WAIT_S, "2/2",
                     "get ppol team -n '%s' -o jsonpath='{.status.namespaces}/"
                     "{.status.linkedServiceAccounts}'",
                     h);

        /* the source rotates: the copies follow */
        char *old = data_of(a, "team-creds");
        e2e_pull_secret(h, "team-creds", "registry.team.example.com", "rotated");
        for (size_t i = 0; i < 2; i++) {
                wait_same(h, nss[i], "team-creds");
                fprintf(stderr, "LATENCY %s re-copied in (%.2f, %.2f] s after the rotation\n",
                        nss[i], E2E.wait_lo, E2E.wait_hi);
        }
        char *now = data_of(a, "team-creds");
        assert_string_not_equal(now, old);
        free(old);
        free(now);

        /* someone edits a copy: it is put back; someone deletes one: it is made again */
        assert_int_equal(kt_kubectl("patch secret team-creds -n '%s' --type=merge -p "
                                    "'{\"stringData\":{\".dockerconfigjson\":"
                                    "\"{\\\"auths\\\":{\\\"evil.example.com\\\":{}}}\"}}' "
                                    ">/dev/null",
                                    a),
                         0);
        wait_same(h, a, "team-creds");
        assert_int_equal(kt_kubectl("delete secret team-creds -n '%s' >/dev/null", b), 0);
        wait_same(h, b, "team-creds");
        e2e_wait_link(b, "default", "pull", "team-creds", 1, E2E_WAIT_S);
        e2e_wait_applied(h, "team", E2E_WAIT_S);

        e2e_policy_delete(h, "team");
        for (size_t i = 0; i < 2; i++) {
                char *e = kt_kout(exists_cmd, "secret", "team-creds", nss[i]);
                assert_string_equal(e, "absent");
                free(e);
                e = kt_kout(exists_cmd, "secret", "legacy-creds", nss[i]);
                assert_string_equal(e, "absent");
                free(e);
        }
        e2e_ns_delete(h);
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(h);
        free(a);
        free(b);
}

static void test_refused_home(void **state) {
        char *h = e2e_ns("refused", NULL), *c = e2e_ns("dist-c", NULL);
        e2e_pull_secret(h, "team-creds", "registry.team.example.com", "team");
        e2e_wait_out(E2E_WAIT_S, "default", "get sa default -n '%s' -o jsonpath='{.metadata.name}'",
                     c);
        char *sa_rv =
            kt_kout("get sa default -n '%s' -o jsonpath='{.metadata.resourceVersion}'", c);
        char subj[256];
        snprintf(subj, sizeof(subj), "    namespaces: [%s]\n", c);
        policy(h, "sneaky", subj, NULL);
        e2e_wait_ready(h, "sneaky", "False", "DistributionNotAllowed", E2E_WAIT_S);
        char *msg =
            kt_kout("get ppol sneaky -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'", h);
        fprintf(stderr, "DistributionNotAllowed: %s\n", msg);
        free(msg);

        /* the global pull secret may not be touched from here either */
        char registry[256];
        snprintf(registry, sizeof(registry), "registry.%s.example.com", E2E.prefix);
        e2e_pull_secret(h, "global-creds", registry, "gl");
        char *global_before = kt_kout("get secret pull-secret -n openshift-config "
                                      "-o jsonpath='{.metadata.resourceVersion}'");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: sneaky-global\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [nobody]\n"
                 "  pullSecrets:\n  - name: global-creds\n  globalPullSecret:\n    merge: true\n",
                 h);
        e2e_wait_ready(h, "sneaky-global", "False", "DistributionNotAllowed", E2E_WAIT_S);

        /* nothing was written: no copy, no link, no record, the account and global untouched */
        e2e_hold_out(3.0, "absent", exists_cmd, "secret", "team-creds", c);
        char *rv = kt_kout("get sa default -n '%s' -o jsonpath='{.metadata.resourceVersion}'", c);
        json_object *sa = e2e_sa(c, "default");
        fprintf(stderr, "%s/default resourceVersion %s -> %s\n", c, sa_rv, rv);
        assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "team-creds"), 0);
        assert_null(kt_annotation(sa, "pullpolicy.io/links"));
        json_object_put(sa);
        /* the provisioner may have written the account in between; the controller did not */
        char *global_after = kt_kout("get secret pull-secret -n openshift-config "
                                     "-o jsonpath='{.metadata.resourceVersion}'");
        assert_string_equal(global_after, global_before);
        char *marks = kt_kout("get secrets -A -l pullpolicy.io/policy-namespace=%s -o name", h);
        assert_string_equal(marks, "");
        free(marks);

        e2e_policy_delete(h, "sneaky");
        e2e_policy_delete(h, "sneaky-global");
        free(sa_rv);
        free(rv);
        free(global_before);
        free(global_after);
        e2e_ns_delete(h);
        e2e_ns_delete(c);
        free(h);
        free(c);
}

static void test_foreign_secret_conflict(void **state) {
        char *h = e2e_ns("allowed2", NULL), *d = e2e_ns("dist-d", NULL);
        e2e_pull_secret(h, "team-creds", "registry.team.example.com", "team");
        /* a person's secret of the same name, made first */
        e2e_pull_secret(d, "team-creds", "registry.other.example.com", "someone-else");
        char *before = kt_kout("get secret team-creds -n '%s' -o jsonpath='"
                               "{.metadata.resourceVersion} {.data} {.metadata.labels}'",
                               d);
        char subj[256];
        snprintf(subj, sizeof(subj), "    namespaces: [%s]\n", d);
        policy(h, "clash", subj, NULL);
        e2e_wait_ready(h, "clash", "False", "Conflict", E2E_WAIT_S);
        char *msg = kt_kout("get ppol clash -n '%s' -o jsonpath='{.status.problems}'", h);
        fprintf(stderr, "Conflict problems: %s\n", msg);
        assert_non_null(strstr(msg, "Conflict"));
        assert_non_null(strstr(msg, d));
        free(msg);
        e2e_wait_out(E2E_WAIT_S, "yes",
                     "get events -n '%s' --field-selector involvedObject.name=clash,"
                     "reason=Conflict -o name | grep -q . && echo yes || echo no",
                     h);
        e2e_hold_out(3.0, before,
                     "get secret team-creds -n '%s' -o jsonpath='"
                     "{.metadata.resourceVersion} {.data} {.metadata.labels}'",
                     d);

        /* the person's secret goes: the controller may now make its copy */
        assert_int_equal(kt_kubectl("delete secret team-creds -n '%s' >/dev/null", d), 0);
        wait_same(h, d, "team-creds");
        e2e_wait_applied(h, "clash", E2E_WAIT_S);

        e2e_policy_delete(h, "clash");
        free(before);
        e2e_ns_delete(h);
        e2e_ns_delete(d);
        free(h);
        free(d);
}

/* ---- R6 with two policies and a person editing the global pull secret ---------------- */

/* The decoded .dockerconfigjson of openshift-config/pull-secret ("auths" object), parsed. */
static json_object *global_auths(void) {
        json_object *s = e2e_get("secret", "openshift-config", "pull-secret");
        assert_non_null(s);
        char *text = e2e_secret_text(s, ".dockerconfigjson");
        assert_non_null(text);
        json_object *doc = json_tokener_parse(text);
        assert_non_null(doc);
        json_object *auths = json_object_get(kt_jget(doc, "auths"));
        json_object_put(doc);
        free(text);
        json_object_put(s);
        assert_non_null(auths);
        return auths;
}

static const char *entry(json_object *auths, const char *k) {
        json_object *e = kt_jget(auths, k);
        return e ? json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN) : NULL;
}

/* Every entry of base is in now unchanged; now holds exactly base's keys plus the extra ones. */
static bool global_is(json_object *base, const char *const *extra, size_t n_extra) {
        json_object *now = global_auths();
        bool ok = true;
        json_object_object_foreach(base, k, v) {
                (void)v;
                const char *a = entry(base, k), *b = entry(now, k);
                if (!b || strcmp(a, b) != 0) ok = false;
        }
        for (size_t i = 0; i < n_extra; i++)
                if (!kt_jget(now, extra[i])) ok = false;
        if ((size_t)json_object_object_length(now) !=
            (size_t)json_object_object_length(base) + n_extra)
                ok = false;
        json_object_put(now);
        return ok;
}

typedef struct global_cond {
        json_object *base;
        const char *const *extra;
        size_t n_extra;
} global_cond;

static int global_check(void *ud) {
        global_cond *c = ud;
        return global_is(c->base, c->extra, c->n_extra);
}

static void wait_global(json_object *base, const char *const *extra, size_t n_extra,
                        const char *what) {
        global_cond c = {base, extra, n_extra};
        e2e_wait(global_check, &c, E2E_WAIT_S, what);
}

/* What `oc set data secret/pull-secret` does: the whole payload replaced by auths. */
static void person_sets_global(json_object *auths) {
        json_object *doc = json_object_new_object();
        json_object_object_add(doc, "auths", json_object_get(auths));
        char *b64 = kt_b64encode(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
        json_object_put(doc);
        assert_int_equal(kt_kubectl("patch secret pull-secret -n openshift-config --type=merge "
                                    "-p '{\"data\":{\".dockerconfigjson\":\"%s\"}}' >/dev/null",
                                    b64),
                         0);
        free(b64);
}

static void test_global_two_policies_and_a_person(void **state) {
        char *g1 = e2e_ns("g1", NULL), *g2 = e2e_ns("g2", NULL);
        char r1[128], r2[128], r3[128], rp[128];
        snprintf(r1, sizeof(r1), "r1.%s.example.com", E2E.prefix);
        snprintf(r2, sizeof(r2), "r2.%s.example.com/org", E2E.prefix);
        snprintf(r3, sizeof(r3), "r3.%s.example.com", E2E.prefix);
        snprintf(rp, sizeof(rp), "person.%s.example.com", E2E.prefix);
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: multi\n  namespace: %s\n"
                 "type: kubernetes.io/dockerconfigjson\nstringData:\n"
                 "  .dockerconfigjson: '{\"auths\":{\"%s\":{\"auth\":\"cjE6cjE=\"},"
                 "\"%s\":{\"auth\":\"cjI6cjI=\",\"email\":\"r2@example.com\"}}}'\n",
                 g1, r1, r2);
        e2e_pull_secret(g2, "single", r3, "r3");
        json_object *base = global_auths();
        const char *pol = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                          "metadata:\n  name: merge\n  namespace: %s\n"
                          "spec:\n  subjects:\n    serviceAccounts: [nobody]\n"
                          "  pullSecrets:\n  - name: %s\n  globalPullSecret:\n    merge: true\n";
        kt_apply(pol, g1, "multi");
        kt_apply(pol, g2, "single");
        e2e_wait_applied(g1, "merge", E2E_WAIT_S);
        e2e_wait_applied(g2, "merge", E2E_WAIT_S);
        const char *all3[] = {r1, r2, r3};
        wait_global(base, all3, 3, "r1, r2, r3 merged, the rest intact");

        /* a person adds an entry of their own (rewriting the whole payload) */
        json_object *now = global_auths();
        json_object *pe = json_object_new_object();
        json_object_object_add(pe, "auth", json_object_new_string("cGVyc29uOnB3"));
        json_object_object_add(now, rp, pe);
        person_sets_global(now);
        json_object_put(now);
        const char *all4[] = {r1, r2, r3, rp};
        kt_sleep(2.0);
        assert_true(global_is(base, all4, 4));

        /* the person rewrites it from an old copy, without r3: the controller puts r3 back */
        now = global_auths();
        json_object_object_del(now, r3);
        person_sets_global(now);
        json_object_put(now);
        wait_global(base, all4, 4, "r3 merged again next to the person's entry");

        /* the first policy goes: exactly r1 and r2 go */
        e2e_policy_delete(g1, "merge");
        const char *left[] = {r3, rp};
        wait_global(base, left, 2, "r1 and r2 removed, r3 and the person's entry kept");
        e2e_policy_delete(g2, "merge");
        const char *person[] = {rp};
        wait_global(base, person, 1, "r3 removed, the person's entry kept");

        /* the person's entry was theirs to remove */
        now = global_auths();
        json_object_object_del(now, rp);
        person_sets_global(now);
        json_object_put(now);
        assert_true(global_is(base, NULL, 0));
        json_object_put(base);
        e2e_ns_delete(g1);
        e2e_ns_delete(g2);
        free(g1);
        free(g2);
}

/*
 * Issue 7, item 1 (privilege escalation): a policy in a distribution namespace names the
 * "<sa>-dockercfg-xxxxx" secret OpenShift (the simulation) made for its "default" account,
 * which carries that account's token, and selects namespaces with merge: true. Nothing is
 * copied, merged or linked to another account; Ready=False ServiceAccountSecret; the
 * account's own link (OpenShift's) stays as it is.
 */
typedef struct dockercfg_cond {
        const char *ns, *sa;
        char *name;
} dockercfg_cond;

static int dockercfg_check(void *ud) {
        dockercfg_cond *c = ud;
        json_object *o = e2e_sa(c->ns, c->sa);
        char prefix[128];
        snprintf(prefix, sizeof(prefix), "%s-dockercfg-", c->sa);
        const char *n = o ? e2e_find_prefix(o, "imagePullSecrets", prefix) : NULL;
        if (n && o && e2e_count_name(o, "secrets", n) == 1) c->name = strdup(n);
        json_object_put(o);
        return c->name != NULL;
}

static void test_sa_token_never_distributed(void **state) {
        char *h = e2e_ns("sa-home", "sa-target: \"yes\"\n");
        char *t1 = e2e_ns("sa-t1", "sa-target: \"yes\"\n"),
             *t2 = e2e_ns("sa-t2", "sa-target: \"yes\"\n");
        dockercfg_cond dc = {h, "default", NULL};
        e2e_wait(dockercfg_check, &dc, E2E_WAIT_S, "the simulation's dockercfg secret of default");
        const char *tok = dc.name;
        fprintf(stderr, "service account secret: %s/%s\n", h, tok);
        e2e_sa_create(h, "victim");
        e2e_wait_out(E2E_WAIT_S, "default", "get sa default -n '%s' -o jsonpath='{.metadata.name}'",
                     t1);
        char *own_before = kt_kout("get sa default -n '%s' -o jsonpath='{.secrets[*].name} "
                                   "{.imagePullSecrets[*].name}'",
                                   h);
        char *global_before = kt_kout("get secret pull-secret -n openshift-config "
                                      "-o jsonpath='{.metadata.resourceVersion}'");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: spread\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaceSelector:\n      matchLabels:\n"
                 "        sa-target: \"yes\"\n        %s: %s\n"
                 "  pullSecrets:\n  - name: %s\n    for: [pull, mount]\n"
                 "  globalPullSecret:\n    merge: true\n",
                 h, E2E_LABEL_RUN, E2E.prefix, tok);
        e2e_wait_ready(h, "spread", "False", "ServiceAccountSecret", E2E_WAIT_S);
        char *msg =
            kt_kout("get ppol spread -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'", h);
        fprintf(stderr, "ServiceAccountSecret: %s\n", msg);
        assert_non_null(strstr(msg, tok));
        free(msg);
        assert_true(e2e_events(h, "spread", "ServiceAccountSecret") >= 1);

        /* the status is written after the plan's writes: by now any copy would exist */
        const char *tenants[] = {t1, t2};
        for (size_t i = 0; i < ARRAY_SIZE(tenants); i++) {
                char *e = kt_kout(exists_cmd, "secret", tok, tenants[i]);
                assert_string_equal(e, "absent");
                free(e);
                assert_int_equal(e2e_sa_count(tenants[i], "default", "pull", tok), 0);
        }
        /* R3: not linked to another account of its own namespace */
        assert_int_equal(e2e_sa_count(h, "victim", "pull", tok), 0);
        assert_int_equal(e2e_sa_count(h, "victim", "mount", tok), 0);
        /* its own account keeps OpenShift's link, untouched, and no record of ours */
        json_object *own = e2e_sa(h, "default");
        assert_int_equal(e2e_count_name(own, "imagePullSecrets", tok), 1);
        assert_int_equal(e2e_count_name(own, "secrets", tok), 1);
        assert_null(kt_annotation(own, "pullpolicy.io/links"));
        json_object_put(own);
        char *own_after = kt_kout("get sa default -n '%s' -o jsonpath='{.secrets[*].name} "
                                  "{.imagePullSecrets[*].name}'",
                                  h);
        assert_string_equal(own_after, own_before);
        /* R6: nothing merged into the global pull secret */
        char *global_after = kt_kout("get secret pull-secret -n openshift-config "
                                     "-o jsonpath='{.metadata.resourceVersion}'");
        assert_string_equal(global_after, global_before);

        e2e_policy_delete(h, "spread");
        free(own_before);
        free(own_after);
        free(global_before);
        free(global_after);
        free(dc.name);
        e2e_ns_delete(h);
        e2e_ns_delete(t1);
        e2e_ns_delete(t2);
        free(h);
        free(t1);
        free(t2);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "distribution", e2e_sim_mode()) < 0) return -1;
        char dist[512];
        snprintf(dist, sizeof(dist),
                 "--distribution-namespaces=%s-allowed,%s-allowed2,%s-g1,%s-g2,%s-sa-home",
                 E2E.prefix, E2E.prefix, E2E.prefix, E2E.prefix, E2E.prefix);
        const char *flags[] = {dist, NULL};
        return e2e_controller_start(flags);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_copies_and_rotation),
            cmocka_unit_test(test_refused_home),
            cmocka_unit_test(test_foreign_secret_conflict),
            cmocka_unit_test(test_global_two_policies_and_a_person),
            cmocka_unit_test(test_sa_token_never_distributed),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
