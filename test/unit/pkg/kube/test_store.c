/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kube/store.h"
#include "util/macro.h"

/* A slim ServiceAccount as the controller would define it: metadata first. */
typedef struct test_sa {
        kube_meta meta;
        char **secrets; /* names in .secrets and .imagePullSecrets */
        size_t n_secrets;
} test_sa;

static void sa_free(void *p) {
        test_sa *sa = p;
        if (!sa) return;
        kube_meta_done(&sa->meta);
        for (size_t i = 0; i < sa->n_secrets; i++) free(sa->secrets[i]);
        free(sa->secrets);
        free(sa);
}

static int add_names(test_sa *sa, json_object *obj, const char *field) {
        json_object *a;
        if (!json_object_object_get_ex(obj, field, &a) || !a) return 0;
        if (!json_object_is_type(a, json_type_array)) return -EINVAL;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *name;
                if (!json_object_object_get_ex(json_object_array_get_idx(a, i), "name", &name))
                        return -EINVAL;
                char **v = realloc(sa->secrets, (sa->n_secrets + 1) * sizeof(char *));
                if (!v) return -ENOMEM;
                sa->secrets = v;
                sa->secrets[sa->n_secrets] = strdup(json_object_get_string(name));
                if (!sa->secrets[sa->n_secrets]) return -ENOMEM;
                sa->n_secrets++;
        }
        return 0;
}

static int sa_decode(json_object *obj, void **ret) {
        test_sa *sa = calloc(1, sizeof(test_sa));
        if (!sa) return -ENOMEM;
        int r = kube_meta_decode(obj, &sa->meta);
        if (r < 0) {
                free(sa);
                return r;
        }
        if ((r = add_names(sa, obj, "secrets")) < 0 ||
            (r = add_names(sa, obj, "imagePullSecrets")) < 0) {
                sa_free(sa);
                return r;
        }
        *ret = sa;
        return 0;
}

static const kube_meta *sa_meta(const void *obj) {
        return &((const test_sa *)obj)->meta;
}

static const kube_meta_core *sa_core(const void *obj) {
        return &sa_meta(obj)->core;
}

static size_t sa_mem(const void *obj) {
        const test_sa *sa = obj;
        size_t sz = sizeof(*sa) + kube_meta_mem(&sa->meta) + sa->n_secrets * sizeof(char *);
        for (size_t i = 0; i < sa->n_secrets; i++) sz += strlen(sa->secrets[i]) + 1;
        return sz;
}

static const kube_store_kind sa_kind = {
    .name = "serviceaccounts",
    .decode = sa_decode,
    .free = sa_free,
    .meta = sa_core,
    .mem = sa_mem,
};

static int index_fail_mode;

/* Index: the secret names an SA references. */
static int sa_by_secret(const void *obj, char ***ret_values, size_t *ret_n) {
        const test_sa *sa = obj;
        if (index_fail_mode && kube_meta_label(&sa->meta, "index-fails")) return -EIO;
        char **v = calloc(sa->n_secrets ? sa->n_secrets : 1, sizeof(char *));
        if (!v) return -ENOMEM;
        for (size_t i = 0; i < sa->n_secrets; i++) {
                v[i] = strdup(sa->secrets[i]);
                if (!v[i]) {
                        for (size_t j = 0; j < i; j++) free(v[j]);
                        free(v);
                        return -ENOMEM;
                }
        }
        *ret_values = v;
        *ret_n = sa->n_secrets;
        return 0;
}

/* Index: the value of label "team", if any. */
static int sa_by_team(const void *obj, char ***ret_values, size_t *ret_n) {
        const char *t = kube_meta_label(&((const test_sa *)obj)->meta, "team");
        *ret_values = NULL;
        *ret_n = 0;
        if (!t) return 0;
        char **v = malloc(sizeof(char *));
        assert_non_null(v);
        v[0] = strdup(t);
        *ret_values = v;
        *ret_n = 1;
        return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */

/* {"metadata":{"name":..,"namespace":..,"resourceVersion":..,"labels":{"team":..}},
 *  "secrets":[{"name":s}...]}; secrets is a comma-separated list or NULL. */
static json_object *mk_sa(const char *ns, const char *name, const char *rv, const char *team,
                          const char *secrets) {
        json_object *o = json_object_new_object(), *md = json_object_new_object();
        json_object_object_add(md, "name", json_object_new_string(name));
        if (ns) json_object_object_add(md, "namespace", json_object_new_string(ns));
        if (rv) json_object_object_add(md, "resourceVersion", json_object_new_string(rv));
        if (team) {
                json_object *l = json_object_new_object();
                json_object_object_add(l, "team", json_object_new_string(team));
                json_object_object_add(md, "labels", l);
        }
        json_object_object_add(o, "metadata", md);
        if (secrets) {
                json_object *a = json_object_new_array();
                char *dup = strdup(secrets), *save = NULL;
                for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "name", json_object_new_string(t));
                        json_object_array_add(a, e);
                }
                free(dup);
                json_object_object_add(o, "secrets", a);
        }
        return o;
}

static int apply(kube_store *s, kube_event_type t, json_object *o) {
        int r = kube_store_apply(s, t, o);
        json_object_put(o);
        return r;
}

/* The handler's record: one line per call, "TYPE key old_rv->new_rv". */
typedef struct ev_log {
        char lines[64][128];
        size_t n;
        kube_store *store; /* for the reentrancy test */
        int reentry_result;
} ev_log;

static const char *rv_of(const void *obj) {
        const char *rv = obj ? sa_meta(obj)->resource_version : NULL;
        return rv ? rv : "-";
}

