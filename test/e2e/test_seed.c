/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: the seed's commands (docs "Using image pull secrets") as PullPolicy objects, one
 * test per row of API.md's table "The seed's commands as policies", checked as a user would
 * check the hand-made result: RoleBinding subjects and `kubectl auth can-i`, service
 * account lists, the imagePullSecrets of a Pod created afterwards (the ServiceAccount
 * admission plugin copies them from the account), the global pull secret's decoded
 * auths, and `kubectl get ppol`.
 *
 * Also: --for=mount, R2's allowed ClusterRoles (RoleNotAllowed; a role changed in place,
 * though a RoleBinding's roleRef is immutable) and R6's Conflict on a registry already in the
 * global pull secret.
 *
 * One controller for the program (--distribution-namespaces=<prefix>-global,<prefix>-global2, the
 * homes of the global pull secret tests; --allowed-cluster-roles=system:image-puller,view) and one
 * dockercfg provisioner without delay in the mode of e2e_sim_mode() ($PULLPOLICY_SIM_MODE, default
 * current; `make integration` also runs this program @early416, @legacy and @removed), so the
 * dockercfg assertions follow the mode (e2e_assert_dockercfg). image.openshift.io is served, so
 * wait: Auto
 * waits for it, as on OpenShift).
 */
#include "e2e.h"
#include "names.h"

static const char *const ready_cols[] = {"NAME",   "READY",   "REASON", "NAMESPACES",
                                         "LINKED", "WAITING", "AGE"};

/* `kubectl auth can-i get imagestreams/layers -n ns --as=user`: "yes" or "no" (a new string). */
static char *can_pull(const char *ns, const char *user) {
        char *out = NULL;
        int r = testenv_kubectl(&out,
                                "auth can-i get imagestreams.image.openshift.io "
                                "--subresource=layers -n '%s' --as='%s' 2>/dev/null",
                                ns, user);
        assert_true(r == 0 || r == 1);
        assert_non_null(out);
        size_t n = strlen(out);
        while (n && (out[n - 1] == '\n' || out[n - 1] == ' ')) out[--n] = 0;
        return out;
}

static void assert_can_pull(const char *ns, const char *user, const char *want) {
        char *got = can_pull(ns, user);
        if (strcmp(got, want) != 0)
                fprintf(stderr, "can %s pull from %s? %s, expected %s\n", user, ns, got, want);
        assert_string_equal(got, want);
        free(got);
}

/*
 * `kubectl get ppol name -n ns` shows the columns of API.md with these values (the AGE
 * column is only checked to be there).
 */
static void assert_columns(const char *ns, const char *name, const char *ready, const char *reason,
                           const char *nss, const char *linked, const char *waiting) {
        char *out = kt_kout("get ppol '%s' -n '%s'", name, ns);
        assert_non_null(out);
        fprintf(stderr, "%s\n", out);
        char *save = NULL, *line1 = strtok_r(out, "\n", &save),
             *line2 = strtok_r(NULL, "\n", &save);
        assert_non_null(line1);
        assert_non_null(line2);
        char *s1 = NULL, *s2 = NULL;
        const char *want[] = {name, ready, reason, nss, linked, waiting};
        size_t i = 0;
        for (char *h = strtok_r(line1, " ", &s1); h; h = strtok_r(NULL, " ", &s1), i++) {
                assert_true(i < ARRAY_SIZE(ready_cols));
                assert_string_equal(h, ready_cols[i]);
        }
        assert_int_equal(i, ARRAY_SIZE(ready_cols));
        i = 0;
        for (char *v = strtok_r(line2, " ", &s2); v && i < 6; v = strtok_r(NULL, " ", &s2), i++)
                assert_string_equal(v, want[i]);
        assert_int_equal(i, 6);
        free(out);
}

