/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kube_selector_parse() on arbitrary JSON, then everything a selector does.
 *
 * The input is one JSON object: the selector itself (matchLabels,
 * matchExpressions) plus, optionally, "labels": {k: v} (ignored by the parser
 * like any unknown member), the label set to match against. Checks:
 *   - every requirement and value is valid, values sorted and unique, limits kept;
 *     no string it read held a NUL byte (C would see it cut short);
 *   - kube_selector_matches() agrees with a reference evaluation done straight
 *     on the input JSON (on the given labels, no labels, and labels built
 *     from the selector's own first values);
 *   - kube_selector_to_string() parses back into the same requirements, and
 *     kube_selector_to_query() percent-decodes to the same text;
 *   - a copy is equal and matches alike; a parse error has a message.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "kube/labels.h"

static int lb_cmp_kv(const void *a, const void *b) {
        return strcmp(((const kube_kv *)a)->key, ((const kube_kv *)b)->key);
}

/* A kube_kvs over borrowed strings (free only .items). */
static kube_kvs lb_kvs_from(json_object *map) {
        kube_kvs kvs = {0};
        if (!map || !json_object_is_type(map, json_type_object)) return kvs;
        size_t n = (size_t)json_object_object_length(map);
        if (n == 0) return kvs;
        kvs.items = calloc(n, sizeof(kube_kv));
        if (!kvs.items) abort();
        json_object_object_foreach(map, k, v) {
                if (!json_object_is_type(v, json_type_string)) continue;
                kvs.items[kvs.n++] = (kube_kv){k, (char *)json_object_get_string(v)};
        }
        qsort(kvs.items, kvs.n, sizeof(kube_kv), lb_cmp_kv);
        return kvs;
}

static const char *lb_label(const kube_kvs *l, const char *k) {
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->items[i].key, k) == 0) return l->items[i].value;
        return NULL;
}

static bool lb_in_json(json_object *vals, const char *v) {
        if (!vals || !json_object_is_type(vals, json_type_array)) return false;
        size_t n = json_object_array_length(vals);
        for (size_t i = 0; i < n; i++)
                if (strcmp(json_object_get_string(json_object_array_get_idx(vals, i)), v) == 0)
                        return true;
        return false;
}

/* The selector's meaning, read from the (successfully parsed) JSON by linear search. */
static bool lb_ref_matches(json_object *sel, const kube_kvs *labels) {
        json_object *ml = NULL, *me = NULL;
        json_object_object_get_ex(sel, "matchLabels", &ml);
        json_object_object_get_ex(sel, "matchExpressions", &me);
        if (ml && json_object_is_type(ml, json_type_object)) {
                json_object_object_foreach(ml, k, v) {
                        const char *have = lb_label(labels, k);
                        if (!have || strcmp(have, json_object_get_string(v)) != 0) return false;
                }
        }
        size_t n =
            me && json_object_is_type(me, json_type_array) ? json_object_array_length(me) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(me, i), *k, *op, *vals = NULL;
                json_object_object_get_ex(e, "key", &k);
                json_object_object_get_ex(e, "operator", &op);
                json_object_object_get_ex(e, "values", &vals);
                const char *have = lb_label(labels, json_object_get_string(k));
                const char *o = json_object_get_string(op);
                bool ok = strcmp(o, "In") == 0       ? have && lb_in_json(vals, have)
                          : strcmp(o, "NotIn") == 0  ? !have || !lb_in_json(vals, have)
                          : strcmp(o, "Exists") == 0 ? have != NULL
                                                     : have == NULL;
                if (!ok) return false;
        }
        return true;
}

