/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The install manifests and the controller's RBAC, proven on the real control plane:
 *
 *  - `kubectl apply -k manifests/` installs every object (server-side, strict validation),
 *    idempotently, and the Deployment's pods pass Pod Security "restricted" admission;
 *  - the controller, run in-cluster with nothing but the token of
 *    system:serviceaccount:pullpolicy-system:pullpolicy-controller, does its whole job:
 *    image-puller RoleBindings in other namespaces (needs `bind` on system:image-puller),
 *    links, copies into other namespaces, the global pull-secret merge, clean-up on
 *    deletion, status, events and its leader-election Lease; it never meets a 403, and
 *    survives a token rotation (the old, revoked token is not used any more);
 *  - the same identity is denied what it must not do: a can-i matrix, and real attempts
 *    with its token (binding cluster-admin/admin/edit is refused by the escalation check);
 *  - the aggregated roles: namespace admins may write PullPolicies; edit and view may read.
 *
 * One controller for the program (in-cluster, --leader-elect with a Lease of its own name).
 */
#include "prod.h"

static struct {
        char *prefix;
        char *lease;
        char *pod;
        char *log;
        char *home; /* a policy home outside the distribution list */
        char *subj; /* a subject namespace */
        incluster *ic;
        tproc ctl;
        bool running;
} S;

/* ---- set-up ------------------------------------------------------------------------------ */

static int wait_log(const char *needle, double timeout_s) {
        double deadline = kt_now() + timeout_s;
        while (kt_now() < deadline) {
                if (prod_log_grep(S.log, needle, false) > 0) return 0;
                kt_sleep(0.1);
        }
        return -ETIMEDOUT;
}

static int group_setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (prod_install(NULL) != 0) return -1;
        S.prefix = testenv_unique_name("prod-rbac");
        if (!S.prefix) return -1;
        if (asprintf(&S.lease, "%s-lease", S.prefix) < 0 ||
            asprintf(&S.pod, "%s-pod", S.prefix) < 0)
                return -1;
        S.home = prod_namespace(S.prefix, "home", NULL);
        S.subj = prod_namespace(S.prefix, "subj", NULL);
        if (!S.home || !S.subj) return -1;

        int r = incluster_new(PROD_NS, PROD_SA, NULL, "1h", &S.ic);
        if (r < 0) {
                fprintf(stderr, "cannot lay out the in-cluster identity (%d)\n", r);
                return -1;
        }
        char lease_flag[256];
        snprintf(lease_flag, sizeof(lease_flag), "--leader-election-id=%s", S.lease);
        const char *extra[] = {"--leader-elect", lease_flag, NULL};
        S.log = incluster_log_path("prod-rbac-controller");
        if (!S.log) return -1;
        unlink(S.log);
        incluster_controller_opts o = {.pod_name = S.pod, .wait_ready = true};
        r = incluster_start_controller(&S.ctl, S.ic, "prod-rbac-controller", &o, extra,
                                       PROD_READY_S);
        if (r < 0) {
                fprintf(stderr, "the in-cluster controller did not start (%d); see %s\n", r, S.log);
                if (S.ctl.pid > 0) tproc_stop(&S.ctl, 5);
                return -1;
        }
        S.running = true;
        /* A fresh Lease name: the first attempt takes it. */
        if (wait_log("\"became leader\"", PROD_WAIT_S) < 0) {
                fprintf(stderr, "the controller did not become leader; see %s\n", S.log);
                return -1;
        }
        return 0;
}

static int group_teardown(void **state) {
        if (S.prefix) prod_cleanup_policies(S.prefix, S.running);
        if (S.running) {
                int st = tproc_stop(&S.ctl, 30);
                fprintf(stderr, "controller exited with status %d (log %s)\n", st, S.log);
        }
        if (S.prefix) prod_delete_namespaces(S.prefix);
        if (S.prefix) prod_delete_leases(S.prefix);
        S.ic = incluster_free(S.ic);
        free(S.prefix);
        free(S.lease);
        free(S.pod);
        free(S.log);
        free(S.home);
        free(S.subj);
        return 0;
}

/* ---- shared checks ----------------------------------------------------------------------- */

/* The controller never met a 403/401 (nor wrote Forbidden into a status). */
static void assert_no_forbidden(void) {
        int f = prod_log_grep(S.log, "forbidden", true);
        int u = prod_log_grep(S.log, "unauthorized", true);
        int c = prod_log_grep(S.log, "\"code\":403", true);
        assert_int_equal(f, 0);
        assert_int_equal(u, 0);
        assert_int_equal(c, 0);
}

static double writes(const char *resource, const char *verb) {
        char filter[128];
        snprintf(filter, sizeof(filter), "resource=\"%s\",verb=\"%s\"", resource, verb);
        return prod_metric(&S.ctl, "pullpolicy_writes_total", filter);
}

/* An event `reason` about policy ns/name, reported by our controller instance. */
static bool has_event(const char *ns, const char *kind, const char *name, const char *reason) {
        json_object *o = kt_kjson("get events -n '%s' -o json", ns);
        bool found = false;
        json_object *items = kt_jget(o, "items");
        for (size_t i = 0; items && i < json_object_array_length(items); i++) {
                json_object *e = json_object_array_get_idx(items, i);
                const char *r = kt_jstr(e, "reason"), *n = kt_jstr(e, "involvedObject.name");
                const char *k = kt_jstr(e, "involvedObject.kind");
                const char *inst = kt_jstr(e, "reportingInstance");
                if (r && n && k && inst && streq(r, reason) && streq(n, name) && streq(k, kind) &&
                    streq(inst, S.pod))
                        found = true;
        }
        json_object_put(o);
        return found;
}

