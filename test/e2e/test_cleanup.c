/* SPDX-License-Identifier: Apache-2.0 */
/*
 * e2e: R7 clean-up. Deleting a policy removes exactly what it made (RoleBindings, links,
 * copies of secrets) and nothing else: links to the SAME secret name made by a person
 * before the policy existed stay, another policy's link to the same secret stays until that
 * policy goes too, other entries of the lists stay. Shrinking the subjects removes only
 * what the dropped namespace / service account had.
 *
 * The homes are on --distribution-namespaces (links in other namespaces need copies, R5);
 * a legacy provisioner without delay serves the program's namespaces.
 */
#include "e2e.h"
#include "names.h"

static const char *const homes[] = {"h-del",  "h-two",  "h-shrink", "h-long",
                                    "h-gone", "h-down", "h-force"};

/* What a person does by hand: `kubectl patch` appending {name: secret} to .imagePullSecrets. */
static void person_link(const char *ns, const char *sa, const char *secret) {
        for (int attempt = 0; attempt < 5; attempt++) {
                json_object *o = e2e_sa(ns, sa);
                assert_non_null(o);
                bool has_list = kt_jpath(o, "imagePullSecrets") != NULL;
                json_object_put(o);
                int r;
                if (has_list)
                        r = kt_kubectl("patch sa '%s' -n '%s' --type=json -p "
                                       "'[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\","
                                       "\"value\":{\"name\":\"%s\"}}]' >/dev/null 2>&1",
                                       sa, ns, secret);
                else
                        r = kt_kubectl("patch sa '%s' -n '%s' --type=json -p "
                                       "'[{\"op\":\"test\",\"path\":\"/imagePullSecrets\","
                                       "\"value\":null},{\"op\":\"add\",\"path\":"
                                       "\"/imagePullSecrets\",\"value\":[{\"name\":\"%s\"}]}]' "
                                       ">/dev/null 2>&1",
                                       sa, ns, secret);
                if (r == 0) return;
                kt_sleep(0.2);
        }
        fail_msg("could not patch %s/%s", ns, sa);
}

static char dist_flag[1024];
static const char *controller_flags[] = {dist_flag, NULL};

static char *rb_name(const char *policy, const char *ns) {
        char *s = NULL;
        assert_int_equal(names_role_binding(policy, ns, &s), 0);
        return s;
}

static const char *exists_cmd = "get %s '%s' -n '%s' -o name 2>/dev/null | grep -q . "
                                "&& echo present || echo absent";

static char *jsonpath(const char *kind, const char *ns, const char *name, const char *jp) {
        return kt_kout("get %s '%s' -n '%s' -o jsonpath='%s'", kind, name, ns, jp);
}

