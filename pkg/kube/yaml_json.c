/* SPDX-License-Identifier: Apache-2.0 */
#include "kube/yaml_json.h"

#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <yaml.h>

#include "util/macro.h"

typedef struct anchor {
        char *name;
        struct json_object *value;
        size_t nodes;    /* size of the subtree, charged again on each alias */
        unsigned height; /* levels of the subtree: an alias adds them where it stands */
} anchor;

typedef struct ctx {
        yaml_parser_t parser;
        yaml_json_limits lim;
        size_t nodes;
        unsigned deepest; /* the deepest level reached so far, aliases expanded */
        anchor *anchors;
        size_t n_anchors, cap_anchors;
        char *error;
        int err;
} ctx;

static void _printf_(3, 4) set_error(ctx *x, int err, const char *fmt, ...) {
        if (x->error) return; /* keep the first, innermost message */
        char *m = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0) m = NULL;
        va_end(ap);
        /* one line: a quoted key may hold line breaks and other control characters */
        for (char *p = m; p && *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
        x->error = m;
        x->err = err;
}

static void set_error_at(ctx *x, int err, const yaml_mark_t *mark, const char *what) {
        set_error(x, err, "line %zu column %zu: %s", mark->line + 1, mark->column + 1, what);
}

static int next_event(ctx *x, yaml_event_t *ev) {
        if (!yaml_parser_parse(&x->parser, ev)) {
                if (x->parser.error == YAML_MEMORY_ERROR) {
                        set_error(x, -ENOMEM, "out of memory");
                        return -ENOMEM;
                }
                const yaml_mark_t *m = &x->parser.problem_mark;
                set_error(x, -EBADMSG, "line %zu column %zu: %s%s%s", m->line + 1, m->column + 1,
                          x->parser.problem ? x->parser.problem : "syntax error",
                          x->parser.context ? " " : "", x->parser.context ? x->parser.context : "");
                return -EBADMSG;
        }
        return 0;
}

static int charge(ctx *x, size_t n, const yaml_mark_t *mark) {
        if (n > x->lim.max_nodes || x->nodes > x->lim.max_nodes - n) {
                set_error(x, -E2BIG, "line %zu column %zu: more than %zu nodes (alias expansion?)",
                          mark->line + 1, mark->column + 1, x->lim.max_nodes);
                return -E2BIG;
        }
        x->nodes += n;
        return 0;
}

static bool match_ci3(const char *s, const char *a, const char *b, const char *c) {
        return streq(s, a) || streq(s, b) || streq(s, c);
}

static bool is_null(const char *s) {
        return !*s || streq(s, "~") || match_ci3(s, "null", "Null", "NULL");
}

