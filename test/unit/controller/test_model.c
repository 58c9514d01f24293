/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/store.h"
#include "model.h"
#include "names.h"
#include "util/macro.h"

/* ---- helpers ---------------------------------------------------------------- */

static json_object *load(const char *file) {
        const char *root = getenv("PULLPOLICY_ROOT");
        char path[1024];
        snprintf(path, sizeof(path), "%s/test/unit/controller/data/%s", root ? root : ".", file);
        json_object *o = json_object_from_file(path);
        if (!o) fail_msg("cannot read %s", path);
        return o;
}

static json_object *parse(const char *json) {
        json_object *o = json_tokener_parse(json);
        if (!o) fail_msg("bad test JSON: %s", json);
        return o;
}

static char *b64(const char *in) {
        static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        size_t n = strlen(in);
        char *out = malloc(n / 3 * 4 + 8), *o = out;
        assert_non_null(out);
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
                if (i + 1 < n) v |= (uint32_t)(unsigned char)in[i + 1] << 8;
                if (i + 2 < n) v |= (uint32_t)(unsigned char)in[i + 2];
                *o++ = t[v >> 18 & 63];
                *o++ = t[v >> 12 & 63];
                *o++ = i + 1 < n ? t[v >> 6 & 63] : '=';
                *o++ = i + 2 < n ? t[v & 63] : '=';
        }
        *o = 0;
        return out;
}

/* A whole Secret of type with data {key: value} (value given raw; NULL = no data). */
static json_object *secret_json(const char *type, const char *key, const char *value_b64) {
        char *j = NULL;
        if (value_b64)
                assert_true(asprintf(&j,
                                     "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
                                     "\"type\":\"%s\",\"data\":{\"%s\":\"%s\"}}",
                                     type, key, value_b64) > 0);
        else
                assert_true(asprintf(&j,
                                     "{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},"
                                     "\"type\":\"%s\"}",
                                     type) > 0);
        json_object *o = parse(j);
        free(j);
        return o;
}

static model_secret *secret_from_payload(const char *type, const char *payload) {
        char *e = b64(payload);
        const char *key =
            streq(type, MODEL_SECRET_TYPE_DOCKERCFG) ? ".dockercfg" : ".dockerconfigjson";
        json_object *o = secret_json(type, key, e);
        free(e);
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        json_object_put(o);
        return s;
}

/* ---- Namespace -------------------------------------------------------------- */

static void test_namespace(void **state) {
        json_object *o = load("namespace.json");
        model_namespace *ns = NULL;
        assert_int_equal(model_namespace_decode(o, &ns), 0);
        assert_string_equal(ns->meta.name, "project-a");
        assert_null(ns->meta.namespace);
        assert_false(ns->terminating);
        assert_string_equal(kube_meta_label(&ns->meta, "team"), "a");
        assert_int_equal(ns->meta.annotations.n, 0); /* none kept */
        model_namespace_free(ns);
        json_object_put(o);

        o = load("namespace-terminating.json");
        assert_int_equal(model_namespace_decode(o, &ns), 0);
        assert_true(ns->terminating);
        model_namespace_free(ns);
        json_object_put(o);

        /* phase alone is enough */
        o = parse("{\"metadata\":{\"name\":\"x\"},\"status\":{\"phase\":\"Terminating\"}}");
        assert_int_equal(model_namespace_decode(o, &ns), 0);
        assert_true(ns->terminating);
        model_namespace_free(ns);
        json_object_put(o);

        o = parse("{\"metadata\":{}}");
        ns = (model_namespace *)0x1;
        assert_true(model_namespace_decode(o, &ns) < 0);
        assert_ptr_equal(ns, (model_namespace *)0x1);
        json_object_put(o);
        model_namespace_free(NULL);
}

/* ---- ServiceAccount ---------------------------------------------------------- */

static void test_sa_openshift_416(void **state) {
        json_object *o = load("sa-openshift-416.json");
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(o, &sa), 0);
        assert_string_equal(sa->meta.name, "default");
        assert_int_equal(sa->n_pull_secrets, 2);
        assert_string_equal(sa->pull_secrets[0], "default-dockercfg-123456");
        assert_string_equal(sa->pull_secrets[1], "my-pull-secret");
        assert_int_equal(sa->n_secrets, 1);
        assert_string_equal(sa->secrets[0], "my-pull-secret");
        assert_string_equal(model_sa_internal_registry_ref(sa), "default-dockercfg-123456");
        /* only the annotations the controller reads are kept (the ref as a field of its own) */
        assert_int_equal(sa->meta.annotations.n, 0);
        assert_null(
            kube_meta_annotation(&sa->meta, "kubectl.kubernetes.io/last-applied-configuration"));
        assert_true(model_sa_provisioned(sa));
        assert_true(model_sa_has_pull_secret(sa, "my-pull-secret"));
        assert_true(model_sa_has_secret(sa, "my-pull-secret"));
        assert_false(model_sa_has_secret(sa, "default-dockercfg-123456"));
        assert_int_equal(sa->created, 1741032472); /* 2025-03-03T20:07:52Z */
        assert_int_equal(sa->links.n, 0);
        assert_int_equal(sa->links_error, 0);
        model_sa_free(sa);
        json_object_put(o);
}

static void test_sa_openshift_pre416(void **state) {
        json_object *o = load("sa-openshift-pre416.json");
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(o, &sa), 0);
        assert_true(model_sa_provisioned(sa));
        assert_int_equal(sa->links.n, 1);
        assert_string_equal(sa->links.items[0].policy, "project-b/team-a-pulls");
        assert_string_equal(sa->links.items[0].secret, "quay-creds");
        assert_int_equal(sa->links.items[0].for_mask, POLICY_FOR_PULL);
        model_sa_free(sa);
        json_object_put(o);
}