/* Deleting a policy undoes its bindings, copies and links, and only those. */
static void test_delete_removes_exactly_its_work(void **state) {
        char *h = e2e_ns("h-del", NULL), *a = e2e_ns("del-a", NULL), *b = e2e_ns("del-b", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        e2e_sa_create(h, "builder");
        /* before the policy: a person links creds by hand, and another secret elsewhere */
        person_link(h, "builder", "creds");
        e2e_wait_out(E2E_WAIT_S, "default", "get sa default -n '%s' -o jsonpath='{.metadata.name}'",
                     a);
        person_link(a, "default", "personal");
        e2e_wait_link(h, "builder", "pull", "creds", 1, E2E_WAIT_S);

        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: p\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s, %s, %s]\n  imagePuller: {}\n"
                 "  pullSecrets:\n  - name: creds\n",
                 h, h, a, b);
        e2e_wait_applied(h, "p", E2E_WAIT_S);
        const char *nss[] = {h, a, b};
        for (size_t i = 0; i < 3; i++) {
                char *rb = rb_name("p", nss[i]);
                e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rb, h);
                free(rb);
                e2e_wait_link(nss[i], "default", "pull", "creds", 1, E2E_WAIT_S);
        }
        /* copies in the other namespaces, marked as the policy's */
        for (size_t i = 1; i < 3; i++) {
                json_object *c = e2e_get("secret", nss[i], "creds");
                assert_non_null(c);
                assert_string_equal(kt_label(c, "pullpolicy.io/policy"), "p");
                json_object_put(c);
        }
        /* the person's link is not doubled */
        assert_int_equal(e2e_sa_count(h, "builder", "pull", "creds"), 1);
        char *fin = jsonpath("ppol", h, "p", "{.metadata.finalizers}");
        assert_non_null(strstr(fin, "pullpolicy.io/cleanup"));
        free(fin);
        json_object *ad = e2e_sa(a, "default");
        char *before_a = e2e_names(ad, "imagePullSecrets");
        json_object_put(ad);
        fprintf(stderr, "%s/default before the deletion: %s\n", a, before_a);
        free(before_a);

        e2e_policy_delete(h, "p");

        /* bindings, copies, links: gone */
        char *left = kt_kout("get rolebindings -n '%s' -l pullpolicy.io/policy=p -o name", h);
        assert_non_null(left);
        assert_string_equal(left, "");
        free(left);
        for (size_t i = 0; i < 3; i++)
                assert_int_equal(e2e_sa_count(nss[i], "default", "pull", "creds"), 0);
        for (size_t i = 1; i < 3; i++) {
                char *e = kt_kout(exists_cmd, "secret", "creds", nss[i]);
                assert_string_equal(e, "absent");
                free(e);
        }
        /* what others made: kept */
        assert_int_equal(e2e_sa_count(h, "builder", "pull", "creds"), 1);
        assert_int_equal(e2e_sa_count(a, "default", "pull", "personal"), 1);
        char *src = kt_kout(exists_cmd, "secret", "creds", h);
        assert_string_equal(src, "present");
        free(src);
        for (size_t i = 0; i < 3; i++) {
                json_object *sa = e2e_sa(nss[i], "default");
                assert_non_null(e2e_find_prefix(sa, "imagePullSecrets", "default-dockercfg-"));
                assert_non_null(e2e_find_prefix(sa, "secrets", "default-dockercfg-"));
                /* no record of links is left behind */
                assert_null(kt_annotation(sa, "pullpolicy.io/links"));
                json_object_put(sa);
        }
        json_object *hb = e2e_sa(h, "builder");
        assert_non_null(e2e_find_prefix(hb, "imagePullSecrets", "builder-dockercfg-"));
        json_object_put(hb);
        /* and it stays that way */
        e2e_hold_out(3.0, "1",
                     "get sa builder -n '%s' -o jsonpath='{.imagePullSecrets[?(@.name==\"creds\")]"
                     ".name}' | grep -c creds",
                     h);

        e2e_ns_delete(h);
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(h);
        free(a);
        free(b);
}

