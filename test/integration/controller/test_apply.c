/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The apply step (controller/apply.c) against the real local control plane: plans
 * built by hand, applied with the C client on a libev loop, and their effect checked
 * with kubectl, as a user would see it.
 *
 * Every test works in namespaces of its own (testenv_unique_name), and the "global
 * pull secret" of R6 is a secret in such a namespace (pp_apply_ctx.global_ns), so the
 * tests never touch openshift-config and can share a control plane with others.
 * Concurrent writers (R9) are injected through the ctx.before_put hook, which runs
 * kubectl between the apply's GET and its PUT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "apply.h"
#include "kube/client.h"
#include "kube/config.h"
#include "metrics.h"
#include "model.h"
#include "names.h"
#include "plan.h"
#include "kubeclient.h"
#include "kubetest.h"
#include "testenv.h"
#include "util/base64.h"
#include "util/macro.h"

#define RUN_TIMEOUT_S 120.0
#define JF            (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static struct ev_loop *loop;
static kube_config *cfg;
static kube_client *client;
static controller_metrics *metrics;

/* ---- kubectl helpers ------------------------------------------------------------------------ */

/* kubectl's stdout without trailing newlines; the test fails if kubectl does. */
__attribute__((format(printf, 1, 2))) static char *kubectl_ok(const char *fmt, ...) {
        char *args = NULL, *out = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&args, fmt, ap);
        va_end(ap);
        assert_true(n > 0);
        int r = testenv_kubectl(&out, "%s", args);
        if (r != 0) fprintf(stderr, "kubectl %s -> %d\n", args, r);
        assert_int_equal(r, 0);
        free(args);
        assert_non_null(out);
        size_t len = strlen(out);
        while (len > 0 && out[len - 1] == '\n') out[--len] = '\0';
        return out;
}

/* `kubectl <args> -o json` parsed; NULL when kubectl failed (e.g. not found). */
__attribute__((format(printf, 1, 2))) static json_object *kjson(const char *fmt, ...) {
        char *args = NULL, *out = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&args, fmt, ap);
        va_end(ap);
        assert_true(n > 0);
        int r = testenv_kubectl(&out, "%s -o json 2>/dev/null", args);
        free(args);
        json_object *o = r == 0 && out ? json_tokener_parse(out) : NULL;
        free(out);
        return o;
}

static char *new_namespace(const char *prefix) {
        char *ns = testenv_unique_name(prefix);
        assert_non_null(ns);
        free(kubectl_ok("create namespace %s", ns));
        return ns;
}

static void drop_namespace(char *ns) {
        free(kubectl_ok("delete namespace %s --wait=false", ns));
        free(ns);
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!o || !json_object_object_get_ex(o, key, &v)) return NULL;
        return v;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The names in a list of {name: ...} objects (e.g. .imagePullSecrets), comma-joined. */
static char *names_of(json_object *list) {
        char *s = strdup("");
        assert_non_null(s);
        for (size_t i = 0; list && i < json_object_array_length(list); i++) {
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s%s", s, *s ? "," : "",
                                     get_str(json_object_array_get_idx(list, i), "name")) > 0);
                free(s);
                s = n;
        }
        return s;
}

static char *b64(const char *text) {
        char *out = NULL;
        assert_int_equal(base64_encode(text, strlen(text), 0, &out, NULL), 0);
        return out;
}

/* The decoded .dockerconfigjson of a secret read with kubectl. */
static json_object *payload_of(json_object *secret, const char *key) {
        const char *enc = get_str(get(secret, "data"), key);
        assert_non_null(enc);
        void *raw = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode(enc, strlen(enc), 0, 0, &raw, &n), 0);
        json_object *o = json_tokener_parse(raw);
        free(raw);
        assert_non_null(o);
        return o;
}

/* ---- running an apply ------------------------------------------------------------------------ */

typedef struct outcome {
        bool called;
        int calls;
        int result;
        size_t n_done;
        char *what;
        /* the writes reported failed, in order: "<what>|<error>|<http>|<message>" */
        char *failures[16];
        size_t failed_index[16]; /* write_index of each */
        size_t n_failures;
} outcome;

static void on_write_failed(void *ud, const pp_apply_failure *f) {
        outcome *o = ud;
        assert_false(o->called);
        assert_true(o->n_failures < ARRAY_SIZE(o->failures));
        const char *class = kube_error_is_not_found(f->error) ? "NotFound"
                            : f->error == -ESTALE             ? "stale"
                                                              : "other";
        o->failed_index[o->n_failures] = f->write_index;
        assert_true(asprintf(&o->failures[o->n_failures++], "%s|%s|%ld|%s", f->what, class,
                             f->http_status, f->message) > 0);
}

static bool in_start; /* set while pp_apply_plan/status runs: done must not come then */

static void on_done(void *ud, int result, size_t n_done, const char *what) {
        outcome *o = ud;
        assert_false(in_start);
        o->called = true;
        o->calls++;
        o->result = result;
        o->n_done = n_done;
        free(o->what);
        o->what = what ? strdup(what) : NULL;
}

static void on_timeout(struct ev_loop *l, ev_timer *t, int revents) {
        *(bool *)t->data = true;
}

/* Runs the loop until o is called back or seconds pass. */
static void run_loop(outcome *o, double seconds) {
        bool timed_out = false;
        ev_timer t;
        /* the loop's clock stood still during the kubectl calls made since it last ran */
        ev_now_update(loop);
        ev_timer_init(&t, on_timeout, seconds, 0.);
        t.data = &timed_out;
        ev_timer_start(loop, &t);
        while ((!o || !o->called) && !timed_out) ev_run(loop, EVRUN_ONCE);
        ev_timer_stop(loop, &t);
}

typedef struct hook_state {
        unsigned calls;
        unsigned max_attempt;
        /* kubectl arguments run on each call while calls < times (a "%u" gets the call number) */
        const char *cmd;
        unsigned times;
} hook_state;

static void before_put(void *ud, const char *kind, const char *ns, const char *name,
                       unsigned attempt) {
        hook_state *h = ud;
        if (attempt > h->max_attempt) h->max_attempt = attempt;
        if (h->cmd && h->calls < h->times) {
                char *cmd = NULL;
                assert_true(asprintf(&cmd, h->cmd, h->calls) > 0);
                free(kubectl_ok("%s", cmd));
                free(cmd);
        }
        h->calls++;
}

static pp_apply_ctx make_ctx(const char *gns, hook_state *h) {
        return (pp_apply_ctx){
            .client = client,
            .field_manager = "pullpolicy-controller",
            .metrics = metrics,
            .global_ns = gns,
            .global_name = "pull-secret",
            .before_put = h ? before_put : NULL,
            .hook_ud = h,
            .on_write_failed = on_write_failed,
        };
}

static outcome run_plan(const pp_apply_ctx *ctx, const model_policy *pol, const plan *p) {
        outcome o = {0};
        pp_apply *a = NULL;
        in_start = true;
        assert_int_equal(pp_apply_plan(ctx, pol, p, on_done, &o, &a), 0);
        in_start = false;
        assert_non_null(a);
        run_loop(&o, RUN_TIMEOUT_S);
        if (!o.called) {
                kube_client_stats st;
                kube_client_get_stats(client, &st);
                print_error("apply of %zu writes did not finish: %lu requests active, %lu "
                            "completed, %lu failed\n",
                            p->n_writes, st.active, st.completed, st.failed);
                for (size_t i = 0; i < p->n_writes; i++)
                        print_error("  %s %s/%s\n", plan_write_kind_to_string(p->writes[i].kind),
                                    p->writes[i].namespace ? p->writes[i].namespace : "",
                                    p->writes[i].name ? p->writes[i].name : "");
                pp_apply_cancel(a);
        }
        assert_true(o.called);
        assert_int_equal(o.calls, 1);
        return o;
}

static void outcome_done(outcome *o) {
        free(o->what);
        o->what = NULL;
        for (size_t i = 0; i < o->n_failures; i++) free(o->failures[i]);
        o->n_failures = 0;
}

/* ---- building plans by hand ---------------------------------------------------------------- */

static plan *plan_new0(void) {
        plan *p = calloc(1, sizeof(*p));
        assert_non_null(p);
        p->requeue_after = -1;
        return p;
}

static char *dup0(const char *s) {
        if (!s) return NULL;
        char *d = strdup(s);
        assert_non_null(d);
        return d;
}

static plan_write *add_write(plan *p, const model_policy *pol, plan_write_kind k, const char *ns,
                             const char *name, const char *rv, const char *uid) {
        plan_write *n = realloc(p->writes, (p->n_writes + 1) * sizeof(*n));
        assert_non_null(n);
        p->writes = n;
        plan_write *w = &p->writes[p->n_writes++];
        *w = (plan_write){.kind = k};
        w->namespace = dup0(ns);
        w->name = dup0(name);
        w->resource_version = dup0(rv);
        w->uid = dup0(uid);
        w->policy_namespace = dup0(pol->meta.namespace);
        w->policy_name = dup0(pol->meta.name);
        w->policy_uid = dup0(pol->meta.uid);
        return w;
}