static model_sa *sa_from(const char *json) {
        json_object *o = parse(json);
        model_sa *sa = NULL;
        assert_int_equal(model_sa_decode(o, &sa), 0);
        json_object_put(o);
        return sa;
}

/* Whether the names alone rebuild both lists (then the SA may be edited by a merge patch). */
static void test_sa_refs_plain(void **state) {
        model_sa *sa = sa_from("{\"metadata\":{\"name\":\"a\"}}");
        assert_true(sa->refs_plain);
        model_sa_free(sa);
        sa = sa_from("{\"metadata\":{\"name\":\"a\"},\"secrets\":[{\"name\":\"x\"}],"
                     "\"imagePullSecrets\":[{\"name\":\"y\"},{\"name\":\"y\"}]}");
        assert_true(sa->refs_plain);
        model_sa_free(sa);
        /* an ObjectReference with more than a name */
        sa = sa_from("{\"metadata\":{\"name\":\"a\"},"
                     "\"secrets\":[{\"name\":\"x\",\"namespace\":\"other\"}]}");
        assert_false(sa->refs_plain);
        assert_int_equal(sa->n_secrets, 1);
        model_sa_free(sa);
        /* entries the names cannot carry: without a name, empty, or no object at all */
        static const char *const odd[] = {"[{}]", "[{\"name\":\"\"}]", "[\"x\"]", "[{\"name\":1}]"};
        for (size_t i = 0; i < ARRAY_SIZE(odd); i++) {
                char json[128];
                snprintf(json, sizeof(json),
                         "{\"metadata\":{\"name\":\"a\"},\"imagePullSecrets\":%s}", odd[i]);
                sa = sa_from(json);
                assert_false(sa->refs_plain);
                assert_int_equal(sa->n_pull_secrets, 0);
                model_sa_free(sa);
        }
}

