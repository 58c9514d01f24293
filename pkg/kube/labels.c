/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/labels.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/dns.h"
#include "util/errmsg.h"
#include "util/macro.h"
#include "util/strbuf.h"
#include "util/strv.h"

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])? of len bytes. */
static bool qualified_name_chars_ok(const char *s, size_t len) {
        if (len == 0) return false;
        if (!is_alnum(s[0]) || !is_alnum(s[len - 1])) return false;
        for (size_t i = 1; i + 1 < len; i++)
                if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
        return true;
}

_Static_assert(KUBE_LABEL_PREFIX_MAX == DNS_SUBDOMAIN_MAX, "a key prefix is a DNS-1123 subdomain");

int kube_label_key_validate(const char *key) {
        if (!key) return -EINVAL;
        size_t len = strlen(key);
        const char *slash = memchr(key, '/', len);
        const char *name = key;
        if (slash) {
                if (!dns_subdomain_ok(key, (size_t)(slash - key))) return -EINVAL;
                name = slash + 1;
        }
        size_t nlen = len - (size_t)(name - key);
        if (nlen > KUBE_LABEL_NAME_MAX) return -EINVAL;
        return qualified_name_chars_ok(name, nlen) ? 0 : -EINVAL;
}

int kube_label_value_validate(const char *value) {
        if (!value) return -EINVAL;
        size_t len = strlen(value);
        if (len == 0) return 0;
        if (len > KUBE_LABEL_VALUE_MAX) return -EINVAL;
        return qualified_name_chars_ok(value, len) ? 0 : -EINVAL;
}

static void requirement_done(kube_requirement *r) {
        free(r->key);
        strv_free(r->values, r->n_values);
        *r = (kube_requirement){0};
}

kube_selector *kube_selector_free(kube_selector *s) {
        if (!s) return NULL;
        for (size_t i = 0; i < s->n_reqs; i++) requirement_done(&s->reqs[i]);
        free(s->reqs);
        free(s);
        return NULL;
}

/* Sorts and de-duplicates r->values in place. */
static void values_normalize(kube_requirement *r) {
        r->n_values = strv_sort_uniq(r->values, r->n_values);
}

/* Stable insertion sort by key: requirement lists are short (<= 128). */
static void reqs_sort(kube_selector *s) {
        for (size_t i = 1; i < s->n_reqs; i++) {
                kube_requirement t = s->reqs[i];
                size_t j = i;
                while (j > 0 && strcmp(s->reqs[j - 1].key, t.key) > 0) {
                        s->reqs[j] = s->reqs[j - 1];
                        j--;
                }
                s->reqs[j] = t;
        }
}

/* json-c keeps "\u0000" inside a string; C would silently see only the part before it. */
static bool has_nul(json_object *str) {
        return strlen(json_object_get_string(str)) != (size_t)json_object_get_string_len(str);
}

static bool json_is_null(json_object *o) {
        return o == NULL || json_object_is_type(o, json_type_null);
}

static int parse_match_labels(json_object *ml, kube_selector *s, size_t *cap, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!json_object_is_type(ml, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "matchLabels must be an object");
        if (json_object_object_length(ml) > KUBE_SELECTOR_LABELS_MAX)
                return errmsg_fail(reterr, -E2BIG, "matchLabels: at most %d labels",
                                   KUBE_SELECTOR_LABELS_MAX);
        json_object_object_foreach(ml, key, val) {
                if (!json_object_is_type(val, json_type_string)) {
                        errmsg_quote(key, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchLabels: the value of \"%s\" must be "
                                           "a string",
                                           q);
                }
                const char *v = json_object_get_string(val);
                if (has_nul(val)) {
                        errmsg_quote(key, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchLabels: the value of \"%s\" holds a NUL byte", q);
                }
                if (kube_label_key_validate(key) < 0) {
                        errmsg_quote(key, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchLabels: \"%s\" is not a valid label "
                                           "key",
                                           q);
                }
                if (kube_label_value_validate(v) < 0) {
                        errmsg_quote(v, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchLabels: \"%s\" is not a valid label "
                                           "value (at most 63 letters, digits, '-', '_' or '.', "
                                           "alphanumeric at both ends)",
                                           q);
                }
                if (GROW(s->reqs, *cap, s->n_reqs + 1) < 0) return -ENOMEM;
                kube_requirement *r = &s->reqs[s->n_reqs];
                *r = (kube_requirement){.op = KUBE_SELECTOR_EQUALS};
                r->key = strdup(key);
                r->values = calloc(1, sizeof(char *));
                if (r->values) {
                        r->values[0] = strdup(v);
                        r->n_values = 1;
                }
                s->n_reqs++; /* counted before the checks so that free() sees it */
                if (!r->key || !r->values || !r->values[0]) return -ENOMEM;
        }
        return 0;
}