static void record(void *ud, kube_event_type type, const void *old_obj, const void *new_obj) {
        ev_log *log = ud;
        const void *any = new_obj ? new_obj : old_obj;
        _cleanup_free_ char *key = kube_meta_key(sa_meta(any));
        /* both versions must be readable here; valgrind catches a freed one */
        if (old_obj && new_obj) assert_string_equal(sa_meta(old_obj)->name, sa_meta(new_obj)->name);
        assert_true(log->n < ARRAY_SIZE(log->lines));
        snprintf(log->lines[log->n++], sizeof log->lines[0], "%s %s %s->%s",
                 kube_event_type_to_string(type), key, rv_of(old_obj), rv_of(new_obj));
        if (log->store) log->reentry_result = kube_store_apply(log->store, KUBE_EVENT_ADDED, NULL);
}

static void assert_log(ev_log *log, const char *const *want, size_t n) {
        for (size_t i = 0; i < n && i < log->n; i++) assert_string_equal(log->lines[i], want[i]);
        assert_int_equal(log->n, n);
        log->n = 0;
}
#define ASSERT_LOG(log, ...)                                                                       \
        do {                                                                                       \
                const char *const _w[] = {__VA_ARGS__};                                            \
                assert_log(log, _w, ARRAY_SIZE(_w));                                               \
        } while (0)
#define ASSERT_LOG_EMPTY(log) assert_int_equal((log)->n, 0)

static const char *rv_get(kube_store *s, const char *ns, const char *name) {
        const void *o = kube_store_get(s, ns, name);
        return o ? rv_of(o) : NULL;
}

/* Keys of kube_store_list(), joined with spaces. */
static char *list_keys(kube_store *s, const char *index, const char *value) {
        const void **objs = NULL;
        size_t n = 0;
        assert_int_equal(kube_store_list(s, index, value, &objs, &n), 0);
        char *out = calloc(1, 1);
        size_t len = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *k = kube_meta_key(sa_meta(objs[i]));
                out = realloc(out, len + strlen(k) + 2);
                len += (size_t)sprintf(out + len, "%s%s", i ? " " : "", k);
        }
        free(objs);
        return out;
}

static void assert_keys(kube_store *s, const char *index, const char *value, const char *want) {
        _cleanup_free_ char *got = list_keys(s, index, value);
        assert_string_equal(got, want);
        /* foreach_indexed and count agree with the list */
        size_t n = 0;
        for (const char *p = want; *p; p++)
                if (*p == ' ') n++;
        if (*want) n++;
        if (index) assert_int_equal(kube_store_count_indexed(s, index, value), n);
}

static kube_store *new_store(ev_log *log) {
        kube_store *s = NULL;
        assert_int_equal(kube_store_new(&sa_kind, &s), 0);
        if (log) kube_store_set_handler(s, record, log);
        return s;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(kube_store *, kube_store_free);
#define _cleanup_store_ _cleanup_(kube_store_freep)

/* ---- tests ------------------------------------------------------------------------ */

static void test_add_update_delete(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);
        kube_store_stats st;

        assert_false(kube_store_has_synced(s));
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns1", "a", "1", NULL, NULL)), 1);
        ASSERT_LOG(&log, "ADDED ns1/a -->1");
        assert_string_equal(rv_get(s, "ns1", "a"), "1");
        assert_int_equal(kube_store_count(s), 1);

        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("ns1", "a", "2", NULL, NULL)), 1);
        ASSERT_LOG(&log, "MODIFIED ns1/a 1->2");
        assert_string_equal(rv_get(s, "ns1", "a"), "2");

        /* an older resourceVersion is still applied: they are opaque */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("ns1", "a", "10", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("ns1", "a", "9", NULL, NULL)), 1);
        ASSERT_LOG(&log, "MODIFIED ns1/a 2->10", "MODIFIED ns1/a 10->9");
        assert_string_equal(rv_get(s, "ns1", "a"), "9");

        /* ADDED for a present key is a modification of the store; MODIFIED for an absent one an
         * addition */
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns1", "a", "11", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa(NULL, "cluster", "3", NULL, NULL)), 1);
        ASSERT_LOG(&log, "MODIFIED ns1/a 9->11", "ADDED cluster -->3");
        assert_non_null(kube_store_get(s, NULL, "cluster"));
        assert_non_null(kube_store_get_by_key(s, "cluster"));
        assert_null(kube_store_get(s, "ns1", "cluster"));

        /* deletion by the key of the event's object, whatever its version */
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("ns1", "a", "12", NULL, NULL)), 1);
        ASSERT_LOG(&log, "DELETED ns1/a 11->-");
        assert_null(kube_store_get(s, "ns1", "a"));
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("ns1", "a", "12", NULL, NULL)), 0);
        assert_int_equal(apply(s, KUBE_EVENT_BOOKMARK, mk_sa("ns1", "x", "13", NULL, NULL)), 0);
        ASSERT_LOG_EMPTY(&log);
        assert_int_equal(kube_store_count(s), 1);

        /* refused objects and event types */
        assert_int_equal(apply(s, KUBE_EVENT_ERROR, mk_sa("ns1", "x", "1", NULL, NULL)), -EINVAL);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, json_tokener_parse("{\"metadata\":{}}")),
                         -EINVAL);
        /* one the kind refuses but with a name: skipped, no error (see test_refused_objects) */
        assert_int_equal(apply(s, KUBE_EVENT_ADDED,
                               json_tokener_parse("{\"metadata\":{\"name\":\"x\"},\"secrets\":5}")),
                         0);
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, json_tokener_parse("{}")), -EINVAL);
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_ADDED, NULL), -EINVAL);
        ASSERT_LOG_EMPTY(&log);
        assert_int_equal(kube_store_count(s), 1);

        kube_store_get_stats(s, &st);
        assert_int_equal(st.objects, 1);
        assert_int_equal(st.invalid, 4);
        assert_int_equal(st.added, 2);
        assert_int_equal(st.modified, 4);
        assert_int_equal(st.deleted, 1);
        assert_true(st.mem > 0);
        assert_int_equal(st.mem, kube_store_mem(s));
}