static int parse_bool(const char *s, bool *ret) {
        if (match_ci3(s, "true", "True", "TRUE")) {
                *ret = true;
                return 0;
        }
        if (match_ci3(s, "false", "False", "FALSE")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

static int parse_int(const char *s, int64_t *ret) {
        const char *p = s;
        int base = 10;
        bool neg = false;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        if (p[0] == '0' && p[1] == 'x' && s == p) {
                base = 16;
                p += 2;
        } else if (p[0] == '0' && p[1] == 'o' && s == p) {
                base = 8;
                p += 2;
        }
        if (!*p) return -EINVAL;
        for (const char *q = p; *q; q++) {
                int d = *q >= '0' && *q <= '9'   ? *q - '0'
                        : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
                        : *q >= 'A' && *q <= 'F' ? *q - 'A' + 10
                                                 : 99;
                if (d >= base) return -EINVAL;
        }
        errno = 0;
        char *end;
        unsigned long long v = strtoull(p, &end, base);
        if (errno || *end) return -ERANGE;
        if (neg) {
                if (v > (unsigned long long)INT64_MAX + 1) return -ERANGE;
                *ret = v == (unsigned long long)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        } else {
                if (v > INT64_MAX) return -ERANGE;
                *ret = (int64_t)v;
        }
        return 0;
}

static int parse_float(const char *s, double *ret) {
        const char *p = s;
        bool neg = false;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        if (match_ci3(p, ".inf", ".Inf", ".INF")) {
                *ret = neg ? -INFINITY : INFINITY;
                return 0;
        }
        if (p == s && match_ci3(p, ".nan", ".NaN", ".NAN")) {
                *ret = NAN;
                return 0;
        }
        /* [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit */
        const char *q = p;
        size_t digits = 0;
        while (*q >= '0' && *q <= '9') q++, digits++;
        if (*q == '.') {
                q++;
                while (*q >= '0' && *q <= '9') q++, digits++;
        }
        if (!digits) return -EINVAL;
        if (*q == 'e' || *q == 'E') {
                q++;
                if (*q == '+' || *q == '-') q++;
                if (!(*q >= '0' && *q <= '9')) return -EINVAL;
                while (*q >= '0' && *q <= '9') q++;
        }
        if (*q) return -EINVAL;
        *ret = strtod(s, NULL);
        return 0;
}

static struct json_object *new_string(const char *s, size_t len) {
        if (len > INT32_MAX) return NULL;
        return json_object_new_string_len(s, (int)len);
}

/* *ret NULL means JSON null. */
static int scalar_to_json(ctx *x, const yaml_event_t *ev, struct json_object **ret) {
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        const char *tag = (const char *)ev->data.scalar.tag;
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        struct json_object *o = NULL;

        if (tag && streq(tag, "!")) tag = NULL, plain = false; /* non-specific: a string */
        if (tag && !strncmp(tag, "tag:yaml.org,2002:", 18)) {
                const char *t = tag + 18;
                bool b;
                int64_t i;
                double d;
                if (streq(t, "str")) {
                        o = new_string(v, len);
                } else if (streq(t, "null")) {
                        if (!is_null(v)) goto bad;
                        *ret = NULL;
                        return 0;
                } else if (streq(t, "bool")) {
                        if (parse_bool(v, &b) < 0) goto bad;
                        o = json_object_new_boolean(b);
                } else if (streq(t, "int")) {
                        if (parse_int(v, &i) < 0) goto bad;
                        o = json_object_new_int64(i);
                } else if (streq(t, "float")) {
                        if (parse_int(v, &i) == 0)
                                d = (double)i;
                        else if (parse_float(v, &d) < 0)
                                goto bad;
                        o = json_object_new_double(d);
                } else {
                        tag = NULL; /* e.g. !!binary, !!timestamp: keep the text */
                }
                if (tag) {
                        if (!o) goto nomem;
                        *ret = o;
                        return 0;
                }
        }
        if (!plain || (len != strlen(v))) {
                o = new_string(v, len);
        } else {
                bool b;
                int64_t i;
                double d;
                if (is_null(v)) {
                        *ret = NULL;
                        return 0;
                }
                if (parse_bool(v, &b) == 0)
                        o = json_object_new_boolean(b);
                else if (parse_int(v, &i) == 0)
                        o = json_object_new_int64(i);
                else if (parse_float(v, &d) == 0 && isfinite(d))
                        o = json_object_new_double(d);
                else
                        o = new_string(v, len);
        }
        if (!o) goto nomem;
        *ret = o;
        return 0;
bad:
        set_error_at(x, -EBADMSG, &ev->start_mark, "scalar does not match its tag");
        return -EBADMSG;
nomem:
        set_error(x, -ENOMEM, "out of memory");
        return -ENOMEM;
}

static int remember_anchor(ctx *x, const char *name, struct json_object *v, size_t nodes,
                           unsigned height) {
        if (GROW(x->anchors, x->cap_anchors, x->n_anchors + 1) < 0) return -ENOMEM;
        char *n = strdup(name);
        if (!n) return -ENOMEM;
        /* A later anchor of the same name shadows the earlier one (YAML spec). */
        x->anchors[x->n_anchors++] = (anchor){n, json_object_get(v), nodes, height};
        return 0;
}

static int parse_node(ctx *x, yaml_event_t *ev, unsigned depth, struct json_object **ret,
                      size_t *ret_nodes);

/* ev is the start event of a sequence or mapping; consumes up to its end. */
static int parse_collection(ctx *x, yaml_event_t *start, unsigned depth, struct json_object **ret,
                            size_t *ret_nodes) {
        bool is_map = start->type == YAML_MAPPING_START_EVENT;
        struct json_object *o = is_map ? json_object_new_object() : json_object_new_array();
        size_t nodes = 1;
        int r;
        if (!o) {
                set_error(x, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        for (;;) {
                yaml_event_t ev;
                r = next_event(x, &ev);
                if (r < 0) goto fail;
                if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
                        yaml_event_delete(&ev);
                        break;
                }
                if (!is_map) {
                        struct json_object *v = NULL;
                        size_t n = 0;
                        r = parse_node(x, &ev, depth + 1, &v, &n);
                        yaml_event_delete(&ev);
                        if (r < 0) goto fail;
                        nodes += n;
                        if (json_object_array_add(o, v) < 0) {
                                json_object_put(v);
                                r = -ENOMEM;
                                set_error(x, r, "out of memory");
                                goto fail;
                        }
                        continue;
                }
                if (ev.type != YAML_SCALAR_EVENT) {
                        set_error_at(x, -EBADMSG, &ev.start_mark, "mapping keys must be scalars");
                        yaml_event_delete(&ev);
                        r = -EBADMSG;
                        goto fail;
                }
                if (ev.data.scalar.length != strlen((const char *)ev.data.scalar.value)) {
                        set_error_at(x, -EBADMSG, &ev.start_mark, "NUL byte in a mapping key");
                        yaml_event_delete(&ev);
                        r = -EBADMSG;
                        goto fail;
                }
                _cleanup_free_ char *key = strdup((const char *)ev.data.scalar.value);
                yaml_mark_t key_mark = ev.start_mark;
                yaml_event_delete(&ev);
                if (!key) {
                        r = -ENOMEM;
                        set_error(x, r, "out of memory");
                        goto fail;
                }
                if (json_object_object_get_ex(o, key, NULL)) {
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "duplicate key \"%.64s\"", key) < 0) m = NULL;
                        set_error_at(x, -EBADMSG, &key_mark, m ? m : "duplicate key");
                        r = -EBADMSG;
                        goto fail;
                }
                r = charge(x, 1, &key_mark);
                if (r < 0) goto fail;
                r = next_event(x, &ev);
                if (r < 0) goto fail;
                struct json_object *v = NULL;
                size_t n = 0;
                r = parse_node(x, &ev, depth + 1, &v, &n);
                yaml_event_delete(&ev);
                if (r < 0) goto fail;
                nodes += n + 1;
                if (json_object_object_add(o, key, v) < 0) {
                        json_object_put(v);
                        r = -ENOMEM;
                        set_error(x, r, "out of memory");
                        goto fail;
                }
        }
        *ret = o;
        *ret_nodes = nodes;
        return 0;
fail:
        json_object_put(o);
        return r;
}

static int parse_node(ctx *x, yaml_event_t *ev, unsigned depth, struct json_object **ret,
                      size_t *ret_nodes) {
        struct json_object *o = NULL;
        const char *anchor_name = NULL;
        size_t nodes = 1;
        unsigned outer_deepest = x->deepest;
        int r;

        x->deepest = depth; /* from here on: the deepest level inside this node */
        if (depth > x->lim.max_depth) {
                set_error(x, -E2BIG, "line %zu column %zu: nesting deeper than %u",
                          ev->start_mark.line + 1, ev->start_mark.column + 1, x->lim.max_depth);
                return -E2BIG;
        }

        switch (ev->type) {
        case YAML_ALIAS_EVENT: {
                if (!x->lim.allow_aliases) {
                        set_error_at(x, -EBADMSG, &ev->start_mark, "aliases are not allowed");
                        return -EBADMSG;
                }
                const char *name = (const char *)ev->data.alias.anchor;
                for (size_t i = x->n_anchors; i > 0; i--) {
                        anchor *a = &x->anchors[i - 1];
                        if (!streq(a->name, name)) continue;
                        /* the copy must fit the depth limit where it is pasted, too */
                        if (a->height - 1 > x->lim.max_depth - depth) {
                                set_error(x, -E2BIG,
                                          "line %zu column %zu: alias nests deeper than %u",
                                          ev->start_mark.line + 1, ev->start_mark.column + 1,
                                          x->lim.max_depth);
                                return -E2BIG;
                        }
                        r = charge(x, a->nodes, &ev->start_mark);
                        if (r < 0) return r;
                        if (a->value && json_object_deep_copy(a->value, &o, NULL) < 0) {
                                set_error(x, -ENOMEM, "out of memory");
                                return -ENOMEM;
                        }
                        *ret = o;
                        *ret_nodes = a->nodes;
                        x->deepest = MAX(outer_deepest, depth + a->height - 1);
                        return 0;
                }
                set_error_at(x, -EBADMSG, &ev->start_mark, "undefined alias");
                return -EBADMSG;
        }
        case YAML_SCALAR_EVENT:
                r = charge(x, 1, &ev->start_mark);
                if (r < 0) return r;
                r = scalar_to_json(x, ev, &o);
                if (r < 0) return r;
                anchor_name = (const char *)ev->data.scalar.anchor;
                break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                r = charge(x, 1, &ev->start_mark);
                if (r < 0) return r;
                r = parse_collection(x, ev, depth, &o, &nodes);
                if (r < 0) return r;
                anchor_name = (const char *)(ev->type == YAML_MAPPING_START_EVENT
                                                 ? ev->data.mapping_start.anchor
                                                 : ev->data.sequence_start.anchor);
                break;
        default:
                set_error_at(x, -EBADMSG, &ev->start_mark, "unexpected event");
                return -EBADMSG;
        }
        if (anchor_name) {
                if (!x->lim.allow_aliases) {
                        /* Refusing anchors too keeps the error at the first suspicious spot. */
                        set_error_at(x, -EBADMSG, &ev->start_mark, "anchors are not allowed");
                        json_object_put(o);
                        return -EBADMSG;
                }
                r = remember_anchor(x, anchor_name, o, nodes, x->deepest - depth + 1);
                if (r < 0) {
                        set_error(x, r, "out of memory");
                        json_object_put(o);
                        return r;
                }
        }
        *ret = o;
        *ret_nodes = nodes;
        x->deepest = MAX(outer_deepest, x->deepest);
        return 0;
}

static void free_anchors(ctx *x) {
        for (size_t i = 0; i < x->n_anchors; i++) {
                free(x->anchors[i].name);
                json_object_put(x->anchors[i].value);
        }
        free(x->anchors);
        x->anchors = NULL;
        x->n_anchors = x->cap_anchors = 0;
}

static int parse_stream(const char *data, size_t len, const yaml_json_limits *lim, bool multi,
                        struct json_object **ret, char **ret_error) {
        ctx x = {0};
        struct json_object *docs = NULL;
        int r;

        if (lim) x.lim = *lim;
        if (!x.lim.max_bytes) x.lim.max_bytes = YAML_JSON_DEFAULT_MAX_BYTES;
        if (!x.lim.max_depth) x.lim.max_depth = YAML_JSON_DEFAULT_MAX_DEPTH;
        if (!x.lim.max_nodes) x.lim.max_nodes = YAML_JSON_DEFAULT_MAX_NODES;

        if (len > x.lim.max_bytes) {
                set_error(&x, -E2BIG, "input larger than %zu bytes", x.lim.max_bytes);
                r = -E2BIG;
                goto out;
        }
        if (!yaml_parser_initialize(&x.parser)) {
                r = -ENOMEM;
                goto out;
        }
        yaml_parser_set_input_string(&x.parser, (const unsigned char *)(data ? data : ""), len);
        docs = json_object_new_array();
        if (!docs) {
                r = -ENOMEM;
                goto out_parser;
        }

        for (;;) {
                yaml_event_t ev;
                r = next_event(&x, &ev);
                if (r < 0) goto out_parser;
                yaml_event_type_t t = ev.type;
                yaml_mark_t mark = ev.start_mark;
                yaml_event_delete(&ev);
                if (t == YAML_STREAM_END_EVENT) break;
                if (t != YAML_DOCUMENT_START_EVENT) continue; /* STREAM_START */

                if (!multi && json_object_array_length(docs) > 0) {
                        set_error_at(&x, -EBADMSG, &mark, "more than one document");
                        r = -EBADMSG;
                        goto out_parser;
                }
                r = next_event(&x, &ev);
                if (r < 0) goto out_parser;
                struct json_object *v = NULL;
                size_t n;
                r = parse_node(&x, &ev, 1, &v, &n);
                yaml_event_delete(&ev);
                if (r < 0) goto out_parser;
                if (json_object_array_add(docs, v) < 0) {
                        json_object_put(v);
                        r = -ENOMEM;
                        goto out_parser;
                }
                r = next_event(&x, &ev); /* DOCUMENT_END */
                if (r < 0) goto out_parser;
                yaml_event_delete(&ev);
                /* Anchors are scoped to their document. */
                free_anchors(&x);
        }

        if (multi) {
                *ret = TAKE_PTR(docs);
        } else {
                struct json_object *v = NULL;
                if (json_object_array_length(docs) > 0)
                        v = json_object_get(json_object_array_get_idx(docs, 0));
                *ret = v;
        }
        r = 0;
out_parser:
        yaml_parser_delete(&x.parser);
out:
        free_anchors(&x);
        json_object_put(docs);
        if (r < 0 && ret_error) {
                if (!x.error) x.error = strdup(r == -ENOMEM ? "out of memory" : "invalid YAML");
                *ret_error = TAKE_PTR(x.error);
        }
        free(x.error);
        return r < 0 && x.err < 0 && r != -ENOMEM ? x.err : r;
}

int yaml_json_parse(const char *data, size_t len, const yaml_json_limits *lim,
                    struct json_object **ret, char **ret_error) {
        return parse_stream(data, len, lim, false, ret, ret_error);
}

int yaml_json_parse_all(const char *data, size_t len, const yaml_json_limits *lim,
                        struct json_object **ret, char **ret_error) {
        return parse_stream(data, len, lim, true, ret, ret_error);
}