/* The RoleBinding's R8 labels and its controller owner reference to the policy. */
static void assert_marks(json_object *obj, const char *home, const char *policy) {
        assert_string_equal(kt_label(obj, "app.kubernetes.io/managed-by"), "pullpolicy-controller");
        assert_string_equal(kt_label(obj, "pullpolicy.io/policy"), policy);
        assert_string_equal(kt_label(obj, "pullpolicy.io/policy-namespace"), home);
}

static void assert_owned_by_policy(json_object *obj, const char *home, const char *policy) {
        json_object *p = e2e_policy(home, policy);
        assert_non_null(p);
        const char *uid = kt_jstr(p, "metadata.uid");
        assert_non_null(uid);
        assert_int_equal(kt_jlen(obj, "metadata.ownerReferences"), 1);
        json_object *o = kt_jidx(obj, "metadata.ownerReferences", 0);
        assert_string_equal(kt_jstr(o, "kind"), "PullPolicy");
        assert_string_equal(kt_jstr(o, "apiVersion"), "pullpolicy.io/v1alpha1");
        assert_string_equal(kt_jstr(o, "name"), policy);
        assert_string_equal(kt_jstr(o, "uid"), uid);
        assert_true(json_object_get_boolean(kt_jget(o, "controller")));
        json_object_put(p);
}

/* The RoleBinding name of policy for namespace ns (names.h), into buf. */
static void rb_name_into(char *buf, size_t size, const char *policy, const char *ns) {
        char *n = NULL;
        assert_int_equal(names_role_binding(policy, ns, &n), 0);
        assert_true(strlen(n) < size);
        snprintf(buf, size, "%s", n);
        free(n);
}

static json_object *role_binding(const char *home, const char *policy, const char *ns) {
        char *name = NULL;
        assert_int_equal(names_role_binding(policy, ns, &name), 0);
        json_object *o = e2e_get("rolebinding", home, name);
        free(name);
        return o;
}

/* `oc policy add-role-to-user system:image-puller system:serviceaccount:A:default -n B` */
static void test_add_role_to_user(void **state) {
        char *a = e2e_ns("user-a", NULL), *b = e2e_ns("user-b", NULL);
        char user[256], builder[256];
        snprintf(user, sizeof(user), "system:serviceaccount:%s:default", a);
        snprintf(builder, sizeof(builder), "system:serviceaccount:%s:builder", a);
        e2e_sa_create(a, "builder");
        assert_can_pull(b, user, "no");

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: a-default\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s]\n    serviceAccounts: [default]\n"
                 "  imagePuller: {}\n",
                 b, a);
        double took = e2e_wait_applied(b, "a-default", E2E_WAIT_S);
        fprintf(stderr, "add-role-to-user: Ready after %.2f s\n", took);

        json_object *rb = role_binding(b, "a-default", a);
        assert_non_null(rb);
        assert_string_equal(kt_jstr(rb, "roleRef.kind"), "ClusterRole");
        assert_string_equal(kt_jstr(rb, "roleRef.name"), "system:image-puller");
        assert_string_equal(kt_jstr(rb, "roleRef.apiGroup"), "rbac.authorization.k8s.io");
        assert_int_equal(kt_jlen(rb, "subjects"), 1);
        json_object *s = kt_jidx(rb, "subjects", 0);
        assert_string_equal(kt_jstr(s, "kind"), "ServiceAccount");
        assert_string_equal(kt_jstr(s, "name"), "default");
        assert_string_equal(kt_jstr(s, "namespace"), a);
        assert_marks(rb, b, "a-default");
        assert_owned_by_policy(rb, b, "a-default");
        json_object_put(rb);

        /* What the hand-made binding achieves: default may pull, builder may not. */
        assert_can_pull(b, user, "yes");
        assert_can_pull(b, builder, "no");

        json_object *p = e2e_policy(b, "a-default");
        assert_int_equal(kt_jint(p, "status.namespaces"), 1);
        assert_int_equal(kt_jint(p, "status.roleBindings"), 1);
        json_object_put(p);
        assert_columns(b, "a-default", "True", "Applied", "1", "0", "0");
        e2e_wait_out(E2E_WAIT_S, "yes",
                     "get events -n '%s' --field-selector involvedObject.name=a-default,"
                     "reason=RoleBindingCreated -o name | grep -q . && echo yes || echo no",
                     b);

        /* someone edits the binding, then deletes it: it is put back each time */
        char rbn[256];
        rb_name_into(rbn, sizeof(rbn), "a-default", a);
        assert_int_equal(kt_kubectl("patch rolebinding '%s' -n '%s' --type=json -p "
                                    "'[{\"op\":\"replace\",\"path\":\"/subjects/0/name\","
                                    "\"value\":\"builder\"}]' >/dev/null",
                                    rbn, b),
                         0);
        e2e_wait_out(E2E_WAIT_S, "default",
                     "get rolebinding '%s' -n '%s' -o jsonpath='{.subjects[*].name}'", rbn, b);
        assert_int_equal(kt_kubectl("delete rolebinding '%s' -n '%s' >/dev/null", rbn, b), 0);
        e2e_wait_out(E2E_WAIT_S, "default",
                     "get rolebinding '%s' -n '%s' -o jsonpath='{.subjects[*].name}'", rbn, b);
        assert_can_pull(b, user, "yes");
        assert_can_pull(b, builder, "no");
        e2e_wait_applied(b, "a-default", E2E_WAIT_S);

        e2e_policy_delete(b, "a-default");
        rb = role_binding(b, "a-default", a);
        assert_null(rb);
        assert_can_pull(b, user, "no");
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(a);
        free(b);
}