/* Every string the parser read is whole: none holds a NUL byte (C would cut it short). */
static void lb_check_no_nul(json_object *sel) {
        json_object *ml = NULL, *me = NULL;
        json_object_object_get_ex(sel, "matchLabels", &ml);
        json_object_object_get_ex(sel, "matchExpressions", &me);
        if (ml && json_object_is_type(ml, json_type_object)) {
                json_object_object_foreach(ml, k, v) {
                        (void)k;
                        FUZZ_CHECK(!fuzz_json_has_nul(v));
                }
        }
        size_t n =
            me && json_object_is_type(me, json_type_array) ? json_object_array_length(me) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(me, i);
                FUZZ_CHECK(!fuzz_json_has_nul(json_object_object_get(e, "key")));
                FUZZ_CHECK(!fuzz_json_has_nul(json_object_object_get(e, "operator")));
                json_object *vals = json_object_object_get(e, "values");
                size_t nv = vals && json_object_is_type(vals, json_type_array)
                                ? json_object_array_length(vals)
                                : 0;
                for (size_t j = 0; j < nv; j++)
                        FUZZ_CHECK(!fuzz_json_has_nul(json_object_array_get_idx(vals, j)));
        }
}

static void lb_check_reqs(const kube_selector *s) {
        FUZZ_CHECK(s->n_reqs <= KUBE_SELECTOR_LABELS_MAX + KUBE_SELECTOR_EXPRS_MAX);
        for (size_t i = 0; i < s->n_reqs; i++) {
                const kube_requirement *r = &s->reqs[i];
                FUZZ_CHECK(kube_label_key_validate(r->key) == 0);
                if (i > 0) FUZZ_CHECK(strcmp(s->reqs[i - 1].key, r->key) <= 0);
                FUZZ_CHECK(r->n_values <= KUBE_SELECTOR_VALUES_MAX);
                switch (r->op) {
                case KUBE_SELECTOR_EQUALS:
                        FUZZ_CHECK(r->n_values == 1);
                        break;
                case KUBE_SELECTOR_IN:
                case KUBE_SELECTOR_NOT_IN:
                        FUZZ_CHECK(r->n_values >= 1);
                        break;
                case KUBE_SELECTOR_EXISTS:
                case KUBE_SELECTOR_DOES_NOT_EXIST:
                        FUZZ_CHECK(r->n_values == 0);
                        break;
                default:
                        FUZZ_CHECK(!"unknown operator");
                }
                for (size_t j = 0; j < r->n_values; j++) {
                        FUZZ_CHECK(kube_label_value_validate(r->values[j]) == 0);
                        if (j > 0) FUZZ_CHECK(strcmp(r->values[j - 1], r->values[j]) < 0);
                }
        }
}

/* Parses the printed form back: "k=v", "k in (a,b)", "k notin (a)", "k", "!k". */
static void lb_check_text(const kube_selector *s, const char *text) {
        const char *p = text;
        for (size_t i = 0; i < s->n_reqs; i++) {
                const kube_requirement *r = &s->reqs[i];
                if (i > 0) {
                        FUZZ_CHECK(*p == ',');
                        p++;
                }
                bool neg = *p == '!';
                if (neg) p++;
                size_t kl = strlen(r->key);
                FUZZ_CHECK(strncmp(p, r->key, kl) == 0);
                p += kl;
                switch (r->op) {
                case KUBE_SELECTOR_EQUALS: {
                        FUZZ_CHECK(!neg && *p == '=');
                        p++;
                        size_t vl = strlen(r->values[0]);
                        FUZZ_CHECK(strncmp(p, r->values[0], vl) == 0);
                        p += vl;
                        break;
                }
                case KUBE_SELECTOR_IN:
                case KUBE_SELECTOR_NOT_IN: {
                        const char *w = r->op == KUBE_SELECTOR_IN ? " in (" : " notin (";
                        FUZZ_CHECK(!neg && strncmp(p, w, strlen(w)) == 0);
                        p += strlen(w);
                        for (size_t j = 0; j < r->n_values; j++) {
                                if (j > 0) {
                                        FUZZ_CHECK(*p == ',');
                                        p++;
                                }
                                size_t vl = strlen(r->values[j]);
                                FUZZ_CHECK(strncmp(p, r->values[j], vl) == 0);
                                p += vl;
                        }
                        FUZZ_CHECK(*p == ')');
                        p++;
                        break;
                }
                case KUBE_SELECTOR_EXISTS:
                        FUZZ_CHECK(!neg);
                        break;
                case KUBE_SELECTOR_DOES_NOT_EXIST:
                        FUZZ_CHECK(neg);
                        break;
                }
                /* the requirement ends here */
                FUZZ_CHECK(*p == 0 || *p == ',');
        }
        FUZZ_CHECK(*p == 0);
}