typedef struct event_wait {
        const char *ns, *kind, *name, *reason;
} event_wait;

static int event_cond(void *ud) {
        event_wait *w = ud;
        return has_event(w->ns, w->kind, w->name, w->reason);
}

static void assert_event(const char *ns, const char *kind, const char *name, const char *reason) {
        event_wait w = {ns, kind, name, reason};
        int r = testenv_wait_until(event_cond, &w, PROD_WAIT_S);
        if (r < 0)
                fprintf(stderr, "no %s event about %s %s/%s from instance %s\n", reason, kind, ns,
                        name, S.pod);
        assert_int_equal(r, 0);
}

/* Deletes a policy and waits until it is gone (the finalizer is the controller's). */
static void delete_policy(const char *ns, const char *name) {
        assert_int_equal(kt_kubectl("delete pullpolicy.pullpolicy.io -n '%s' '%s' --wait=false "
                                    ">/dev/null",
                                    ns, name),
                         0);
        char args[512];
        snprintf(args, sizeof(args), "pullpolicy.pullpolicy.io -n '%s' '%s'", ns, name);
        assert_int_equal(prod_wait_exists(args, false, PROD_WAIT_S), 0);
}

static bool sa_has(const char *ns, const char *sa, const char *field, const char *secret) {
        json_object *o = kt_kjson("get serviceaccount -n '%s' '%s' -o json", ns, sa);
        bool r = prod_jarray_has(kt_jget(o, field), "name", secret);
        json_object_put(o);
        return r;
}

typedef struct sa_wait {
        const char *ns, *sa, *field, *secret;
        bool want;
} sa_wait;

static int sa_cond(void *ud) {
        sa_wait *w = ud;
        return sa_has(w->ns, w->sa, w->field, w->secret) == w->want;
}

static void assert_sa_link(const char *ns, const char *sa, const char *secret, bool want) {
        sa_wait w = {ns, sa, "imagePullSecrets", secret, want};
        int r = testenv_wait_until(sa_cond, &w, PROD_WAIT_S);
        if (r < 0)
                fprintf(stderr, "service account %s/%s: %s %s in imagePullSecrets\n", ns, sa,
                        secret, want ? "missing" : "still");
        assert_int_equal(r, 0);
}

/* ---- 1. install ----------------------------------------------------------------------------- */

static void test_install_manifests(void **state) {
        /* Group setup applied once; a second apply is the idempotence check. */
        char *out = NULL;
        assert_int_equal(prod_install(&out), 0);
        printf("kubectl apply -k manifests/ --server-side --validate=strict:\n%s", out);
        free(out);

        /* Every object kustomize renders is on the server. */
        char *rendered = kt_kout("kustomize '%s/manifests'", kt_root());
        assert_non_null(rendered);
        size_t objects = 0;
        for (const char *p = rendered; (p = strstr(p, "\nkind: ")); p++) objects++;
        if (strncmp(rendered, "kind: ", 6) == 0) objects++;
        free(rendered);
        char *names = kt_kout("get -k '%s/manifests' -o name", kt_root());
        assert_non_null(names);
        size_t found = 0;
        for (const char *p = names; *p; p++)
                if (*p == '\n') found++;
        if (*names) found++;
        printf("rendered %zu objects, %zu found on the server\n", objects, found);
        free(names);
        assert_true(objects >= 10);
        assert_int_equal(found, objects);
}

/*
 * kustomize refuses files outside the kustomization's directory (`kubectl apply -k` has no
 * --load-restrictor), so the install carries a copy of the CRD: it must be the CRD.
 */
/* The install renders the CRD from crds/ itself (a kustomize base), not from a copy. */
static void test_install_crd_is_the_crd(void **state) {
        char *cmd = NULL;
        assert_true(asprintf(&cmd,
                             "'%s/kubectl' kustomize '%s/manifests' | "
                             "grep -q '^  name: pullpolicies.pullpolicy.io$'",
                             testenv_bindir(), kt_root()) > 0);
        int st = system(cmd);
        free(cmd);
        assert_int_equal(st, 0);
        char path[4096];
        snprintf(path, sizeof(path), "%s/manifests/base/crd.yaml", kt_root());
        assert_int_equal(access(path, F_OK), -1);
}

typedef struct pods_wait {
        int n;
} pods_wait;

static int pods_cond(void *ud) {
        pods_wait *w = ud;
        json_object *o = kt_kjson("get pods -n " PROD_NS " -l app.kubernetes.io/name=pullpolicy,"
                                  "app.kubernetes.io/component=controller -o json");
        json_object *items = kt_jget(o, "items");
        w->n = items ? (int)json_object_array_length(items) : 0;
        json_object_put(o);
        return w->n >= 1;
}

/*
 * The namespace enforces Pod Security "restricted": the ReplicaSet controller's pod creations
 * are admitted (there is no kubelet, so they stay Pending, which is all we need), and they
 * run as the controller's service account with its token mounted.
 */