static void rb_subject(plan_write *w, const char *kind, const char *name, const char *ns) {
        model_subject *s = realloc(w->rb.subjects, (w->rb.n_subjects + 1) * sizeof(*s));
        assert_non_null(s);
        w->rb.subjects = s;
        s[w->rb.n_subjects++] = (model_subject){
            .kind = dup0(kind),
            .api_group = streq(kind, "ServiceAccount") ? NULL : dup0("rbac.authorization.k8s.io"),
            .name = dup0(name),
            .namespace = dup0(ns),
        };
}

static void copy_fields(plan_write *w, const char *home, const char *src, const char *pol) {
        w->copy.source_namespace = dup0(home);
        w->copy.source_name = dup0(src);
        w->copy.policy_name = dup0(pol);
}

static void sa_want(plan_write *w, const char *secret, unsigned mask) {
        plan_sa_want *n = realloc(w->sa.want, (w->sa.n_want + 1) * sizeof(*n));
        assert_non_null(n);
        w->sa.want = n;
        n[w->sa.n_want++] = (plan_sa_want){.secret = dup0(secret), .mask = mask};
}

/* ---- a policy in a home namespace ---------------------------------------------------------------
 */

static model_policy *read_policy(const char *ns, const char *name) {
        json_object *o = kjson("get pullpolicies.pullpolicy.io -n %s %s", ns, name);
        assert_non_null(o);
        model_policy *p = NULL;
        assert_int_equal(model_policy_decode(o, &p), 0);
        json_object_put(o);
        return p;
}

static model_policy *create_policy(const char *home) {
        kt_apply("apiVersion: pullpolicy.io/v1alpha1\n"
                 "kind: PullPolicy\n"
                 "metadata: {name: pol, namespace: %s}\n"
                 "spec: {imagePuller: {}}\n",
                 home);
        return read_policy(home, "pol");
}

static char *jsonpath(const char *what, const char *ns, const char *path) {
        return kubectl_ok("get %s -n %s -o jsonpath='{%s}'", what, ns, path);
}

/* ---- fixtures -----------------------------------------------------------------------------------
 */

static int setup(void **state) {
        if (testenv_group_setup(state) < 0) return -1;
        if (kt_install_crds() < 0) return -1;
        if (kubeclient_open(&loop, &cfg, &client) < 0) return -1;
        if (controller_metrics_new(&metrics) < 0) return -1;
        return 0;
}

static int teardown(void **state) {
        kubeclient_close(&loop, &cfg, &client);
        metrics = controller_metrics_free(metrics);
        return 0;
}

static double writes_of(const char *resource, const char *verb) {
        double v = 0;
        if (metrics_get(metrics->writes_total, METRICS_LABELS(resource, verb), &v, NULL) < 0)
                return 0;
        return v;
}

/* ---- tests --------------------------------------------------------------------------------------
 */

/* R2: a RoleBinding is created, refused when it exists, updated, deleted. */
static void test_role_binding(void **state) {
        char *home = new_namespace("ap-rb-home"), *subj = new_namespace("ap-rb-subj");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *rbname = NULL;
        assert_int_equal(names_role_binding("pol", subj, &rbname), 0);
        double creates0 = writes_of("rolebindings", "create");

        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_RB_CREATE, home, rbname, NULL, NULL);
        w->rb.subject_namespace = dup0(subj);
        w->rb.role_name = dup0("system:image-puller");
        char *group = NULL;
        assert_true(asprintf(&group, "system:serviceaccounts:%s", subj) > 0);
        rb_subject(w, "Group", group, NULL);
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1);
        assert_null(o.what);
        outcome_done(&o);
        assert_true(writes_of("rolebindings", "create") == creates0 + 1);

        json_object *rb = kjson("get rolebinding -n %s %s --show-managed-fields", home, rbname);
        assert_non_null(rb);
        assert_string_equal(get_str(get(rb, "roleRef"), "name"), "system:image-puller");
        json_object *s0 = json_object_array_get_idx(get(rb, "subjects"), 0);
        assert_string_equal(get_str(s0, "kind"), "Group");
        assert_string_equal(get_str(s0, "name"), group);
        json_object *labels = get(get(rb, "metadata"), "labels");
        assert_string_equal(get_str(labels, NAMES_LABEL_MANAGED_BY), NAMES_MANAGED_BY_VALUE);
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY), "pol");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY_NAMESPACE), home);
        json_object *owner =
            json_object_array_get_idx(get(get(rb, "metadata"), "ownerReferences"), 0);
        assert_string_equal(get_str(owner, "uid"), pol->meta.uid);
        /* the field manager is recorded */
        json_object *mf = json_object_array_get_idx(get(get(rb, "metadata"), "managedFields"), 0);
        assert_string_equal(get_str(mf, "manager"), "pullpolicy-controller");
        json_object_put(rb);

        /* the same create again: AlreadyExists, reported with the object's name */
        o = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_already_exists(o.result));
        assert_int_equal(o.n_done, 0);
        char *what = NULL;
        assert_true(asprintf(&what, "RoleBinding %s/%s", home, rbname) > 0);
        assert_string_equal(o.what, what);
        outcome_done(&o);
        plan_free(p);

        /* update to ServiceAccount subjects, with the current resourceVersion */
        char *rv = kubectl_ok("get rolebinding -n %s %s -o jsonpath='{.metadata.resourceVersion}'",
                              home, rbname);
        p = plan_new0();
        w = add_write(p, pol, PLAN_RB_UPDATE, home, rbname, rv, NULL);
        w->rb.subject_namespace = dup0(subj);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "builder", subj);
        rb_subject(w, "ServiceAccount", "default", subj);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        char *subjects =
            kubectl_ok("get rolebinding -n %s %s -o "
                       "jsonpath='{range .subjects[*]}{.kind}:{.namespace}/{.name} {end}'",
                       home, rbname);
        char *expect = NULL;
        assert_true(asprintf(&expect, "ServiceAccount:%s/builder ServiceAccount:%s/default ", subj,
                             subj) > 0);
        assert_string_equal(subjects, expect);
        free(subjects);
        free(expect);

        /* the same update again: its resourceVersion is stale now; the binding read is not
         * the version planned (apply's own finding, before any PUT) */
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -ESTALE);
        outcome_done(&o);
        plan_free(p);

        /* delete with preconditions; then again: already gone counts as done */
        char *uid =
            kubectl_ok("get rolebinding -n %s %s -o jsonpath='{.metadata.uid}'", home, rbname);
        free(rv);
        rv = kubectl_ok("get rolebinding -n %s %s -o jsonpath='{.metadata.resourceVersion}'", home,
                        rbname);
        p = plan_new0();
        add_write(p, pol, PLAN_RB_DELETE, home, rbname, rv, "wrong-uid");
        o = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_conflict(o.result)); /* the uid precondition is checked */
        outcome_done(&o);
        plan_free(p);
        p = plan_new0();
        add_write(p, pol, PLAN_RB_DELETE, home, rbname, rv, uid);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        char *left =
            kubectl_ok("get rolebinding -n %s %s --ignore-not-found -o name", home, rbname);
        assert_string_equal(left, "");
        free(left);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1);
        outcome_done(&o);
        plan_free(p);

        free(uid);
        free(rv);
        free(what);
        free(group);
        free(rbname);
        model_policy_free(pol);
        drop_namespace(subj);
        drop_namespace(home);
}

/*
 * Issue 7 item 5: an update of a RoleBinding changes only what the controller owns (its
 * subjects, its R8 labels, its owner reference): annotations, labels and owner references
 * that others put there (Argo CD's tracking annotation, people) survive it.
 */
static void test_role_binding_update_keeps_foreign_metadata(void **state) {
        char *home = new_namespace("ap-rbmeta");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *rbname = NULL;
        assert_int_equal(names_role_binding("pol", home, &rbname), 0);

        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_RB_CREATE, home, rbname, NULL, NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "default", home);
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);

        /* others' metadata, and an owner reference of another object */
        free(kubectl_ok("annotate rolebinding -n %s %s "
                        "argocd.argoproj.io/tracking-id=app:rbac.authorization.k8s.io/"
                        "RoleBinding:x/y note=kept",
                        home, rbname));
        free(kubectl_ok("label rolebinding -n %s %s team=blue", home, rbname));
        free(kubectl_ok("create configmap -n %s holder", home));
        char *cm_uid = kubectl_ok("get configmap -n %s holder -o jsonpath='{.metadata.uid}'", home);
        free(kubectl_ok("patch rolebinding -n %s %s --type=json -p "
                        "'[{\"op\":\"add\",\"path\":\"/metadata/ownerReferences/-\","
                        "\"value\":{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                        "\"name\":\"holder\",\"uid\":\"%s\"}}]'",
                        home, rbname, cm_uid));

        /* the policy's subjects changed: the binding must be updated */
        char *rv = kubectl_ok("get rolebinding -n %s %s -o jsonpath='{.metadata.resourceVersion}'",
                              home, rbname);
        p = plan_new0();
        w = add_write(p, pol, PLAN_RB_UPDATE, home, rbname, rv, NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "builder", home);
        rb_subject(w, "ServiceAccount", "deployer", home);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1);
        outcome_done(&o);
        plan_free(p);

        json_object *rb = kjson("get rolebinding -n %s %s", home, rbname);
        assert_non_null(rb);
        json_object *md = get(rb, "metadata");
        json_object *ann = get(md, "annotations");
        assert_non_null(ann); /* dropped by a PUT of a freshly built object */
        assert_string_equal(get_str(ann, "argocd.argoproj.io/tracking-id"),
                            "app:rbac.authorization.k8s.io/RoleBinding:x/y");
        assert_string_equal(get_str(ann, "note"), "kept");
        json_object *labels = get(md, "labels");
        assert_non_null(get_str(labels, "team"));
        assert_string_equal(get_str(labels, "team"), "blue");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY), "pol");
        assert_string_equal(get_str(labels, NAMES_LABEL_SUBJECT_NAMESPACE), home);
        json_object *owners = get(md, "ownerReferences");
        assert_int_equal(json_object_array_length(owners), 2);
        bool ours = false, theirs = false;
        for (size_t i = 0; i < json_object_array_length(owners); i++) {
                json_object *ow = json_object_array_get_idx(owners, i);
                ours = ours || streq_ptr(get_str(ow, "uid"), pol->meta.uid);
                theirs = theirs || streq_ptr(get_str(ow, "uid"), cm_uid);
        }
        assert_true(ours);
        assert_true(theirs);
        json_object_put(rb);
        char *subjects =
            kubectl_ok("get rolebinding -n %s %s -o jsonpath='{range .subjects[*]}{.name} {end}'",
                       home, rbname);
        assert_string_equal(subjects, "builder deployer ");
        free(subjects);

        free(rv);
        free(cm_uid);
        free(rbname);
        model_policy_free(pol);
        drop_namespace(home);
}