static void test_replace_diff(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "c", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "a", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "b", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "e", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "n", NULL, NULL, NULL)), 1);
        log.n = 0;

        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("ns", "d", "1", NULL, NULL)); /* new */
        json_object_array_add(items, mk_sa("ns", "c", "2", NULL, NULL)); /* changed */
        json_object_array_add(items, mk_sa("ns", "b", "1", NULL, NULL)); /* same */
        json_object_array_add(items, json_tokener_parse("{\"metadata\":{\"name\":5}}"));
        json_object_array_add(items, mk_sa("ns", "f", "1", NULL, NULL)); /* new, then again */
        json_object_array_add(items, mk_sa("ns", "f", "2", NULL, NULL));
        json_object_array_add(items, mk_sa("ns", "n", NULL, NULL, NULL)); /* no rv: changed */
        assert_false(kube_store_has_synced(s));
        assert_int_equal(kube_store_replace(s, items), 6);
        json_object_put(items);
        /* deletions first, sorted; then the rest in list order; f as its later item */
        ASSERT_LOG(&log, "DELETED ns/a 1->-", "DELETED ns/e 1->-", "ADDED ns/d -->1",
                   "MODIFIED ns/c 1->2", "ADDED ns/f -->2", "MODIFIED ns/n -->-");
        assert_true(kube_store_has_synced(s));
        assert_keys(s, NULL, NULL, "ns/b ns/c ns/d ns/f ns/n");

        /* the same list again changes nothing but the version-less object */
        items = json_object_new_array();
        json_object_array_add(items, mk_sa("ns", "b", "1", NULL, NULL));
        json_object_array_add(items, mk_sa("ns", "c", "2", NULL, NULL));
        json_object_array_add(items, mk_sa("ns", "d", "1", NULL, NULL));
        json_object_array_add(items, mk_sa("ns", "f", "2", NULL, NULL));
        assert_int_equal(kube_store_replace(s, items), 1);
        ASSERT_LOG(&log, "DELETED ns/n -->-");
        assert_int_equal(kube_store_replace(s, items), 0);
        ASSERT_LOG_EMPTY(&log);
        json_object_put(items);

        /* an empty list deletes everything */
        items = json_object_new_array();
        assert_int_equal(kube_store_replace(s, items), 4);
        ASSERT_LOG(&log, "DELETED ns/b 1->-", "DELETED ns/c 2->-", "DELETED ns/d 1->-",
                   "DELETED ns/f 2->-");
        json_object_put(items);
        assert_int_equal(kube_store_count(s), 0);

        assert_int_equal(kube_store_replace(s, NULL), -EINVAL);
        items = json_object_new_object();
        assert_int_equal(kube_store_replace(s, items), -EINVAL);
        json_object_put(items);
}

/* Checks an index against a brute-force scan of every object. */
typedef struct scan {
        const char *value;
        size_t n;
} scan;

static int count_secret_refs(const void *obj, void *ud) {
        scan *sc = ud;
        const test_sa *sa = obj;
        for (size_t i = 0; i < sa->n_secrets; i++)
                if (streq(sa->secrets[i], sc->value)) {
                        sc->n++;
                        break;
                }
        return 0;
}

static int check_member_has(const void *obj, void *ud) {
        scan *sc = ud;
        scan one = {sc->value, 0};
        count_secret_refs(obj, &one);
        assert_int_equal(one.n, 1);
        sc->n++;
        return 0;
}

static void assert_secret_index_consistent(kube_store *s, const char *const *values, size_t n) {
        for (size_t i = 0; i < n; i++) {
                scan all = {values[i], 0}, idx = {values[i], 0};
                assert_int_equal(kube_store_foreach(s, count_secret_refs, &all), 0);
                assert_int_equal(
                    kube_store_foreach_indexed(s, "secrets", values[i], check_member_has, &idx), 0);
                assert_int_equal(idx.n, all.n);
                assert_int_equal(kube_store_count_indexed(s, "secrets", values[i]), all.n);
        }
}

static void test_indexes(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);
        static const char *const values[] = {"s1", "s2", "s3", "s4", "dockercfg-a"};

        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), 0);
        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), -EEXIST);
        assert_int_equal(kube_store_add_index(s, KUBE_STORE_INDEX_NAMESPACE, sa_by_secret),
                         -EEXIST);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n1", "a", "1", NULL, "s1,s2,s1")), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n1", "b", "1", NULL, "s2")), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n2", "a", "1", NULL, "s3")), 1);
        assert_keys(s, "secrets", "s1", "n1/a");
        assert_keys(s, "secrets", "s2", "n1/a n1/b");
        assert_keys(s, "secrets", "s3", "n2/a");
        assert_keys(s, "secrets", "s4", "");
        assert_secret_index_consistent(s, values, ARRAY_SIZE(values));

        /* an update that changes index values moves the object */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("n1", "a", "2", NULL, "s3,s4")), 1);
        assert_keys(s, "secrets", "s1", "");
        assert_keys(s, "secrets", "s2", "n1/b");
        assert_keys(s, "secrets", "s3", "n1/a n2/a");
        assert_keys(s, "secrets", "s4", "n1/a");
        assert_secret_index_consistent(s, values, ARRAY_SIZE(values));

        /* delete */
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("n2", "a", "2", NULL, NULL)), 1);
        assert_keys(s, "secrets", "s3", "n1/a");
        assert_secret_index_consistent(s, values, ARRAY_SIZE(values));

        /* replace: values move, vanish and appear */
        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("n1", "a", "3", NULL, "s1"));
        json_object_array_add(items, mk_sa("n1", "b", "1", NULL, "s2"));
        json_object_array_add(items, mk_sa("n3", "c", "1", NULL, "dockercfg-a,s2"));
        assert_int_equal(kube_store_replace(s, items), 2);
        json_object_put(items);
        assert_keys(s, "secrets", "s1", "n1/a");
        assert_keys(s, "secrets", "s2", "n1/b n3/c");
        assert_keys(s, "secrets", "s3", "");
        assert_keys(s, "secrets", "s4", "");
        assert_keys(s, "secrets", "dockercfg-a", "n3/c");
        assert_secret_index_consistent(s, values, ARRAY_SIZE(values));

        /* unknown index */
        assert_int_equal(kube_store_foreach_indexed(s, "nope", "s1", check_member_has, NULL),
                         -ENOENT);
        const void **objs;
        size_t n;
        assert_int_equal(kube_store_list(s, "nope", "x", &objs, &n), -ENOENT);
        assert_int_equal(kube_store_count_indexed(s, "nope", "s1"), 0);
}