/* `oc policy add-role-to-group system:image-puller system:serviceaccounts:A -n B` */
static void test_add_role_to_group(void **state) {
        char *a = e2e_ns("group-a", NULL), *b = e2e_ns("group-b", NULL),
             *c = e2e_ns("group-c", NULL);
        char user[256], builder[256], other[256], group[256];
        snprintf(user, sizeof(user), "system:serviceaccount:%s:default", a);
        snprintf(builder, sizeof(builder), "system:serviceaccount:%s:builder", a);
        snprintf(other, sizeof(other), "system:serviceaccount:%s:default", c);
        snprintf(group, sizeof(group), "system:serviceaccounts:%s", a);
        e2e_sa_create(a, "builder");

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: a-all\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s]\n  imagePuller: {}\n",
                 b, a);
        e2e_wait_applied(b, "a-all", E2E_WAIT_S);

        json_object *rb = role_binding(b, "a-all", a);
        assert_non_null(rb);
        assert_string_equal(kt_jstr(rb, "roleRef.name"), "system:image-puller");
        assert_int_equal(kt_jlen(rb, "subjects"), 1);
        json_object *s = kt_jidx(rb, "subjects", 0);
        assert_string_equal(kt_jstr(s, "kind"), "Group");
        assert_string_equal(kt_jstr(s, "name"), group);
        assert_string_equal(kt_jstr(s, "apiGroup"), "rbac.authorization.k8s.io");
        assert_marks(rb, b, "a-all");
        assert_owned_by_policy(rb, b, "a-all");
        json_object_put(rb);

        /* every service account of A, present or future; nobody of C */
        assert_can_pull(b, user, "yes");
        assert_can_pull(b, builder, "yes");
        char later[256];
        snprintf(later, sizeof(later), "system:serviceaccount:%s:made-later", a);
        assert_can_pull(b, later, "yes");
        assert_can_pull(b, other, "no");
        /* no binding for other namespaces, and exactly one binding in the home */
        char *n = kt_kout("get rolebindings -n '%s' -l pullpolicy.io/policy=a-all "
                          "-o jsonpath='{range .items[*]}{.metadata.name}{\"\\n\"}{end}'",
                          b);
        assert_non_null(n);
        char want[256];
        rb_name_into(want, sizeof(want), "a-all", a);
        assert_string_equal(n, want);
        free(n);
        assert_columns(b, "a-all", "True", "Applied", "1", "0", "0");

        e2e_policy_delete(b, "a-all");
        assert_can_pull(b, builder, "no");
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        e2e_ns_delete(c);
        free(a);
        free(b);
        free(c);
}