static void test_install_pods_admitted_restricted(void **state) {
        char *level =
            kt_kout("get namespace " PROD_NS " -o "
                    "'jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}'");
        assert_non_null(level);
        assert_string_equal(level, "restricted");
        free(level);
        pods_wait w = {0};
        int r = testenv_wait_until(pods_cond, &w, PROD_WAIT_S);
        if (r < 0) {
                char *ev =
                    kt_kout("get events -n " PROD_NS " --field-selector reason=FailedCreate");
                fprintf(stderr, "no controller pod admitted; FailedCreate events:\n%s\n",
                        ev ? ev : "");
                free(ev);
        }
        assert_int_equal(r, 0);
        json_object *o = kt_kjson("get pods -n " PROD_NS " -l app.kubernetes.io/name=pullpolicy,"
                                  "app.kubernetes.io/component=controller -o json");
        json_object *pod = json_object_array_get_idx(kt_jget(o, "items"), 0);
        assert_string_equal(PROD_S(kt_jstr(pod, "spec.serviceAccountName")), PROD_SA);
        printf("%d controller pod(s) admitted under Pod Security restricted\n", w.n);
        json_object_put(o);
}

/* ---- 2. the in-cluster identity works -------------------------------------------------------- */

static void test_incluster_identity(void **state) {
        char *out = NULL;
        int r =
            incluster_kubectl(S.ic, &out, "auth whoami -o 'jsonpath={.status.userInfo.username}'");
        assert_int_equal(r, 0);
        assert_string_equal(out, PROD_USER);
        free(out);
        /* The controller took its namespace from the mounted file (POD_NAMESPACE is unset). */
        assert_true(prod_log_grep(S.log, "\"ownNamespace\":\"" PROD_NS "\"", false) > 0);
        char server[128];
        snprintf(server, sizeof(server), "\"server\":\"https://127.0.0.1:%d\"",
                 S.ic->apiserver_port);
        assert_true(prod_log_grep(S.log, server, false) > 0);
        assert_true(prod_log_grep(S.log, "--kubeconfig", false) == 0);
}

/* ---- 3. real scenarios with the controller's own identity ---------------------------------- */

static void test_image_puller_cross_namespace(void **state) {
        const char *pol = "puller";
        double before = writes("rolebindings", "create");
        assert_true(before >= 0);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s]}\n  imagePuller: {}\n",
                 pol, S.home, S.subj);
        double t = prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S);
        assert_true(t >= 0);

        /* R2: one RoleBinding in the home, binding system:image-puller to the group. */
        json_object *o = kt_kjson("get rolebindings -n '%s' -l pullpolicy.io/policy=%s,"
                                  "pullpolicy.io/policy-namespace=%s -o json",
                                  S.home, pol, S.home);
        json_object *items = kt_jget(o, "items");
        assert_non_null(items);
        assert_int_equal(json_object_array_length(items), 1);
        json_object *rb = json_object_array_get_idx(items, 0);
        assert_string_equal(PROD_S(kt_jstr(rb, "roleRef.kind")), "ClusterRole");
        assert_string_equal(PROD_S(kt_jstr(rb, "roleRef.name")), "system:image-puller");
        json_object *subj = json_object_array_get_idx(kt_jget(rb, "subjects"), 0);
        assert_string_equal(PROD_S(kt_jstr(subj, "kind")), "Group");
        char group[256];
        snprintf(group, sizeof(group), "system:serviceaccounts:%s", S.subj);
        assert_string_equal(PROD_S(kt_jstr(subj, "name")), group);
        char *rbname = strdup(kt_jstr(rb, "metadata.name"));
        json_object_put(o);

        /* The binding does what `oc policy add-role-to-group` is for. */
        char *can = kt_kout("auth can-i get imagestreams.image.openshift.io --subresource=layers "
                            "-n '%s' --as=system:serviceaccount:%s:default",
                            S.home, S.subj);
        assert_non_null(can);
        assert_string_equal(can, "yes");
        free(can);

        /* Status and events, written by this controller (its reportingInstance). */
        o = kt_kjson("get pullpolicy.pullpolicy.io -n '%s' '%s' -o json", S.home, pol);
        assert_int_equal(json_object_get_int(kt_jpath(o, "status.roleBindings")), 1);
        assert_int_equal(json_object_get_int(kt_jpath(o, "status.namespaces")), 1);
        json_object_put(o);
        assert_event(S.home, "PullPolicy", pol, "RoleBindingCreated");
        assert_true(writes("rolebindings", "create") > before);

        /* R7: deletion removes the binding. */
        delete_policy(S.home, pol);
        char args[512];
        snprintf(args, sizeof(args), "rolebinding -n '%s' '%s'", S.home, rbname);
        free(rbname);
        assert_int_equal(prod_wait_exists(args, false, PROD_WAIT_S), 0);
        assert_no_forbidden();
        printf("image-puller policy Ready in %.2f s; binding removed on deletion\n", t);
}