/* Two policies link the same secret: the link stays until the last one goes. */
static void test_two_policies_same_secret(void **state) {
        char *h = e2e_ns("h-two", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        const char *pol = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                          "metadata:\n  name: %s\n  namespace: %s\n"
                          "spec:\n  subjects:\n    serviceAccounts: [default]\n"
                          "  pullSecrets:\n  - name: creds\n";
        kt_apply(pol, "first", h);
        e2e_wait_applied(h, "first", E2E_WAIT_S);
        e2e_wait_link(h, "default", "pull", "creds", 1, E2E_WAIT_S);
        kt_apply(pol, "second", h);
        e2e_wait_applied(h, "second", E2E_WAIT_S);
        assert_int_equal(e2e_sa_count(h, "default", "pull", "creds"), 1);
        json_object *sa = e2e_sa(h, "default");
        const char *rec = kt_annotation(sa, "pullpolicy.io/links");
        fprintf(stderr, "link record with two policies: %s\n", rec ? rec : "(none)");
        json_object_put(sa);

        e2e_policy_delete(h, "first");
        /* the second policy still wants it: it stays (also after a few seconds) */
        e2e_hold_out(3.0, "creds",
                     "get sa default -n '%s' -o jsonpath='{.imagePullSecrets[?(@.name==\"creds\")]"
                     ".name}'",
                     h);
        e2e_wait_applied(h, "second", E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "1",
                     "get ppol second -n '%s' -o jsonpath='{.status.linkedServiceAccounts}'", h);

        e2e_policy_delete(h, "second");
        e2e_wait_link(h, "default", "pull", "creds", 0, E2E_WAIT_S);
        json_object *after = e2e_sa(h, "default");
        assert_non_null(e2e_find_prefix(after, "imagePullSecrets", "default-dockercfg-"));
        assert_null(kt_annotation(after, "pullpolicy.io/links"));
        json_object_put(after);

        e2e_ns_delete(h);
        free(h);
}

/* Shrinking the subjects removes what the dropped namespace and account had, only that. */
static void test_shrink_subjects(void **state) {
        char *h = e2e_ns("h-shrink", NULL), *a = e2e_ns("shr-a", NULL), *b = e2e_ns("shr-b", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        e2e_sa_create(a, "builder");
        e2e_sa_create(b, "builder");
        const char *pol = "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                          "metadata:\n  name: s\n  namespace: %s\n"
                          "spec:\n  subjects:\n    namespaces: [%s]\n    serviceAccounts: [%s]\n"
                          "  imagePuller: {}\n  pullSecrets:\n  - name: creds\n";
        char nss[256];
        snprintf(nss, sizeof(nss), "%s, %s", a, b);
        kt_apply(pol, h, nss, "default, builder");
        e2e_wait_applied(h, "s", E2E_WAIT_S);
        const char *sas[] = {"default", "builder"};
        for (size_t i = 0; i < 2; i++) {
                e2e_wait_link(a, sas[i], "pull", "creds", 1, E2E_WAIT_S);
                e2e_wait_link(b, sas[i], "pull", "creds", 1, E2E_WAIT_S);
        }
        char *rba = rb_name("s", a), *rbb = rb_name("s", b);
        char *rba_uid = jsonpath("rolebinding", h, rba, "{.metadata.uid}");
        char *copy_rv = jsonpath("secret", a, "creds", "{.metadata.resourceVersion}");
        assert_non_null(rba_uid);
        assert_non_null(copy_rv);
        char *bcopy = kt_kout(exists_cmd, "secret", "creds", b);
        assert_string_equal(bcopy, "present");
        free(bcopy);

        /* drop namespace b and account builder */
        kt_apply(pol, h, a, "default");
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rbb, h);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", b);
        for (size_t i = 0; i < 2; i++) e2e_wait_link(b, sas[i], "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_link(a, "builder", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_applied(h, "s", E2E_WAIT_S);

        /* a's binding is the same object, now naming only default; a's copy untouched */
        char *uid = jsonpath("rolebinding", h, rba, "{.metadata.uid}");
        assert_string_equal(uid, rba_uid);
        free(uid);
        char *subj = jsonpath("rolebinding", h, rba,
                              "{range .subjects[*]}{.kind}:{.name}:{.namespace}{end}");
        char want[256];
        snprintf(want, sizeof(want), "ServiceAccount:default:%s", a);
        assert_string_equal(subj, want);
        free(subj);
        char *rv = jsonpath("secret", a, "creds", "{.metadata.resourceVersion}");
        assert_string_equal(rv, copy_rv);
        free(rv);
        assert_int_equal(e2e_sa_count(a, "default", "pull", "creds"), 1);
        e2e_wait_out(E2E_WAIT_S, "1/1",
                     "get ppol s -n '%s' -o jsonpath='{.status.namespaces}/"
                     "{.status.linkedServiceAccounts}'",
                     h);

        e2e_policy_delete(h, "s");
        free(rba);
        free(rbb);
        free(rba_uid);
        free(copy_rv);
        e2e_ns_delete(h);
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(h);
        free(a);
        free(b);
}

/*
 * Names at the limits: policy names of 236 characters make "ppol-<policy>-<ns>-<hash>" too long
 * for an object name and the policy label too long for a label value, so both are cut and
 * hashed (R2, R8). Two such policies differing only in their last character keep apart,
 * and deleting one removes exactly its own binding, copy and links.
 */
static void test_long_policy_names(void **state) {
        char *h = e2e_ns("h-long", NULL), *a = e2e_ns("long-a", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        char base[300] = "long-";
        for (int i = 0; i < 23; i++) strcat(base, "abcdefghij");
        char p1[300], p2[300];
        snprintf(p1, sizeof(p1), "%sy", base);
        snprintf(p2, sizeof(p2), "%sz", base);
        assert_int_equal(strlen(p1), 236);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s]\n  imagePuller: {}\n"
                 "  pullSecrets:\n  - name: creds\n",
                 p1, h, a);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: %s\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s]\n    serviceAccounts: [default]\n"
                 "  imagePuller: {}\n",
                 p2, h, a);
        e2e_wait_applied(h, p1, E2E_WAIT_S);
        e2e_wait_applied(h, p2, E2E_WAIT_S);
        e2e_wait_link(a, "default", "pull", "creds", 1, E2E_WAIT_S);

        json_object *l = kt_kjson("get rolebindings -n '%s' -o json", h);
        assert_non_null(l);
        assert_int_equal(kt_jlen(l, "items"), 2);
        char *names[2];
        for (size_t i = 0; i < 2; i++) {
                json_object *rb = kt_jidx(l, "items", i);
                const char *n = kt_jstr(rb, "metadata.name");
                const char *lv = kt_label(rb, "pullpolicy.io/policy");
                fprintf(stderr, "binding %s (%zu chars), policy label %s\n", n, strlen(n),
                        lv ? lv : "(none)");
                assert_true(strlen(n) <= 253);
                assert_non_null(lv);
                assert_true(strlen(lv) <= 63);
                assert_string_equal(kt_label(rb, "pullpolicy.io/policy-namespace"), h);
                const char *owner = kt_jstr(kt_jidx(rb, "metadata.ownerReferences", 0), "name");
                assert_non_null(owner);
                names[i] = strdup(n);
                /* the Group binding belongs to p1, the ServiceAccount one to p2 */
                const char *kind = kt_jstr(kt_jidx(rb, "subjects", 0), "kind");
                assert_string_equal(owner, strcmp(kind, "Group") == 0 ? p1 : p2);
        }
        assert_string_not_equal(names[0], names[1]);
        json_object_put(l);
        json_object *copy = e2e_get("secret", a, "creds");
        assert_non_null(copy);
        assert_true(strlen(kt_label(copy, "pullpolicy.io/policy")) <= 63);
        json_object_put(copy);

        e2e_policy_delete(h, p1);
        e2e_wait_link(a, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", a);
        json_object *left = kt_kjson("get rolebindings -n '%s' -o json", h);
        assert_int_equal(kt_jlen(left, "items"), 1);
        json_object *rb = kt_jidx(left, "items", 0);
        assert_string_equal(kt_jstr(kt_jidx(rb, "subjects", 0), "kind"), "ServiceAccount");
        json_object_put(left);
        e2e_wait_applied(h, p2, E2E_WAIT_S);

        e2e_policy_delete(h, p2);
        e2e_wait_out(E2E_WAIT_S, "", "get rolebindings -n '%s' -o name", h);
        free(names[0]);
        free(names[1]);
        e2e_ns_delete(h);
        e2e_ns_delete(a);
        free(h);
        free(a);
}