/* Random operations, then every index checked against a scan. */
static void test_indexes_random(void **state) {
        _cleanup_store_ kube_store *s = new_store(NULL);
        static const char *const values[] = {"s0", "s1", "s2", "s3", "s4", "s5"};
        unsigned seed = 7;

        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), 0);
        for (int round = 0; round < 3000; round++) {
                seed = seed * 1103515245u + 12345u;
                char name[16], ns[8], rv[16], secrets[64] = "";
                snprintf(name, sizeof name, "sa%u", (seed >> 8) % 40);
                snprintf(ns, sizeof ns, "n%u", (seed >> 16) % 3);
                snprintf(rv, sizeof rv, "%d", round);
                unsigned mask = (seed >> 12) % 64;
                for (int i = 0; i < 6; i++)
                        if (mask & (1u << i)) {
                                size_t l = strlen(secrets);
                                snprintf(secrets + l, sizeof secrets - l, "%ss%d", l ? "," : "", i);
                        }
                unsigned op = (seed >> 4) % 10;
                if (op < 6)
                        assert_int_equal(
                            apply(s, KUBE_EVENT_MODIFIED, mk_sa(ns, name, rv, NULL, secrets)), 1);
                else if (op < 9)
                        assert_true(apply(s, KUBE_EVENT_DELETED, mk_sa(ns, name, rv, NULL, NULL)) >=
                                    0);
                else {
                        /* a relist of a random subset */
                        json_object *items = json_object_new_array();
                        for (int i = 0; i < 10; i++) {
                                seed = seed * 1103515245u + 12345u;
                                char nm[16];
                                snprintf(nm, sizeof nm, "sa%u", (seed >> 8) % 40);
                                json_object_array_add(
                                    items,
                                    mk_sa(ns, nm, rv, NULL, (seed >> 3) & 1 ? "s1,s5" : "s0"));
                        }
                        assert_true(kube_store_replace(s, items) >= 0);
                        json_object_put(items);
                }
                if (round % 100 == 0) assert_secret_index_consistent(s, values, ARRAY_SIZE(values));
        }
        assert_secret_index_consistent(s, values, ARRAY_SIZE(values));
}

static int count_calls(const void *obj, void *ud) {
        (*(int *)ud)++;
        return 0;
}

static void test_namespace_index(void **state) {
        _cleanup_store_ kube_store *s = new_store(NULL);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("b", "x", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("a", "y", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("a", "x", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa(NULL, "a", "1", NULL, NULL)), 1);
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "a", "a/x a/y");
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "b", "b/x");
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "c", "");
        assert_keys(s, NULL, NULL, "a a/x a/y b/x");

        int calls = 0;
        assert_int_equal(kube_store_foreach_in_namespace(s, "a", count_calls, &calls), 0);
        assert_int_equal(calls, 2);
        calls = 0;
        assert_int_equal(kube_store_foreach_in_namespace(s, NULL, count_calls, &calls), 0);
        assert_int_equal(calls, 0);
        assert_int_equal(kube_store_count_indexed(s, KUBE_STORE_INDEX_NAMESPACE, "a"), 2);

        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("a", "y", "1", NULL, NULL)), 1);
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "a", "a/x");
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("a", "x", "1", NULL, NULL)), 1);
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "a", "");
}

/*
 * An index value's members are a small array up to some tens, a table beyond: growing past
 * that size, shrinking back, objects changing their value and an index added to a filled
 * store (whose entries then keep their values apart) keep every lookup exact.
 */