static void test_sa_provisioning_forms(void **state) {
        /* dockercfg only in .secrets: OpenShift is not done yet */
        model_sa *sa = sa_from("{\"metadata\":{\"name\":\"builder\"},"
                               "\"secrets\":[{\"name\":\"builder-dockercfg-abc\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* only in .imagePullSecrets */
        sa = sa_from("{\"metadata\":{\"name\":\"builder\"},"
                     "\"imagePullSecrets\":[{\"name\":\"builder-dockercfg-abc\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* the dockercfg secret of another account whose name starts the same */
        sa = sa_from("{\"metadata\":{\"name\":\"build\"},"
                     "\"secrets\":[{\"name\":\"builder-dockercfg-abc\"}],"
                     "\"imagePullSecrets\":[{\"name\":\"builder-dockercfg-abc\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* 4.16: annotation names a secret that is not (yet) in imagePullSecrets */
        sa = sa_from("{\"metadata\":{\"name\":\"default\",\"annotations\":{"
                     "\"openshift.io/internal-registry-pull-secret-ref\":\"default-dockercfg-q\"}},"
                     "\"imagePullSecrets\":[{\"name\":\"other\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* an empty annotation does not count */
        sa = sa_from("{\"metadata\":{\"name\":\"default\",\"annotations\":{"
                     "\"openshift.io/internal-registry-pull-secret-ref\":\"\"}},"
                     "\"imagePullSecrets\":[{\"name\":\"\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* plain Kubernetes */
        sa = sa_from("{\"metadata\":{\"name\":\"default\"}}");
        assert_false(model_sa_provisioned(sa));
        assert_int_equal(sa->n_secrets, 0);
        assert_int_equal(sa->created, 0);
        model_sa_free(sa);
        /* entries without a name are skipped, nulls are absent */
        sa = sa_from("{\"metadata\":{\"name\":\"a\"},\"secrets\":[{},{\"name\":\"x\"},"
                     "{\"name\":5}],\"imagePullSecrets\":null}");
        assert_int_equal(sa->n_secrets, 1);
        assert_string_equal(sa->secrets[0], "x");
        model_sa_free(sa);
}

/*
 * R4, before 4.16: for a name of 48 characters or more OpenShift names the secret
 * "<first 38>-<FNV-1a 32 hex of the whole name>-dockercfg-<5>" (library-go's
 * naming.GetName(sa, "dockercfg-", 58)); the hashes below were computed apart from the code.
 */
static void test_sa_provisioned_long_name(void **state) {
        /* 57 characters */
        model_sa *sa = sa_from(
            "{\"metadata\":{\"name\":\"pipeline-service-account-for-the-nightly-image-builds-xyz\"}"
            ","
            "\"secrets\":[{\"name\":\"pipeline-service-account-for-the-night-401f3065-dockercfg-"
            "x7k2p\"}],"
            "\"imagePullSecrets\":[{\"name\":\"pipeline-service-account-for-the-night-401f3065-"
            "dockercfg-x7k2p\"}]}");
        assert_true(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* the same shape with another account's hash: not this account's secret */
        sa = sa_from(
            "{\"metadata\":{\"name\":\"pipeline-service-account-for-the-nightly-image-builds-xyz\"}"
            ","
            "\"secrets\":[{\"name\":\"pipeline-service-account-for-the-night-401f3066-dockercfg-"
            "x7k2p\"}],"
            "\"imagePullSecrets\":[{\"name\":\"pipeline-service-account-for-the-night-401f3066-"
            "dockercfg-x7k2p\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* 48 characters: the first length that is hashed */
        sa =
            sa_from("{\"metadata\":{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv\"},"
                    "\"secrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijkl-d580457d-"
                    "dockercfg-b2c4d\"}],"
                    "\"imagePullSecrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijkl-"
                    "d580457d-dockercfg-b2c4d\"}]}");
        assert_true(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* 47 characters: still the plain form, and the hashed one is not it */
        sa = sa_from(
            "{\"metadata\":{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu\"},"
            "\"secrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu-"
            "dockercfg-b2c4d\"}],"
            "\"imagePullSecrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu-"
            "dockercfg-b2c4d\"}]}");
        assert_true(model_sa_provisioned(sa));
        model_sa_free(sa);
        sa = sa_from("{\"metadata\":{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu\"},"
                     "\"secrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijkl-904b46d9-"
                     "dockercfg-b2c4d\"}],"
                     "\"imagePullSecrets\":[{\"name\":\"abcdefghijklmnopqrstuvwxyzabcdefghijkl-"
                     "904b46d9-dockercfg-b2c4d\"}]}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
}

/*
 * R4, current 4.16+: OpenShift annotates the account and lists the name in .secrets and
 * .imagePullSecrets in one write BEFORE the secret exists; the secret comes later, first
 * with ".dockercfg": {} and then filled. The account counts as provisioned from that first
 * write on: the secret's state is not the planner's to judge (it only reads the account).
 */
static void test_sa_provisioned_current_416_sequence(void **state) {
        /* created: nothing yet */
        model_sa *sa = sa_from("{\"metadata\":{\"name\":\"deployer\"}}");
        assert_false(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* one write: annotation + both lists, the secret does not exist yet */
        sa = sa_from(
            "{\"metadata\":{\"name\":\"deployer\",\"annotations\":{"
            "\"openshift.io/internal-registry-pull-secret-ref\":\"deployer-dockercfg-h8w2n\"}},"
            "\"secrets\":[{\"name\":\"deployer-dockercfg-h8w2n\"}],"
            "\"imagePullSecrets\":[{\"name\":\"deployer-dockercfg-h8w2n\"}]}");
        assert_true(model_sa_provisioned(sa));
        model_sa_free(sa);
        /* a long name in the current form: the annotation decides, whatever the name */
        sa = sa_from(
            "{\"metadata\":{\"name\":\"pipeline-service-account-for-the-nightly-image-builds-xyz\","
            "\"annotations\":{\"openshift.io/internal-registry-pull-secret-ref\":"
            "\"pipeline-service-account-for-the-night-401f3065-dockercfg-m4q9z\"}},"
            "\"imagePullSecrets\":[{\"name\":\"pipeline-service-account-for-the-night-401f3065-"
            "dockercfg-m4q9z\"}]}");
        assert_true(model_sa_provisioned(sa));
        model_sa_free(sa);
}

static void test_sa_malformed_links(void **state) {
        static const char *const bad[] = {
            "not json",
            "[]",
            "{\"v\":2,\"links\":[]}",
            "{\"links\":[]}",
            "{\"v\":1}",
            "{\"v\":1,\"links\":{}}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b\",\"secret\":\"s\"}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b\",\"secret\":\"s\",\"for\":[]}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b\",\"secret\":\"s\",\"for\":[\"push\"]}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"ab\",\"secret\":\"s\",\"for\":[\"pull\"]}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b/c\",\"secret\":\"s\",\"for\":[\"pull\"]}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b\",\"secret\":\"S\",\"for\":[\"pull\"]}]}",
            "{\"v\":1,\"links\":[{\"policy\":\"a/b\",\"secret\":\"s\",\"for\":[\"pull\"],"
            "\"x\":1}]}",
            "{\"v\":1,\"links\":[]} trailing",
            "{\"v\":1,\"links\":[1]}",
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                json_object *o = json_object_new_object(), *meta = json_object_new_object(),
                            *ann = json_object_new_object();
                json_object_object_add(ann, NAMES_ANNOTATION_LINKS, json_object_new_string(bad[i]));
                json_object_object_add(meta, "name", json_object_new_string("sa"));
                json_object_object_add(meta, "annotations", ann);
                json_object_object_add(o, "metadata", meta);
                model_sa *sa = NULL;
                assert_int_equal(model_sa_decode(o, &sa), 0); /* never refused for it */
                if (sa->links_error != -EINVAL) fail_msg("accepted: %s", bad[i]);
                assert_int_equal(sa->links.n, 0);
                /* the text is kept, so that the planner can leave it alone */
                assert_string_equal(kube_meta_annotation(&sa->meta, NAMES_ANNOTATION_LINKS),
                                    bad[i]);
                model_sa_free(sa);
                json_object_put(o);
        }
}

/* ---- records ----------------------------------------------------------------- */

static void test_links_record(void **state) {
        model_links l = {0};
        assert_int_equal(model_links_parse(NULL, &l), 0);
        assert_int_equal(l.n, 0);
        char *t = (char *)0x1;
        assert_int_equal(model_links_serialize(&l, &t), 0);
        assert_null(t); /* empty record = no annotation */

        assert_int_equal(model_links_set(&l, "ns-b/p2", "sec", POLICY_FOR_PULL), 0);
        assert_int_equal(model_links_set(&l, "ns-a/p1", "sec", POLICY_FOR_MOUNT | POLICY_FOR_PULL),
                         0);
        assert_int_equal(model_links_set(&l, "ns-a/p1", "aaa", POLICY_FOR_PULL), 0);
        assert_int_equal(model_links_serialize(&l, &t), 0);
        assert_string_equal(
            t, "{\"v\":1,\"links\":["
               "{\"policy\":\"ns-a/p1\",\"secret\":\"aaa\",\"for\":[\"pull\"]},"
               "{\"policy\":\"ns-a/p1\",\"secret\":\"sec\",\"for\":[\"pull\",\"mount\"]},"
               "{\"policy\":\"ns-b/p2\",\"secret\":\"sec\",\"for\":[\"pull\"]}]}");
        assert_int_equal(model_links_get(&l, "ns-a/p1", "sec"), POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        assert_int_equal(model_links_get(&l, "ns-b/p2", "aaa"), 0);
        assert_int_equal(model_links_get_others(&l, "ns-a/p1", "sec"), POLICY_FOR_PULL);
        assert_int_equal(model_links_get_others(&l, "ns-b/p2", "sec"),
                         POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        assert_int_equal(model_links_get_others(&l, "ns-a/p1", "aaa"), 0);
        assert_true(model_links_mentions(&l, "ns-b/p2"));
        assert_false(model_links_mentions(&l, "ns-c/p3"));

        /* round trip */
        model_links back = {0};
        assert_int_equal(model_links_parse(t, &back), 0);
        char *t2 = NULL;
        assert_int_equal(model_links_serialize(&back, &t2), 0);
        assert_string_equal(t, t2);
        free(t2);
        model_links_done(&back);
        free(t);

        /* mask 0 removes */
        assert_int_equal(model_links_set(&l, "ns-a/p1", "sec", 0), 0);
        assert_int_equal(l.n, 2);
        assert_int_equal(model_links_set(&l, "ns-a/p1", "nothing", 0), 0);
        assert_int_equal(l.n, 2);
        /* names are checked */
        assert_int_equal(model_links_set(&l, "nopolicy", "sec", POLICY_FOR_PULL), -EINVAL);
        assert_int_equal(model_links_set(&l, "a/b", "Bad_Name", POLICY_FOR_PULL), -EINVAL);
        assert_int_equal(model_links_set(&l, "a/b", "s", 4), -EINVAL);

        model_links c = {0};
        assert_int_equal(model_links_copy(&l, &c), 0);
        assert_int_equal(c.n, 2);
        assert_ptr_not_equal(c.items[0].policy, l.items[0].policy);
        model_links_done(&c);
        model_links_done(&l);
        model_links_done(NULL);
}

static void test_links_record_parse_lenient_parts(void **state) {
        /* unsorted input and a repeated pair: sorted, masks united */
        model_links l = {0};
        assert_int_equal(
            model_links_parse(
                "{\"v\":1,\"links\":["
                "{\"secret\":\"b\",\"policy\":\"n/p\",\"for\":[\"mount\"]},"
                "{\"policy\":\"n/p\",\"secret\":\"a\",\"for\":[\"pull\"]},"
                "{\"policy\":\"n/p\",\"secret\":\"b\",\"for\":[\"pull\"]}],\"note\":\"x\"}",
                &l),
            0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.items[0].secret, "a");
        assert_int_equal(l.items[1].for_mask, POLICY_FOR_PULL | POLICY_FOR_MOUNT);
        model_links_done(&l);
}

static void test_links_record_limits(void **state) {
        /* over MODEL_LINKS_TEXT_MAX bytes */
        size_t n = MODEL_LINKS_TEXT_MAX + 10;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, ' ', n);
        memcpy(big, "{\"v\":1,\"links\":[]}", 18);
        big[n] = 0;
        model_links l = {0};
        assert_int_equal(model_links_parse(big, &l), -E2BIG);
        free(big);
        /* MODEL_LINKS_MAX entries are fine, one more is not */
        model_links m = {0};
        char sec[32];
        for (int i = 0; i < MODEL_LINKS_MAX; i++) {
                snprintf(sec, sizeof(sec), "s%d", i);
                assert_int_equal(model_links_set(&m, "n/p", sec, POLICY_FOR_PULL), 0);
        }
        assert_int_equal(model_links_set(&m, "n/p", "one-more", POLICY_FOR_PULL), -E2BIG);
        model_links_done(&m);
}

static void test_merged_record(void **state) {
        model_merged m = {0};
        assert_int_equal(model_merged_set(&m, "b/p", "quay.io", true), 0);
        assert_int_equal(model_merged_set(&m, "a/p", "registry.example.com:5000/team", true), 0);
        char *t = NULL;
        assert_int_equal(model_merged_serialize(&m, &t), 0);
        assert_string_equal(t,
                            "{\"v\":1,\"entries\":["
                            "{\"policy\":\"a/p\",\"registry\":\"registry.example.com:5000/team\"},"
                            "{\"policy\":\"b/p\",\"registry\":\"quay.io\"}]}");
        assert_string_equal(model_merged_owner(&m, "quay.io"), "b/p");
        assert_null(model_merged_owner(&m, "docker.io"));
        model_merged back = {0};
        assert_int_equal(model_merged_parse(t, &back), 0);
        assert_int_equal(back.n, 2);
        model_merged_done(&back);
        free(t);
        assert_int_equal(model_merged_set(&m, "b/p", "quay.io", false), 0);
        assert_null(model_merged_owner(&m, "quay.io"));
        assert_int_equal(model_merged_set(&m, "b/p", "has\"quote", true), -EINVAL);
        model_merged_done(&m);

        /* two owners of one registry: malformed */
        assert_int_equal(model_merged_parse("{\"v\":1,\"entries\":["
                                            "{\"policy\":\"a/p\",\"registry\":\"quay.io\"},"
                                            "{\"policy\":\"b/p\",\"registry\":\"quay.io\"}]}",
                                            &m),
                         -EINVAL);
        assert_int_equal(model_merged_parse("{\"v\":1,\"entries\":[{\"policy\":\"a/p\"}]}", &m),
                         -EINVAL);
        assert_int_equal(model_merged_parse("{\"v\":1,\"entries\":[]}", &m), 0);
        assert_int_equal(m.n, 0);
        assert_int_equal(model_merged_serialize(&m, &t), 0);
        assert_null(t);
}

/* ---- Secrets ----------------------------------------------------------------- */

static bool mem_contains(const void *hay, size_t n, const char *needle) {
        return memmem(hay, n, needle, strlen(needle)) != NULL;
}

static void test_secret_dockerconfigjson(void **state) {
        json_object *o = load("secret-dockerconfigjson.json");
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        assert_true(s->full);
        assert_string_equal(s->type, MODEL_SECRET_TYPE_DOCKERCONFIGJSON);
        assert_int_equal(s->validity, MODEL_SECRET_VALID);
        assert_int_equal(s->n_registries, 3);
        assert_string_equal(s->registries[0].host, "cloud.openshift.com");
        assert_string_equal(s->registries[1].host, "quay.io");
        assert_string_equal(s->registries[2].host, "quay.io/repository-main");
        assert_non_null(model_secret_registry(s, "quay.io"));
        assert_null(model_secret_registry(s, "docker.io"));
        /* identical entries hash the same, whatever the registry */
        assert_true(s->registries[0].hash == s->registries[1].hash);
        assert_true(s->content_hash != 0);
        /* R11: no annotation but ours, no payload anywhere in the model */
        assert_int_equal(s->meta.annotations.n, 0);
        assert_false(mem_contains(s, sizeof(*s), "ZmFrZTpmYWtl"));
        for (size_t i = 0; i < s->n_registries; i++)
                assert_null(strstr(s->registries[i].host, "ZmFr"));

        /* the same data decoded again: the same hashes */
        model_secret *s2 = NULL;
        assert_int_equal(model_secret_decode(o, &s2), 0);
        assert_true(s->content_hash == s2->content_hash);
        model_secret_free(s2);
        json_object_put(o);
        model_secret_free(s);
}

static void test_secret_rotation_changes_hashes(void **state) {
        model_secret *a = secret_from_payload(MODEL_SECRET_TYPE_DOCKERCONFIGJSON,
                                              "{\"auths\":{\"quay.io\":{\"auth\":\"b2xk\"},"
                                              "\"docker.io\":{\"auth\":\"c2FtZQ==\"}}}");
        model_secret *b = secret_from_payload(MODEL_SECRET_TYPE_DOCKERCONFIGJSON,
                                              "{\"auths\":{\"quay.io\":{\"auth\":\"bmV3\"},"
                                              "\"docker.io\":{\"auth\":\"c2FtZQ==\"}}}");
        assert_int_equal(a->validity, MODEL_SECRET_VALID);
        assert_int_equal(b->validity, MODEL_SECRET_VALID);
        assert_true(a->content_hash != b->content_hash);
        assert_true(model_secret_registry(a, "quay.io")->hash !=
                    model_secret_registry(b, "quay.io")->hash);
        assert_true(model_secret_registry(a, "docker.io")->hash ==
                    model_secret_registry(b, "docker.io")->hash);
        model_secret_free(a);
        model_secret_free(b);
}

static void test_secret_dockercfg(void **state) {
        json_object *o = load("secret-dockercfg.json");
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        assert_int_equal(s->validity, MODEL_SECRET_VALID);
        assert_int_equal(s->n_registries, 1);
        assert_string_equal(s->registries[0].host, "registry.example.com");
        model_secret_free(s);
        json_object_put(o);
}

static void check_validity(const char *type, const char *key, const char *raw_b64,
                           model_secret_validity want) {
        json_object *o = secret_json(type, key, raw_b64);
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        if (s->validity != want)
                fail_msg("%s %s: validity %d, want %d", type, raw_b64 ? raw_b64 : "-", s->validity,
                         want);
        assert_int_equal(s->n_registries, 0);
        assert_non_null(model_secret_validity_to_string(s->validity));
        model_secret_free(s);
        json_object_put(o);
}

static void check_payload(const char *payload, model_secret_validity want) {
        char *e = b64(payload);
        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson", e, want);
        free(e);
}

static void test_secret_invalid_payloads(void **state) {
        json_object *o = load("secret-opaque.json");
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        assert_int_equal(s->validity, MODEL_SECRET_WRONG_TYPE);
        model_secret_free(s);
        json_object_put(o);

        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson", NULL,
                       MODEL_SECRET_NO_DATA);
        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockercfg",
                       "e30=", MODEL_SECRET_NO_DATA);
        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson", "e30",
                       MODEL_SECRET_BAD_BASE64);
        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson",
                       "e3!=", MODEL_SECRET_BAD_BASE64);
        check_validity(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, ".dockerconfigjson",
                       "e=0=", MODEL_SECRET_BAD_BASE64);
        check_payload("not json", MODEL_SECRET_BAD_JSON);
        check_payload("[1,2]", MODEL_SECRET_BAD_JSON);
        check_payload("{\"auths\":{}} x", MODEL_SECRET_BAD_JSON);
        check_payload("{}", MODEL_SECRET_NO_AUTHS);
        check_payload("{\"auths\":[]}", MODEL_SECRET_NO_AUTHS);
        check_payload("{\"auths\":{\"quay.io\":\"x\"}}", MODEL_SECRET_BAD_ENTRY);
        check_validity(MODEL_SECRET_TYPE_DOCKERCFG, ".dockercfg", "W10=" /* [] */,
                       MODEL_SECRET_BAD_JSON);
        check_validity("kubernetes.io/basic-auth", ".dockerconfigjson",
                       "e30=", MODEL_SECRET_WRONG_TYPE);

        /* too deep */
        char deep[200] = "{\"auths\":{\"q\":";
        for (int i = 0; i < 40; i++) strcat(deep, "[");
        for (int i = 0; i < 40; i++) strcat(deep, "]");
        strcat(deep, "}}");
        check_payload(deep, MODEL_SECRET_BAD_JSON);

        /* over the payload limit */
        size_t n = MODEL_SECRET_PAYLOAD_MAX + 3;
        char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, ' ', n);
        big[n] = 0;
        check_payload(big, MODEL_SECRET_TOO_BIG);
        free(big);

        /* an empty auths is a valid (if useless) pull secret */
        model_secret *e = secret_from_payload(MODEL_SECRET_TYPE_DOCKERCONFIGJSON, "{\"auths\":{}}");
        assert_int_equal(e->validity, MODEL_SECRET_VALID);
        assert_int_equal(e->n_registries, 0);
        model_secret_free(e);
}

static void test_secret_metadata_only(void **state) {
        json_object *o = load("secret-partial-metadata.json");
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode_meta(o, &s), 0);
        assert_false(s->full);
        assert_null(s->type);
        assert_int_equal(s->validity, MODEL_SECRET_UNKNOWN);
        assert_int_equal(s->meta.annotations.n, 1);
        assert_string_equal(kube_meta_annotation(&s->meta, NAMES_ANNOTATION_SOURCE),
                            "project-b/quay-creds");
        model_secret_free(s);
        json_object_put(o);

        /* a whole Secret through the metadata decoder: its data is not looked at */
        o = load("secret-dockerconfigjson.json");
        assert_int_equal(model_secret_decode_meta(o, &s), 0);
        assert_false(s->full);
        assert_int_equal(s->n_registries, 0);
        assert_true(s->content_hash == 0);
        model_secret_free(s);
        json_object_put(o);
}

/* Issue 7, item 1: the signs that a secret belongs to a service account. */
static void test_secret_belongs_to_sa(void **state) {
        static const struct {
                const char *json;
                bool owned;
        } cases[] = {
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"type\":"
             "\"kubernetes.io/dockerconfigjson\"}",
             false},
            /* someone else's annotations and owners do not count */
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"annotations\":{\"a\":\"b\","
             "\"openshift.io/internal-registry\":\"x\"},\"ownerReferences\":[{\"apiVersion\":"
             "\"v1\",\"kind\":\"ConfigMap\",\"name\":\"c\",\"uid\":\"u\"}]}}",
             false},
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"annotations\":{"
             "\"kubernetes.io/service-account.name\":\"default\"}}}",
             true},
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"annotations\":{"
             "\"openshift.io/internal-registry-auth-token.service-account\":\"default\"}}}",
             true},
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"annotations\":{"
             "\"openshift.io/internal-registry-auth-token.binding\":\"bound\"}}}",
             true},
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\",\"ownerReferences\":[{"
             "\"apiVersion\":\"v1\",\"kind\":\"ServiceAccount\",\"name\":\"default\","
             "\"uid\":\"u\"}]}}",
             true},
            {"{\"metadata\":{\"name\":\"s\",\"namespace\":\"n\"},\"type\":"
             "\"kubernetes.io/service-account-token\"}",
             true},
        };
        (void)state;
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                json_object *o = parse(cases[i].json);
                if (model_secret_json_belongs_to_sa(o) != cases[i].owned)
                        fail_msg("case %zu: %s", i, cases[i].json);
                model_secret *s = NULL;
                /* the decoders keep the verdict (a PartialObjectMetadata has no type: only the full
                 * form shows it) */
                assert_int_equal(model_secret_decode_meta(o, &s), 0);
                assert_int_equal(s->sa_owned, cases[i].owned);
                model_secret_free(s);
                json_object_put(o);
        }
        assert_true(model_secret_json_belongs_to_sa(NULL));
        json_object *bad = parse("[1]");
        assert_true(model_secret_json_belongs_to_sa(bad));
        json_object_put(bad);
}