static int lb_hex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void lb_check_query(const char *text, const char *q) {
        size_t n = strlen(q);
        char *d = malloc(n + 1), *o = d;
        if (!d) abort();
        for (size_t i = 0; i < n; i++) {
                if (q[i] != '%') {
                        FUZZ_CHECK(q[i] != ' ' && q[i] != ',' && q[i] != '=' && q[i] != '(' &&
                                   q[i] != ')' && q[i] != '!' && q[i] != '/');
                        *o++ = q[i];
                        continue;
                }
                FUZZ_CHECK(i + 2 < n);
                int h = lb_hex(q[i + 1]), l = lb_hex(q[i + 2]);
                FUZZ_CHECK(h >= 0 && l >= 0);
                *o++ = (char)(h << 4 | l);
                i += 2;
        }
        *o = 0;
        FUZZ_CHECK(strcmp(d, text) == 0);
        free(d);
}

static void lb_check_matches(const kube_selector *s, const kube_selector *c, json_object *sel,
                             const kube_kvs *labels) {
        bool want = lb_ref_matches(sel, labels);
        FUZZ_CHECK(kube_selector_matches(s, labels) == want);
        if (c) FUZZ_CHECK(kube_selector_matches(c, labels) == want);
}

int fuzz_labels_one(const uint8_t *data, size_t size) {
        json_object *obj = fuzz_json(data, size);
        if (!obj) return 0;

        kube_selector *s = NULL;
        char *err = NULL;
        int r = kube_selector_parse(obj, &s, &err);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(s == NULL);
                if (r != -ENOMEM) FUZZ_CHECK(err != NULL && strchr(err, '\n') == NULL);
                free(err);
                json_object_put(obj);
                return 0;
        }
        FUZZ_CHECK(r == 0 && s != NULL && err == NULL);
        lb_check_reqs(s);
        lb_check_no_nul(obj);
        FUZZ_CHECK(kube_selector_is_empty(s) == (s->n_reqs == 0));

        kube_selector *c = NULL;
        r = kube_selector_copy(s, &c);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);

        char *text = NULL, *q = NULL;
        r = kube_selector_to_string(s, &text);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                lb_check_text(s, text);
                if (c) {
                        char *t2 = NULL;
                        if (kube_selector_to_string(c, &t2) == 0) FUZZ_CHECK(strcmp(text, t2) == 0);
                        free(t2);
                }
                if (kube_selector_to_query(s, &q) == 0) lb_check_query(text, q);
        }

        json_object *lj = NULL;
        json_object_object_get_ex(obj, "labels", &lj);
        kube_kvs given = lb_kvs_from(lj);
        lb_check_matches(s, c, obj, &given);
        kube_kvs none = {0};
        lb_check_matches(s, c, obj, &none);
        FUZZ_CHECK(kube_selector_matches(s, NULL) == kube_selector_matches(s, &none));
        /* labels that satisfy the equality and In requirements, if the selector allows */
        kube_kvs own = {0};
        if (s->n_reqs) {
                own.items = calloc(s->n_reqs, sizeof(kube_kv));
                if (!own.items) abort();
                for (size_t i = 0; i < s->n_reqs; i++) {
                        const kube_requirement *rq = &s->reqs[i];
                        if (rq->n_values == 0 || rq->op == KUBE_SELECTOR_NOT_IN) continue;
                        if (own.n && strcmp(own.items[own.n - 1].key, rq->key) == 0) continue;
                        own.items[own.n++] = (kube_kv){rq->key, rq->values[0]};
                }
        }
        lb_check_matches(s, c, obj, &own);
        FUZZ_CHECK(!kube_selector_matches(NULL, &own));

        free(own.items);
        free(given.items);
        free(text);
        free(q);
        kube_selector_free(c);
        FUZZ_CHECK(kube_selector_free(s) == NULL);
        json_object_put(obj);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_labels_one(data, size);
}
#endif