static void test_link_pull_secret(void **state) {
        const char *pol = "link", *secret = "link-creds", *sa = "builder";
        kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: %s}\n", sa,
                 S.home);
        prod_pull_secret(S.home, secret, "link.registry.test", "link-user", "link-pass-Rb1");
        /* a plain SA goes by a merge patch guarded by resourceVersion; others by update */
        double before = writes("serviceaccounts", "patch") + writes("serviceaccounts", "update");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {serviceAccounts: [%s]}\n"
                 "  pullSecrets: [{name: %s, for: [pull]}]\n  dockercfg: {wait: Never}\n",
                 pol, S.home, sa, secret);
        double t = prod_wait_ready(S.home, pol, "True", "Applied", PROD_WAIT_S);
        assert_true(t >= 0);
        assert_sa_link(S.home, sa, secret, true);
        assert_true(writes("serviceaccounts", "patch") + writes("serviceaccounts", "update") >
                    before);
        assert_event(S.home, "PullPolicy", pol, "Linked");
        json_object *o = kt_kjson("get pullpolicy.pullpolicy.io -n '%s' '%s' -o json", S.home, pol);
        assert_int_equal(json_object_get_int(kt_jpath(o, "status.linkedServiceAccounts")), 1);
        json_object_put(o);

        delete_policy(S.home, pol);
        assert_sa_link(S.home, sa, secret, false);
        assert_no_forbidden();
        printf("link policy Ready in %.2f s; link removed on deletion\n", t);
}

static void test_distribution_copy(void **state) {
        char pol[128], secret[128];
        snprintf(pol, sizeof(pol), "%s-dist", S.prefix);
        snprintf(secret, sizeof(secret), "%s-dist", S.prefix);
        prod_pull_secret(PROD_NS, secret, "dist.registry.test", "dist-user", "dist-pass-Rb2");
        assert_int_equal(prod_wait_default_sa(S.subj), 0);
        double before = writes("secrets", "create");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s], serviceAccounts: [default]}\n"
                 "  pullSecrets: [{name: %s}]\n  dockercfg: {wait: Never}\n",
                 pol, PROD_NS, S.subj, secret);
        double t = prod_wait_ready(PROD_NS, pol, "True", "Applied", PROD_WAIT_S);
        assert_true(t >= 0);

        /* R5: same type and data, marked as ours. */
        json_object *src = kt_kjson("get secret -n " PROD_NS " '%s' -o json", secret);
        json_object *cp = kt_kjson("get secret -n '%s' '%s' -o json", S.subj, secret);
        assert_non_null(src);
        assert_non_null(cp);
        assert_string_equal(PROD_S(kt_jstr(cp, "type")), "kubernetes.io/dockerconfigjson");
        assert_true(json_object_equal(kt_jget(src, "data"), kt_jget(cp, "data")));
        json_object *labels = kt_jpath(cp, "metadata.labels");
        assert_string_equal(prod_jstr_or(kt_jget(labels, "app.kubernetes.io/managed-by")),
                            "pullpolicy-controller");
        assert_string_equal(prod_jstr_or(kt_jget(labels, "pullpolicy.io/policy")), pol);
        assert_string_equal(prod_jstr_or(kt_jget(labels, "pullpolicy.io/policy-namespace")),
                            PROD_NS);
        json_object_put(src);
        json_object_put(cp);
        assert_sa_link(S.subj, "default", secret, true);
        assert_true(writes("secrets", "create") > before);

        delete_policy(PROD_NS, pol);
        char args[512];
        snprintf(args, sizeof(args), "secret -n '%s' '%s'", S.subj, secret);
        assert_int_equal(prod_wait_exists(args, false, PROD_WAIT_S), 0);
        assert_sa_link(S.subj, "default", secret, false);
        kt_kubectl("delete secret -n " PROD_NS " '%s' >/dev/null", secret);
        assert_no_forbidden();
        printf("distribution policy Ready in %.2f s; copy and link removed on deletion\n", t);
}

/* Does openshift-config/pull-secret hold an auths entry for host? */
static int global_has(const char *host) {
        char *b64 = kt_kout("get secret -n openshift-config pull-secret -o "
                            "'jsonpath={.data.\\.dockerconfigjson}'");
        if (!b64) return -1;
        char *cmd = NULL;
        /* Decoded by base64(1) in a pipe: the payload never reaches our output. */
        int n = asprintf(&cmd, "printf '%%s' '%s' | base64 -d | grep -q '\"%s\"'", b64, host);
        free(b64);
        if (n < 0) return -1;
        int st = system(cmd);
        free(cmd);
        return st == 0;
}

typedef struct global_wait {
        const char *host;
        int want;
} global_wait;

static int global_cond(void *ud) {
        global_wait *w = ud;
        return global_has(w->host) == w->want;
}

static void test_global_pull_secret_merge(void **state) {
        char pol[128], secret[128], sa[128], host[192];
        snprintf(pol, sizeof(pol), "%s-global", S.prefix);
        snprintf(secret, sizeof(secret), "%s-global", S.prefix);
        snprintf(sa, sizeof(sa), "%s-global", S.prefix);
        snprintf(host, sizeof(host), "%s.registry.test", S.prefix);
        kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: %s, namespace: %s}\n", sa,
                 PROD_NS);
        prod_pull_secret(PROD_NS, secret, host, "global-user", "global-pass-Rb3");
        assert_int_equal(global_has(host), 0);
        double before = writes("secrets", "update");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: %s, namespace: %s}\n"
                 "spec:\n  subjects: {serviceAccounts: [%s]}\n"
                 "  pullSecrets: [{name: %s}]\n  dockercfg: {wait: Never}\n"
                 "  globalPullSecret: {merge: true}\n",
                 pol, PROD_NS, sa, secret);
        double t = prod_wait_ready(PROD_NS, pol, "True", "Applied", PROD_WAIT_S);
        assert_true(t >= 0);
        global_wait w = {host, 1};
        assert_int_equal(testenv_wait_until(global_cond, &w, PROD_WAIT_S), 0);
        assert_true(writes("secrets", "update") > before);

        delete_policy(PROD_NS, pol);
        w.want = 0;
        assert_int_equal(testenv_wait_until(global_cond, &w, PROD_WAIT_S), 0);
        kt_kubectl("delete secret -n " PROD_NS " '%s' >/dev/null", secret);
        kt_kubectl("delete serviceaccount -n " PROD_NS " '%s' >/dev/null", sa);
        assert_no_forbidden();
        printf("global merge policy Ready in %.2f s; entry removed on deletion\n", t);
}