static void test_secret_payload_auths(void **state) {
        json_object *o = load("secret-dockerconfigjson.json"), *auths = NULL;
        model_secret_validity v;
        assert_int_equal(model_secret_payload_auths(o, &auths, &v), 0);
        assert_int_equal(v, MODEL_SECRET_VALID);
        assert_int_equal(json_object_object_length(auths), 3);
        json_object *q = NULL;
        assert_true(json_object_object_get_ex(auths, "quay.io", &q));
        json_object_put(auths);
        json_object_put(o);

        o = load("secret-opaque.json");
        auths = NULL;
        assert_int_equal(model_secret_payload_auths(o, &auths, &v), -EINVAL);
        assert_int_equal(v, MODEL_SECRET_WRONG_TYPE);
        assert_null(auths);
        json_object_put(o);
}

static void test_secret_merged_annotation(void **state) {
        json_object *o = parse("{\"metadata\":{\"name\":\"pull-secret\",\"namespace\":"
                               "\"openshift-config\",\"annotations\":{\"pullpolicy.io/merged\":"
                               "\"{\\\"v\\\":1,\\\"entries\\\":[{\\\"policy\\\":\\\"a/p\\\","
                               "\\\"registry\\\":\\\"quay.io\\\"}]}\"}},\"type\":\"Opaque\"}");
        model_secret *s = NULL;
        assert_int_equal(model_secret_decode(o, &s), 0);
        assert_int_equal(s->merged_error, 0);
        assert_string_equal(model_merged_owner(&s->merged, "quay.io"), "a/p");
        model_secret_free(s);
        json_object_put(o);

        o = parse("{\"metadata\":{\"name\":\"pull-secret\",\"annotations\":"
                  "{\"pullpolicy.io/merged\":\"garbage\"}}}");
        assert_int_equal(model_secret_decode_meta(o, &s), 0);
        assert_int_equal(s->merged_error, -EINVAL);
        assert_int_equal(s->merged.n, 0);
        model_secret_free(s);
        json_object_put(o);
}