/*
 * The home namespace itself is deleted (the usual way a project goes): its policy is
 * finalized while the namespace empties, and what it made elsewhere — copies, links — goes.
 * A subject namespace that goes first loses its binding in the home.
 */
static void test_namespaces_deleted(void **state) {
        char *h = e2e_ns("h-gone", NULL), *a = e2e_ns("gone-a", NULL), *b = e2e_ns("gone-b", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: p\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s, %s]\n  imagePuller: {}\n"
                 "  pullSecrets:\n  - name: creds\n",
                 h, a, b);
        e2e_wait_applied(h, "p", E2E_WAIT_S);
        e2e_wait_link(a, "default", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_link(b, "default", "pull", "creds", 1, E2E_WAIT_S);
        char *rbb = rb_name("p", b);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rbb, h);

        /* b goes: its binding goes, the policy serves one namespace */
        assert_int_equal(kt_kubectl("delete namespace '%s' --wait=false >/dev/null", b), 0);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rbb, h);
        e2e_wait_out(E2E_WAIT_S, "1", "get ppol p -n '%s' -o jsonpath='{.status.namespaces}'", h);
        e2e_wait_applied(h, "p", E2E_WAIT_S);

        /* the home goes: a's copy and link go with it, and the home is not held up */
        assert_int_equal(kt_kubectl("delete namespace '%s' --wait=false >/dev/null", h), 0);
        e2e_wait_link(a, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", a);
        e2e_wait_out(E2E_CLEANUP_S, "gone",
                     "get namespace '%s' -o name 2>/dev/null | grep -q . && echo present "
                     "|| echo gone",
                     h);
        json_object *sa = e2e_sa(a, "default");
        assert_null(kt_annotation(sa, "pullpolicy.io/links"));
        assert_non_null(e2e_find_prefix(sa, "imagePullSecrets", "default-dockercfg-"));
        json_object_put(sa);

        free(rbb);
        e2e_ns_delete(a);
        free(h);
        free(a);
        free(b);
}