static void test_leader_election_lease(void **state) {
        json_object *o = kt_kjson("get lease -n " PROD_NS " '%s' -o json", S.lease);
        assert_non_null(o);
        const char *holder = kt_jstr(o, "spec.holderIdentity");
        assert_non_null(holder);
        char needle[512];
        snprintf(needle, sizeof(needle),
                 "\"msg\":\"became leader\",\"component\":\"leader-election\","
                 "\"identity\":\"%s\"",
                 holder);
        assert_true(prod_log_grep(S.log, needle, false) > 0);
        assert_int_equal(json_object_get_int(kt_jpath(o, "spec.leaseDurationSeconds")), 15);
        char *renew1 = strdup(kt_jstr(o, "spec.renewTime"));
        json_object_put(o);
        char filter[256];
        snprintf(filter, sizeof(filter), "name=\"%s\"", S.lease);
        assert_true(prod_metric(&S.ctl, "leader_election_master_status", filter) == 1);
        /* It renews (every --retry-period, 2 s by default). */
        kt_sleep(4.5);
        o = kt_kjson("get lease -n " PROD_NS " '%s' -o json", S.lease);
        assert_non_null(kt_jstr(o, "spec.renewTime"));
        assert_string_not_equal(kt_jstr(o, "spec.renewTime"), renew1);
        free(renew1);
        json_object_put(o);
        assert_no_forbidden();
}

/* ---- 4. token rotation ----------------------------------------------------------------------- */

/*
 * A kubelet rotates the projected token; the old one ends (here: revoked by deleting the
 * Secret it is bound to). The running controller must pick up the new file and go on.
 */
static void test_token_rotation(void **state) {
        char sa_a[128], sa_b[128], old_copy[4200], tok[4200];
        snprintf(sa_a, sizeof(sa_a), "%s-tok-a", S.prefix);
        snprintf(sa_b, sizeof(sa_b), "%s-tok-b", S.prefix);
        snprintf(tok, sizeof(tok), "%s/token", S.ic->sa_dir);
        snprintf(old_copy, sizeof(old_copy), "%s/token-a", S.ic->root);
        assert_int_equal(kt_kubectl("create secret generic -n " PROD_NS " '%s' >/dev/null", sa_a),
                         0);
        assert_int_equal(kt_kubectl("create secret generic -n " PROD_NS " '%s' >/dev/null", sa_b),
                         0);

        /* token A (bound to secret A) in place; the controller works with it */
        assert_int_equal(incluster_rotate_token(S.ic, sa_a, "1h"), 0);
        char *cmd = NULL;
        assert_true(asprintf(&cmd, "cp '%s' '%s'", tok, old_copy) > 0);
        assert_int_equal(system(cmd), 0);
        free(cmd);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: rot-a, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s]}\n  imagePuller: {}\n",
                 S.home, S.subj);
        assert_true(prod_wait_ready(S.home, "rot-a", "True", "Applied", PROD_WAIT_S) >= 0);

        /* rotation to B, then A is revoked */
        assert_int_equal(incluster_rotate_token(S.ic, sa_b, "1h"), 0);
        assert_int_equal(kt_kubectl("delete secret -n " PROD_NS " '%s' >/dev/null", sa_a), 0);
        char old_kc[4200];
        snprintf(old_kc, sizeof(old_kc), "%s/kubeconfig-a", S.ic->root);
        assert_int_equal(incluster_write_kubeconfig(S.ic, old_copy, old_kc), 0);
        char *out = NULL;
        int r = -1;
        /* the apiserver caches a token's authentication for 10 s */
        for (int i = 0; i < 60; i++) { /* revocation is immediate; allow for caches */
                free(out);
                out = NULL;
                r = incluster_kubectl_kc(old_kc, &out, "auth whoami 2>&1");
                if (r != 0) break;
                kt_sleep(0.2);
        }
        assert_int_not_equal(r, 0);
        /* kubectl: "You must be logged in to the server (Unauthorized)" or
         * "... (the server has asked for the client to provide credentials)" */
        bool refused = out && (strcasestr(out, "unauthorized") || strcasestr(out, "logged in"));
        if (!refused) fprintf(stderr, "kubectl with the revoked token: %.300s\n", out ? out : "");
        assert_true(refused);
        free(out);

        /* the controller keeps working: a new policy converges, with the new token */
        int unauth_before = prod_log_grep(S.log, "unauthorized", false);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: rot-b, namespace: %s}\n"
                 "spec:\n  subjects: {namespaces: [%s]}\n  imagePuller: {}\n",
                 S.home, S.subj);
        double t = prod_wait_ready(S.home, "rot-b", "True", "Applied", PROD_WAIT_S);
        assert_true(t >= 0);
        delete_policy(S.home, "rot-a");
        delete_policy(S.home, "rot-b");
        assert_int_equal(prod_log_grep(S.log, "unauthorized", true), unauth_before);

        /* back to an unbound token, then B goes too */
        assert_int_equal(incluster_rotate_token(S.ic, NULL, "1h"), 0);
        kt_kubectl("delete secret -n " PROD_NS " '%s' >/dev/null", sa_b);
        unlink(old_copy);
        unlink(old_kc);
        assert_no_forbidden();
        printf("after rotation and revocation of the old token a policy converged in %.2f s\n", t);
}