/* R7: the finalizer is added and removed; others' finalizers stay; stale → conflict. */
static void test_finalizers(void **state) {
        char *home = new_namespace("ap-fin");
        model_policy *pol = create_policy(home);
        free(kubectl_ok("patch pullpolicies.pullpolicy.io -n %s pol --type=merge "
                        "-p '{\"metadata\":{\"finalizers\":[\"example.com/other\"]}}'",
                        home));
        model_policy_free(pol);
        pol = read_policy(home, "pol");
        pp_apply_ctx ctx = make_ctx(home, NULL);

        plan *p = plan_new0();
        add_write(p, pol, PLAN_ADD_FINALIZER, home, "pol", pol->meta.resource_version, NULL);
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);
        char *fins = jsonpath("pullpolicies.pullpolicy.io/pol", home, ".metadata.finalizers");
        assert_string_equal(fins, "[\"example.com/other\",\"pullpolicy.io/cleanup\"]");
        free(fins);

        /* removal with the old resourceVersion: the policy changed meanwhile → conflict */
        model_policy *stale = pol;
        pol = read_policy(home, "pol");
        p = plan_new0();
        add_write(p, pol, PLAN_REMOVE_FINALIZER, home, "pol", stale->meta.resource_version, NULL);
        o = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_conflict(o.result));
        outcome_done(&o);
        plan_free(p);
        model_policy_free(stale);

        p = plan_new0();
        add_write(p, pol, PLAN_REMOVE_FINALIZER, home, "pol", pol->meta.resource_version, NULL);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);
        fins = jsonpath("pullpolicies.pullpolicy.io/pol", home, ".metadata.finalizers");
        assert_string_equal(fins, "[\"example.com/other\"]");
        free(fins);

        free(kubectl_ok("patch pullpolicies.pullpolicy.io -n %s pol --type=merge "
                        "-p '{\"metadata\":{\"finalizers\":null}}'",
                        home));
        model_policy_free(pol);
        drop_namespace(home);
}

/* R3/R9: a link is added while another writer adds its own entry between GET and PUT. */
static void test_sa_edit_concurrent_writer(void **state) {
        char *home = new_namespace("ap-sa");
        model_policy *pol = create_policy(home);
        kt_apply("apiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: app, namespace: %s}\n"
                 "imagePullSecrets: [{name: initial}]\n",
                 home);
        char *rv0 = kubectl_ok("get sa app -n %s -o jsonpath='{.metadata.resourceVersion}'", home);

        char *cmd = NULL;
        assert_true(asprintf(&cmd,
                             "patch sa app -n %s --type=json -p "
                             "'[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\","
                             "\"value\":{\"name\":\"someone-else\"}}]'",
                             home) > 0);
        hook_state h = {.cmd = cmd, .times = 1};
        pp_apply_ctx ctx = make_ctx(home, &h);
        double updates0 = writes_of("serviceaccounts", "update");

        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_SA_EDIT, home, "app", rv0, NULL);
        sa_want(w, "quay-creds", POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1);
        outcome_done(&o);
        /* the first PUT met the other writer's change (409): read again, second attempt won */
        assert_int_equal(h.calls, 2);
        assert_int_equal(h.max_attempt, 1);
        assert_true(writes_of("serviceaccounts", "update") == updates0 + 2);

        json_object *sa = kjson("get sa app -n %s", home);
        char *pulls = names_of(get(sa, "imagePullSecrets"));
        char *mounts = names_of(get(sa, "secrets"));
        assert_string_equal(pulls, "initial,someone-else,quay-creds");
        assert_string_equal(mounts, "quay-creds");
        free(pulls);
        free(mounts);
        const char *links =
            get_str(get(get(sa, "metadata"), "annotations"), NAMES_ANNOTATION_LINKS);
        assert_non_null(links);
        char *expect = NULL;
        assert_true(asprintf(&expect,
                             "{\"v\":1,\"links\":[{\"policy\":\"%s/pol\",\"secret\":\"quay-creds\","
                             "\"for\":[\"pull\",\"mount\"]}]}",
                             home) > 0);
        assert_string_equal(links, expect);
        free(expect);
        json_object_put(sa);

        /* applying the same plan again finds nothing to do: no PUT at all (R10) */
        h = (hook_state){0};
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(h.calls, 0);
        outcome_done(&o);
        plan_free(p);

        /* removal: exactly this policy's links go, someone-else's and initial stay, and a
         * concurrent change of the SA (an annotation) survives the retry too */
        h = (hook_state){.cmd = cmd, .times = 1};
        free(cmd);
        assert_true(
            asprintf(&cmd, "annotate sa app -n %s example.com/touched=%%u --overwrite", home) > 0);
        h.cmd = cmd;
        p = plan_new0();
        add_write(p, pol, PLAN_SA_EDIT, home, "app", rv0, NULL);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(h.calls, 2);
        outcome_done(&o);
        plan_free(p);
        sa = kjson("get sa app -n %s", home);
        pulls = names_of(get(sa, "imagePullSecrets"));
        mounts = names_of(get(sa, "secrets"));
        assert_string_equal(pulls, "initial,someone-else");
        assert_string_equal(mounts, "");
        free(pulls);
        free(mounts);
        json_object *ann = get(get(sa, "metadata"), "annotations");
        assert_null(get(ann, NAMES_ANNOTATION_LINKS));
        assert_string_equal(get_str(ann, "example.com/touched"), "0");
        json_object_put(sa);

        /* a service account that is gone needs no edit */
        p = plan_new0();
        w = add_write(p, pol, PLAN_SA_EDIT, home, "no-such-sa", "1", NULL);
        sa_want(w, "quay-creds", POLICY_FOR_PULL);
        h = (hook_state){0};
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(h.calls, 0);
        outcome_done(&o);
        plan_free(p);

        free(cmd);
        free(rv0);
        model_policy_free(pol);
        drop_namespace(home);
}

/*
 * R3/R9 by merge patch: the planner's edit from the cached SA goes out without a GET,
 * guarded by the cached resourceVersion. When another writer got there first, the real
 * apiserver answers 409 and the edit falls back to read, re-edit, update: nothing is lost.
 */
static void sa_patch_write(plan *p, const model_policy *pol, const char *ns, const char *name,
                           json_object *cached) {
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(cached, &sa), 0);
        assert_true(sa->refs_plain);
        plan_write *w = add_write(p, pol, PLAN_SA_EDIT, ns, name, sa->meta.resource_version, NULL);
        sa_want(w, "quay-creds", POLICY_FOR_PULL);
        char *key = NULL;
        assert_true(asprintf(&key, "%s/%s", pol->meta.namespace, pol->meta.name) > 0);
        assert_int_equal(plan_sa_edit(sa, key, w->sa.want, w->sa.n_want, &w->sa.desired), 0);
        assert_true(w->sa.desired.changed);
        w->sa.patchable = true;
        free(key);
        model_sa_free(sa);
}