static void test_index_sets_small_and_large(void **state) {
        _cleanup_store_ kube_store *s = new_store(NULL);
        assert_int_equal(kube_store_add_index(s, "team", sa_by_team), 0);
        char want_ns[2048] = "", want_a[2048] = "", name[16];

        for (int i = 0; i < 60; i++) {
                snprintf(name, sizeof name, "sa%02d", i);
                assert_int_equal(
                    apply(s, KUBE_EVENT_ADDED, mk_sa("big", name, "1", i % 3 ? "b" : "a", "s0")),
                    1);
                if (i == 2 || i == 15 || i == 16 || i == 17 || i == 59) {
                        size_t n = kube_store_count_indexed(s, KUBE_STORE_INDEX_NAMESPACE, "big");
                        assert_int_equal(n, (size_t)i + 1);
                }
        }
        for (int i = 0; i < 60; i++) {
                size_t l = strlen(want_ns);
                snprintf(want_ns + l, sizeof want_ns - l, "%sbig/sa%02d", i ? " " : "", i);
                if (i % 3 == 0) {
                        l = strlen(want_a);
                        snprintf(want_a + l, sizeof want_a - l, "%sbig/sa%02d", *want_a ? " " : "",
                                 i);
                }
        }
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "big", want_ns);
        assert_keys(s, "team", "a", want_a);
        assert_int_equal(kube_store_count_indexed(s, "team", "b"), 40);

        /* a later index: the entries' values move to arrays of their own */
        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), 0);
        assert_int_equal(kube_store_count_indexed(s, "secrets", "s0"), 60);

        /* every "b" becomes "a" (MODIFIED moves it between sets), then all but 3 go */
        for (int i = 0; i < 60; i++)
                if (i % 3) {
                        snprintf(name, sizeof name, "sa%02d", i);
                        assert_int_equal(
                            apply(s, KUBE_EVENT_MODIFIED, mk_sa("big", name, "2", "a", "s1")), 1);
                }
        assert_int_equal(kube_store_count_indexed(s, "team", "a"), 60);
        assert_int_equal(kube_store_count_indexed(s, "team", "b"), 0);
        assert_int_equal(kube_store_count_indexed(s, "secrets", "s0"), 20);
        assert_int_equal(kube_store_count_indexed(s, "secrets", "s1"), 40);
        for (int i = 3; i < 60; i++) {
                snprintf(name, sizeof name, "sa%02d", i);
                assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("big", name, "2", NULL, NULL)),
                                 1);
        }
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "big", "big/sa00 big/sa01 big/sa02");
        assert_keys(s, "team", "a", "big/sa00 big/sa01 big/sa02");
        assert_keys(s, "secrets", "s1", "big/sa01 big/sa02");
        assert_keys(s, "secrets", "s0", "big/sa00");

        /* grow again past the small size, then a relist that keeps one */
        for (int i = 3; i < 40; i++) {
                snprintf(name, sizeof name, "sa%02d", i);
                assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("big", name, "3", "c", NULL)), 1);
        }
        assert_int_equal(kube_store_count_indexed(s, "team", "c"), 37);
        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("big", "sa07", "3", "c", NULL));
        assert_int_equal(kube_store_replace(s, items), 39);
        json_object_put(items);
        assert_keys(s, KUBE_STORE_INDEX_NAMESPACE, "big", "big/sa07");
        assert_keys(s, "team", "c", "big/sa07");
        assert_keys(s, "team", "a", "");
}

static int stop_at_second(const void *obj, void *ud) {
        int *calls = ud;
        return ++*calls == 2 ? 42 : 0;
}

/*
 * Entries hold no key: the store composes "namespace/name" from the object. Lookups,
 * the order of kube_store_list() (strcmp of the whole key: '-' sorts before '/') and of
 * a relist's deletions must be those of the composed keys.
 */
static void test_composed_keys(void **state) {
        ev_log log = {0};
        _cleanup_store_ kube_store *s = new_store(&log);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("a", "y", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("a-b", "x", "2", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa(NULL, "zz", "3", NULL, NULL)), 1);
        log.n = 0;
        assert_keys(s, NULL, NULL, "a-b/x a/y zz");
        assert_string_equal(rv_get(s, "a", "y"), "1");
        assert_non_null(kube_store_get_by_key(s, "a-b/x"));
        assert_non_null(kube_store_get_by_key(s, "zz"));
        assert_null(kube_store_get_by_key(s, "a/b/x"));
        assert_null(kube_store_get(s, "a", "b/x"));
        /* a name longer than Kubernetes allows is no key at all */
        char longname[KUBE_META_NAME_MAX + 2];
        memset(longname, 'n', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        assert_null(kube_store_get(s, "a", longname));

        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa(NULL, "zz", "3", NULL, NULL));
        assert_int_equal(kube_store_replace(s, items), 2);
        json_object_put(items);
        ASSERT_LOG(&log, "DELETED a-b/x 2->-", "DELETED a/y 1->-");
        assert_keys(s, NULL, NULL, "zz");
}

static void test_foreach_stops(void **state) {
        _cleanup_store_ kube_store *s = new_store(NULL);
        int calls = 0;
        for (int i = 0; i < 5; i++) {
                char nm[8];
                snprintf(nm, sizeof nm, "s%d", i);
                assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", nm, "1", NULL, NULL)), 1);
        }
        assert_int_equal(kube_store_foreach(s, stop_at_second, &calls), 42);
        assert_int_equal(calls, 2);
        calls = 0;
        assert_int_equal(kube_store_foreach_in_namespace(s, "n", stop_at_second, &calls), 42);
        assert_int_equal(calls, 2);
}

