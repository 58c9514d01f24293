/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure parts of the apply step: the status, finalizer patch, copy, delete
 * options and global pull secret builders. The asynchronous part runs against a
 * real apiserver in test/integration/controller/test_apply.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apply.h"
#include "model.h"
#include "names.h"
#include "plan.h"
#include "util/base64.h"
#include "util/macro.h"
#include "util/timefmt.h"

#define JF (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- helpers ---------------------------------------------------------------------------- */

static json_object *parse(const char *json) {
        json_object *o = json_tokener_parse(json);
        if (!o) fail_msg("bad test JSON: %s", json);
        return o;
}

static json_object *get(json_object *o, const char *key) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v)) return NULL;
        return v;
}

static const char *get_str(json_object *o, const char *key) {
        json_object *v = get(o, key);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Asserts that o's member names are exactly the NULL-terminated list (in any order). */
static void assert_keys(json_object *o, const char *const *keys) {
        size_t n = 0;
        for (; keys[n]; n++) {
                if (!get(o, keys[n])) fail_msg("missing key %s", keys[n]);
        }
        assert_int_equal((size_t)json_object_object_length(o), n);
}

static model_policy *policy_from(const char *json) {
        json_object *o = parse(json);
        model_policy *p = NULL;
        assert_int_equal(model_policy_decode(o, &p), 0);
        json_object_put(o);
        return p;
}

static const char *const POLICY_JSON =
    "{\"apiVersion\":\"pullpolicy.io/v1alpha1\",\"kind\":\"PullPolicy\","
    "\"metadata\":{\"name\":\"pol\",\"namespace\":\"home\",\"generation\":7,"
    "\"resourceVersion\":\"42\",\"uid\":\"u-1\","
    "\"finalizers\":[\"a.example/x\",\"b.example/y\"]},"
    "\"spec\":{\"imagePuller\":{}},"
    "\"status\":{\"observedGeneration\":6,\"conditions\":[{\"type\":\"Ready\","
    "\"status\":\"True\",\"reason\":\"Applied\",\"message\":\"ok\","
    "\"lastTransitionTime\":\"2020-01-02T03:04:05Z\"}]}}";

static char *b64(const char *text) {
        char *out = NULL;
        assert_int_equal(base64_encode(text, strlen(text), 0, &out, NULL), 0);
        return out;
}

static char *unb64(const char *text) {
        void *out = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode(text, strlen(text), 0, 0, &out, &n), 0);
        return out;
}

/* ---- status ------------------------------------------------------------------------------ */

static void test_status_fields(void **state) {
        model_policy *p = policy_from(POLICY_JSON);
        model_problem probs[2] = {
            {"project-a", "builder", "Waiting", "waits for its dockercfg secret"},
            {NULL, NULL, "Conflict", NULL},
        };
        plan_status st = {
            .observed_generation = 7,
            .ready_status = "False",
            .ready_reason = "Waiting",
            .ready_message = "1 service account waits",
            .ready_last_transition = "2021-05-06T07:08:09Z",
            .namespaces = 3,
            .role_bindings = 2,
            .linked = 11,
            .waiting = -4, /* written as 0 */
            .problems = probs,
            .n_problems = 2,
        };
        json_object *s = NULL;
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        assert_keys(s,
                    (const char *const[]){"observedGeneration", "conditions", "namespaces",
                                          "roleBindings", "linkedServiceAccounts",
                                          "waitingServiceAccounts", "stalePods", "problems", NULL});
        assert_int_equal(json_object_get_int64(get(s, "observedGeneration")), 7);
        assert_int_equal(json_object_get_int(get(s, "namespaces")), 3);
        assert_int_equal(json_object_get_int(get(s, "roleBindings")), 2);
        assert_int_equal(json_object_get_int(get(s, "linkedServiceAccounts")), 11);
        assert_int_equal(json_object_get_int(get(s, "waitingServiceAccounts")), 0);
        assert_int_equal(json_object_get_int(get(s, "stalePods")), 0);
        json_object *conds = get(s, "conditions");
        assert_int_equal(json_object_array_length(conds), 1);
        json_object *c = json_object_array_get_idx(conds, 0);
        assert_keys(c, (const char *const[]){"type", "status", "reason", "message",
                                             "observedGeneration", "lastTransitionTime", NULL});
        assert_string_equal(get_str(c, "type"), "Ready");
        assert_string_equal(get_str(c, "status"), "False");
        assert_string_equal(get_str(c, "reason"), "Waiting");
        assert_string_equal(get_str(c, "message"), "1 service account waits");
        assert_int_equal(json_object_get_int64(get(c, "observedGeneration")), 7);
        assert_string_equal(get_str(c, "lastTransitionTime"), "2021-05-06T07:08:09Z");
        json_object *pa = get(s, "problems");
        assert_int_equal(json_object_array_length(pa), 2);
        json_object *p0 = json_object_array_get_idx(pa, 0), *p1 = json_object_array_get_idx(pa, 1);
        assert_keys(p0, (const char *const[]){"namespace", "name", "reason", "message", NULL});
        assert_string_equal(get_str(p0, "namespace"), "project-a");
        assert_string_equal(get_str(p0, "name"), "builder");
        assert_string_equal(get_str(p0, "reason"), "Waiting");
        assert_string_equal(get_str(p0, "message"), "waits for its dockercfg secret");
        /* absent fields are left out, not written as null or "" */
        assert_keys(p1, (const char *const[]){"reason", NULL});
        assert_string_equal(get_str(p1, "reason"), "Conflict");
        json_object_put(s);
        model_policy_free(p);
}