static void test_sa_patch(void **state) {
        char *home = new_namespace("ap-sa-patch");
        model_policy *pol = create_policy(home);
        kt_apply("apiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: app, namespace: %s, labels: {keep: me}}\n"
                 "imagePullSecrets: [{name: initial}]\n"
                 "automountServiceAccountToken: false\n",
                 home);

        /* no one else writes: one PATCH, no GET-and-PUT */
        hook_state h = {0};
        pp_apply_ctx ctx = make_ctx(home, &h);
        double patches0 = writes_of("serviceaccounts", "patch");
        double updates0 = writes_of("serviceaccounts", "update");
        json_object *cached = kjson("get sa app -n %s", home);
        plan *p = plan_new0();
        sa_patch_write(p, pol, home, "app", cached);
        json_object_put(cached);
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1);
        outcome_done(&o);
        plan_free(p);
        assert_int_equal(h.calls, 1);
        assert_true(writes_of("serviceaccounts", "patch") == patches0 + 1);
        assert_true(writes_of("serviceaccounts", "update") == updates0);
        json_object *sa = kjson("get sa app -n %s", home);
        char *pulls = names_of(get(sa, "imagePullSecrets"));
        assert_string_equal(pulls, "initial,quay-creds");
        free(pulls);
        /* what the patch does not name is the SA's as before */
        assert_string_equal(get_str(get(get(sa, "metadata"), "labels"), "keep"), "me");
        assert_false(json_object_get_boolean(get(sa, "automountServiceAccountToken")));
        assert_non_null(get_str(get(get(sa, "metadata"), "annotations"), NAMES_ANNOTATION_LINKS));
        json_object_put(sa);

        /* a stale cache: someone adds an entry after the cached read; the PATCH meets 409 */
        free(kubectl_ok("patch sa app -n %s --type=json -p '[{\"op\":\"remove\","
                        "\"path\":\"/imagePullSecrets/1\"},{\"op\":\"remove\",\"path\":"
                        "\"/metadata/annotations\"}]'",
                        home));
        cached = kjson("get sa app -n %s", home);
        char *cmd = NULL;
        assert_true(asprintf(&cmd,
                             "patch sa app -n %s --type=json -p "
                             "'[{\"op\":\"add\",\"path\":\"/imagePullSecrets/-\","
                             "\"value\":{\"name\":\"someone-else\"}}]'",
                             home) > 0);
        h = (hook_state){.cmd = cmd, .times = 1};
        patches0 = writes_of("serviceaccounts", "patch");
        updates0 = writes_of("serviceaccounts", "update");
        p = plan_new0();
        sa_patch_write(p, pol, home, "app", cached);
        json_object_put(cached);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);
        assert_int_equal(h.calls, 2); /* the PATCH (409), then the PUT after a fresh read */
        assert_int_equal(h.max_attempt, 1);
        assert_true(writes_of("serviceaccounts", "patch") == patches0 + 1);
        assert_true(writes_of("serviceaccounts", "update") == updates0 + 1);
        sa = kjson("get sa app -n %s", home);
        pulls = names_of(get(sa, "imagePullSecrets"));
        assert_string_equal(pulls, "initial,someone-else,quay-creds");
        free(pulls);
        json_object_put(sa);

        free(cmd);
        model_policy_free(pol);
        drop_namespace(home);
}

/* R9: a writer that wins every race makes the edit give up after the retries, with -ESTALE. */
static void test_sa_edit_gives_up(void **state) {
        char *home = new_namespace("ap-sa-busy");
        model_policy *pol = create_policy(home);
        free(kubectl_ok("create serviceaccount app -n %s", home));
        char *cmd = NULL;
        assert_true(asprintf(&cmd, "annotate sa app -n %s example.com/n=%%u --overwrite", home) >
                    0);
        hook_state h = {.cmd = cmd, .times = 1000};
        pp_apply_ctx ctx = make_ctx(home, &h);
        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_SA_EDIT, home, "app", NULL, NULL);
        sa_want(w, "quay-creds", POLICY_FOR_PULL);
        /* a second write that must not run after the failure: the finalizer stays while
         * anything failed */
        add_write(p, pol, PLAN_REMOVE_FINALIZER, home, "pol", pol->meta.resource_version, NULL);
        outcome o = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_conflict(o.result));
        assert_int_equal(o.n_done, 0);
        assert_int_equal(h.calls, PP_APPLY_CONFLICT_RETRIES);
        char *what = NULL;
        assert_true(asprintf(&what, "ServiceAccount %s/app", home) > 0);
        assert_string_equal(o.what, what);
        outcome_done(&o);
        plan_free(p);
        char *pulls = kubectl_ok("get sa app -n %s -o jsonpath='{.imagePullSecrets}'", home);
        assert_string_equal(pulls, "");
        free(pulls);
        char *fins = jsonpath("pullpolicies.pullpolicy.io/pol", home, ".metadata.finalizers");
        assert_string_equal(fins, "");
        free(fins);
        free(what);
        free(cmd);
        model_policy_free(pol);
        drop_namespace(home);
}

/* R5: copies are created, refreshed (also across a type change) and deleted. */
static void test_copies(void **state) {
        char *home = new_namespace("ap-cp-home"), *subj = new_namespace("ap-cp-subj");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *payload1 = b64("{\"auths\":{\"quay.io\":{\"auth\":\"YTpi\"}}}");
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: quay-creds, namespace: %s, labels: {team: a}}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n",
                 home, payload1);

        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_COPY_CREATE, subj, "quay-creds", NULL, NULL);
        copy_fields(w, home, "quay-creds", "pol");
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        json_object *c = kjson("get secret -n %s quay-creds", subj);
        assert_non_null(c);
        assert_string_equal(get_str(c, "type"), "kubernetes.io/dockerconfigjson");
        assert_string_equal(get_str(get(c, "data"), ".dockerconfigjson"), payload1);
        json_object *md = get(c, "metadata");
        json_object *labels = get(md, "labels");
        assert_string_equal(get_str(labels, NAMES_LABEL_MANAGED_BY), NAMES_MANAGED_BY_VALUE);
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY), "pol");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY_NAMESPACE), home);
        assert_null(get(labels, "team")); /* the source's own labels are not copied */
        assert_null(get(md, "ownerReferences"));
        char *srcref = NULL;
        assert_true(asprintf(&srcref, "%s/quay-creds", home) > 0);
        assert_string_equal(get_str(get(md, "annotations"), NAMES_ANNOTATION_SOURCE), srcref);
        free(srcref);
        char *uid1 = strdup(get_str(md, "uid"));
        char *rv1 = strdup(get_str(md, "resourceVersion"));
        json_object_put(c);

        /* again: it exists */
        o = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_already_exists(o.result));
        outcome_done(&o);
        plan_free(p);

        /* a rotated source: the copy follows, in place */
        char *payload2 = b64("{\"auths\":{\"quay.io\":{\"auth\":\"Yzpk\"}}}");
        free(kubectl_ok("patch secret quay-creds -n %s --type=merge "
                        "-p '{\"data\":{\".dockerconfigjson\":\"%s\"}}'",
                        home, payload2));
        p = plan_new0();
        w = add_write(p, pol, PLAN_COPY_UPDATE, subj, "quay-creds", rv1, NULL);
        copy_fields(w, home, "quay-creds", "pol");
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        c = kjson("get secret -n %s quay-creds", subj);
        assert_string_equal(get_str(get(c, "data"), ".dockerconfigjson"), payload2);
        assert_string_equal(get_str(get(c, "metadata"), "uid"), uid1);
        char *rv2 = strdup(get_str(get(c, "metadata"), "resourceVersion"));
        json_object_put(c);

        /* the plan's resourceVersion is the precondition: a stale one is a conflict */
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -ESTALE);
        outcome_done(&o);
        plan_free(p);

        /* the source changes type (re-created as dockercfg): type is immutable, so the copy
         * is deleted and created anew */
        free(kubectl_ok("delete secret quay-creds -n %s", home));
        char *cfg1 = b64("{\"quay.io\":{\"auth\":\"ZTpm\"}}");
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: quay-creds, namespace: %s}\n"
                 "type: kubernetes.io/dockercfg\n"
                 "data: {.dockercfg: %s}\n",
                 home, cfg1);
        p = plan_new0();
        w = add_write(p, pol, PLAN_COPY_UPDATE, subj, "quay-creds", rv2, NULL);
        copy_fields(w, home, "quay-creds", "pol");
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);
        c = kjson("get secret -n %s quay-creds", subj);
        assert_string_equal(get_str(c, "type"), "kubernetes.io/dockercfg");
        assert_string_equal(get_str(get(c, "data"), ".dockercfg"), cfg1);
        assert_null(get(get(c, "data"), ".dockerconfigjson"));
        assert_string_not_equal(get_str(get(c, "metadata"), "uid"), uid1);
        assert_string_equal(get_str(get(get(c, "metadata"), "labels"), NAMES_LABEL_POLICY), "pol");
        char *uid3 = strdup(get_str(get(c, "metadata"), "uid"));
        char *rv3 = strdup(get_str(get(c, "metadata"), "resourceVersion"));
        json_object_put(c);

        /* a same-named secret the controller did not make is never overwritten */
        free(kubectl_ok("create secret generic mine -n %s --from-literal=k=v", subj));
        free(kubectl_ok("create secret generic mine -n %s --from-literal=k=w", home));
        p = plan_new0();
        w = add_write(p, pol, PLAN_COPY_UPDATE, subj, "mine", NULL, NULL);
        copy_fields(w, home, "mine", "pol");
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -EEXIST);
        outcome_done(&o);
        plan_free(p);
        char *k = kubectl_ok("get secret mine -n %s -o jsonpath='{.data.k}'", subj);
        assert_string_equal(k, "dg=="); /* "v" */
        free(k);

        /* the source is never a target */
        p = plan_new0();
        w = add_write(p, pol, PLAN_COPY_CREATE, home, "quay-creds", NULL, NULL);
        copy_fields(w, home, "quay-creds", "pol");
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -EINVAL);
        outcome_done(&o);
        plan_free(p);

        /* delete with preconditions; gone counts as done */
        p = plan_new0();
        add_write(p, pol, PLAN_COPY_DELETE, subj, "quay-creds", rv3, uid3);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        char *left = kubectl_ok("get secret quay-creds -n %s --ignore-not-found -o name", subj);
        assert_string_equal(left, "");
        free(left);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        plan_free(p);

        free(uid1);
        free(rv1);
        free(rv2);
        free(uid3);
        free(rv3);
        free(cfg1);
        free(payload1);
        free(payload2);
        model_policy_free(pol);
        drop_namespace(subj);
        drop_namespace(home);
}