static void test_add_index_later_and_failures(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "a", "1", "red", NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "b", "1", "blue", NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "c", "1", NULL, NULL)), 1);
        size_t mem = kube_store_mem(s);
        assert_int_equal(kube_store_add_index(s, "team", sa_by_team), 0);
        assert_true(kube_store_mem(s) > mem);
        assert_keys(s, "team", "red", "n/a");
        assert_keys(s, "team", "blue", "n/b");
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("n", "c", "2", "red", NULL)), 1);
        assert_keys(s, "team", "red", "n/a n/c");

        /* an index function that fails: the operation fails, the store is unchanged */
        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), 0);
        index_fail_mode = 1;
        log.n = 0;
        json_object *o = mk_sa("n", "a", "9", "green", NULL);
        json_object_object_add(
            json_object_object_get(json_object_object_get(o, "metadata"), "labels"), "index-fails",
            json_object_new_string("1"));
        assert_int_equal(kube_store_apply(s, KUBE_EVENT_MODIFIED, o), -EIO);
        ASSERT_LOG_EMPTY(&log);
        assert_string_equal(rv_get(s, "n", "a"), "1");
        assert_keys(s, "team", "red", "n/a n/c");
        assert_keys(s, "team", "green", "");
        json_object *items = json_object_new_array();
        json_object_array_add(items, o);
        assert_int_equal(kube_store_replace(s, items), -EIO);
        json_object_put(items);
        ASSERT_LOG_EMPTY(&log);
        assert_int_equal(kube_store_count(s), 3);

        /* add_index failing on an existing object leaves no trace */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("n", "b", "2", "blue", "x")), 1);
        index_fail_mode = 0;
        o = mk_sa("n", "b", "3", "blue", "x");
        json_object_object_add(
            json_object_object_get(json_object_object_get(o, "metadata"), "labels"), "index-fails",
            json_object_new_string("1"));
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, o), 1);
        index_fail_mode = 1;
        assert_int_equal(kube_store_add_index(s, "secrets2", sa_by_secret), -EIO);
        index_fail_mode = 0;
        assert_int_equal(kube_store_count_indexed(s, "secrets2", "x"), 0);
        assert_int_equal(kube_store_add_index(s, "secrets2", sa_by_secret), 0);
        assert_keys(s, "secrets2", "x", "n/b");
        assert_int_equal(kube_store_add_index(s, NULL, sa_by_secret), -EINVAL);
        assert_int_equal(kube_store_add_index(s, "x", NULL), -EINVAL);
}

static void test_reentrancy(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);
        log.store = s;
        log.reentry_result = 1;
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "a", "1", NULL, NULL)), 1);
        assert_int_equal(log.reentry_result, -EBUSY);
}

/* mk_sa() with n finalizers (kube_meta takes at most KUBE_META_FINALIZERS_MAX). */
static json_object *mk_sa_finalizers(const char *ns, const char *name, const char *rv, int n) {
        json_object *o = mk_sa(ns, name, rv, NULL, NULL), *md, *a = json_object_new_array();
        assert_true(json_object_object_get_ex(o, "metadata", &md));
        for (int i = 0; i < n; i++) {
                char f[32];
                snprintf(f, sizeof(f), "example.com/f%d", i);
                json_object_array_add(a, json_object_new_string(f));
        }
        json_object_object_add(md, "finalizers", a);
        return o;
}

typedef struct skip_log {
        char lines[8][128];
        size_t n;
        kube_store *store;
        int reentry_result;
} skip_log;

static void record_skip(void *ud, const char *ns, const char *name, int error, json_object *obj) {
        skip_log *l = ud;
        assert_true(l->n < ARRAY_SIZE(l->lines));
        assert_non_null(obj);
        snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s/%s %d", ns ? ns : "-",
                 name ? name : "-", error);
        if (l->store) l->reentry_result = kube_store_apply(l->store, KUBE_EVENT_ADDED, NULL);
}

/*
 * Objects the kind refuses are skipped by watch events as by relists, and a
 * stored older version of one is removed, never kept as its current state.
 */
static void test_refused_objects(void **state) {
        ev_log log = {};
        skip_log skips = {};
        kube_store_stats st;
        _cleanup_store_ kube_store *s = new_store(&log);
        kube_store_set_invalid_handler(s, record_skip, &skips);
        skips.store = s;

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "a", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa_finalizers("n", "b", "1", 64)), 1);
        ASSERT_LOG(&log, "ADDED n/a -->1", "ADDED n/b -->1");

        /* a's new version is refused: a is gone, as if deleted */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa_finalizers("n", "a", "2", 65)), 1);
        ASSERT_LOG(&log, "DELETED n/a 1->-");
        assert_null(kube_store_get(s, "n", "a"));
        assert_int_equal(skips.n, 1);
        assert_string_equal(skips.lines[0], "n/a -7"); /* -E2BIG */
        assert_int_equal(skips.reentry_result, -EBUSY);
        /* refused again, nothing left to drop */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa_finalizers("n", "a", "3", 65)), 0);
        ASSERT_LOG_EMPTY(&log);
        /* a new key refused: nothing stored */
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa_finalizers("n", "c", "1", 100)), 0);
        assert_null(kube_store_get(s, "n", "c"));
        /* a cluster-scoped one, malformed rather than too big */
        assert_int_equal(apply(s, KUBE_EVENT_ADDED,
                               json_tokener_parse("{\"metadata\":{\"name\":\"x\"},"
                                                  "\"secrets\":5}")),
                         0);
        assert_int_equal(skips.n, 4);
        assert_string_equal(skips.lines[3], "-/x -22");
        ASSERT_LOG_EMPTY(&log);

        /* b's deletion carries a state the kind refuses: still deleted, by its key */
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa_finalizers("n", "b", "2", 65)), 1);
        ASSERT_LOG(&log, "DELETED n/b 1->-");
        assert_int_equal(kube_store_count(s), 0);

        /* a relist skips them the same way, and reports them */
        skips.n = 0;
        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("n", "d", "5", NULL, NULL));
        json_object_array_add(items, mk_sa_finalizers("n", "e", "5", 65));
        assert_int_equal(kube_store_replace(s, items), 1);
        json_object_put(items);
        ASSERT_LOG(&log, "ADDED n/d -->5");
        assert_int_equal(skips.n, 1);
        assert_string_equal(skips.lines[0], "n/e -7");

        kube_store_get_stats(s, &st);
        assert_int_equal(st.invalid, 5);
        assert_int_equal(st.objects, 1);
}