/* ---- RoleBinding and PullPolicy -------------------------------------------------- */

static void test_role_binding(void **state) {
        json_object *o = load("rolebinding.json");
        model_role_binding *rb = NULL;
        assert_int_equal(model_role_binding_decode(o, &rb), 0);
        assert_string_equal(rb->role_kind, "ClusterRole");
        assert_string_equal(rb->role_name, "system:image-puller");
        assert_string_equal(rb->role_api_group, "rbac.authorization.k8s.io");
        assert_int_equal(rb->n_subjects, 2);
        assert_string_equal(rb->subjects[0].kind, "ServiceAccount");
        assert_null(rb->subjects[0].api_group);
        assert_string_equal(rb->subjects[0].namespace, "project-a");
        assert_string_equal(rb->subjects[1].name, "system:serviceaccounts:project-c");
        assert_null(rb->subjects[1].namespace);
        assert_true(names_marked_by(&rb->meta, "project-b", "team-a-pulls"));
        assert_string_equal(kube_meta_controller_ref(&rb->meta)->uid, "pol-uid");
        model_role_binding_free(rb);
        json_object_put(o);

        o = parse("{\"metadata\":{\"name\":\"x\",\"namespace\":\"n\"},\"subjects\":{}}");
        assert_int_equal(model_role_binding_decode(o, &rb), -EINVAL);
        json_object_put(o);
}