/* The global payload as people and tools write it; three foreign entries, and one
 * registry (quay.io/org) that the policy also has but did not add. */
static const char *const GLOBAL_PAYLOAD =
    "{ \"auths\": {\n"
    "  \"registry.example.com\" : { \"auth\" : \"Zm9vOmJhcg==\", \"email\": "
    "\"a\\/b@example.com\" },\n"
    "  \"quay.io/org\": {\"auth\":\"eDp5\"},\n"
    "  \"mirror.example:5000\": {\"auth\":\"bTpu\",\"identitytoken\":\"t\\u00e9st\","
    "\"n\": 1.50, \"nested\": {\"a\": [1, 2, {\"b\": null}]}},\n"
    "  \"docker.io\": {\"auth\":\"ZG9jazplcg==\"}\n"
    " },\n"
    " \"credsStore\": \"desktop\"\n"
    "}\n";

/* The same values after json-c's round trip (what "kept byte for byte" can mean once the
 * payload is re-encoded: same keys, same values, same order). */
static const char *const FOREIGN[][2] = {
    {"registry.example.com", "{\"auth\":\"Zm9vOmJhcg==\",\"email\":\"a/b@example.com\"}"},
    {"mirror.example:5000", "{\"auth\":\"bTpu\",\"identitytoken\":\"t\xc3\xa9st\",\"n\":1.50,"
                            "\"nested\":{\"a\":[1,2,{\"b\":null}]}}"},
    {"docker.io", "{\"auth\":\"ZG9jazplcg==\"}"},
    {"quay.io/org", "{\"auth\":\"eDp5\"}"},
};

static void assert_foreign_intact(json_object *payload) {
        json_object *auths = get(payload, "auths");
        for (size_t i = 0; i < ARRAY_SIZE(FOREIGN); i++) {
                json_object *e = get(auths, FOREIGN[i][0]);
                if (!e) fail_msg("foreign registry %s is gone", FOREIGN[i][0]);
                assert_string_equal(json_object_to_json_string_ext(e, JF), FOREIGN[i][1]);
        }
        assert_string_equal(get_str(payload, "credsStore"), "desktop");
}

static char *auth_keys(json_object *payload) {
        char *s = strdup("");
        json_object_object_foreach(get(payload, "auths"), k, v) {
                (void)v;
                char *n = NULL;
                assert_true(asprintf(&n, "%s%s%s", s, *s ? "," : "", k) > 0);
                free(s);
                s = n;
        }
        return s;
}

/* R6: merge into the global pull secret with a concurrent writer; conflict; removal. */
static void test_global_edit(void **state) {
        char *home = new_namespace("ap-gl-home"), *gns = new_namespace("ap-gl-cfg");
        model_policy *pol = create_policy(home);
        char *g64 = b64(GLOBAL_PAYLOAD);
        char *src64 = b64("{\"auths\":{\"new.example\":{\"auth\":\"bmV3Om5ldw==\"},"
                          "\"quay.io/org\":{\"auth\":\"bWluZTptaW5l\"}}}");
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: pull-secret, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n"
                 "---\n"
                 "apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: quay-creds, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n",
                 gns, g64, home, src64);

        /* the wants, as the planner makes them from the cached source */
        json_object *so = kjson("get secret -n %s quay-creds", home);
        model_secret *src = NULL;
        assert_int_equal(model_secret_decode(so, &src), 0);
        json_object_put(so);
        assert_int_equal(src->n_registries, 2);

        /* while we edit, someone adds a registry of their own (a 409 for us) */
        char *late = NULL;
        {
                json_object *p0 = json_tokener_parse(GLOBAL_PAYLOAD);
                json_object_object_add(get(p0, "auths"), "late.example",
                                       json_tokener_parse("{\"auth\":\"bGF0ZTpsYXRl\"}"));
                late = b64(json_object_to_json_string_ext(p0, JF));
                json_object_put(p0);
        }
        char *cmd = NULL;
        assert_true(asprintf(&cmd,
                             "patch secret pull-secret -n %s --type=merge "
                             "-p '{\"data\":{\".dockerconfigjson\":\"%s\"}}'",
                             gns, late) > 0);
        hook_state h = {.cmd = cmd, .times = 1};
        pp_apply_ctx ctx = make_ctx(gns, &h);

        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_GLOBAL_EDIT, gns, "pull-secret", "1", NULL);
        w->global.source_namespace = dup0(home);
        w->global.want = calloc(src->n_registries, sizeof(plan_global_want));
        assert_non_null(w->global.want);
        for (size_t i = 0; i < src->n_registries; i++) {
                w->global.want[i].registry = dup0(src->registries[i].host);
                w->global.want[i].source = dup0("quay-creds");
                w->global.want[i].hash = src->registries[i].hash;
        }
        w->global.n_want = src->n_registries;
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        outcome_done(&o);
        assert_int_equal(h.calls, 2); /* one conflict, one retry */

        json_object *g = kjson("get secret -n %s pull-secret", gns);
        json_object *pl = payload_of(g, ".dockerconfigjson");
        char *keys = auth_keys(pl);
        assert_string_equal(keys, "registry.example.com,quay.io/org,mirror.example:5000,"
                                  "docker.io,late.example,new.example");
        free(keys);
        assert_foreign_intact(pl); /* quay.io/org is still theirs: a conflict is no overwrite */
        json_object *auths = get(pl, "auths");
        assert_string_equal(json_object_to_json_string_ext(get(auths, "late.example"), JF),
                            "{\"auth\":\"bGF0ZTpsYXRl\"}");
        assert_string_equal(json_object_to_json_string_ext(get(auths, "new.example"), JF),
                            "{\"auth\":\"bmV3Om5ldw==\"}");
        json_object_put(pl);
        char *merged = NULL;
        assert_true(asprintf(&merged,
                             "{\"v\":1,\"entries\":[{\"policy\":\"%s/pol\",\"registry\":"
                             "\"new.example\"}]}",
                             home) > 0);
        assert_string_equal(
            get_str(get(get(g, "metadata"), "annotations"), NAMES_ANNOTATION_MERGED), merged);
        free(merged);
        json_object_put(g);

        /* again: nothing to change (R10), no PUT */
        h = (hook_state){0};
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(h.calls, 0);
        outcome_done(&o);
        plan_free(p);

        /* a global edit aimed at another secret is refused */
        pp_apply_ctx other = make_ctx("openshift-config", NULL);
        p = plan_new0();
        w = add_write(p, pol, PLAN_GLOBAL_EDIT, gns, "pull-secret", NULL, NULL);
        w->global.source_namespace = dup0(home);
        o = run_plan(&other, pol, p);
        assert_int_equal(o.result, -EINVAL);
        outcome_done(&o);
        plan_free(p);

        /* removal of the policy's entries: exactly new.example goes */
        h = (hook_state){0};
        p = plan_new0();
        w = add_write(p, pol, PLAN_GLOBAL_EDIT, gns, "pull-secret", NULL, NULL);
        w->global.source_namespace = dup0(home);
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(h.calls, 1);
        outcome_done(&o);
        plan_free(p);
        g = kjson("get secret -n %s pull-secret", gns);
        pl = payload_of(g, ".dockerconfigjson");
        keys = auth_keys(pl);
        assert_string_equal(keys, "registry.example.com,quay.io/org,mirror.example:5000,"
                                  "docker.io,late.example");
        free(keys);
        assert_foreign_intact(pl);
        json_object_put(pl);
        assert_null(get(get(get(g, "metadata"), "annotations"), NAMES_ANNOTATION_MERGED));
        json_object_put(g);

        free(cmd);
        free(late);
        free(g64);
        free(src64);
        model_secret_free(src);
        model_policy_free(pol);
        drop_namespace(gns);
        drop_namespace(home);
}