/*
 * Changes made while the controller is down are undone when it comes back: a policy
 * deleted meanwhile (held by its finalizer) is cleaned up and released; a namespace that
 * left the selector loses its binding, copy and link — all found from the cluster, not from
 * the memory of the process that made them.
 */
static void test_changes_while_down(void **state) {
        char *h = e2e_ns("h-down", NULL), *a = e2e_ns("down-a", NULL), *b = e2e_ns("down-b", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        assert_int_equal(kt_kubectl("label namespace '%s' e2e-down=%s >/dev/null", a, E2E.prefix),
                         0);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: sel\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaceSelector:\n      matchLabels:\n"
                 "        e2e-down: %s\n  imagePuller: {}\n  pullSecrets:\n  - name: creds\n",
                 h, E2E.prefix);
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: doomed\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s]\n  imagePuller: {}\n"
                 "  pullSecrets:\n  - name: creds\n",
                 h, b);
        e2e_wait_applied(h, "sel", E2E_WAIT_S);
        e2e_wait_applied(h, "doomed", E2E_WAIT_S);
        e2e_wait_link(a, "default", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_link(b, "default", "pull", "creds", 1, E2E_WAIT_S);
        char *rba = rb_name("sel", a), *rbb = rb_name("doomed", b);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rba, h);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rbb, h);

        assert_int_equal(e2e_controller_stop(), 0);
        assert_int_equal(kt_kubectl("delete ppol doomed -n '%s' --wait=false >/dev/null", h), 0);
        assert_int_equal(kt_kubectl("label namespace '%s' e2e-down- >/dev/null", a), 0);
        /* nobody to finalize it: it waits */
        kt_sleep(1.0);
        char *ts =
            kt_kout("get ppol doomed -n '%s' -o jsonpath='{.metadata.deletionTimestamp}'", h);
        assert_non_null(ts);
        assert_true(*ts);
        free(ts);

        assert_int_equal(e2e_controller_start(controller_flags), 0);
        e2e_wait_out(E2E_WAIT_S, "gone",
                     "get ppol doomed -n '%s' -o name 2>/dev/null | grep -q . && echo present "
                     "|| echo gone",
                     h);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rbb, h);
        e2e_wait_link(b, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", b);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rba, h);
        e2e_wait_link(a, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", a);
        e2e_wait_out(E2E_WAIT_S, "0", "get ppol sel -n '%s' -o jsonpath='{.status.namespaces}'", h);

        e2e_policy_delete(h, "sel");
        free(rba);
        free(rbb);
        e2e_ns_delete(h);
        e2e_ns_delete(a);
        e2e_ns_delete(b);
        free(h);
        free(a);
        free(b);
}

/*
 * Issue 7, item 7: someone removes the policy's finalizer by hand (JSON patch) while the
 * controller is stopped, and deletes it. Its bindings, copies and links stay behind with
 * marks naming a policy that does not exist; the controller sweeps them when it starts.
 */
static void test_finalizer_removed_by_hand(void **state) {
        char *h = e2e_ns("h-force", NULL), *a = e2e_ns("force-a", NULL);
        e2e_pull_secret(h, "creds", "registry.cleanup.example.com", "cl");
        e2e_wait_out(E2E_WAIT_S, "default", "get sa default -n '%s' -o jsonpath='{.metadata.name}'",
                     a);
        person_link(a, "default", "personal");
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata:\n  name: forced\n  namespace: %s\n"
                 "spec:\n  subjects:\n    namespaces: [%s, %s]\n  imagePuller: {}\n"
                 "  pullSecrets:\n  - name: creds\n",
                 h, h, a);
        e2e_wait_applied(h, "forced", E2E_WAIT_S);
        char *rbh = rb_name("forced", h), *rba = rb_name("forced", a);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rbh, h);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "rolebinding", rba, h);
        e2e_wait_link(h, "default", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_link(a, "default", "pull", "creds", 1, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "present", exists_cmd, "secret", "creds", a);

        assert_int_equal(e2e_controller_stop(), 0);
        assert_int_equal(kt_kubectl("delete ppol forced -n '%s' --wait=false >/dev/null", h), 0);
        assert_int_equal(kt_kubectl("patch ppol forced -n '%s' --type=json -p "
                                    "'[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]' "
                                    ">/dev/null",
                                    h),
                         0);
        e2e_wait_out(E2E_WAIT_S, "gone",
                     "get ppol forced -n '%s' -o name 2>/dev/null | grep -q . && echo present "
                     "|| echo gone",
                     h);
        /* the RoleBindings go with their owner (the garbage collector); the copy and the
         * links stay, naming a policy that does not exist */
        char *e = kt_kout(exists_cmd, "secret", "creds", a);
        assert_string_equal(e, "present");
        free(e);
        assert_int_equal(e2e_sa_count(a, "default", "pull", "creds"), 1);
        assert_int_equal(e2e_sa_count(h, "default", "pull", "creds"), 1);

        assert_int_equal(e2e_controller_start(controller_flags), 0);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rbh, h);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "rolebinding", rba, h);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "creds", a);
        e2e_wait_link(h, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_link(a, "default", "pull", "creds", 0, E2E_WAIT_S);
        e2e_wait_out(E2E_WAIT_S, "",
                     "get sa default -n '%s' -o "
                     "jsonpath='{.metadata.annotations.pullpolicy\\.io/links}'",
                     a);
        /* what others made stays: the person's link, the source, OpenShift's own link */
        assert_int_equal(e2e_sa_count(a, "default", "pull", "personal"), 1);
        e = kt_kout(exists_cmd, "secret", "creds", h);
        assert_string_equal(e, "present");
        free(e);
        json_object *sa = e2e_sa(a, "default");
        assert_non_null(e2e_find_prefix(sa, "imagePullSecrets", "default-dockercfg-"));
        json_object_put(sa);
        assert_true(tproc_log_count(&E2E.controller,
                                    "undoing what a policy that no longer exists left", NULL) > 0);

        /* while it runs: a leftover marked for a policy that does not exist (as a finalizer
         * removed by hand leaves them; another name than above, so that no sweep of "forced"
         * still pending can be what removes it) is seen by its watch and undone too */
        kt_apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: leftover\n  namespace: %s\n"
                 "  labels:\n    app.kubernetes.io/managed-by: pullpolicy-controller\n"
                 "    pullpolicy.io/policy: vanished\n    pullpolicy.io/policy-namespace: %s\n"
                 "type: Opaque\ndata: {x: eA==}\n",
                 a, h);
        e2e_wait_out(E2E_WAIT_S, "absent", exists_cmd, "secret", "leftover", a);

        free(rbh);
        free(rba);
        e2e_ns_delete(h);
        e2e_ns_delete(a);
        free(h);
        free(a);
}

static int group_setup(void **state) {
        if (e2e_suite_setup(state, "cleanup", e2e_sim_mode()) < 0) return -1;
        strcpy(dist_flag, "--distribution-namespaces=");
        for (size_t i = 0; i < ARRAY_SIZE(homes); i++) {
                if (i) strcat(dist_flag, ",");
                strcat(dist_flag, E2E.prefix);
                strcat(dist_flag, "-");
                strcat(dist_flag, homes[i]);
        }
        controller_flags[0] = dist_flag;
        return e2e_controller_start(controller_flags);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_delete_removes_exactly_its_work),
            cmocka_unit_test(test_two_policies_same_secret),
            cmocka_unit_test(test_shrink_subjects),
            cmocka_unit_test(test_long_policy_names),
            cmocka_unit_test(test_namespaces_deleted),
            cmocka_unit_test(test_changes_while_down),
            cmocka_unit_test(test_finalizer_removed_by_hand),
        };
        return cmocka_run_group_tests(tests, group_setup, e2e_suite_teardown);
}