/* R12: the verifier's CredentialsVerified goes into the reconciler's status verbatim when the
 * plan carries it (a merge patch replaces the whole conditions list), else it is left out. The
 * apply step is given only the policy's metadata (the reconciler copies no status), so the
 * condition must come from the plan, never from the policy passed in. */
static void test_status_carries_credentials_condition(void **state) {
        (void)state;
        model_policy *p = policy_from(
            "{\"apiVersion\":\"pullpolicy.io/v1alpha1\",\"kind\":\"PullPolicy\","
            "\"metadata\":{\"name\":\"pol\",\"namespace\":\"home\",\"generation\":3},"
            "\"spec\":{\"pullSecrets\":[{\"name\":\"s\"}],\"verifyCredentials\":true}}");
        assert_false(p->status.has_credentials);
        char cst[] = "False", crs[] = "CredentialsRejected",
             cmsg[] = "secret home/s at registry r.example: refused",
             cltt[] = "2026-01-02T03:04:05Z";
        plan_status st = {.observed_generation = 3,
                          .ready_status = "True",
                          .ready_reason = "Applied",
                          .has_credentials = true,
                          .credentials = {.status = cst,
                                          .reason = crs,
                                          .message = cmsg,
                                          .last_transition = cltt,
                                          .observed_generation = 2}};
        json_object *s = NULL;
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        json_object *conds = get(s, "conditions");
        assert_int_equal(json_object_array_length(conds), 2);
        json_object *c = json_object_array_get_idx(conds, 1);
        assert_keys(c, (const char *const[]){"type", "status", "reason", "message",
                                             "observedGeneration", "lastTransitionTime", NULL});
        assert_string_equal(get_str(c, "type"), "CredentialsVerified");
        assert_string_equal(get_str(c, "status"), "False");
        assert_string_equal(get_str(c, "reason"), "CredentialsRejected");
        assert_string_equal(get_str(c, "message"), "secret home/s at registry r.example: refused");
        assert_int_equal(json_object_get_int64(get(c, "observedGeneration")), 2);
        assert_string_equal(get_str(c, "lastTransitionTime"), "2026-01-02T03:04:05Z");
        json_object_put(s);
        st.has_credentials = false;
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        assert_int_equal(json_object_array_length(get(s, "conditions")), 1);
        json_object_put(s);
        model_policy_free(p);
}

static void test_status_transition_time(void **state) {
        model_policy *p = policy_from(POLICY_JSON);
        plan_status st = {.observed_generation = -1,
                          .ready_status = "True",
                          .ready_reason = "Applied",
                          .ready_message = NULL};
        json_object *s = NULL;
        /* same Ready status as stored and no time given: the stored time stays */
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        json_object *c = json_object_array_get_idx(get(s, "conditions"), 0);
        assert_string_equal(get_str(c, "lastTransitionTime"), "2020-01-02T03:04:05Z");
        assert_string_equal(get_str(c, "message"), "");
        /* observedGeneration < 0 takes the policy's generation */
        assert_int_equal(json_object_get_int64(get(s, "observedGeneration")), 7);
        assert_int_equal(json_object_get_int64(get(c, "observedGeneration")), 7);
        assert_int_equal(json_object_array_length(get(s, "problems")), 0);
        json_object_put(s);

        /* a flip without a time given: now */
        st.ready_status = "False";
        st.ready_reason = "SecretNotFound";
        time_t before = time(NULL);
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        time_t after = time(NULL);
        c = json_object_array_get_idx(get(s, "conditions"), 0);
        struct timespec ts;
        assert_int_equal(timefmt_parse_rfc3339(get_str(c, "lastTransitionTime"), &ts), 0);
        assert_true(ts.tv_sec >= before && ts.tv_sec <= after);
        json_object_put(s);
        model_policy_free(p);
}

static void test_status_limits(void **state) {
        model_policy *p = policy_from(POLICY_JSON);
        model_problem probs[25];
        char names[25][16];
        for (int i = 0; i < 25; i++) {
                snprintf(names[i], sizeof(names[i]), "sa-%02d", i);
                probs[i] = (model_problem){"ns", names[i], "Waiting", "m"};
        }
        /* a message over the CRD's limit, ending in a 2-byte UTF-8 sequence at the cut */
        size_t big = PP_APPLY_PROBLEM_MESSAGE_MAX + 10;
        char *msg = malloc(big + 1);
        assert_non_null(msg);
        memset(msg, 'x', big);
        msg[PP_APPLY_PROBLEM_MESSAGE_MAX - 1] = (char)0xc3;
        msg[PP_APPLY_PROBLEM_MESSAGE_MAX] = (char)0xa9;
        msg[big] = 0;
        probs[0].message = msg;
        char *longcond = malloc(PP_APPLY_CONDITION_MESSAGE_MAX + 100);
        assert_non_null(longcond);
        memset(longcond, 'y', PP_APPLY_CONDITION_MESSAGE_MAX + 99);
        longcond[PP_APPLY_CONDITION_MESSAGE_MAX + 99] = 0;
        plan_status st = {.observed_generation = 7,
                          .ready_status = "False",
                          .ready_reason = "Waiting",
                          .ready_message = longcond,
                          .problems = probs,
                          .n_problems = 25};
        json_object *s = NULL;
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        json_object *pa = get(s, "problems");
        assert_int_equal(json_object_array_length(pa), MODEL_PROBLEMS_MAX);
        assert_string_equal(get_str(json_object_array_get_idx(pa, 19), "name"), "sa-19");
        const char *m0 = get_str(json_object_array_get_idx(pa, 0), "message");
        /* cut before the split sequence, not inside it */
        assert_int_equal(strlen(m0), PP_APPLY_PROBLEM_MESSAGE_MAX - 1);
        json_object *c = json_object_array_get_idx(get(s, "conditions"), 0);
        assert_int_equal(strlen(get_str(c, "message")), PP_APPLY_CONDITION_MESSAGE_MAX);
        json_object_put(s);
        free(msg);
        free(longcond);

        /* what the CRD would refuse is refused here */
        plan_status bad = {.ready_status = "Maybe", .ready_reason = "Applied"};
        s = (json_object *)0x1;
        assert_int_equal(pp_apply_status_json(p, &bad, &s), -EINVAL);
        bad.ready_status = "True";
        bad.ready_reason = NULL;
        assert_int_equal(pp_apply_status_json(p, &bad, &s), -EINVAL);
        bad.ready_reason = "";
        assert_int_equal(pp_apply_status_json(p, &bad, &s), -EINVAL);
        assert_ptr_equal(s, (json_object *)0x1);
        model_policy_free(p);
}