/* ---- 5. what the identity must not do -----------------------------------------------------------
 */

typedef struct can_row {
        const char *verb;
        const char *resource;    /* kubectl's resource[/name] */
        const char *subresource; /* NULL: none */
        const char *ns;          /* "*": all namespaces / cluster scope; "%home": S.home */
        bool expected;
        const char *why;
} can_row;

static const can_row CAN_I[] = {
    /* what it needs (the scenarios above use each) */
    {"watch", "pullpolicies.pullpolicy.io", NULL, "*", true, "reads policies"},
    {"update", "pullpolicies.pullpolicy.io", NULL, "*", true, "finalizer"},
    {"update", "pullpolicies.pullpolicy.io", "status", "*", true, "status"},
    {"watch", "namespaces", NULL, "*", true, "subjects (R1)"},
    {"update", "serviceaccounts", NULL, "*", true, "links (R3)"},
    {"patch", "serviceaccounts", NULL, "*", true, "links (R3), resourceVersion-guarded"},
    {"create", "rolebindings.rbac.authorization.k8s.io", NULL, "*", true, "R2"},
    {"delete", "rolebindings.rbac.authorization.k8s.io", NULL, "*", true, "R7"},
    {"bind", "clusterroles.rbac.authorization.k8s.io/system:image-puller", NULL, "*", true,
     "R2, by resourceName"},
    {"create", "events", NULL, "*", true, "events"},
    {"update", "leases.coordination.k8s.io", NULL, PROD_NS, true, "leader election"},
    {"get", "secrets", NULL, "*", true, "sources are named by users"},
    {"create", "secrets", NULL, "*", true, "copies (R5) go to any subject namespace"},
    {"update", "secrets", NULL, "openshift-config", true, "global pull secret (R6)"},
    {"watch", "pods", NULL, "*", true, "Pending pods (R13)"},
    {"delete", "pods", NULL, "*", true, "stale pods, restartStalePods (R13)"},
    /* what it must not do */
    {"create", "clusterrolebindings.rbac.authorization.k8s.io", NULL, "*", false, ""},
    {"bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin", NULL, "*", false, ""},
    {"bind", "clusterroles.rbac.authorization.k8s.io/admin", NULL, "*", false, ""},
    {"bind", "clusterroles.rbac.authorization.k8s.io/edit", NULL, "*", false, ""},
    {"escalate", "clusterroles.rbac.authorization.k8s.io", NULL, "*", false, ""},
    {"update", "clusterroles.rbac.authorization.k8s.io", NULL, "*", false, ""},
    {"create", "roles.rbac.authorization.k8s.io", NULL, "%home", false, ""},
    {"create", "leases.coordination.k8s.io", NULL, "kube-system", false, ""},
    {"update", "leases.coordination.k8s.io", NULL, "kube-system", false, ""},
    {"delete", "leases.coordination.k8s.io", NULL, PROD_NS, false, ""},
    {"get", "clusterversions.config.openshift.io/version", NULL, "*", true, "R4 Auto"},
    {"watch", "clusteroperators.config.openshift.io/image-registry", NULL, "*", true, "R4 Auto"},
    {"get", "clusteroperators.config.openshift.io/dns", NULL, "*", false, "by name only"},
    {"list", "clusteroperators.config.openshift.io", NULL, "*", false, "by name only"},
    {"update", "clusterversions.config.openshift.io/version", NULL, "*", false, ""},
    {"delete", "namespaces", NULL, "*", false, ""},
    {"create", "namespaces", NULL, "*", false, ""},
    {"create", "pods", NULL, "*", false, ""},
    {"create", "pods", "exec", "*", false, ""},
    {"update", "pods", NULL, "*", false, ""},
    {"patch", "pods", "status", "*", false, ""},
    {"deletecollection", "pods", NULL, "*", false, ""},
    {"create", "deployments.apps", NULL, PROD_NS, false, ""},
    {"patch", "nodes", NULL, "*", false, ""},
    {"list", "nodes", NULL, "*", false, ""},
    {"create", "configmaps", NULL, "kube-system", false, ""},
    {"update", "configmaps", NULL, "kube-system", false, ""},
    {"create", "serviceaccounts", "token", "*", false, "could mint tokens"},
    {"create", "serviceaccounts", NULL, "*", false, ""},
    {"patch", "secrets", NULL, "*", false, ""},
    {"deletecollection", "secrets", NULL, "*", false, ""},
    {"create", "pullpolicies.pullpolicy.io", NULL, "*", false, ""},
    {"delete", "pullpolicies.pullpolicy.io", NULL, "*", false, ""},
    {"impersonate", "users", NULL, "*", false, ""},
    {"impersonate", "serviceaccounts", NULL, "*", false, ""},
    {"update", "customresourcedefinitions.apiextensions.k8s.io", NULL, "*", false, ""},
    {"create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", NULL, "*", false, ""},
};

static const char *row_ns(const char *ns) {
        return streq(ns, "%home") ? S.home : ns;
}