/* The status is written after the writes and is readable with kubectl get ppol. */
static void test_status(void **state) {
        char *home = new_namespace("ap-st");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        model_problem probs[1] = {
            {dup0(home), dup0("quay-creds"), dup0("SecretNotFound"), dup0("secret not found")}};
        plan *p = plan_new0();
        add_write(p, pol, PLAN_ADD_FINALIZER, home, "pol", pol->meta.resource_version, NULL);
        p->has_status = true;
        p->status_changed = true;
        p->status = (plan_status){
            .observed_generation = pol->meta.generation,
            .ready_status = "False",
            .ready_reason = dup0("SecretNotFound"),
            .ready_message = dup0("secret quay-creds not found"),
            .ready_last_transition = dup0("2024-01-02T03:04:05Z"),
            .namespaces = 2,
            .role_bindings = 2,
            .linked = 5,
            .waiting = 1,
            .problems = malloc(sizeof(model_problem)),
            .n_problems = 1,
        };
        assert_non_null(p->status.problems);
        p->status.problems[0] = probs[0];
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 1); /* the status is not counted as a write of the plan */
        outcome_done(&o);

        json_object *pp = kjson("get ppol -n %s pol", home);
        json_object *st = get(pp, "status");
        assert_non_null(st);
        assert_int_equal(json_object_get_int64(get(st, "observedGeneration")),
                         pol->meta.generation);
        assert_int_equal(json_object_get_int(get(st, "namespaces")), 2);
        assert_int_equal(json_object_get_int(get(st, "roleBindings")), 2);
        assert_int_equal(json_object_get_int(get(st, "linkedServiceAccounts")), 5);
        assert_int_equal(json_object_get_int(get(st, "waitingServiceAccounts")), 1);
        json_object *c = json_object_array_get_idx(get(st, "conditions"), 0);
        assert_string_equal(get_str(c, "type"), "Ready");
        assert_string_equal(get_str(c, "status"), "False");
        assert_string_equal(get_str(c, "reason"), "SecretNotFound");
        assert_string_equal(get_str(c, "lastTransitionTime"), "2024-01-02T03:04:05Z");
        json_object *pr = json_object_array_get_idx(get(st, "problems"), 0);
        assert_string_equal(get_str(pr, "name"), "quay-creds");
        /* and the finalizer went in before */
        json_object *fins = get(get(pp, "metadata"), "finalizers");
        assert_int_equal(json_object_array_length(fins), 1);
        json_object_put(pp);
        char *cols = kubectl_ok("get ppol -n %s pol --no-headers", home);
        assert_non_null(strstr(cols, "SecretNotFound"));
        free(cols);

        /* a status-only write replaces the whole status: no stale problems remain */
        plan_status ok = {.observed_generation = pol->meta.generation,
                          .ready_status = "True",
                          .ready_reason = (char *)"Applied",
                          .ready_message = (char *)"",
                          .namespaces = 2};
        outcome o2 = {0};
        in_start = true;
        assert_int_equal(pp_apply_status(&ctx, pol, &ok, on_done, &o2, NULL), 0);
        in_start = false;
        run_loop(&o2, RUN_TIMEOUT_S);
        assert_true(o2.called);
        assert_int_equal(o2.result, 0);
        outcome_done(&o2);
        pp = kjson("get ppol -n %s pol", home);
        st = get(pp, "status");
        c = json_object_array_get_idx(get(st, "conditions"), 0);
        assert_string_equal(get_str(c, "status"), "True");
        assert_string_equal(get_str(c, "reason"), "Applied");
        assert_int_equal(json_object_array_length(get(st, "problems")), 0);
        json_object_put(pp);

        plan_free(p);
        free(kubectl_ok("patch ppol -n %s pol --type=merge "
                        "-p '{\"metadata\":{\"finalizers\":null}}'",
                        home));
        model_policy_free(pol);
        drop_namespace(home);
}

/*
 * Issue 7 item 3: one failing write no longer stops the others. Writes run in order; a
 * failure is reported and the writes that do not depend on it still run; a write that
 * depends on a failed one (a link to a copy that could not be made, in that namespace) is
 * skipped. The planned status is not written when anything failed.
 */
static void test_failed_write_does_not_stop_others(void **state) {
        char *home = new_namespace("ap-order"), *subj = new_namespace("ap-order-subj"),
             *other = new_namespace("ap-order-other");
        char *nowhere = testenv_unique_name("ap-nowhere");
        kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: %s}\n",
                 subj);
        kt_apply("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, namespace: %s}\n",
                 other);
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_RB_CREATE, home, "rb-one", NULL, NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "default", home);
        /* fails: an update of rb-one with a stale resourceVersion */
        w = add_write(p, pol, PLAN_RB_UPDATE, home, "rb-one", "1", NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "other", home);
        /* fails with the API's message: the namespace does not exist */
        w = add_write(p, pol, PLAN_RB_CREATE, nowhere, "rb-nowhere", NULL, NULL);
        w->rb.subject_namespace = dup0(nowhere);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "default", nowhere);
        /* fails: the source of the copy is missing; the link to it in subj is skipped */
        w = add_write(p, pol, PLAN_COPY_CREATE, subj, "missing", NULL, NULL);
        copy_fields(w, home, "missing", "pol");
        w = add_write(p, pol, PLAN_SA_EDIT, subj, "app", NULL, NULL);
        sa_want(w, "missing", POLICY_FOR_PULL);
        /* independent: done */
        w = add_write(p, pol, PLAN_SA_EDIT, other, "app", NULL, NULL);
        sa_want(w, "elsewhere", POLICY_FOR_PULL);
        w = add_write(p, pol, PLAN_RB_CREATE, home, "rb-two", NULL, NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "default", home);
        p->has_status = true;
        p->status_changed = true;
        p->status = (plan_status){
            .observed_generation = 1, .ready_status = "True", .ready_reason = dup0("Applied")};
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -ESTALE); /* the first failure (apply's own) */
        assert_int_equal(o.n_done, 3);
        char *what = NULL;
        assert_true(asprintf(&what, "RoleBinding %s/rb-one", home) > 0);
        assert_string_equal(o.what, what);
        /* each failure reported with its object and the API's answer */
        assert_int_equal(o.n_failures, 3);
        char *f0 = NULL, *f1 = NULL, *f2 = NULL;
        /* the read binding is not the version planned: apply's own finding, no API answer */
        assert_true(asprintf(&f0, "RoleBinding %s/rb-one|stale|0|", home) > 0);
        assert_true(asprintf(&f1,
                             "RoleBinding %s/rb-nowhere|NotFound|404|namespaces \"%s\" not found",
                             nowhere, nowhere) > 0);
        /* the source is read first: its absence is what failed; no message for a Secret */
        assert_true(asprintf(&f2, "Secret %s/missing|NotFound|404|", home) > 0);
        assert_string_equal(o.failures[0], f0);
        assert_string_equal(o.failures[1], f1);
        assert_string_equal(o.failures[2], f2);
        /* the writes of the plan that failed, for the status counts */
        assert_int_equal(o.failed_index[0], 1);
        assert_int_equal(o.failed_index[1], 2);
        assert_int_equal(o.failed_index[2], 3);
        free(f0);
        free(f1);
        free(f2);
        free(what);
        outcome_done(&o);
        char *rbs = kubectl_ok("get rolebindings -n %s -o name", home);
        assert_string_equal(rbs, "rolebinding.rbac.authorization.k8s.io/rb-one\n"
                                 "rolebinding.rbac.authorization.k8s.io/rb-two");
        free(rbs);
        char *linked = jsonpath("sa/app", other, ".imagePullSecrets[*].name");
        assert_string_equal(linked, "elsewhere");
        free(linked);
        linked = jsonpath("sa/app", subj, ".imagePullSecrets");
        assert_string_equal(linked, "");
        free(linked);
        char *status = kubectl_ok("get ppol -n %s pol -o jsonpath='{.status}'", home);
        assert_string_equal(status, "");
        free(status);
        plan_free(p);

        /* an empty plan reports from the loop, never from inside pp_apply_plan */
        p = plan_new0();
        o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 0);
        outcome_done(&o);
        plan_free(p);
        model_policy_free(pol);
        free(nowhere);
        drop_namespace(other);
        drop_namespace(subj);
        drop_namespace(home);
}

/* A cancelled apply never calls back, whether it is queued or its request is in flight. */
static void test_cancel(void **state) {
        char *home = new_namespace("ap-cancel");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_RB_CREATE, home, "rb-cancel", NULL, NULL);
        w->rb.subject_namespace = dup0(home);
        w->rb.role_name = dup0("system:image-puller");
        rb_subject(w, "ServiceAccount", "default", home);

        outcome o = {0};
        pp_apply *a = NULL;
        assert_int_equal(pp_apply_plan(&ctx, pol, p, on_done, &o, &a), 0);
        pp_apply_cancel(a); /* before anything ran */
        run_loop(NULL, 0.3);
        assert_false(o.called);

        kube_client_stats s0, s1;
        kube_client_get_stats(client, &s0);
        assert_int_equal(pp_apply_plan(&ctx, pol, p, on_done, &o, &a), 0);
        ev_run(loop, EVRUN_NOWAIT); /* the start timer fires: the POST is in flight */
        kube_client_get_stats(client, &s1);
        assert_int_equal(s1.active, s0.active + 1);
        pp_apply_cancel(a);
        kube_client_get_stats(client, &s1);
        assert_int_equal(s1.active, s0.active);
        assert_int_equal(s1.cancelled, s0.cancelled + 1);
        run_loop(NULL, 0.5);
        assert_false(o.called);
        pp_apply_cancel(NULL);

        plan_free(p);
        model_policy_free(pol);
        drop_namespace(home);
}

