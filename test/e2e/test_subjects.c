/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R1 subjects. Namespaces labelled into a selector get their RoleBinding and links
 * (the latency is measured and printed, never asserted beyond a generous timeout);
 * unlabelled, they lose them; a new service account in a subject namespace is linked; the
 * service-account selector (with names, a union); a terminating namespace is no subject.
 *
 * The homes are on the controller's --distribution-namespaces list, since linking a home
 * secret to accounts of other namespaces copies it there (R5). A legacy dockercfg
 * provisioner without delay serves the program's namespaces.
 */
#include "e2e.h"
#include "names.h"

#define LATENCY_BOUND_S 15.0

static const char *const homes[] = {"h-label", "h-newsa", "h-sel", "h-term", "h-expr", "h-later"};

static char *rb_name(const char *policy, const char *ns) {
        char *s = NULL;
        assert_int_equal(names_role_binding(policy, ns, &s), 0);
        return s;
}

/* "present" or "absent" for kubectl get KIND NAME -n NS. */
static const char *exists_cmd = "get %s '%s' -n '%s' -o name 2>/dev/null | grep -q . "
                                "&& echo present || echo absent";

static void policy_yaml(const char *home, const char *name, const char *subjects) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  subjects:\n%s  imagePuller: {}\n  pullSecrets:\n  - name: creds\n",
                 name, home, subjects);
}

/* RoleBinding subjects as "Kind:name" joined by ','; NULL when there is no binding. */
static char *rb_subjects(const char *home, const char *rb) {
        json_object *o = e2e_get("rolebinding", home, rb);
        if (!o) return NULL;
        size_t cap = 1;
        for (size_t i = 0; i < kt_jlen(o, "subjects"); i++) {
                json_object *s = kt_jidx(o, "subjects", i);
                cap += strlen(kt_jstr(s, "kind")) + strlen(kt_jstr(s, "name")) + 2;
        }
        char *r = calloc(1, cap);
        assert_non_null(r);
        for (size_t i = 0; i < kt_jlen(o, "subjects"); i++) {
                json_object *s = kt_jidx(o, "subjects", i);
                if (i) strcat(r, ",");
                strcat(r, kt_jstr(s, "kind"));
                strcat(r, ":");
                strcat(r, kt_jstr(s, "name"));
        }
        json_object_put(o);
        return r;
}

/* ud: the home; the policy "ahead" has a Ready condition for its current generation. */
static int ahead_has_status(void *ud) {
        const char *home = ud;
        json_object *p = e2e_policy(home, "ahead");
        int ok = kt_jlen(p, "status.conditions") > 0 &&
                 kt_jint(p, "status.observedGeneration") == kt_jint(p, "metadata.generation");
        json_object_put(p);
        return ok;
}

typedef struct rb_cond {
        const char *home, *rb, *want; /* want NULL: absent */
        char *last;
} rb_cond;

static int rb_check(void *ud) {
        rb_cond *c = ud;
        free(c->last);
        c->last = rb_subjects(c->home, c->rb);
        if (!c->want) return c->last == NULL;
        return c->last && strcmp(c->last, c->want) == 0;
}

static double wait_rb(const char *home, const char *rb, const char *want) {
        rb_cond c = {home, rb, want, NULL};
        double t0 = kt_now();
        int r = e2e_wait_until(rb_check, &c, E2E_WAIT_S);
        double took = kt_now() - t0;
        if (r < 0)
                fprintf(stderr, "RoleBinding %s/%s: wanted subjects %s, last %s\n", home, rb,
                        want ? want : "(absent)", c.last ? c.last : "(absent)");
        free(c.last);
        assert_int_equal(r, 0);
        return took;
}

/* Labelling a namespace into the selector brings binding, copy and link; unlabelling removes them.
 */