static int parse_op(const char *s, kube_selector_op *ret) {
        static const struct {
                const char *name;
                kube_selector_op op;
        } ops[] = {
            {"In", KUBE_SELECTOR_IN},
            {"NotIn", KUBE_SELECTOR_NOT_IN},
            {"Exists", KUBE_SELECTOR_EXISTS},
            {"DoesNotExist", KUBE_SELECTOR_DOES_NOT_EXIST},
        };
        for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
                if (streq(ops[i].name, s)) {
                        *ret = ops[i].op;
                        return 0;
                }
        return -EINVAL;
}

static int parse_expression(json_object *e, size_t idx, kube_requirement *r, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        json_object *k = NULL, *op = NULL, *vals = NULL;
        if (!json_object_is_type(e, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "matchExpressions[%zu] must be an object", idx);
        json_object_object_get_ex(e, "key", &k);
        json_object_object_get_ex(e, "operator", &op);
        json_object_object_get_ex(e, "values", &vals);
        if (!k || !json_object_is_type(k, json_type_string))
                return errmsg_fail(reterr, -EINVAL, "matchExpressions[%zu]: key is required", idx);
        const char *key = json_object_get_string(k);
        if (has_nul(k))
                return errmsg_fail(reterr, -EINVAL, "matchExpressions[%zu]: key holds a NUL byte",
                                   idx);
        if (kube_label_key_validate(key) < 0) {
                errmsg_quote(key, q);
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: \"%s\" is not a valid "
                                   "label key",
                                   idx, q);
        }
        if (!op || !json_object_is_type(op, json_type_string))
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: operator is required "
                                   "(In, NotIn, Exists or DoesNotExist)",
                                   idx);
        kube_selector_op o;
        if (has_nul(op))
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: operator holds a NUL byte", idx);
        if (parse_op(json_object_get_string(op), &o) < 0) {
                errmsg_quote(json_object_get_string(op), q);
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: unknown operator \"%s\" "
                                   "(use In, NotIn, Exists or DoesNotExist)",
                                   idx, q);
        }
        size_t n = 0;
        if (!json_is_null(vals)) {
                if (!json_object_is_type(vals, json_type_array))
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchExpressions[%zu]: values must be a "
                                           "list of strings",
                                           idx);
                n = json_object_array_length(vals);
        }
        bool needs_values = o == KUBE_SELECTOR_IN || o == KUBE_SELECTOR_NOT_IN;
        if (needs_values && n == 0)
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: operator %s needs at least "
                                   "one value",
                                   idx, json_object_get_string(op));
        if (!needs_values && n > 0)
                return errmsg_fail(reterr, -EINVAL,
                                   "matchExpressions[%zu]: operator %s must not have "
                                   "values",
                                   idx, json_object_get_string(op));
        if (n > KUBE_SELECTOR_VALUES_MAX)
                return errmsg_fail(reterr, -E2BIG, "matchExpressions[%zu]: at most %d values", idx,
                                   KUBE_SELECTOR_VALUES_MAX);
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(vals, i);
                if (!json_object_is_type(v, json_type_string))
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchExpressions[%zu]: values must be a "
                                           "list of strings",
                                           idx);
                if (has_nul(v))
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchExpressions[%zu]: a value holds a NUL byte", idx);
                if (kube_label_value_validate(json_object_get_string(v)) < 0) {
                        errmsg_quote(json_object_get_string(v), q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "matchExpressions[%zu]: \"%s\" is not a "
                                           "valid label value",
                                           idx, q);
                }
        }

        kube_requirement t = {.op = o};
        t.key = strdup(key);
        if (!t.key) return -ENOMEM;
        if (n > 0) {
                t.values = calloc(n, sizeof(char *));
                if (!t.values) {
                        requirement_done(&t);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < n; i++) {
                        t.values[i] =
                            strdup(json_object_get_string(json_object_array_get_idx(vals, i)));
                        if (!t.values[i]) {
                                requirement_done(&t);
                                return -ENOMEM;
                        }
                        t.n_values++;
                }
        }
        values_normalize(&t);
        *r = t;
        return 0;
}

static int parse_match_expressions(json_object *me, kube_selector *s, size_t *cap, char **reterr) {
        if (!json_object_is_type(me, json_type_array))
                return errmsg_fail(reterr, -EINVAL, "matchExpressions must be a list");
        size_t n = json_object_array_length(me);
        if (n > KUBE_SELECTOR_EXPRS_MAX)
                return errmsg_fail(reterr, -E2BIG, "matchExpressions: at most %d expressions",
                                   KUBE_SELECTOR_EXPRS_MAX);
        for (size_t i = 0; i < n; i++) {
                if (GROW(s->reqs, *cap, s->n_reqs + 1) < 0) return -ENOMEM;
                int r = parse_expression(json_object_array_get_idx(me, i), i, &s->reqs[s->n_reqs],
                                         reterr);
                if (r < 0) return r;
                s->n_reqs++;
        }
        return 0;
}