/* Objects that went away meanwhile: what needs no write any more is done, the rest fails. */
static void test_gone_objects(void **state) {
        char *home = new_namespace("ap-gone");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *j = NULL;
        assert_true(
            asprintf(&j,
                     "{\"metadata\":{\"name\":\"ghost\",\"namespace\":\"%s\","
                     "\"resourceVersion\":\"5\",\"finalizers\":[\"pullpolicy.io/cleanup\"]},"
                     "\"spec\":{}}",
                     home) > 0);
        json_object *o = json_tokener_parse(j);
        free(j);
        model_policy *ghost = NULL;
        assert_int_equal(model_policy_decode(o, &ghost), 0);
        json_object_put(o);

        /* removing the finalizer of a policy that is gone: done */
        plan *p = plan_new0();
        add_write(p, ghost, PLAN_REMOVE_FINALIZER, home, "ghost", "5", NULL);
        outcome out = run_plan(&ctx, ghost, p);
        assert_int_equal(out.result, 0);
        outcome_done(&out);
        plan_free(p);

        /* its status: nothing to write */
        plan_status st = {
            .observed_generation = 1, .ready_status = "True", .ready_reason = (char *)"Applied"};
        out = (outcome){0};
        assert_int_equal(pp_apply_status(&ctx, ghost, &st, on_done, &out, NULL), 0);
        run_loop(&out, RUN_TIMEOUT_S);
        assert_true(out.called);
        assert_int_equal(out.result, 0);
        outcome_done(&out);

        /* a copy whose source is gone cannot be made */
        char *subj = new_namespace("ap-gone-subj");
        p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_COPY_CREATE, subj, "nothing", NULL, NULL);
        copy_fields(w, home, "nothing", "pol");
        out = run_plan(&ctx, pol, p);
        assert_true(kube_error_is_not_found(out.result));
        char *what = NULL;
        assert_true(asprintf(&what, "Secret %s/nothing", home) > 0);
        assert_string_equal(out.what, what);
        free(what);
        outcome_done(&out);
        plan_free(p);

        model_policy_free(ghost);
        model_policy_free(pol);
        drop_namespace(subj);
        drop_namespace(home);
}

/* ---- planner and apply together ----------------------------------------------------------- */

/* Every object the planner may look at, read now with kubectl and decoded as the caches do. */
typedef struct snapshot {
        plan_memsnap *m;
        model_namespace *ns[8];
        model_sa *sa[32];
        model_secret *sec[32];
        model_role_binding *rb[16];
        model_policy *pol;
        size_t n_ns, n_sa, n_sec, n_rb;
} snapshot;

static void snapshot_done(snapshot *s) {
        plan_memsnap_free(s->m);
        for (size_t i = 0; i < s->n_ns; i++) model_namespace_free(s->ns[i]);
        for (size_t i = 0; i < s->n_sa; i++) model_sa_free(s->sa[i]);
        for (size_t i = 0; i < s->n_sec; i++) model_secret_free(s->sec[i]);
        for (size_t i = 0; i < s->n_rb; i++) model_role_binding_free(s->rb[i]);
        model_policy_free(s->pol);
        *s = (snapshot){0};
}

static void snapshot_read(snapshot *s, const char *const *namespaces, size_t n, const char *home) {
        *s = (snapshot){0};
        assert_int_equal(plan_memsnap_new(&s->m), 0);
        for (size_t i = 0; i < n; i++) {
                json_object *o = kjson("get namespace %s", namespaces[i]);
                assert_non_null(o);
                assert_int_equal(model_namespace_decode(o, &s->ns[s->n_ns]), 0);
                assert_int_equal(plan_memsnap_add_namespace(s->m, s->ns[s->n_ns++]), 0);
                json_object_put(o);

                o = kjson("get serviceaccounts -n %s", namespaces[i]);
                json_object *items = get(o, "items");
                for (size_t k = 0; k < json_object_array_length(items); k++) {
                        assert_true(s->n_sa < ARRAY_SIZE(s->sa));
                        assert_int_equal(
                            model_sa_decode(json_object_array_get_idx(items, k), &s->sa[s->n_sa]),
                            0);
                        assert_int_equal(plan_memsnap_add_sa(s->m, s->sa[s->n_sa++]), 0);
                }
                json_object_put(o);

                /* all secrets in full: the caches decode the named ones and the copies so */
                o = kjson("get secrets -n %s", namespaces[i]);
                items = get(o, "items");
                for (size_t k = 0; k < json_object_array_length(items); k++) {
                        assert_true(s->n_sec < ARRAY_SIZE(s->sec));
                        assert_int_equal(model_secret_decode(json_object_array_get_idx(items, k),
                                                             &s->sec[s->n_sec]),
                                         0);
                        assert_int_equal(plan_memsnap_add_secret(s->m, s->sec[s->n_sec++]), 0);
                }
                json_object_put(o);
        }
        json_object *o = kjson("get rolebindings -n %s", home);
        json_object *items = get(o, "items");
        for (size_t k = 0; k < json_object_array_length(items); k++) {
                assert_true(s->n_rb < ARRAY_SIZE(s->rb));
                assert_int_equal(
                    model_role_binding_decode(json_object_array_get_idx(items, k), &s->rb[s->n_rb]),
                    0);
                assert_int_equal(plan_memsnap_add_role_binding(s->m, s->rb[s->n_rb++]), 0);
        }
        json_object_put(o);
        s->pol = read_policy(home, "pol");
        assert_int_equal(plan_memsnap_add_policy(s->m, s->pol), 0);
}

/*
 * A real plan (plan_policy) applied round after round converges, and then plans no write
 * at all (R10): the apply writes exactly what the planner reads back as done (copy
 * content hashes, registry hashes of the global secret, link records, status).
 */
static void test_plan_converges(void **state) {
        char *home = new_namespace("ap-cv-home"), *subj = new_namespace("ap-cv-subj"),
             *gns = new_namespace("ap-cv-cfg");
        char *g64 = b64(GLOBAL_PAYLOAD);
        char *src64 = b64("{\"auths\":{\"new.example\":{\"auth\":\"bmV3Om5ldw==\"}}}");
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: pull-secret, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n"
                 "---\n"
                 "apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: quay-creds, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n"
                 "---\n"
                 "apiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: app, namespace: %s}\n"
                 "imagePullSecrets: [{name: theirs}]\n"
                 "---\n"
                 "apiVersion: v1\nkind: ServiceAccount\n"
                 "metadata: {name: app, namespace: %s}\n"
                 "---\n"
                 "apiVersion: pullpolicy.io/v1alpha1\nkind: PullPolicy\n"
                 "metadata: {name: pol, namespace: %s}\n"
                 "spec:\n"
                 "  subjects: {namespaces: [%s, %s], serviceAccounts: [app]}\n"
                 "  imagePuller: {}\n"
                 "  pullSecrets: [{name: quay-creds, for: [pull]}]\n"
                 "  dockercfg: {wait: Never}\n"
                 "  globalPullSecret: {merge: true}\n",
                 gns, g64, home, src64, home, subj, home, home, subj);

        const char *nss[] = {home, subj, gns};
        const char *dist[] = {home};
        plan_settings set = {
            .distribution_namespaces = dist,
            .n_distribution_namespaces = 1,
            .global_pull_secret_namespace = gns,
            .global_pull_secret_name = "pull-secret",
        };
        pp_apply_ctx ctx = make_ctx(gns, NULL);
        int rounds = 0;
        size_t total_writes = 0;
        for (;; rounds++) {
                assert_true(rounds < 5);
                snapshot s;
                snapshot_read(&s, nss, ARRAY_SIZE(nss), home);
                plan_snapshot ps = plan_memsnap_snapshot(s.m);
                set.now = (long long)time(NULL);
                plan *p = NULL;
                assert_int_equal(plan_policy(s.pol, &ps, &set, &p), 0);
                if (p->n_writes == 0 && !(p->has_status && p->status_changed)) {
                        plan_free(p);
                        snapshot_done(&s);
                        break;
                }
                outcome o = run_plan(&ctx, s.pol, p);
                if (o.result != 0)
                        fail_msg("round %d: %s failed: %d", rounds, o.what ? o.what : "?",
                                 o.result);
                assert_int_equal(o.n_done, p->n_writes);
                total_writes += p->n_writes;
                outcome_done(&o);
                plan_free(p);
                snapshot_done(&s);
        }
        print_message("converged after %d rounds, %zu writes\n", rounds, total_writes);
        /* finalizer, RoleBindings for 2 namespaces, a copy, 2 links, the global merge */
        assert_true(total_writes >= 7);
        assert_true(rounds >= 2);

        char *pulls =
            kubectl_ok("get sa app -n %s -o jsonpath='{.imagePullSecrets[*].name}'", home);
        assert_string_equal(pulls, "theirs quay-creds");
        free(pulls);
        pulls = kubectl_ok("get sa app -n %s -o jsonpath='{.imagePullSecrets[*].name}'", subj);
        assert_string_equal(pulls, "quay-creds");
        free(pulls);
        char *a = kubectl_ok(
            "get secret quay-creds -n %s -o jsonpath='{.data.\\.dockerconfigjson}'", subj);
        assert_string_equal(a, src64);
        free(a);
        char *rbs = kubectl_ok("get rolebindings -n %s -o name", home);
        assert_non_null(strstr(rbs, home));
        assert_non_null(strstr(rbs, subj));
        free(rbs);
        json_object *g = kjson("get secret -n %s pull-secret", gns);
        json_object *pl = payload_of(g, ".dockerconfigjson");
        assert_foreign_intact(pl);
        assert_non_null(get(get(pl, "auths"), "new.example"));
        json_object_put(pl);
        json_object_put(g);
        char *ready = kubectl_ok("get ppol -n %s pol -o "
                                 "jsonpath='{.status.conditions[0].status} "
                                 "{.status.conditions[0].reason} {.status.linkedServiceAccounts}'",
                                 home);
        assert_string_equal(ready, "True Applied 2");
        free(ready);

        /* clean-up through the planner: delete the policy, apply until the finalizer is gone */
        free(kubectl_ok("delete ppol -n %s pol --wait=false", home));
        for (rounds = 0;; rounds++) {
                assert_true(rounds < 5);
                snapshot s;
                snapshot_read(&s, nss, ARRAY_SIZE(nss), home);
                plan_snapshot ps = plan_memsnap_snapshot(s.m);
                set.now = (long long)time(NULL);
                plan *p = NULL;
                assert_int_equal(plan_policy(s.pol, &ps, &set, &p), 0);
                bool removes_finalizer = false;
                for (size_t i = 0; i < p->n_writes; i++)
                        removes_finalizer |= p->writes[i].kind == PLAN_REMOVE_FINALIZER;
                outcome o = run_plan(&ctx, s.pol, p);
                assert_int_equal(o.result, 0);
                outcome_done(&o);
                plan_free(p);
                snapshot_done(&s);
                if (removes_finalizer) break;
        }
        char *left = kubectl_ok("get ppol -n %s --ignore-not-found -o name", home);
        assert_string_equal(left, "");
        free(left);
        pulls = kubectl_ok("get sa app -n %s -o jsonpath='{.imagePullSecrets[*].name}'", home);
        assert_string_equal(pulls, "theirs");
        free(pulls);
        left = kubectl_ok("get secret quay-creds -n %s --ignore-not-found -o name", subj);
        assert_string_equal(left, "");
        free(left);
        g = kjson("get secret -n %s pull-secret", gns);
        pl = payload_of(g, ".dockerconfigjson");
        assert_foreign_intact(pl);
        assert_null(get(get(pl, "auths"), "new.example"));
        json_object_put(pl);
        json_object_put(g);

        free(g64);
        free(src64);
        drop_namespace(gns);
        drop_namespace(subj);
        drop_namespace(home);
}