/* R11: the status says only what the plan's status says. */
static void test_status_no_secret_data(void **state) {
        model_policy *p = policy_from(POLICY_JSON);
        model_problem pr = {"home", "quay-creds", "InvalidSecret",
                            "the payload is not valid base64"};
        plan_status st = {.observed_generation = 7,
                          .ready_status = "False",
                          .ready_reason = "InvalidSecret",
                          .ready_message = "secret home/quay-creds",
                          .ready_last_transition = "2021-05-06T07:08:09Z",
                          .namespaces = 1,
                          .problems = &pr,
                          .n_problems = 1};
        json_object *s = NULL;
        assert_int_equal(pp_apply_status_json(p, &st, &s), 0);
        const char *text = json_object_to_json_string_ext(s, JF);
        const char *expect =
            "{\"observedGeneration\":7,\"conditions\":[{\"type\":\"Ready\",\"status\":"
            "\"False\",\"reason\":\"InvalidSecret\",\"message\":\"secret home/quay-creds\","
            "\"observedGeneration\":7,\"lastTransitionTime\":\"2021-05-06T07:08:09Z\"}],"
            "\"namespaces\":1,\"roleBindings\":0,\"linkedServiceAccounts\":0,"
            "\"waitingServiceAccounts\":0,\"stalePods\":0,\"problems\":[{\"namespace\":\"home\","
            "\"name\":"
            "\"quay-creds\",\"reason\":\"InvalidSecret\",\"message\":\"the payload is not "
            "valid base64\"}]}";
        assert_string_equal(text, expect);
        json_object_put(s);
        model_policy_free(p);
}

/* ---- finalizers --------------------------------------------------------------------------- */

static void test_finalizer_patch(void **state) {
        model_policy *p = policy_from(POLICY_JSON);
        json_object *patch = NULL;
        assert_int_equal(pp_apply_finalizer_patch(&p->meta, "42", true, &patch), 1);
        assert_string_equal(json_object_to_json_string_ext(patch, JF),
                            "{\"metadata\":{\"finalizers\":[\"a.example/x\",\"b.example/y\","
                            "\"pullpolicy.io/cleanup\"],\"resourceVersion\":\"42\"}}");
        json_object_put(patch);
        /* nothing to remove */
        patch = (json_object *)0x1;
        assert_int_equal(pp_apply_finalizer_patch(&p->meta, "42", false, &patch), 0);
        assert_ptr_equal(patch, (json_object *)0x1);
        model_policy_free(p);

        p = policy_from("{\"metadata\":{\"name\":\"pol\",\"namespace\":\"home\","
                        "\"finalizers\":[\"a.example/x\",\"pullpolicy.io/cleanup\","
                        "\"b.example/y\"]},\"spec\":{}}");
        assert_int_equal(pp_apply_finalizer_patch(&p->meta, "9", true, &patch), 0);
        assert_int_equal(pp_apply_finalizer_patch(&p->meta, NULL, false, &patch), 1);
        /* others' finalizers stay in order; no precondition when none is given */
        assert_string_equal(json_object_to_json_string_ext(patch, JF),
                            "{\"metadata\":{\"finalizers\":[\"a.example/x\",\"b.example/y\"]}}");
        json_object_put(patch);
        model_policy_free(p);

        p = policy_from("{\"metadata\":{\"name\":\"pol\",\"namespace\":\"home\","
                        "\"finalizers\":[\"pullpolicy.io/cleanup\"]},\"spec\":{}}");
        assert_int_equal(pp_apply_finalizer_patch(&p->meta, "5", false, &patch), 1);
        assert_string_equal(json_object_to_json_string_ext(patch, JF),
                            "{\"metadata\":{\"finalizers\":[],\"resourceVersion\":\"5\"}}");
        json_object_put(patch);
        model_policy_free(p);
        assert_int_equal(pp_apply_finalizer_patch(NULL, "5", false, &patch), -EINVAL);
}

/* ---- service account merge patch ------------------------------------------------------------ */