/* `oc secrets link default my-secret --for=pull` */
static void test_secrets_link(void **state) {
        char *b = e2e_ns("link", NULL);
        e2e_sa_create(b, "builder");
        e2e_pull_secret(b, "my-secret", "registry.example.com", "demo");

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: link-my-secret\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: my-secret\n    for: [pull]\n",
                 b);
        double took = e2e_wait_applied(b, "link-my-secret", E2E_WAIT_S);
        fprintf(stderr, "secrets link: Ready after %.2f s\n", took);

        json_object *sa = e2e_sa(b, "default");
        assert_non_null(sa);
        char *names = e2e_names(sa, "imagePullSecrets");
        fprintf(stderr, "%s/default imagePullSecrets: %s\n", b, names);
        assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "my-secret"), 1);
        /* next to OpenShift's own dockercfg secret (none when the registry is removed) */
        const char *dockercfg = e2e_assert_dockercfg(sa, "imagePullSecrets", "default");
        e2e_assert_dockercfg(sa, "secrets", "default");
        /* --for=pull only: not in .secrets */
        assert_int_equal(e2e_count_name(sa, "secrets", "my-secret"), 0);
        char *dcfg = dockercfg ? strdup(dockercfg) : NULL;
        json_object_put(sa);
        free(names);
        /* only the named account */
        assert_int_equal(e2e_sa_count(b, "builder", "pull", "my-secret"), 0);

        char *pod = e2e_pod_pull_secrets(b, "default");
        fprintf(stderr, "new pod's imagePullSecrets: %s\n", pod);
        assert_int_equal(e2e_csv_count(pod, "my-secret"), 1);
        if (dcfg) assert_true(e2e_csv_has(pod, dcfg));
        free(pod);
        pod = e2e_pod_pull_secrets(b, "builder");
        assert_false(e2e_csv_has(pod, "my-secret"));
        free(pod);

        json_object *p = e2e_policy(b, "link-my-secret");
        assert_int_equal(kt_jint(p, "status.namespaces"), 1);
        assert_int_equal(kt_jint(p, "status.linkedServiceAccounts"), 1);
        assert_int_equal(kt_jint(p, "status.waitingServiceAccounts"), 0);
        json_object_put(p);
        assert_columns(b, "link-my-secret", "True", "Applied", "1", "1", "0");
        assert_true(e2e_events(b, "link-my-secret", "Linked") >= 1);

        /* a person unlinks it by hand: declared, so it comes back (and the dockercfg stays) */
        json_object *cur = e2e_sa(b, "default");
        size_t idx = 0;
        for (size_t i = 0; i < kt_jlen(cur, "imagePullSecrets"); i++)
                if (!strcmp(kt_jstr(kt_jidx(cur, "imagePullSecrets", i), "name"), "my-secret"))
                        idx = i;
        const char *rv = kt_jstr(cur, "metadata.resourceVersion");
        assert_int_equal(kt_kubectl("patch sa default -n '%s' --type=json -p "
                                    "'[{\"op\":\"test\",\"path\":\"/metadata/resourceVersion\","
                                    "\"value\":\"%s\"},"
                                    "{\"op\":\"remove\",\"path\":\"/imagePullSecrets/%zu\"}]' "
                                    ">/dev/null",
                                    b, rv, idx),
                         0);
        json_object_put(cur);
        e2e_wait_link(b, "default", "pull", "my-secret", 1, E2E_WAIT_S);
        fprintf(stderr, "unlinked by hand: linked again in (%.2f, %.2f] s\n", E2E.wait_lo,
                E2E.wait_hi);
        if (dcfg) assert_int_equal(e2e_sa_count(b, "default", "pull", dcfg), 1);

        e2e_policy_delete(b, "link-my-secret");
        assert_int_equal(e2e_sa_count(b, "default", "pull", "my-secret"), 0);
        if (dcfg) assert_int_equal(e2e_sa_count(b, "default", "pull", dcfg), 1);
        free(dcfg);
        e2e_ns_delete(b);
        free(b);
}