static void test_policy(void **state) {
        json_object *o = load("pullpolicy-example.json");
        model_policy *p = NULL;
        assert_int_equal(model_policy_decode(o, &p), 0);
        assert_non_null(p->spec);
        assert_null(p->spec_error);
        assert_int_equal(p->meta.generation, 4);
        assert_true(kube_meta_has_finalizer(&p->meta, NAMES_FINALIZER));
        assert_int_equal(p->spec->n_pull_secrets, 2);
        const model_policy_status *st = &p->status;
        assert_int_equal(st->observed_generation, 4);
        assert_true(st->has_ready);
        assert_string_equal(st->ready_status, "False");
        assert_string_equal(st->ready_reason, "Waiting");
        assert_string_equal(st->ready_last_transition, "2025-01-02T03:04:05Z");
        assert_int_equal(st->ready_observed_generation, 4);
        assert_int_equal(st->namespaces, 3);
        assert_int_equal(st->linked, 11);
        assert_int_equal(st->waiting, 2);
        assert_int_equal(st->n_problems, 1);
        assert_string_equal(st->problems[0].name, "builder");
        model_policy_free(p);
        json_object_put(o);

        /* an invalid spec is recorded, not refused; absent status fields are -1 */
        o = parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"},\"spec\":{}}");
        assert_int_equal(model_policy_decode(o, &p), 0);
        assert_null(p->spec);
        assert_string_equal(p->spec_error, "spec: at least one of imagePuller, pullSecrets, "
                                           "globalPullSecret.merge must be set");
        assert_false(p->status.has_ready);
        assert_int_equal(p->status.observed_generation, -1);
        assert_int_equal(p->status.namespaces, -1);
        model_policy_free(p);
        json_object_put(o);

        o = parse("{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"}}");
        assert_int_equal(model_policy_decode(o, &p), 0);
        assert_string_equal(p->spec_error, "spec is required");
        model_policy_free(p);
        json_object_put(o);

        /* more than 20 stored problems: kept 20, marked truncated */
        char buf[8192];
        size_t off = (size_t)snprintf(buf, sizeof(buf),
                                      "{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\"},"
                                      "\"spec\":{\"imagePuller\":{}},\"status\":{\"problems\":[");
        for (int i = 0; i < 25; i++)
                off += (size_t)snprintf(buf + off, sizeof(buf) - off,
                                        "%s{\"reason\":\"Conflict\",\"name\":\"n%d\"}",
                                        i ? "," : "", i);
        snprintf(buf + off, sizeof(buf) - off, "]}}");
        o = parse(buf);
        assert_int_equal(model_policy_decode(o, &p), 0);
        assert_int_equal(p->status.n_problems, MODEL_PROBLEMS_MAX);
        assert_true(p->status.problems_truncated);
        model_policy_free(p);
        json_object_put(o);
}