static void test_sa_patch(void **state) {
        char *secrets[] = {"app-dockercfg-x1", "quay-creds"};
        char *pulls[] = {"app-dockercfg-x1", "other", "quay-creds"};
        plan_sa_desired d = {.secrets = secrets,
                             .n_secrets = 2,
                             .pull_secrets = pulls,
                             .n_pull_secrets = 3,
                             .links = "{\"v\":1}",
                             .changed = true};
        json_object *patch = NULL;
        assert_int_equal(pp_apply_sa_patch(&d, "77", &patch), 0);
        assert_string_equal(
            json_object_to_json_string_ext(patch, JF),
            "{\"metadata\":{\"annotations\":{\"pullpolicy.io/links\":\"{\\\"v\\\":1}\"},"
            "\"resourceVersion\":\"77\"},"
            "\"secrets\":[{\"name\":\"app-dockercfg-x1\"},{\"name\":\"quay-creds\"}],"
            "\"imagePullSecrets\":[{\"name\":\"app-dockercfg-x1\"},{\"name\":\"other\"},"
            "{\"name\":\"quay-creds\"}]}");
        json_object_put(patch);

        /* the last link goes: the record and the emptied list are removed (null) */
        plan_sa_desired gone = {.pull_secrets = pulls, .n_pull_secrets = 1, .changed = true};
        assert_int_equal(pp_apply_sa_patch(&gone, "78", &patch), 0);
        assert_string_equal(json_object_to_json_string_ext(patch, JF),
                            "{\"metadata\":{\"annotations\":{\"pullpolicy.io/links\":null},"
                            "\"resourceVersion\":\"78\"},\"secrets\":null,"
                            "\"imagePullSecrets\":[{\"name\":\"app-dockercfg-x1\"}]}");
        json_object_put(patch);

        /* never without the precondition */
        patch = (json_object *)0x1;
        assert_int_equal(pp_apply_sa_patch(&d, NULL, &patch), -EINVAL);
        assert_ptr_equal(patch, (json_object *)0x1);
        assert_int_equal(pp_apply_sa_patch(NULL, "1", &patch), -EINVAL);
}

/* ---- delete options ----------------------------------------------------------------------- */

static void test_delete_options(void **state) {
        char *s = NULL;
        assert_int_equal(pp_apply_delete_options("u-1", "17", &s), 0);
        assert_string_equal(s, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\","
                               "\"propagationPolicy\":\"Background\",\"preconditions\":"
                               "{\"uid\":\"u-1\",\"resourceVersion\":\"17\"}}");
        free(s);
        assert_int_equal(pp_apply_delete_options(NULL, "17", &s), 0);
        assert_non_null(strstr(s, "\"preconditions\":{\"resourceVersion\":\"17\"}"));
        free(s);
        assert_int_equal(pp_apply_delete_options(NULL, NULL, &s), 0);
        assert_null(strstr(s, "preconditions"));
        free(s);
}

/* ---- copies (R5, R8) ----------------------------------------------------------------------- */

static const char *const SOURCE_JSON =
    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"quay-creds\","
    "\"namespace\":\"home\",\"uid\":\"src-uid\",\"resourceVersion\":\"100\","
    "\"labels\":{\"team\":\"a\"},\"annotations\":{\"note\":\"source only\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"o\","
    "\"uid\":\"o-uid\"}],\"managedFields\":[{\"manager\":\"kubectl\"}]},"
    "\"type\":\"kubernetes.io/dockerconfigjson\",\"immutable\":true,"
    "\"data\":{\".dockerconfigjson\":\"eyJhdXRocyI6e319\",\"extra\":\"YQ==\"}}";

static plan_write copy_write(plan_write_kind k) {
        static char ns[] = "project-a", name[] = "quay-creds", sns[] = "home",
                    sname[] = "quay-creds", pol[] = "pol";
        plan_write w = {
            .kind = k, .namespace = ns, .name = name, .policy_namespace = sns, .policy_name = pol};
        w.copy.source_namespace = sns;
        w.copy.source_name = sname;
        w.copy.policy_name = pol;
        return w;
}

static void test_copy_json_new(void **state) {
        json_object *src = parse(SOURCE_JSON);
        plan_write w = copy_write(PLAN_COPY_CREATE);
        json_object *c = NULL;
        assert_int_equal(pp_apply_copy_json(src, &w, NULL, &c), 0);
        assert_keys(c,
                    (const char *const[]){"apiVersion", "kind", "metadata", "type", "data", NULL});
        assert_string_equal(get_str(c, "kind"), "Secret");
        assert_string_equal(get_str(c, "type"), "kubernetes.io/dockerconfigjson");
        json_object *md = get(c, "metadata");
        /* nothing of the source's identity or ownership: no uid, no resourceVersion, no
         * owner reference (cross-namespace owners are not allowed), no foreign labels */
        assert_keys(md, (const char *const[]){"name", "namespace", "labels", "annotations", NULL});
        assert_string_equal(get_str(md, "name"), "quay-creds");
        assert_string_equal(get_str(md, "namespace"), "project-a");
        json_object *labels = get(md, "labels");
        assert_keys(labels, (const char *const[]){NAMES_LABEL_MANAGED_BY, NAMES_LABEL_POLICY,
                                                  NAMES_LABEL_POLICY_NAMESPACE, NULL});
        assert_string_equal(get_str(labels, NAMES_LABEL_MANAGED_BY), "pullpolicy-controller");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY), "pol");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY_NAMESPACE), "home");
        json_object *ann = get(md, "annotations");
        assert_keys(ann, (const char *const[]){NAMES_ANNOTATION_SOURCE, NULL});
        assert_string_equal(get_str(ann, NAMES_ANNOTATION_SOURCE), "home/quay-creds");
        /* same data; not immutable (a copy must follow a rotated source) */
        assert_true(json_object_equal(get(c, "data"), get(src, "data")));
        /* the data is a copy: changing the source does not change it */
        json_object_object_add(get(src, "data"), "extra", json_object_new_string("Yg=="));
        assert_string_equal(get_str(get(c, "data"), "extra"), "YQ==");
        json_object_put(c);

        /* a Secret without type is Opaque; without data, the copy has none */
        json_object *bare = parse("{\"kind\":\"Secret\",\"metadata\":{\"name\":\"quay-creds\"}}");
        assert_int_equal(pp_apply_copy_json(bare, &w, NULL, &c), 0);
        assert_string_equal(get_str(c, "type"), "Opaque");
        assert_null(get(c, "data"));
        json_object_put(c);
        json_object_put(bare);

        /* not a Secret, or a write without names */
        json_object *cm = parse("{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"x\"}}");
        c = (json_object *)0x1;
        assert_int_equal(pp_apply_copy_json(cm, &w, NULL, &c), -EINVAL);
        json_object_put(cm);
        plan_write w2 = w;
        w2.copy.policy_name = NULL;
        assert_int_equal(pp_apply_copy_json(src, &w2, NULL, &c), -EINVAL);
        assert_ptr_equal(c, (json_object *)0x1);
        json_object_put(src);
}