static void test_max_objects(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);
        kube_store_set_max_objects(s, 2);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "a", "1", NULL, "s")), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "b", "1", NULL, NULL)), 1);
        log.n = 0;
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "c", "1", NULL, "s")), -E2BIG);
        ASSERT_LOG_EMPTY(&log);
        assert_null(kube_store_get(s, "n", "c"));
        assert_int_equal(kube_store_count_indexed(s, KUBE_STORE_INDEX_NAMESPACE, "n"), 2);
        /* updates of present keys still work */
        assert_int_equal(apply(s, KUBE_EVENT_MODIFIED, mk_sa("n", "b", "2", NULL, NULL)), 1);
        log.n = 0;

        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("n", "x", "1", NULL, NULL));
        json_object_array_add(items, mk_sa("n", "y", "1", NULL, NULL));
        json_object_array_add(items, mk_sa("n", "z", "1", NULL, NULL));
        assert_int_equal(kube_store_replace(s, items), -E2BIG);
        json_object_put(items);
        ASSERT_LOG_EMPTY(&log);
        assert_keys(s, NULL, NULL, "n/a n/b");
        assert_false(kube_store_has_synced(s));

        /* after deleting one, there is room again */
        assert_int_equal(apply(s, KUBE_EVENT_DELETED, mk_sa("n", "a", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("n", "c", "1", NULL, NULL)), 1);
        /* a replace that swaps objects within the limit is fine */
        items = json_object_new_array();
        json_object_array_add(items, mk_sa("n", "x", "1", NULL, NULL));
        json_object_array_add(items, mk_sa("n", "y", "1", NULL, NULL));
        assert_int_equal(kube_store_replace(s, items), 4);
        json_object_put(items);
        assert_keys(s, NULL, NULL, "n/x n/y");
}

static void test_partial_object_metadata(void **state) {
        _cleanup_store_ kube_store *s = new_store(NULL);
        json_object *o = json_tokener_parse(
            "{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/v1\","
            "\"metadata\":{\"name\":\"quay\",\"namespace\":\"b\",\"resourceVersion\":\"5\"}}");
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, o), 1);
        const test_sa *sa = kube_store_get(s, "b", "quay");
        assert_non_null(sa);
        assert_string_equal(sa->meta.resource_version, "5");
        assert_int_equal(sa->n_secrets, 0);
}

static void test_10k_round_trip(void **state) {
        enum { N = 10000, NS = 100 };
        _cleanup_store_ kube_store *s = new_store(NULL);
        size_t empty_mem = kube_store_mem(s);
        char ns[16], name[32], sec[32];

        assert_int_equal(kube_store_add_index(s, "secrets", sa_by_secret), 0);
        json_object *items = json_object_new_array();
        for (int i = 0; i < N; i++) {
                snprintf(ns, sizeof ns, "ns-%d", i % NS);
                snprintf(name, sizeof name, "sa-%d", i);
                snprintf(sec, sizeof sec, "sa-%d-dockercfg,shared", i);
                json_object_array_add(items, mk_sa(ns, name, "1", NULL, sec));
        }
        assert_int_equal(kube_store_replace(s, items), N);
        assert_int_equal(kube_store_count(s), N);
        size_t full_mem = kube_store_mem(s);
        assert_true(full_mem > empty_mem + (size_t)N * 100);

        for (int i = 0; i < N; i++) {
                snprintf(ns, sizeof ns, "ns-%d", i % NS);
                snprintf(name, sizeof name, "sa-%d", i);
                const test_sa *sa = kube_store_get(s, ns, name);
                assert_non_null(sa);
                assert_string_equal(sa->meta.name, name);
                snprintf(sec, sizeof sec, "sa-%d-dockercfg", i);
                assert_int_equal(kube_store_count_indexed(s, "secrets", sec), 1);
        }
        for (int j = 0; j < NS; j++) {
                snprintf(ns, sizeof ns, "ns-%d", j);
                assert_int_equal(kube_store_count_indexed(s, KUBE_STORE_INDEX_NAMESPACE, ns),
                                 N / NS);
        }
        assert_int_equal(kube_store_count_indexed(s, "secrets", "shared"), N);

        const void **objs;
        size_t n;
        assert_int_equal(kube_store_list(s, NULL, NULL, &objs, &n), 0);
        assert_int_equal(n, N);
        for (size_t i = 1; i < n; i++) {
                _cleanup_free_ char *a = kube_meta_key(sa_meta(objs[i - 1]));
                _cleanup_free_ char *b = kube_meta_key(sa_meta(objs[i]));
                assert_true(strcmp(a, b) < 0);
        }
        free(objs);

        /* the same list: no change, no growth */
        assert_int_equal(kube_store_replace(s, items), 0);
        assert_int_equal(kube_store_mem(s), full_mem);
        json_object_put(items);

        /* everything gone: memory back to (about) empty */
        items = json_object_new_array();
        assert_int_equal(kube_store_replace(s, items), N);
        json_object_put(items);
        assert_int_equal(kube_store_count(s), 0);
        assert_int_equal(kube_store_count_indexed(s, "secrets", "shared"), 0);
        assert_true(kube_store_mem(s) < empty_mem + 1024);
}

/* Feeds items to a relist one page of n at a time; each page is freed after its add. */
static void add_pages(kube_store *s, json_object *items, size_t n, size_t *max_staged) {
        size_t len = json_object_array_length(items);
        for (size_t i = 0; i < len; i += n) {
                json_object *page = json_object_new_array();
                for (size_t j = i; j < len && j < i + n; j++)
                        json_object_array_add(page,
                                              json_object_get(json_object_array_get_idx(items, j)));
                assert_int_equal(kube_store_replace_add(s, page), 0);
                json_object_put(page);
                kube_store_stats st;
                kube_store_get_stats(s, &st);
                if (max_staged && st.staged > *max_staged) *max_staged = st.staged;
        }
}

/*
 * Issue 9: a relist fed page by page has kube_store_replace()'s result and
 * order of changes, changes nothing before the commit, and holds only what it
 * changes: an unchanged collection is never held twice.
 */