/* `kubectl auth can-i` as user; 1 yes, 0 no, negative when kubectl failed otherwise. */
static int can_i(const char *user, const char *verb, const char *resource, const char *sub,
                 const char *ns) {
        char subf[64] = "", nsf[256];
        if (sub) snprintf(subf, sizeof(subf), " --subresource=%s", sub);
        if (streq(ns, "*"))
                snprintf(nsf, sizeof(nsf), "--all-namespaces");
        else
                snprintf(nsf, sizeof(nsf), "-n '%s'", ns);
        char *out = NULL;
        int r = testenv_kubectl(&out, "auth can-i %s '%s'%s %s --as='%s' 2>/dev/null", verb,
                                resource, subf, nsf, user);
        int ans = -1;
        if (out && strncmp(out, "yes", 3) == 0 && r == 0) ans = 1;
        if (out && strncmp(out, "no", 2) == 0 && r == 1) ans = 0;
        free(out);
        return ans;
}

static void test_can_i_matrix(void **state) {
        int bad = 0;
        printf("\ncan-i matrix for %s\n", PROD_USER);
        printf("%-12s %-62s %-18s %-8s %-4s %s\n", "VERB", "RESOURCE", "NAMESPACE", "EXPECTED",
               "GOT", "NOTE");
        for (size_t i = 0; i < ARRAY_SIZE(CAN_I); i++) {
                const can_row *c = &CAN_I[i];
                const char *ns = row_ns(c->ns);
                int got = can_i(PROD_USER, c->verb, c->resource, c->subresource, ns);
                char res[160];
                snprintf(res, sizeof(res), "%s%s%s", c->resource, c->subresource ? "/" : "",
                         c->subresource ? c->subresource : "");
                bool ok = got == (c->expected ? 1 : 0);
                printf("%-12s %-62s %-18s %-8s %-4s %s%s\n", c->verb, res,
                       streq(c->ns, "*") ? "(all)" : ns, c->expected ? "yes" : "no",
                       got == 1   ? "yes"
                       : got == 0 ? "no"
                                  : "ERR",
                       ok ? "" : "MISMATCH ", c->why);
                if (!ok) bad++;
        }
        assert_int_equal(bad, 0);
}

typedef struct try_row {
        const char *what;
        const char *args; /* kubectl arguments; %1$s is the home namespace */
        bool allowed;
        const char *must_say; /* in the error when refused (case-insensitive); NULL: "forbidden" */
} try_row;

/* Real attempts with the controller's token. */
static void test_token_attempts(void **state) {
        char leasef[4200];
        snprintf(leasef, sizeof(leasef), "%s/lease.yaml", S.ic->root);
        FILE *f = fopen(leasef, "w");
        assert_non_null(f);
        fprintf(f,
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\n"
                "metadata: {name: %s-evil, namespace: kube-system}\n"
                "spec: {holderIdentity: evil}\n",
                S.prefix);
        fclose(f);
        const try_row rows[] = {
            {"bind cluster-admin in a RoleBinding",
             "create rolebinding x-ca --clusterrole=cluster-admin --user=mallory -n '%1$s'", false,
             "not currently held"},
            {"bind admin in a RoleBinding",
             "create rolebinding x-admin --clusterrole=admin --user=mallory -n '%1$s'", false,
             "not currently held"},
            {"bind edit in a RoleBinding",
             "create rolebinding x-edit --clusterrole=edit --user=mallory -n '%1$s'", false,
             "not currently held"},
            {"bind system:image-puller (control)",
             "create rolebinding x-puller --clusterrole=system:image-puller --user=mallory "
             "-n '%1$s'",
             true, NULL},
            {"delete that binding (control)", "delete rolebinding x-puller -n '%1$s'", true, NULL},
            {"create a ClusterRoleBinding",
             "create clusterrolebinding x-crb-%1$s --clusterrole=view --user=mallory", false, NULL},
            {"create a ConfigMap in kube-system", "create configmap x-%1$s -n kube-system", false,
             NULL},
            {"create a Lease in kube-system", "create -f '%2$s'", false, NULL},
            {"update kube-system's kcm Lease",
             "annotate lease kube-controller-manager -n kube-system x=y", false, NULL},
            {"delete a namespace", "delete namespace '%1$s' --wait=false", false, NULL},
            {"create a pod", "run x --image=example.invalid/x -n '%1$s'", false, NULL},
            {"mint a token for kube-system:default", "create token default -n kube-system", false,
             NULL},
        };
        int bad = 0;
        printf("\nreal attempts with the controller's token\n%-40s %-8s %s\n", "ACTION", "EXPECTED",
               "GOT");
        for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
                char *args = NULL;
                assert_true(asprintf(&args, rows[i].args, S.home, leasef) > 0);
                char *out = NULL;
                int r = incluster_kubectl(S.ic, &out, "%s 2>&1", args);
                free(args);
                bool ok;
                const char *say = rows[i].must_say ? rows[i].must_say : "forbidden";
                if (rows[i].allowed)
                        ok = r == 0;
                else
                        ok = r != 0 && out && strcasestr(out, "forbidden") && strcasestr(out, say);
                printf("%-40s %-8s %s%s\n", rows[i].what, rows[i].allowed ? "allowed" : "denied",
                       r == 0 ? "allowed" : "denied", ok ? "" : " MISMATCH");
                if (!ok) {
                        fprintf(stderr, "  kubectl said: %.300s\n", out ? out : "");
                        bad++;
                }
                free(out);
        }
        unlink(leasef);
        assert_int_equal(bad, 0);
}

/* ---- 6. aggregated roles ------------------------------------------------------------------------
 */