static void test_copy_json_update(void **state) {
        json_object *src = parse(SOURCE_JSON);
        json_object *base = parse(
            "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"quay-creds\","
            "\"namespace\":\"project-a\",\"uid\":\"copy-uid\",\"resourceVersion\":\"55\","
            "\"labels\":{\"app.kubernetes.io/managed-by\":\"pullpolicy-controller\","
            "\"pullpolicy.io/policy\":\"old\",\"pullpolicy.io/policy-namespace\":\"home\","
            "\"keep\":\"me\"},\"annotations\":{\"other\":\"x\"}},"
            "\"type\":\"kubernetes.io/dockerconfigjson\","
            "\"data\":{\".dockerconfigjson\":\"e30=\",\"stale\":\"eA==\"}}");
        json_object *base_before = NULL;
        assert_int_equal(json_object_deep_copy(base, &base_before, NULL), 0);
        plan_write w = copy_write(PLAN_COPY_UPDATE);
        json_object *c = NULL;
        assert_int_equal(pp_apply_copy_json(src, &w, base, &c), 0);
        /* base is not modified */
        assert_true(json_object_equal(base, base_before));
        json_object *md = get(c, "metadata");
        assert_string_equal(get_str(md, "resourceVersion"), "55"); /* the precondition */
        assert_string_equal(get_str(md, "uid"), "copy-uid");
        json_object *labels = get(md, "labels");
        assert_string_equal(get_str(labels, "keep"), "me");
        assert_string_equal(get_str(labels, NAMES_LABEL_POLICY), "pol"); /* handed over */
        assert_string_equal(get_str(get(md, "annotations"), "other"), "x");
        assert_string_equal(get_str(get(md, "annotations"), NAMES_ANNOTATION_SOURCE),
                            "home/quay-creds");
        /* data replaced as a whole: a key the source no longer has goes */
        assert_true(json_object_equal(get(c, "data"), get(src, "data")));
        assert_null(get(c, "immutable"));
        json_object_put(c);

        /* a base for another object is refused */
        plan_write w2 = w;
        w2.namespace = (char *)"project-z";
        c = NULL;
        assert_int_equal(pp_apply_copy_json(src, &w2, base, &c), -EINVAL);
        assert_null(c);
        json_object_put(base_before);
        json_object_put(base);
        json_object_put(src);
}

/* ---- the global pull secret (R6) ----------------------------------------------------------- */

/*
 * The global payload, written the way people and tools write it: spaces, escaped
 * slashes, \u escapes, a number with a trailing zero, a nested object, other top-level
 * keys. Three foreign entries, one entry of ours (recorded in the merged annotation)
 * and one registry that this policy also wants but did not add (a conflict).
 */
/* ---- RoleBinding updates (issue 7 item 5) ---------------------------------------------- */

static const char *const RB_READ =
    "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":\"RoleBinding\","
    "\"metadata\":{\"name\":\"rb\",\"namespace\":\"home\",\"resourceVersion\":\"7\","
    "\"annotations\":{\"argocd.argoproj.io/tracking-id\":\"app:x\"},"
    "\"labels\":{\"team\":\"blue\",\"pullpolicy.io/policy\":\"p\"},"
    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"cm\","
    "\"uid\":\"cm-uid\"},{\"apiVersion\":\"pullpolicy.io/v1alpha1\",\"kind\":\"PullPolicy\","
    "\"name\":\"p\",\"uid\":\"old-uid\",\"controller\":true}]},"
    "\"roleRef\":{\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"ClusterRole\","
    "\"name\":\"system:image-puller\"},"
    "\"subjects\":[{\"kind\":\"ServiceAccount\",\"name\":\"old\",\"namespace\":\"home\"}]}";