/* Delegated authentication: two `oc create secret docker-registry`, both linked. */
static void test_delegated_auth(void **state) {
        char *b = e2e_ns("sso", NULL);
        e2e_sa_create(b, "builder");
        e2e_pull_secret(b, "sso-auth", "sso.example.com", "developer");
        e2e_pull_secret(b, "private-registry", "registry.private.example.com", "developer");

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: delegated-auth\n  namespace: %s\n"
                 "spec:\n  pullSecrets:\n  - name: sso-auth\n  - name: private-registry\n",
                 b);
        e2e_wait_applied(b, "delegated-auth", E2E_WAIT_S);

        const char *sas[] = {"default", "builder"};
        for (size_t i = 0; i < ARRAY_SIZE(sas); i++) {
                json_object *sa = e2e_sa(b, sas[i]);
                assert_non_null(sa);
                char *names = e2e_names(sa, "imagePullSecrets");
                fprintf(stderr, "%s/%s imagePullSecrets: %s\n", b, sas[i], names);
                assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "sso-auth"), 1);
                assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "private-registry"), 1);
                const char *dcfg = e2e_assert_dockercfg(sa, "imagePullSecrets", sas[i]);

                char *pod = e2e_pod_pull_secrets(b, sas[i]);
                fprintf(stderr, "new pod as %s: imagePullSecrets %s\n", sas[i], pod);
                assert_int_equal(e2e_csv_count(pod, "sso-auth"), 1);
                assert_int_equal(e2e_csv_count(pod, "private-registry"), 1);
                if (dcfg) assert_true(e2e_csv_has(pod, dcfg));
                free(pod);
                free(names);
                json_object_put(sa);
        }
        json_object *p = e2e_policy(b, "delegated-auth");
        assert_int_equal(kt_jint(p, "status.linkedServiceAccounts"), 2);
        assert_int_equal(kt_jint(p, "status.waitingServiceAccounts"), 0);
        json_object_put(p);
        assert_columns(b, "delegated-auth", "True", "Applied", "1", "2", "0");

        /* "present and future": an account made afterwards gets both */
        e2e_sa_create(b, "deployer");
        e2e_wait_link(b, "deployer", "pull", "sso-auth", 1, E2E_WAIT_S);
        e2e_wait_link(b, "deployer", "pull", "private-registry", 1, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "3",
                     "get ppol delegated-auth -n '%s' "
                     "-o jsonpath='{.status.linkedServiceAccounts}'",
                     b);

        e2e_policy_delete(b, "delegated-auth");
        for (size_t i = 0; i < ARRAY_SIZE(sas); i++) {
                assert_int_equal(e2e_sa_count(b, sas[i], "pull", "sso-auth"), 0);
                assert_int_equal(e2e_sa_count(b, sas[i], "pull", "private-registry"), 0);
        }
        e2e_ns_delete(b);
        free(b);
}

/* ---- the global pull secret ---------------------------------------------------------- */

#define GLOBAL_NS   "openshift-config"
#define GLOBAL_NAME "pull-secret"

/* The decoded .dockerconfigjson of the global pull secret, parsed. */
static json_object *global_auths(char **ret_type) {
        json_object *s = e2e_get("secret", GLOBAL_NS, GLOBAL_NAME);
        assert_non_null(s);
        char *text = e2e_secret_text(s, ".dockerconfigjson");
        assert_non_null(text);
        json_object *doc = json_tokener_parse(text);
        assert_non_null(doc);
        if (ret_type) *ret_type = strdup(kt_jstr(s, "type"));
        free(text);
        json_object_put(s);
        json_object *auths = json_object_get(kt_jget(doc, "auths"));
        json_object_put(doc);
        assert_non_null(auths);
        return auths;
}

/* The entry, serialized as parsed (key order kept): a stable text to compare. */
static const char *entry_text(json_object *auths, const char *registry) {
        json_object *e = kt_jget(auths, registry);
        return e ? json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN) : NULL;
}