static void test_replace_paged(void **state) {
        ev_log log = {};
        _cleanup_store_ kube_store *s = new_store(&log);
        kube_store_stats st;
        size_t staged = 0;

        json_object *none = json_object_new_array(); /* borrowed by replace_add */
        assert_int_equal(kube_store_replace_add(s, none), -EINVAL);
        json_object_put(none);
        assert_int_equal(kube_store_replace_commit(s), -EINVAL);
        kube_store_replace_abort(s);
        kube_store_replace_abort(NULL);

        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "c", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "a", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "b", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "e", "1", NULL, NULL)), 1);
        assert_int_equal(apply(s, KUBE_EVENT_ADDED, mk_sa("ns", "n", NULL, NULL, NULL)), 1);
        log.n = 0;

        /* test_replace_diff's list, in pages of 2 */
        json_object *items = json_object_new_array();
        json_object_array_add(items, mk_sa("ns", "d", "1", NULL, NULL)); /* new */
        json_object_array_add(items, mk_sa("ns", "c", "2", NULL, NULL)); /* changed */
        json_object_array_add(items, mk_sa("ns", "b", "1", NULL, NULL)); /* same */
        json_object_array_add(items, json_tokener_parse("{\"metadata\":{\"name\":5}}"));
        json_object_array_add(items, mk_sa("ns", "f", "1", NULL, NULL)); /* new, then again */
        json_object_array_add(items, mk_sa("ns", "f", "2", NULL, NULL));
        json_object_array_add(items, mk_sa("ns", "n", NULL, NULL, NULL)); /* no rv: changed */
        assert_int_equal(kube_store_replace_begin(s), 0);
        add_pages(s, items, 2, &staged);
        json_object_put(items);
        ASSERT_LOG_EMPTY(&log); /* nothing changed before the commit */
        assert_non_null(kube_store_get(s, "ns", "a"));
        kube_store_get_stats(s, &st);
        assert_int_equal(st.staged, 4); /* d, c, f (later item), n: not b */
        assert_int_equal(kube_store_replace_commit(s), 6);
        ASSERT_LOG(&log, "DELETED ns/a 1->-", "DELETED ns/e 1->-", "ADDED ns/d -->1",
                   "MODIFIED ns/c 1->2", "ADDED ns/f -->2", "MODIFIED ns/n -->-");
        assert_keys(s, NULL, NULL, "ns/b ns/c ns/d ns/f ns/n");
        kube_store_get_stats(s, &st);
        assert_int_equal(st.staged, 0);

        /* An unchanged relist of many objects, a page at a time: nothing is held. */
        json_object *many = json_object_new_array();
        for (int i = 0; i < 1000; i++) {
                char name[32];
                snprintf(name, sizeof(name), "m%04d", i);
                json_object_array_add(many, mk_sa("ns", name, "7", NULL, NULL));
        }
        kube_store_set_handler(s, NULL, NULL); /* 1,005 changes: more than the log holds */
        assert_int_equal(kube_store_replace_begin(s), 0);
        staged = 0;
        add_pages(s, many, 100, &staged);
        assert_int_equal(staged, 1000); /* all new: held once, until the commit */
        assert_int_equal(kube_store_replace_commit(s), 1005);
        kube_store_set_handler(s, record, &log);
        assert_int_equal(kube_store_replace_begin(s), 0);
        staged = 0;
        add_pages(s, many, 100, &staged);
        assert_int_equal(staged, 0);
        assert_int_equal(kube_store_replace_commit(s), 0);
        ASSERT_LOG_EMPTY(&log);
        assert_int_equal(kube_store_count(s), 1000);

        /* An abandoned relist changes nothing; a begin drops an unfinished one. */
        assert_int_equal(kube_store_replace_begin(s), 0);
        json_object *page = json_object_new_array();
        json_object_array_add(page, mk_sa("ns", "m0001", "8", NULL, NULL));
        assert_int_equal(kube_store_replace_add(s, page), 0);
        kube_store_replace_abort(s);
        assert_int_equal(kube_store_replace_add(s, page), -EINVAL);
        assert_int_equal(kube_store_replace_begin(s), 0);
        assert_int_equal(kube_store_replace_add(s, page), 0);
        assert_int_equal(kube_store_replace_begin(s), 0);
        kube_store_get_stats(s, &st);
        assert_int_equal(st.staged, 0);
        json_object_put(page);
        add_pages(s, many, 1000, NULL);
        assert_int_equal(kube_store_replace_commit(s), 0);
        ASSERT_LOG_EMPTY(&log);

        /* Over max_objects: -E2BIG at the commit, nothing changed. */
        kube_store_set_max_objects(s, 999);
        assert_int_equal(kube_store_replace_begin(s), 0);
        add_pages(s, many, 300, NULL);
        assert_int_equal(kube_store_replace_commit(s), -E2BIG);
        ASSERT_LOG_EMPTY(&log);
        assert_int_equal(kube_store_count(s), 1000);
        kube_store_set_max_objects(s, 0);
        json_object_put(many);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_add_update_delete),
            cmocka_unit_test(test_replace_diff),
            cmocka_unit_test(test_replace_paged),
            cmocka_unit_test(test_indexes),
            cmocka_unit_test(test_indexes_random),
            cmocka_unit_test(test_namespace_index),
            cmocka_unit_test(test_index_sets_small_and_large),
            cmocka_unit_test(test_composed_keys),
            cmocka_unit_test(test_foreach_stops),
            cmocka_unit_test(test_add_index_later_and_failures),
            cmocka_unit_test(test_reentrancy),
            cmocka_unit_test(test_max_objects),
            cmocka_unit_test(test_refused_objects),
            cmocka_unit_test(test_partial_object_metadata),
            cmocka_unit_test(test_10k_round_trip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