static void test_rb_update_keeps_foreign_metadata(void **state) {
        model_subject subj = {.kind = "ServiceAccount", .name = "new", .namespace = "home"};
        plan_write w = {
            .kind = PLAN_RB_UPDATE,
            .namespace = "home",
            .name = "rb",
            .resource_version = "7",
            .policy_namespace = "home",
            .policy_name = "p",
            .policy_uid = "new-uid",
            .rb = {.subject_namespace = "home",
                   .role_name = "system:image-puller",
                   .subjects = &subj,
                   .n_subjects = 1},
        };
        json_object *cur = parse(RB_READ), *out = NULL;
        char *before = strdup(json_object_to_json_string(cur));
        assert_int_equal(pp_apply_rb_update_json(cur, &w, &out), 0);
        assert_string_equal(json_object_to_json_string(cur), before); /* not modified */
        json_object *md = get(out, "metadata");
        assert_string_equal(get_str(md, "resourceVersion"), "7");
        assert_string_equal(get_str(get(md, "annotations"), "argocd.argoproj.io/tracking-id"),
                            "app:x");
        json_object *labels = get(md, "labels");
        assert_string_equal(get_str(labels, "team"), "blue");
        assert_string_equal(get_str(labels, NAMES_LABEL_MANAGED_BY), NAMES_MANAGED_BY_VALUE);
        assert_string_equal(get_str(labels, NAMES_LABEL_SUBJECT_NAMESPACE), "home");
        json_object *owners = get(md, "ownerReferences");
        assert_int_equal(json_object_array_length(owners), 2);
        assert_string_equal(get_str(json_object_array_get_idx(owners, 0), "uid"), "cm-uid");
        assert_string_equal(get_str(json_object_array_get_idx(owners, 1), "uid"), "new-uid");
        json_object *subjects = get(out, "subjects");
        assert_int_equal(json_object_array_length(subjects), 1);
        assert_string_equal(get_str(json_object_array_get_idx(subjects, 0), "name"), "new");
        json_object_put(out);

        /* another role: roleRef is immutable, so this is not the binding planned */
        w.rb.role_name = "view";
        assert_int_equal(pp_apply_rb_update_json(cur, &w, &out), -ESTALE);
        w.rb.role_name = "system:image-puller";
        w.name = "other";
        assert_int_equal(pp_apply_rb_update_json(cur, &w, &out), -EINVAL);
        free(before);
        json_object_put(cur);
}

/* ---- what a failed write holds back (issue 7 items 3 and 4) ------------------------------ */

static void test_write_depends(void **state) {
        plan_sa_want want[] = {{.secret = "creds", .mask = 1}, {.secret = "held", .hold = true}};
        plan_sa_change removed = {.secret = "old", .list = 1};
        plan_write add_fin = {.kind = PLAN_ADD_FINALIZER}, rm_fin = {.kind = PLAN_REMOVE_FINALIZER},
                   copy = {.kind = PLAN_COPY_CREATE, .namespace = "a", .name = "creds"},
                   copy_held = {.kind = PLAN_COPY_UPDATE, .namespace = "a", .name = "held"},
                   sa_a = {.kind = PLAN_SA_EDIT,
                           .namespace = "a",
                           .name = "app",
                           .sa = {.want = want,
                                  .n_want = 2,
                                  .desired = {.removed = &removed, .n_removed = 1}}},
                   sa_b = {.kind = PLAN_SA_EDIT,
                           .namespace = "b",
                           .name = "app",
                           .sa = {.want = want, .n_want = 2}},
                   del_old = {.kind = PLAN_COPY_DELETE, .namespace = "a", .name = "old"},
                   del_other = {.kind = PLAN_COPY_DELETE, .namespace = "a", .name = "other"},
                   rb_new = {.kind = PLAN_RB_CREATE,
                             .namespace = "h",
                             .name = "ppol-p-a-0123",
                             .rb = {.subject_namespace = "a"}},
                   rb_legacy = {.kind = PLAN_RB_DELETE,
                                .namespace = "h",
                                .name = "ppol-p-a",
                                .rb = {.subject_namespace = "a"}},
                   rb_gone = {.kind = PLAN_RB_DELETE,
                              .namespace = "h",
                              .name = "ppol-p-b",
                              .rb = {.subject_namespace = "b"}},
                   rb_recreate = {.kind = PLAN_RB_CREATE,
                                  .namespace = "h",
                                  .name = "ppol-p-b",
                                  .rb = {.subject_namespace = "b"}},
                   global = {.kind = PLAN_GLOBAL_EDIT, .namespace = "g", .name = "pull-secret"};

        /* a failed copy holds back the links to it in its namespace only */
        assert_true(pp_apply_write_depends(&sa_a, &copy));
        assert_false(pp_apply_write_depends(&sa_b, &copy));
        assert_false(pp_apply_write_depends(&global, &copy));
        /* a held want adds no link: nothing depends on its copy */
        assert_false(pp_apply_write_depends(&sa_a, &copy_held));
        /* a failed unlink keeps the copy it unlinks, and only that one */
        assert_true(pp_apply_write_depends(&del_old, &sa_a));
        assert_false(pp_apply_write_depends(&del_other, &sa_a));
        /* a binding under the old name goes only once the new one is there */
        assert_true(pp_apply_write_depends(&rb_legacy, &rb_new));
        assert_false(pp_apply_write_depends(&rb_gone, &rb_new));
        /* a replaced binding (roleRef) is created only once the old one is gone */
        assert_true(pp_apply_write_depends(&rb_recreate, &rb_gone));
        assert_false(pp_apply_write_depends(&rb_new, &rb_gone));
        /* the finalizer: nothing without it; never removed after a failure */
        assert_true(pp_apply_write_depends(&sa_b, &add_fin));
        assert_true(pp_apply_write_depends(&rm_fin, &global));
        /* independent writes */
        assert_false(pp_apply_write_depends(&sa_b, &sa_a));
        assert_false(pp_apply_write_depends(&global, &rb_new));
        assert_false(pp_apply_write_depends(NULL, &rb_new));
}

static const char *const GLOBAL_PAYLOAD =
    "{ \"auths\": {\n"
    "  \"registry.example.com\" : { \"auth\" : \"Zm9vOmJhcg==\", \"email\": "
    "\"a\\/b@example.com\" },\n"
    "  \"quay.io/org\": {\"auth\":\"eDp5\"},\n"
    "  \"ours.example\": {\"auth\": \"b2xkOm9sZA==\"},\n"
    "  \"mirror.example:5000\": {\"auth\":\"bTpu\",\"identitytoken\":\"t\\u00e9st\","
    "\"n\": 1.50, \"nested\": {\"a\": [1, 2, {\"b\": null}]}},\n"
    "  \"docker.io\": {\"auth\":\"ZG9jazplcg==\"}\n"
    " },\n"
    " \"credsStore\": \"desktop\",\n"
    " \"HttpHeaders\": {\"X-Meta\": \"1\"}\n"
    "}\n";