/* Every entry of before is in now, unchanged; now has exactly before's keys plus extra. */
static void assert_foreign_intact(json_object *before, json_object *now, const char *extra) {
        size_t n_before = 0;
        json_object_object_foreach(before, key, val) {
                (void)val;
                n_before++;
                const char *b = entry_text(before, key), *a = entry_text(now, key);
                if (!a || strcmp(a, b) != 0)
                        fprintf(stderr, "entry %s changed:\n before %s\n after  %s\n", key, b,
                                a ? a : "(absent)");
                assert_non_null(a);
                assert_string_equal(a, b);
        }
        size_t n_now = (size_t)json_object_object_length(now);
        assert_int_equal(n_now, n_before + (extra ? 1 : 0));
        if (extra) assert_non_null(kt_jget(now, extra));
}

typedef struct global_cond {
        const char *registry;
        bool present;
} global_cond;

static int global_check(void *ud) {
        global_cond *c = ud;
        json_object *s = e2e_get("secret", GLOBAL_NS, GLOBAL_NAME);
        char *text = s ? e2e_secret_text(s, ".dockerconfigjson") : NULL;
        json_object *doc = text ? json_tokener_parse(text) : NULL;
        bool has = kt_jget(kt_jget(doc, "auths"), c->registry) != NULL;
        json_object_put(doc);
        free(text);
        json_object_put(s);
        return doc && has == c->present;
}

static void wait_global(const char *registry, bool present) {
        global_cond c = {registry, present};
        char what[512];
        snprintf(what, sizeof(what), "%s %s the global pull secret", registry,
                 present ? "in" : "out of");
        e2e_wait(global_check, &c, E2E_WAIT_S, what);
}

/* `oc registry login --to=f` + `oc set data secret/pull-secret -n openshift-config` */
static void test_global_pull_secret(void **state) {
        char *g = e2e_ns("global", NULL);
        char registry[256];
        snprintf(registry, sizeof(registry), "registry.%s.example.com", E2E.prefix);
        e2e_pull_secret(g, "partner-registry", registry, "partner");
        /* the registry's entry as the source secret holds it */
        json_object *src = e2e_get("secret", g, "partner-registry");
        char *src_text = e2e_secret_text(src, ".dockerconfigjson");
        json_object *src_doc = json_tokener_parse(src_text);
        const char *src_entry = entry_text(kt_jget(src_doc, "auths"), registry);
        assert_non_null(src_entry);

        char *type_before = NULL;
        json_object *before = global_auths(&type_before);
        fprintf(stderr, "global pull secret before: %zu registries\n",
                (size_t)json_object_object_length(before));
        assert_true(json_object_object_length(before) >= 4);
        assert_null(kt_jget(before, registry));

        const char *policy = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                             "metadata:\n  name: partner-global\n  namespace: %s\n"
                             "spec:\n  pullSecrets:\n  - name: partner-registry\n"
                             "  globalPullSecret:\n    merge: %s\n";
        kt_apply(policy, g, "true");
        e2e_wait_applied(g, "partner-global", E2E_WAIT_S);
        wait_global(registry, true);

        char *type_after = NULL;
        json_object *now = global_auths(&type_after);
        assert_string_equal(type_after, type_before);
        assert_foreign_intact(before, now, registry);
        assert_string_equal(entry_text(now, registry), src_entry);
        json_object_put(now);
        free(type_after);

        /* the source rotates: the merged entry follows, the others stay */
        e2e_pull_secret(g, "partner-registry", registry, "partner-rotated");
        json_object *rot = e2e_get("secret", g, "partner-registry");
        char *rot_text = e2e_secret_text(rot, ".dockerconfigjson");
        json_object *rot_doc = json_tokener_parse(rot_text);
        char *rot_entry = strdup(entry_text(kt_jget(rot_doc, "auths"), registry));
        assert_string_not_equal(rot_entry, src_entry);
        double t0 = kt_now();
        for (;;) {
                now = global_auths(NULL);
                const char *e = entry_text(now, registry);
                bool done = e && strcmp(e, rot_entry) == 0;
                if (done) assert_foreign_intact(before, now, registry);
                json_object_put(now);
                if (done) break;
                if (kt_now() - t0 > E2E_WAIT_S)
                        fail_msg("the global entry of %s did not follow the rotation", registry);
                kt_sleep(0.2);
        }
        free(rot_entry);
        json_object_put(rot_doc);
        free(rot_text);
        json_object_put(rot);

        /* the flag off: exactly its entry goes */
        kt_apply(policy, g, "false");
        wait_global(registry, false);
        e2e_wait_applied(g, "partner-global", E2E_WAIT_S);
        now = global_auths(NULL);
        assert_foreign_intact(before, now, NULL);
        json_object_put(now);

        /* on again, then the policy deleted: exactly its entry goes */
        kt_apply(policy, g, "true");
        wait_global(registry, true);
        e2e_policy_delete(g, "partner-global");
        now = global_auths(NULL);
        assert_null(kt_jget(now, registry));
        assert_foreign_intact(before, now, NULL);
        json_object_put(now);

        json_object_put(before);
        json_object_put(src_doc);
        json_object_put(src);
        free(src_text);
        free(type_before);
        e2e_ns_delete(g);
        free(g);
}