/* ---- vtables and indexes ------------------------------------------------------------ */

static void check_kind(const kube_store_kind *k, const char *file, const char *name) {
        json_object *o = load(file);
        void *obj = NULL;
        assert_int_equal(k->decode(o, &obj), 0);
        assert_string_equal(k->meta(obj)->name, name);
        assert_true(k->mem(obj) > 64);
        k->free(obj);
        json_object_put(o);
}

static void test_kinds(void **state) {
        check_kind(&model_kind_namespace, "namespace.json", "project-a");
        check_kind(&model_kind_service_account, "sa-openshift-416.json", "default");
        check_kind(&model_kind_secret, "secret-dockerconfigjson.json", "quay-creds");
        check_kind(&model_kind_secret_meta, "secret-partial-metadata.json", "quay-creds");
        check_kind(&model_kind_role_binding, "rolebinding.json", "ppol-team-a-pulls-project-a");
        check_kind(&model_kind_policy, "pullpolicy-example.json", "team-a-pulls");
}

static void test_indexes_with_store(void **state) {
        kube_store *s = NULL;
        assert_int_equal(kube_store_new(&model_kind_service_account, &s), 0);
        assert_int_equal(
            kube_store_add_index(s, MODEL_INDEX_LINKED_POLICIES, model_index_sa_linked_policies),
            0);
        json_object *a = load("sa-openshift-pre416.json"), *b = load("sa-openshift-416.json");
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_ADDED, a), 1);
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_ADDED, b), 1);
        assert_int_equal(
            kube_store_count_indexed(s, MODEL_INDEX_LINKED_POLICIES, "project-b/team-a-pulls"), 1);
        const model_sa *sa = kube_store_get(s, "project-a", "builder");
        assert_non_null(sa);
        assert_true(model_sa_provisioned(sa));
        kube_store_free(s);
        json_object_put(a);
        json_object_put(b);

        assert_int_equal(kube_store_new(&model_kind_role_binding, &s), 0);
        assert_int_equal(
            kube_store_add_index(s, MODEL_INDEX_MARKED_POLICY, model_index_marked_policy), 0);
        json_object *rb = load("rolebinding.json");
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_ADDED, rb), 1);
        assert_int_equal(
            kube_store_count_indexed(s, MODEL_INDEX_MARKED_POLICY, "project-b/team-a-pulls"), 1);
        json_object_put(rb);
        /* an unmarked object has no index value */
        rb = parse("{\"metadata\":{\"name\":\"x\",\"namespace\":\"project-b\",\"labels\":"
                   "{\"pullpolicy.io/policy\":\"team-a-pulls\",\"pullpolicy.io/policy-namespace\":"
                   "\"project-b\"}},\"roleRef\":{\"name\":\"r\"}}");
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_ADDED, rb), 1);
        assert_int_equal(
            kube_store_count_indexed(s, MODEL_INDEX_MARKED_POLICY, "project-b/team-a-pulls"), 1);
        json_object_put(rb);
        kube_store_free(s);
}