/* What the foreign entries are after a round trip through json-c (same values). */
static const char *const FOREIGN[][2] = {
    {"registry.example.com", "{\"auth\":\"Zm9vOmJhcg==\",\"email\":\"a/b@example.com\"}"},
    {"mirror.example:5000", "{\"auth\":\"bTpu\",\"identitytoken\":\"t\xc3\xa9st\",\"n\":1.50,"
                            "\"nested\":{\"a\":[1,2,{\"b\":null}]}}"},
    {"docker.io", "{\"auth\":\"ZG9jazplcg==\"}"},
    /* the conflicting registry is never touched */
    {"quay.io/org", "{\"auth\":\"eDp5\"}"},
};

static const char *const SOURCE_PAYLOAD = "{\"auths\":{\"new.example\":{\"auth\":\"bmV3Om5ldw==\"},"
                                          "\"ours.example\":{\"auth\":\"bmV3OnBhc3M=\"},"
                                          "\"quay.io/org\":{\"auth\":\"bWluZTptaW5l\"}}}";

static json_object *dockerconfig_secret(const char *ns, const char *name, const char *payload,
                                        const char *merged) {
        char *enc = b64(payload);
        json_object *s = parse("{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{},"
                               "\"type\":\"kubernetes.io/dockerconfigjson\",\"data\":{}}");
        json_object *md = get(s, "metadata");
        json_object_object_add(md, "name", json_object_new_string(name));
        json_object_object_add(md, "namespace", json_object_new_string(ns));
        json_object_object_add(md, "resourceVersion", json_object_new_string("7"));
        if (merged) {
                json_object *ann = json_object_new_object();
                json_object_object_add(ann, NAMES_ANNOTATION_MERGED,
                                       json_object_new_string(merged));
                json_object_object_add(md, "annotations", ann);
        }
        json_object_object_add(get(s, "data"), ".dockerconfigjson", json_object_new_string(enc));
        free(enc);
        return s;
}

/* The decoded payload of a dockerconfigjson Secret. */
static json_object *payload_of(json_object *secret) {
        char *text = unb64(get_str(get(secret, "data"), ".dockerconfigjson"));
        json_object *o = parse(text);
        free(text);
        return o;
}

static void assert_auth_keys(json_object *payload, const char *const *keys) {
        json_object *auths = get(payload, "auths");
        size_t i = 0;
        json_object_object_foreach(auths, k, v) {
                (void)v;
                if (!keys[i]) fail_msg("unexpected extra registry %s", k);
                assert_string_equal(k, keys[i]);
                i++;
        }
        assert_null(keys[i]);
}

static void assert_foreign_intact(json_object *payload) {
        json_object *auths = get(payload, "auths");
        for (size_t i = 0; i < ARRAY_SIZE(FOREIGN); i++) {
                json_object *e = get(auths, FOREIGN[i][0]);
                assert_non_null(e);
                assert_string_equal(json_object_to_json_string_ext(e, JF), FOREIGN[i][1]);
        }
        assert_string_equal(get_str(payload, "credsStore"), "desktop");
        assert_string_equal(json_object_to_json_string_ext(get(payload, "HttpHeaders"), JF),
                            "{\"X-Meta\":\"1\"}");
}

/* The wants of policy home/pol from its source, as the planner makes them. */
static size_t wants_from(const model_secret *src, plan_global_want *want) {
        for (size_t i = 0; i < src->n_registries; i++) {
                want[i].registry = src->registries[i].host;
                want[i].source = (char *)"quay-creds";
                want[i].hash = src->registries[i].hash;
        }
        return src->n_registries;
}