/* `oc secrets link default my-secret --for=mount` (and both) */
static void test_secrets_link_mount(void **state) {
        char *b = e2e_ns("mount", NULL);
        e2e_pull_secret(b, "mounted", "registry.mount.example.com", "mnt");
        e2e_pull_secret(b, "both", "registry.both.example.com", "both");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: mount\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                 "  pullSecrets:\n  - name: mounted\n    for: [mount]\n"
                 "  - name: both\n    for: [pull, mount]\n",
                 b);
        e2e_wait_applied(b, "mount", E2E_WAIT_S);
        json_object *sa = e2e_sa(b, "default");
        char *ips = e2e_names(sa, "imagePullSecrets"), *sec = e2e_names(sa, "secrets");
        fprintf(stderr, "%s/default imagePullSecrets [%s] secrets [%s]\n", b, ips, sec);
        assert_int_equal(e2e_count_name(sa, "secrets", "mounted"), 1);
        assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "mounted"), 0);
        assert_int_equal(e2e_count_name(sa, "secrets", "both"), 1);
        assert_int_equal(e2e_count_name(sa, "imagePullSecrets", "both"), 1);
        e2e_assert_dockercfg(sa, "secrets", "default");
        free(ips);
        free(sec);
        json_object_put(sa);
        char *pod = e2e_pod_pull_secrets(b, "default");
        assert_false(e2e_csv_has(pod, "mounted"));
        assert_true(e2e_csv_has(pod, "both"));
        free(pod);
        e2e_policy_delete(b, "mount");
        assert_int_equal(e2e_sa_count(b, "default", "mount", "mounted"), 0);
        assert_int_equal(e2e_sa_count(b, "default", "mount", "both"), 0);
        assert_int_equal(e2e_sa_count(b, "default", "pull", "both"), 0);
        e2e_ns_delete(b);
        free(b);
}