/* Builds {"metadata":{<field>: n entries}} or, for "secrets", a ServiceAccount's list. */
static json_object *with_n(const char *field, int n) {
        json_object *o = json_object_new_object(), *md = json_object_new_object();
        json_object_object_add(md, "name", json_object_new_string("x"));
        bool map = streq(field, "labels") || streq(field, "annotations");
        json_object *v = map ? json_object_new_object() : json_object_new_array();
        for (int i = 0; i < n; i++) {
                char k[32];
                snprintf(k, sizeof(k), "k%d", i);
                if (map) {
                        json_object_object_add(v, k, json_object_new_string("v"));
                } else if (streq(field, "ownerReferences") || streq(field, "secrets")) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "name", json_object_new_string(k));
                        json_object_array_add(v, e);
                } else
                        json_object_array_add(v, json_object_new_string(k));
        }
        json_object_object_add(streq(field, "secrets") ? o : md, field, v);
        json_object_object_add(o, "metadata", md);
        return o;
}

static void test_refusal_reason(void **state) {
        static const struct {
                const char *field;
                int n;
                const char *want;
        } cases[] = {
            {"finalizers", 65, "too_many_finalizers"},
            {"ownerReferences", 65, "too_many_owner_references"},
            {"labels", 1025, "too_many_labels"},
            {"annotations", 1025, "too_many_annotations"},
            {"secrets", 1025, "too_many_secret_references"},
            {"finalizers", 64, "over_limit"}, /* none of those: another limit */
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                json_object *o = with_n(cases[i].field, cases[i].n);
                assert_string_equal(model_refusal_reason(o, -E2BIG), cases[i].want);
                assert_string_equal(model_refusal_reason(o, -EINVAL), "malformed");
                json_object_put(o);
        }
        assert_string_equal(model_refusal_reason(NULL, -E2BIG), "over_limit");

        /* The kinds refuse exactly these: the reasons name real refusals. */
        model_sa *sa = NULL;
        json_object *o = with_n("secrets", 1025);
        assert_int_equal(model_sa_decode(o, &sa), -E2BIG);
        json_object_put(o);
        o = with_n("finalizers", 65);
        assert_int_equal(model_sa_decode(o, &sa), -E2BIG);
        json_object_put(o);
        assert_null(sa);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_namespace),
            cmocka_unit_test(test_sa_openshift_416),
            cmocka_unit_test(test_sa_openshift_pre416),
            cmocka_unit_test(test_sa_refs_plain),
            cmocka_unit_test(test_sa_provisioning_forms),
            cmocka_unit_test(test_sa_provisioned_long_name),
            cmocka_unit_test(test_sa_provisioned_current_416_sequence),
            cmocka_unit_test(test_sa_malformed_links),
            cmocka_unit_test(test_links_record),
            cmocka_unit_test(test_links_record_parse_lenient_parts),
            cmocka_unit_test(test_links_record_limits),
            cmocka_unit_test(test_merged_record),
            cmocka_unit_test(test_secret_dockerconfigjson),
            cmocka_unit_test(test_secret_rotation_changes_hashes),
            cmocka_unit_test(test_secret_dockercfg),
            cmocka_unit_test(test_secret_invalid_payloads),
            cmocka_unit_test(test_secret_metadata_only),
            cmocka_unit_test(test_secret_payload_auths),
            cmocka_unit_test(test_secret_belongs_to_sa),
            cmocka_unit_test(test_secret_merged_annotation),
            cmocka_unit_test(test_role_binding),
            cmocka_unit_test(test_policy),
            cmocka_unit_test(test_kinds),
            cmocka_unit_test(test_indexes_with_store),
            cmocka_unit_test(test_refusal_reason),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