static void test_namespace_selector(void **state) {
        char *home = e2e_ns("h-label", NULL), *n = e2e_ns("sel-n", NULL),
             *other = e2e_ns("sel-other", NULL);
        e2e_pull_secret(home, "creds", "registry.subjects.example.com", "sub");
        char subj[512];
        snprintf(subj, sizeof(subj),
                 "    namespaceSelector:\n      matchLabels:\n"
                 "        e2e-team: %s\n",
                 E2E.prefix);
        policy_yaml(home, "team", subj);
        e2e_wait_applied(home, "team", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "0", "get ppol team -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);
        char *rb = rb_name("team", n);
        assert_null(rb_subjects(home, rb));

        /* labelled in; times count from kubectl label's return (the server has the label) */
        assert_int_equal(kt_kubectl("label namespace '%s' e2e-team=%s >/dev/null", n, E2E.prefix),
                         0);
        double t0 = kt_now();
        char group[256];
        snprintf(group, sizeof(group), "Group:system:serviceaccounts:%s", n);
        wait_rb(home, rb, group);
        double rb_lo = E2E.wait_lo, rb_hi = kt_now() - t0;
        double t1 = kt_now();
        e2e_wait_link(n, "default", "pull", "creds", 1, LATENCY_BOUND_S);
        double link_lo = E2E.wait_polls > 1 ? t1 - t0 + E2E.wait_lo : 0, link_hi = kt_now() - t0;
        fprintf(stderr,
                "LATENCY namespace labelled in: RoleBinding seen in (%.2f, %.2f] s, link "
                "in (%.2f, %.2f] s (polls are kubectl runs; bound %.0f s)\n",
                rb_lo, rb_hi, link_lo, link_hi, LATENCY_BOUND_S);
        assert_true(rb_hi < LATENCY_BOUND_S);
        /* the copy the link needs, and a pod that gets it */
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "secret", "creds", n);
        char *pod = e2e_pod_pull_secrets(n, "default");
        assert_int_equal(e2e_csv_count(pod, "creds"), 1);
        free(pod);
        e2e_wait_applied(home, "team", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "1", "get ppol team -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);
        /* an unlabelled namespace stays out */
        char *rb_other = rb_name("team", other);
        assert_null(rb_subjects(home, rb_other));
        assert_int_equal(e2e_sa_count(other, "default", "pull", "creds"), 0);

        /* labelled out */
        assert_int_equal(kt_kubectl("label namespace '%s' e2e-team- >/dev/null", n), 0);
        t0 = kt_now();
        wait_rb(home, rb, NULL);
        rb_lo = E2E.wait_lo;
        rb_hi = kt_now() - t0;
        t1 = kt_now();
        e2e_wait_link(n, "default", "pull", "creds", 0, LATENCY_BOUND_S);
        link_lo = E2E.wait_polls > 1 ? t1 - t0 + E2E.wait_lo : 0;
        link_hi = kt_now() - t0;
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", n);
        fprintf(stderr,
                "LATENCY namespace labelled out: RoleBinding gone in (%.2f, %.2f] s, "
                "link gone in (%.2f, %.2f] s\n",
                rb_lo, rb_hi, link_lo, link_hi);
        e2e_wait_out(E2E_WAIT_S, "0", "get ppol team -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);

        e2e_policy_delete(home, "team");
        free(rb);
        free(rb_other);
        e2e_ns_delete(home);
        e2e_ns_delete(n);
        e2e_ns_delete(other);
        free(home);
        free(n);
        free(other);
}

/* A service account created later in a subject namespace is linked. */
static void test_new_service_account(void **state) {
        char *home = e2e_ns("h-newsa", NULL), *n = e2e_ns("newsa-n", NULL);
        e2e_pull_secret(home, "creds", "registry.subjects.example.com", "sub");
        char subj[256];
        snprintf(subj, sizeof(subj), "    namespaces: [%s]\n", n);
        policy_yaml(home, "late", subj);
        e2e_wait_applied(home, "late", E2E_WAIT_S);
        e2e_wait_link(n, "default", "pull", "creds", 1, E2E_WAIT_S);

        e2e_sa_create(n, "late-sa");
        e2e_wait_link(n, "late-sa", "pull", "creds", 1, LATENCY_BOUND_S);
        fprintf(stderr,
                "LATENCY new service account linked in (%.2f, %.2f] s (it waits for its "
                "dockercfg secret, provisioned at once here)\n",
                E2E.wait_lo, E2E.wait_hi);
        /* the provisioner's secret is there too: the link did not race it away */
        json_object *sa = e2e_sa(n, "late-sa");
        assert_non_null(e2e_find_prefix(sa, "imagePullSecrets", "late-sa-dockercfg-"));
        json_object_put(sa);
        char *pod = e2e_pod_pull_secrets(n, "late-sa");
        assert_int_equal(e2e_csv_count(pod, "creds"), 1);
        free(pod);
        e2e_wait_out(E2E_WAIT_S, "2",
                     "get ppol late -n '%s' -o jsonpath='{.status.linkedServiceAccounts}'", home);

        e2e_policy_delete(home, "late");
        e2e_ns_delete(home);
        e2e_ns_delete(n);
        free(home);
        free(n);
}

/* serviceAccountSelector, and its union with serviceAccounts. */
static void test_service_account_selector(void **state) {
        char *home = e2e_ns("h-sel", NULL), *n = e2e_ns("sasel-n", NULL);
        e2e_pull_secret(home, "creds", "registry.subjects.example.com", "sub");
        e2e_sa_create(n, "a");
        e2e_sa_create(n, "b");
        assert_int_equal(kt_kubectl("label sa a -n '%s' pulls=true >/dev/null", n), 0);
        char subj[512];
        snprintf(subj, sizeof(subj),
                 "    namespaces: [%s]\n    serviceAccountSelector:\n"
                 "      matchLabels: {pulls: \"true\"}\n",
                 n);
        policy_yaml(home, "picky", subj);
        e2e_wait_applied(home, "picky", E2E_WAIT_S);
        char *rb = rb_name("picky", n);
        /* not the whole group: the selected account by name */
        wait_rb(home, rb, "ServiceAccount:a");
        e2e_wait_link(n, "a", "pull", "creds", 1, E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(n, "b", "pull", "creds"), 0);
        assert_int_equal(e2e_sa_count(n, "default", "pull", "creds"), 0);

        /* b labelled in, a labelled out */
        assert_int_equal(kt_kubectl("label sa b -n '%s' pulls=true >/dev/null", n), 0);
        e2e_wait_link(n, "b", "pull", "creds", 1, LATENCY_BOUND_S);
        fprintf(stderr, "LATENCY service account labelled in: linked in (%.2f, %.2f] s\n",
                E2E.wait_lo, E2E.wait_hi);
        wait_rb(home, rb, "ServiceAccount:a,ServiceAccount:b");
        assert_int_equal(kt_kubectl("label sa a -n '%s' pulls- >/dev/null", n), 0);
        e2e_wait_link(n, "a", "pull", "creds", 0, E2E_WAIT_S);
        wait_rb(home, rb, "ServiceAccount:b");
        assert_int_equal(e2e_sa_count(n, "b", "pull", "creds"), 1);

        /* names are a union with the selector */
        snprintf(subj, sizeof(subj),
                 "    namespaces: [%s]\n    serviceAccounts: [default]\n"
                 "    serviceAccountSelector:\n"
                 "      matchLabels: {pulls: \"true\"}\n",
                 n);
        policy_yaml(home, "picky", subj);
        e2e_wait_link(n, "default", "pull", "creds", 1, E2E_WAIT_S);
        wait_rb(home, rb, "ServiceAccount:b,ServiceAccount:default");
        e2e_wait_applied(home, "picky", E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(n, "a", "pull", "creds"), 0);
        e2e_wait_out(E2E_WAIT_S, "2",
                     "get ppol picky -n '%s' -o jsonpath='{.status.linkedServiceAccounts}'", home);

        e2e_policy_delete(home, "picky");
        free(rb);
        e2e_ns_delete(home);
        e2e_ns_delete(n);
        free(home);
        free(n);
}

/* A namespace that is being deleted stops being a subject. */
static void test_terminating_namespace(void **state) {
        char *home = e2e_ns("h-term", NULL), *n1 = e2e_ns("term-1", NULL),
             *n2 = e2e_ns("term-2", NULL);
        e2e_pull_secret(home, "creds", "registry.subjects.example.com", "sub");
        /* keeps n2 Terminating until the test releases it */
        kt_apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hold\n  namespace: %s\n"
                 "  labels: {" E2E_LABEL_HOLD ": \"true\"}\n"
                 "  finalizers: [e2e.pullpolicy.io/hold]\n",
                 n2);
        char subj[512];
        snprintf(subj, sizeof(subj), "    namespaces: [%s, %s]\n", n1, n2);
        policy_yaml(home, "two", subj);
        e2e_wait_applied(home, "two", E2E_WAIT_S);
        char *rb1 = rb_name("two", n1), *rb2 = rb_name("two", n2);
        char g1[256], g2[256];
        snprintf(g1, sizeof(g1), "Group:system:serviceaccounts:%s", n1);
        snprintf(g2, sizeof(g2), "Group:system:serviceaccounts:%s", n2);
        wait_rb(home, rb1, g1);
        wait_rb(home, rb2, g2);
        e2e_wait_out(E2E_WAIT_S, "2", "get ppol two -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);

        assert_int_equal(kt_kubectl("delete namespace '%s' --wait=false >/dev/null", n2), 0);
        e2e_wait_out(E2E_WAIT_S, "Terminating", "get namespace '%s' -o jsonpath='{.status.phase}'",
                     n2);
        wait_rb(home, rb2, NULL);
        fprintf(stderr,
                "LATENCY terminating namespace's RoleBinding gone in (%.2f, %.2f] s "
                "after it was seen Terminating\n",
                E2E.wait_lo, E2E.wait_hi);
        e2e_wait_out(E2E_WAIT_S, "1", "get ppol two -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);
        /* still Terminating (so it was excluded, not merely gone), and n1 untouched */
        char *phase = kt_kout("get namespace '%s' -o jsonpath='{.status.phase}'", n2);
        assert_string_equal(phase, "Terminating");
        free(phase);
        char *s1 = rb_subjects(home, rb1);
        assert_non_null(s1);
        assert_string_equal(s1, g1);
        free(s1);
        assert_int_equal(e2e_sa_count(n1, "default", "pull", "creds"), 1);

        kt_kubectl("patch configmap hold -n '%s' --type=merge "
                   "-p '{\"metadata\":{\"finalizers\":null}}' >/dev/null",
                   n2);
        e2e_policy_delete(home, "two");
        free(rb1);
        free(rb2);
        e2e_ns_delete(home);
        e2e_ns_delete(n1);
        free(home);
        free(n1);
        free(n2);
}

/*
 * matchExpressions (In, NotIn, Exists, DoesNotExist) on namespaces, and a binding that
 * moves from the Group form to ServiceAccount subjects and back as the names come and go.
 */
static void test_match_expressions(void **state) {
        char *home = e2e_ns("h-expr", NULL);
        char lbl[256];
        snprintf(lbl, sizeof(lbl), "e2e-expr: %s\n    tier: gold\n", E2E.prefix);
        char *gold = e2e_ns("expr-gold", lbl);
        snprintf(lbl, sizeof(lbl), "e2e-expr: %s\n    tier: silver\n", E2E.prefix);
        char *silver = e2e_ns("expr-silver", lbl);
        snprintf(lbl, sizeof(lbl), "e2e-expr: %s\n    tier: gold\n    frozen: \"yes\"\n",
                 E2E.prefix);
        char *frozen = e2e_ns("expr-frozen", lbl);
        snprintf(lbl, sizeof(lbl), "e2e-expr: %s\n", E2E.prefix);
        char *plain = e2e_ns("expr-plain", lbl);

        char subj[1024];
        snprintf(subj, sizeof(subj),
                 "    namespaceSelector:\n      matchExpressions:\n"
                 "      - {key: e2e-expr, operator: In, values: [%s]}\n"
                 "      - {key: tier, operator: Exists}\n"
                 "      - {key: tier, operator: NotIn, values: [silver]}\n"
                 "      - {key: frozen, operator: DoesNotExist}\n",
                 E2E.prefix);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: expr\n  namespace: %s\n"
                 "spec:\n  subjects:\n%s  imagePuller: {}\n",
                 home, subj);
        e2e_wait_applied(home, "expr", E2E_WAIT_S);
        /* only gold qualifies */
        char *want = rb_name("expr", gold);
        e2e_wait_out(E2E_WAIT_S, want,
                     "get rolebindings -n '%s' -l pullpolicy.io/policy=expr "
                     "-o jsonpath='{.items[*].metadata.name}'",
                     home);
        free(want);
        e2e_wait_out(E2E_WAIT_S, "1", "get ppol expr -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);
        /* frozen thaws: it joins */
        assert_int_equal(kt_kubectl("label namespace '%s' frozen- >/dev/null", frozen), 0);
        char *rbf = rb_name("expr", frozen);
        char g[256];
        snprintf(g, sizeof(g), "Group:system:serviceaccounts:%s", frozen);
        wait_rb(home, rbf, g);

        /* Group form -> ServiceAccount subjects -> Group form, same binding name */
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: expr\n  namespace: %s\n"
                 "spec:\n  subjects:\n%s    serviceAccounts: [default, robot]\n"
                 "  imagePuller: {}\n",
                 home, subj);
        wait_rb(home, rbf, "ServiceAccount:default,ServiceAccount:robot");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: expr\n  namespace: %s\n"
                 "spec:\n  subjects:\n%s  imagePuller: {}\n",
                 home, subj);
        wait_rb(home, rbf, g);
        e2e_wait_applied(home, "expr", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "2", "get ppol expr -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);
        char *rbs = rb_name("expr", silver), *rbp = rb_name("expr", plain);
        assert_null(rb_subjects(home, rbs));
        assert_null(rb_subjects(home, rbp));

        e2e_policy_delete(home, "expr");
        free(rbf);
        free(rbs);
        free(rbp);
        char *all[] = {home, gold, silver, frozen, plain};
        for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
                e2e_ns_delete(all[i]);
                free(all[i]);
        }
}

/* A namespace named in the policy before it exists is served once it is created. */
static void test_named_namespace_created_later(void **state) {
        char *home = e2e_ns("h-later", NULL);
        e2e_pull_secret(home, "creds", "registry.subjects.example.com", "sub");
        char later[128];
        snprintf(later, sizeof(later), "%s-made-later", E2E.prefix);
        char subj[256];
        snprintf(subj, sizeof(subj), "    namespaces: [%s]\n", later);
        policy_yaml(home, "ahead", subj);
        /* nothing to do yet; no binding for a namespace that does not exist */
        e2e_wait(ahead_has_status, (void *)home, E2E_WAIT_S, "the policy to have a status");
        char *rb = rb_name("ahead", later);
        char *before = rb_subjects(home, rb);
        fprintf(stderr, "binding before the namespace exists: %s\n", before ? before : "(none)");
        free(before);

        char *ns = e2e_ns("made-later", NULL);
        assert_string_equal(ns, later);
        char group[256];
        snprintf(group, sizeof(group), "Group:system:serviceaccounts:%s", ns);
        wait_rb(home, rb, group);
        e2e_wait_link(ns, "default", "pull", "creds", 1, E2E_WAIT_S);
        fprintf(stderr,
                "LATENCY named namespace created: linked in (%.2f, %.2f] s after the "
                "binding\n",
                E2E.wait_lo, E2E.wait_hi);
        e2e_wait_applied(home, "ahead", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "1", "get ppol ahead -n '%s' -o jsonpath='{.status.namespaces}'",
                     home);

        e2e_policy_delete(home, "ahead");
        free(rb);
        e2e_ns_delete(home);
        e2e_ns_delete(ns);
        free(home);
        free(ns);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "subjects", e2e_sim_mode()) < 0) return -1;
        char dist[1024] = "--distribution-namespaces=";
        for (size_t i = 0; i < ARRAY_SIZE(homes); i++) {
                if (i) strcat(dist, ",");
                strcat(dist, E2E.prefix);
                strcat(dist, "-");
                strcat(dist, homes[i]);
        }
        const char *flags[] = {dist, NULL};
        return e2e_controller_start(flags);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_namespace_selector),
            cmocka_unit_test(test_new_service_account),
            cmocka_unit_test(test_service_account_selector),
            cmocka_unit_test(test_terminating_namespace),
            cmocka_unit_test(test_match_expressions),
            cmocka_unit_test(test_named_namespace_created_later),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