/*
 * Issue 7, item 1: the apply step re-reads a source before it copies or merges it and
 * judges what it reads, not what was planned: a source that has come to belong to a
 * service account (or no longer parses) is neither copied nor merged.
 */
static void test_source_rechecked(void **state) {
        char *home = new_namespace("ap-sa-home"), *subj = new_namespace("ap-sa-subj");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *g64 = b64(GLOBAL_PAYLOAD);
        char *tok64 = b64("{\"auths\":{\"image-registry.openshift-image-registry.svc:5000\":"
                          "{\"auth\":\"dG9rZW4=\"}}}");
        /* planned as a plain pull secret; annotated as a service account's since */
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: pull-secret, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n"
                 "---\n"
                 "apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: default-dockercfg-abcde, namespace: %s, annotations: "
                 "{kubernetes.io/service-account.name: default}}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n"
                 "---\n"
                 "apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: opaque, namespace: %s}\n"
                 "type: Opaque\n"
                 "data: {x: eA==}\n",
                 home, g64, home, tok64, home);
        static const char *const sources[] = {"default-dockercfg-abcde", "opaque"};
        for (size_t i = 0; i < ARRAY_SIZE(sources); i++) {
                plan *p = plan_new0();
                plan_write *w = add_write(p, pol, PLAN_COPY_CREATE, subj, sources[i], NULL, NULL);
                copy_fields(w, home, sources[i], "pol");
                outcome o = run_plan(&ctx, pol, p);
                assert_int_equal(o.result, -ESTALE);
                outcome_done(&o);
                plan_free(p);
                json_object *c = kjson("get secret -n %s %s", subj, sources[i]);
                assert_null(c);
        }

        char *rv = jsonpath("secret/pull-secret", home, ".metadata.resourceVersion");
        plan *p = plan_new0();
        plan_write *w = add_write(p, pol, PLAN_GLOBAL_EDIT, home, "pull-secret", rv, NULL);
        w->global.source_namespace = dup0(home);
        w->global.want = calloc(1, sizeof(plan_global_want));
        assert_non_null(w->global.want);
        w->global.want[0].registry = dup0("image-registry.openshift-image-registry.svc:5000");
        w->global.want[0].source = dup0("default-dockercfg-abcde");
        w->global.n_want = 1;
        outcome o = run_plan(&ctx, pol, p);
        assert_int_equal(o.result, -ESTALE);
        outcome_done(&o);
        plan_free(p);
        char *rv2 = jsonpath("secret/pull-secret", home, ".metadata.resourceVersion");
        assert_string_equal(rv, rv2); /* not written */
        free(rv);
        free(rv2);
        free(g64);
        free(tok64);
        model_policy_free(pol);
        drop_namespace(home);
        drop_namespace(subj);
}

/*
 * R5 at scale (issue 10): copying one source into many namespaces reads the source once per
 * apply, not once per namespace; and a plan large enough to be applied in parallel lanes
 * converges to exactly the same objects.
 */
static void test_source_read_once(void **state) {
        enum { N = 40 };
        char *home = new_namespace("ap-once-home");
        char *subj[N];
        for (int i = 0; i < N; i++) subj[i] = new_namespace("ap-once-subj");
        model_policy *pol = create_policy(home);
        pp_apply_ctx ctx = make_ctx(home, NULL);
        char *payload = b64("{\"auths\":{\"quay.io\":{\"auth\":\"dTpw\"}}}");
        kt_apply("apiVersion: v1\nkind: Secret\n"
                 "metadata: {name: quay-creds, namespace: %s}\n"
                 "type: kubernetes.io/dockerconfigjson\n"
                 "data: {.dockerconfigjson: %s}\n",
                 home, payload);
        char *sas = NULL;
        size_t sas_len = 0;
        FILE *f = open_memstream(&sas, &sas_len);
        assert_non_null(f);
        for (int i = 0; i < N; i++)
                fprintf(f,
                        "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: app, "
                        "namespace: %s}\n",
                        subj[i]);
        assert_int_equal(fclose(f), 0);
        kt_apply("%s", sas);
        free(sas);
        plan *p = plan_new0();
        for (int i = 0; i < N; i++) {
                plan_write *w =
                    add_write(p, pol, PLAN_COPY_CREATE, subj[i], "quay-creds", NULL, NULL);
                copy_fields(w, home, "quay-creds", "pol");
                w = add_write(p, pol, PLAN_SA_EDIT, subj[i], "app", NULL, NULL);
                sa_want(w, "quay-creds", POLICY_FOR_PULL);
        }
        kube_client_stats before, after;
        kube_client_get_stats(client, &before);
        outcome o = run_plan(&ctx, pol, p);
        kube_client_get_stats(client, &after);
        assert_int_equal(o.result, 0);
        assert_int_equal(o.n_done, 2 * N);
        outcome_done(&o);
        /* one GET of the source, one of each service account (read-modify-write), no more */
        unsigned long gets = after.requests[KUBE_GET] - before.requests[KUBE_GET];
        if (gets != 1 + N)
                fail_msg("%lu GETs for %d copies of one source and %d edits", gets, N, N);
        for (int i = 0; i < N; i++) {
                json_object *c = kjson("get secret -n %s quay-creds", subj[i]);
                assert_non_null(c);
                assert_string_equal(get_str(get(c, "data"), ".dockerconfigjson"), payload);
                json_object_put(c);
                char *links = jsonpath("sa/app", subj[i], ".imagePullSecrets[*].name");
                assert_non_null(strstr(links, "quay-creds"));
                free(links);
        }
        plan_free(p);
        free(payload);
        model_policy_free(pol);
        drop_namespace(home);
        for (int i = 0; i < N; i++) drop_namespace(subj[i]);
}

int main(void) {
        const struct CMUnitTest all[] = {
            cmocka_unit_test(test_role_binding),
            cmocka_unit_test(test_role_binding_update_keeps_foreign_metadata),
            cmocka_unit_test(test_finalizers),
            cmocka_unit_test(test_sa_edit_concurrent_writer),
            cmocka_unit_test(test_sa_patch),
            cmocka_unit_test(test_sa_edit_gives_up),
            cmocka_unit_test(test_copies),
            cmocka_unit_test(test_global_edit),
            cmocka_unit_test(test_status),
            cmocka_unit_test(test_failed_write_does_not_stop_others),
            cmocka_unit_test(test_cancel),
            cmocka_unit_test(test_gone_objects),
            cmocka_unit_test(test_plan_converges),
            cmocka_unit_test(test_source_rechecked),
            cmocka_unit_test(test_source_read_once),
        };
        /* APPLY_TESTS=test_copies,test_cancel runs only those, in this file's order */
        struct CMUnitTest tests[ARRAY_SIZE(all)];
        size_t n = 0;
        const char *only = getenv("APPLY_TESTS");
        for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
                size_t len = strlen(all[i].name);
                const char *hit = only && *only ? strstr(only, all[i].name) : NULL;
                if (only && *only &&
                    !(hit && (hit == only || hit[-1] == ',') && (hit[len] == ',' || !hit[len])))
                        continue;
                tests[n++] = all[i];
        }
        return _cmocka_run_group_tests("test_apply", tests, n, setup, teardown);
}