static void test_global_merge_and_remove(void **state) {
        const char *merged0 = "{\"v\":1,\"entries\":[{\"policy\":\"home/pol\","
                              "\"registry\":\"ours.example\"}]}";
        json_object *global =
            dockerconfig_secret("openshift-config", "pull-secret", GLOBAL_PAYLOAD, merged0);
        json_object *source = dockerconfig_secret("home", "quay-creds", SOURCE_PAYLOAD, NULL);

        /* the foreign values before: the payload as written, through json-c */
        json_object *before = payload_of(global);
        assert_foreign_intact(before);
        json_object_put(before);

        model_secret *g = NULL, *s = NULL;
        assert_int_equal(model_secret_decode(global, &g), 0);
        assert_int_equal(model_secret_decode(source, &s), 0);
        assert_int_equal(g->validity, MODEL_SECRET_VALID);
        plan_global_want want[8];
        size_t n_want = wants_from(s, want);
        assert_int_equal(n_want, 3);
        plan_global_desired d = {0};
        assert_int_equal(plan_global_edit(g, "home/pol", want, n_want, false, &d), 0);
        assert_true(d.changed);
        assert_int_equal(d.n_conflicts, 1);
        assert_string_equal(d.conflicts[0], "quay.io/org");

        json_object *auths = NULL;
        assert_int_equal(model_secret_payload_auths(source, &auths, NULL), 0);
        pp_apply_source src = {"quay-creds", auths};
        assert_int_equal(pp_apply_global_json(global, &d, &src, 1), 0);
        plan_global_desired_done(&d);
        model_secret_free(g);

        json_object *after = payload_of(global);
        /* order kept; the updated entry stays in place; the new one goes last */
        assert_auth_keys(after, (const char *const[]){"registry.example.com", "quay.io/org",
                                                      "ours.example", "mirror.example:5000",
                                                      "docker.io", "new.example", NULL});
        assert_foreign_intact(after);
        json_object *a2 = get(after, "auths");
        assert_string_equal(json_object_to_json_string_ext(get(a2, "ours.example"), JF),
                            "{\"auth\":\"bmV3OnBhc3M=\"}");
        assert_string_equal(json_object_to_json_string_ext(get(a2, "new.example"), JF),
                            "{\"auth\":\"bmV3Om5ldw==\"}");
        json_object_put(after);
        const char *merged1 =
            get_str(get(get(global, "metadata"), "annotations"), NAMES_ANNOTATION_MERGED);
        assert_string_equal(merged1, "{\"v\":1,\"entries\":[{\"policy\":\"home/pol\",\"registry\":"
                                     "\"new.example\"},{\"policy\":\"home/pol\",\"registry\":"
                                     "\"ours.example\"}]}");
        /* other metadata untouched */
        assert_string_equal(get_str(get(global, "metadata"), "resourceVersion"), "7");

        /* R10: the result, read back, needs no further edit */
        assert_int_equal(model_secret_decode(global, &g), 0);
        assert_int_equal(plan_global_edit(g, "home/pol", want, n_want, false, &d), 0);
        assert_false(d.changed);
        assert_int_equal(d.n_ops, 0);
        plan_global_desired_done(&d);

        /* removal: exactly this policy's entries go, and the record with them */
        assert_int_equal(plan_global_edit(g, "home/pol", NULL, 0, false, &d), 0);
        assert_int_equal(d.n_ops, 2);
        assert_null(d.merged);
        assert_int_equal(pp_apply_global_json(global, &d, NULL, 0), 0);
        plan_global_desired_done(&d);
        model_secret_free(g);
        after = payload_of(global);
        assert_auth_keys(after, (const char *const[]){"registry.example.com", "quay.io/org",
                                                      "mirror.example:5000", "docker.io", NULL});
        assert_foreign_intact(after);
        json_object_put(after);
        assert_null(get(get(get(global, "metadata"), "annotations"), NAMES_ANNOTATION_MERGED));

        json_object_put(auths);
        model_secret_free(s);
        json_object_put(source);
        json_object_put(global);
}

static void test_global_stale_and_invalid(void **state) {
        json_object *global =
            dockerconfig_secret("openshift-config", "pull-secret", "{\"auths\":{}}", NULL);
        json_object *auths = parse("{\"x.example\":{\"auth\":\"eDp4\"}}");
        plan_global_op op = {PLAN_GLOBAL_ADD, (char *)"y.example", (char *)"quay-creds"};
        plan_global_desired d = {.ops = &op, .n_ops = 1, .changed = true};
        /* the source lacks the registry the plan wants: the plan is out of date */
        pp_apply_source src = {"quay-creds", auths};
        assert_int_equal(pp_apply_global_json(global, &d, &src, 1), -ESTALE);
        /* the source itself is not given */
        assert_int_equal(pp_apply_global_json(global, &d, NULL, 0), -ESTALE);
        json_object_put(global);

        /* a payload without "auths" gets one for an addition */
        global =
            dockerconfig_secret("openshift-config", "pull-secret", "{\"credsStore\":\"x\"}", NULL);
        op.registry = (char *)"x.example";
        assert_int_equal(pp_apply_global_json(global, &d, &src, 1), 0);
        json_object *p = payload_of(global);
        assert_string_equal(json_object_to_json_string_ext(p, JF),
                            "{\"credsStore\":\"x\",\"auths\":{\"x.example\":{\"auth\":\"eDp4\"}}}");
        json_object_put(p);
        json_object_put(global);

        /* not editable: wrong type, bad base64, not JSON, auths not an object */
        const char *bad[] = {
            "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"g\"},\"type\":\"Opaque\","
            "\"data\":{\".dockerconfigjson\":\"e30=\"}}",
            "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"g\"},\"type\":"
            "\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":\"e30\"}}",
            "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"g\"},\"type\":"
            "\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":\"eyJh\"}}",
            "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"g\"},\"type\":"
            "\"kubernetes.io/dockerconfigjson\",\"data\":{\".dockerconfigjson\":"
            "\"eyJhdXRocyI6W119\"}}",
            "{\"kind\":\"Secret\",\"metadata\":{\"name\":\"g\"},\"type\":"
            "\"kubernetes.io/dockerconfigjson\",\"data\":{}}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                json_object *b = parse(bad[i]);
                assert_int_equal(pp_apply_global_json(b, &d, &src, 1), -EINVAL);
                json_object_put(b);
        }
        json_object_put(auths);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_status_fields),
            cmocka_unit_test(test_status_transition_time),
            cmocka_unit_test(test_status_carries_credentials_condition),
            cmocka_unit_test(test_status_limits),
            cmocka_unit_test(test_status_no_secret_data),
            cmocka_unit_test(test_finalizer_patch),
            cmocka_unit_test(test_delete_options),
            cmocka_unit_test(test_sa_patch),
            cmocka_unit_test(test_copy_json_new),
            cmocka_unit_test(test_copy_json_update),
            cmocka_unit_test(test_global_merge_and_remove),
            cmocka_unit_test(test_global_stale_and_invalid),
            cmocka_unit_test(test_rb_update_keeps_foreign_metadata),
            cmocka_unit_test(test_write_depends),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