/* R2: a ClusterRole off the allowed list is refused; an allowed one can replace another. */
static void test_cluster_roles(void **state) {
        char *a = e2e_ns("role-a", NULL), *b = e2e_ns("role-b", NULL);
        const char *pol = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                          "metadata:\n  name: %s\n  namespace: %s\n"
                          "spec:\n  subjects:\n    namespaces: [%s]\n"
                          "  imagePuller:\n    clusterRole: %s\n";
        kt_apply(pol, "too-much", b, a, "admin");
        e2e_wait_ready(b, "too-much", "False", "RoleNotAllowed", E2E_WAIT_S);
        e2e_hold_out(2.0, "", "get rolebindings -n '%s' -o name", b);
        char *msg =
            kt_kout("get ppol too-much -n '%s' -o jsonpath='" E2E_JSONPATH_READY ".message}'", b);
        fprintf(stderr, "RoleNotAllowed: %s\n", msg);
        assert_non_null(strstr(msg, "admin"));
        free(msg);
        e2e_policy_delete(b, "too-much");

        /* allowed by --allowed-cluster-roles; then changed: a roleRef cannot be updated */
        kt_apply(pol, "switch", b, a, "system:image-puller");
        e2e_wait_applied(b, "switch", E2E_WAIT_S);
        char rb[256];
        rb_name_into(rb, sizeof(rb), "switch", a);
        e2e_wait_out(E2E_WAIT_S, "system:image-puller",
                     "get rolebinding '%s' -n '%s' -o jsonpath='{.roleRef.name}'", rb, b);
        kt_apply(pol, "switch", b, a, "view");
        e2e_wait_out(E2E_WAIT_S, "view",
                     "get rolebinding '%s' -n '%s' -o jsonpath='{.roleRef.name}'", rb, b);
        e2e_wait_applied(b, "switch", E2E_WAIT_S);
        char user[256];
        snprintf(user, sizeof(user), "system:serviceaccount:%s:default", a);
        char *out = NULL;
        testenv_kubectl(&out, "auth can-i list configmaps -n '%s' --as='%s' 2>/dev/null", b, user);
        assert_non_null(out);
        assert_non_null(strstr(out, "yes"));
        free(out);
        assert_can_pull(b, user, "no");
        char *n = kt_kout("get rolebindings -n '%s' -o name", b);
        fprintf(stderr, "bindings after the switch: %s\n", n);
        assert_int_equal(strchr(n, '\n') == NULL, 1); /* exactly one */
        free(n);

        e2e_policy_delete(b, "switch");
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(a);
        free(b);
}

/* R6: a registry already in the global pull secret, not added by the policy: Conflict. */
static void test_global_pull_secret_conflict(void **state) {
        char *g = e2e_ns("global2", NULL);
        json_object *before = global_auths(NULL);
        const char *taken = "quay.io";
        assert_non_null(kt_jget(before, taken));
        e2e_pull_secret(g, "my-quay", taken, "mine");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: quay-global\n  namespace: %s\n"
                 "spec:\n  subjects:\n    serviceAccounts: [nobody]\n"
                 "  pullSecrets:\n  - name: my-quay\n  globalPullSecret:\n    merge: true\n",
                 g);
        e2e_wait_ready(g, "quay-global", "False", "Conflict", E2E_WAIT_S);
        char *p = kt_kout("get ppol quay-global -n '%s' -o jsonpath='{.status.problems}'", g);
        fprintf(stderr, "global conflict: %s\n", p);
        assert_non_null(strstr(p, "quay.io"));
        free(p);
        kt_sleep(2.0);
        json_object *now = global_auths(NULL);
        assert_foreign_intact(before, now, NULL);
        json_object_put(now);
        e2e_policy_delete(g, "quay-global");
        now = global_auths(NULL);
        assert_foreign_intact(before, now, NULL);
        json_object_put(now);
        json_object_put(before);
        e2e_ns_delete(g);
        free(g);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "seed", e2e_sim_mode()) < 0) return -1;
        char dist[256];
        snprintf(dist, sizeof(dist), "--distribution-namespaces=%s-global,%s-global2", E2E.prefix,
                 E2E.prefix);
        const char *flags[] = {dist, "--allowed-cluster-roles=system:image-puller,view", NULL};
        return e2e_controller_start(flags);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_add_role_to_user),
            cmocka_unit_test(test_add_role_to_group),
            cmocka_unit_test(test_secrets_link),
            cmocka_unit_test(test_delegated_auth),
            cmocka_unit_test(test_global_pull_secret),
            cmocka_unit_test(test_secrets_link_mount),
            cmocka_unit_test(test_cluster_roles),
            cmocka_unit_test(test_global_pull_secret_conflict),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