typedef struct agg_wait {
        const char *user;
} agg_wait;

static int agg_cond(void *ud) {
        agg_wait *w = ud;
        return can_i(w->user, "create", "pullpolicies.pullpolicy.io", NULL, S.home) == 1;
}

static void test_aggregated_roles(void **state) {
        char admin[128], edit[128], view[128], none[128];
        snprintf(admin, sizeof(admin), "%s-admin-user", S.prefix);
        snprintf(edit, sizeof(edit), "%s-edit-user", S.prefix);
        snprintf(view, sizeof(view), "%s-view-user", S.prefix);
        snprintf(none, sizeof(none), "%s-nobody", S.prefix);
        const char *users[] = {admin, edit, view};
        const char *roles[] = {"admin", "edit", "view"};
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(kt_kubectl("create rolebinding 'agg-%s' --clusterrole=%s "
                                            "--user='%s' -n '%s' >/dev/null",
                                            roles[i], roles[i], users[i], S.home),
                                 0);
        /* kube-controller-manager aggregates the labelled ClusterRoles into admin/edit/view */
        agg_wait w = {admin};
        assert_int_equal(testenv_wait_until(agg_cond, &w, PROD_WAIT_S), 0);

        static const char *const verbs[] = {"get",    "list",  "watch",  "create",
                                            "update", "patch", "delete", "deletecollection"};
        /* expected[user][verb]; user 3 has no binding */
        static const bool expected[4][8] = {
            {1, 1, 1, 1, 1, 1, 1, 1},
            {1, 1, 1, 0, 0, 0, 0, 0},
            {1, 1, 1, 0, 0, 0, 0, 0},
            {0, 0, 0, 0, 0, 0, 0, 0},
        };
        const char *names[] = {"admin", "edit", "view", "(none)"};
        const char *who[] = {admin, edit, view, none};
        int bad = 0;
        printf("\npullpolicies in a namespace, by the role bound there\n%-8s", "ROLE");
        for (size_t v = 0; v < ARRAY_SIZE(verbs); v++) printf(" %-16s", verbs[v]);
        printf(" %s\n", "update status");
        for (size_t u = 0; u < 4; u++) {
                printf("%-8s", names[u]);
                for (size_t v = 0; v < ARRAY_SIZE(verbs); v++) {
                        int got =
                            can_i(who[u], verbs[v], "pullpolicies.pullpolicy.io", NULL, S.home);
                        bool ok = got == (expected[u][v] ? 1 : 0);
                        printf(" %-16s", got == 1 ? (ok ? "yes" : "yes MISMATCH")
                                                  : (ok ? "no" : "no MISMATCH"));
                        if (!ok) bad++;
                }
                /* status is the controller's alone */
                int st = can_i(who[u], "update", "pullpolicies.pullpolicy.io", "status", S.home);
                printf(" %s\n", st == 0 ? "no" : "yes MISMATCH");
                if (st != 0) bad++;
        }
        assert_int_equal(bad, 0);

        /* and for real: an admin creates one, an editor cannot */
        const char *yaml = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                           "metadata: {name: by-%s}\nspec: {imagePuller: {}}\n";
        char *doc = NULL, *out = NULL;
        assert_true(asprintf(&doc, yaml, "admin") > 0);
        int r =
            testenv_kubectl_input(doc, &out, "create -n '%s' --as='%s' -f - 2>&1", S.home, admin);
        free(doc);
        free(out);
        assert_int_equal(r, 0);
        assert_true(asprintf(&doc, yaml, "editor") > 0);
        out = NULL;
        r = testenv_kubectl_input(doc, &out, "create -n '%s' --as='%s' -f - 2>&1", S.home, edit);
        free(doc);
        assert_int_not_equal(r, 0);
        assert_non_null(out);
        assert_non_null(strcasestr(out, "forbidden"));
        free(out);
        assert_int_equal(kt_kubectl("delete pullpolicy.pullpolicy.io by-admin -n '%s' "
                                    "--as='%s' --wait=false >/dev/null",
                                    S.home, admin),
                         0);
        char args[512];
        snprintf(args, sizeof(args), "pullpolicy.pullpolicy.io -n '%s' by-admin", S.home);
        assert_int_equal(prod_wait_exists(args, false, PROD_WAIT_S), 0);
}

/* Run last: over the whole run, not one 403 or 401 (the tests above check as they go). */
static void test_controller_log_clean(void **state) {
        assert_no_forbidden();
        assert_true(S.running);
        /* still alive: no leadership loss, no crash */
        assert_int_equal(waitpid(S.ctl.pid, NULL, WNOHANG), 0);
}

int main(void) {
        prod_test_filter();
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_install_manifests),
            cmocka_unit_test(test_install_crd_is_the_crd),
            cmocka_unit_test(test_install_pods_admitted_restricted),
            cmocka_unit_test(test_incluster_identity),
            cmocka_unit_test(test_image_puller_cross_namespace),
            cmocka_unit_test(test_link_pull_secret),
            cmocka_unit_test(test_distribution_copy),
            cmocka_unit_test(test_global_pull_secret_merge),
            cmocka_unit_test(test_leader_election_lease),
            cmocka_unit_test(test_token_rotation),
            cmocka_unit_test(test_can_i_matrix),
            cmocka_unit_test(test_token_attempts),
            cmocka_unit_test(test_aggregated_roles),
            cmocka_unit_test(test_controller_log_clean),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