int kube_selector_parse(json_object *obj, kube_selector **ret, char **reterr) {
        if (!ret) return -EINVAL;
        if (!obj || !json_object_is_type(obj, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "a label selector must be an object");

        _cleanup_(kube_selector_freep) kube_selector *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        size_t cap = 0;
        json_object *ml = NULL, *me = NULL;
        json_object_object_get_ex(obj, "matchLabels", &ml);
        json_object_object_get_ex(obj, "matchExpressions", &me);
        int r;
        if (!json_is_null(ml)) {
                r = parse_match_labels(ml, s, &cap, reterr);
                if (r < 0) return r;
        }
        if (!json_is_null(me)) {
                r = parse_match_expressions(me, s, &cap, reterr);
                if (r < 0) return r;
        }
        reqs_sort(s);
        *ret = TAKE_PTR(s);
        return 0;
}

int kube_selector_copy(const kube_selector *s, kube_selector **ret) {
        if (!s || !ret) return -EINVAL;
        kube_selector *c = calloc(1, sizeof(*c));
        if (!c) return -ENOMEM;
        if (s->n_reqs > 0) {
                c->reqs = calloc(s->n_reqs, sizeof(kube_requirement));
                if (!c->reqs) goto oom;
        }
        for (size_t i = 0; i < s->n_reqs; i++) {
                const kube_requirement *from = &s->reqs[i];
                kube_requirement *to = &c->reqs[i];
                c->n_reqs++;
                to->op = from->op;
                to->key = strdup(from->key);
                if (!to->key) goto oom;
                if (from->n_values == 0) continue;
                to->values = calloc(from->n_values, sizeof(char *));
                if (!to->values) goto oom;
                for (size_t j = 0; j < from->n_values; j++) {
                        to->values[j] = strdup(from->values[j]);
                        if (!to->values[j]) goto oom;
                        to->n_values++;
                }
        }
        *ret = c;
        return 0;
oom:
        kube_selector_free(c);
        return -ENOMEM;
}

bool kube_selector_is_empty(const kube_selector *s) {
        return s && s->n_reqs == 0;
}

static bool value_in(const kube_requirement *r, const char *v) {
        return bsearch(&v, r->values, r->n_values, sizeof(char *), strv_qsort_cmp) != NULL;
}

bool kube_selector_matches(const kube_selector *s, const kube_kvs *labels) {
        if (!s) return false;
        for (size_t i = 0; i < s->n_reqs; i++) {
                const kube_requirement *r = &s->reqs[i];
                const char *v = labels ? kube_kvs_get(labels, r->key) : NULL;
                bool ok;
                switch (r->op) {
                case KUBE_SELECTOR_EQUALS:
                        ok = v && r->n_values == 1 && streq(v, r->values[0]);
                        break;
                case KUBE_SELECTOR_IN:
                        ok = v && value_in(r, v);
                        break;
                case KUBE_SELECTOR_NOT_IN:
                        ok = !v || !value_in(r, v);
                        break;
                case KUBE_SELECTOR_EXISTS:
                        ok = v != NULL;
                        break;
                case KUBE_SELECTOR_DOES_NOT_EXIST:
                        ok = v == NULL;
                        break;
                default:
                        ok = false;
                }
                if (!ok) return false;
        }
        return true;
}

int kube_selector_to_string(const kube_selector *s, char **ret) {
        if (!s || !ret) return -EINVAL;
        strbuf b = {0};
        for (size_t i = 0; i < s->n_reqs; i++) {
                const kube_requirement *r = &s->reqs[i];
                if (i > 0) strbuf_add(&b, ",");
                switch (r->op) {
                case KUBE_SELECTOR_EQUALS:
                        strbuf_add(&b, r->key);
                        strbuf_add(&b, "=");
                        strbuf_add(&b, r->n_values > 0 ? r->values[0] : "");
                        break;
                case KUBE_SELECTOR_IN:
                case KUBE_SELECTOR_NOT_IN:
                        strbuf_add(&b, r->key);
                        strbuf_add(&b, r->op == KUBE_SELECTOR_IN ? " in (" : " notin (");
                        for (size_t j = 0; j < r->n_values; j++) {
                                if (j > 0) strbuf_add(&b, ",");
                                strbuf_add(&b, r->values[j]);
                        }
                        strbuf_add(&b, ")");
                        break;
                case KUBE_SELECTOR_EXISTS:
                        strbuf_add(&b, r->key);
                        break;
                case KUBE_SELECTOR_DOES_NOT_EXIST:
                        strbuf_add(&b, "!");
                        strbuf_add(&b, r->key);
                        break;
                }
        }
        return strbuf_finish(&b, ret, NULL);
}

int kube_selector_to_query(const kube_selector *s, char **ret) {
        if (!s || !ret) return -EINVAL;
        _cleanup_free_ char *plain = NULL;
        int r = kube_selector_to_string(s, &plain);
        if (r < 0) return r;
        size_t n = strlen(plain);
        if (n > (SIZE_MAX - 1) / 3) return -ENOMEM;
        char *q = malloc(n * 3 + 1), *o = q;
        if (!q) return -ENOMEM;
        static const char hex[] = "0123456789ABCDEF";
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)plain[i];
                if (is_alnum((char)c) || c == '-' || c == '_' || c == '.' || c == '~') {
                        *o++ = (char)c;
                } else {
                        *o++ = '%';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 15];
                }
        }
        *o = 0;
        *ret = q;
        return 0;
}
