/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The controller's model decoders (controller/model.h) on arbitrary input.
 *
 * The input text goes to the two annotation records: model_links_parse() and
 * model_merged_parse(). A record that parses must survive
 * serialize -> parse unchanged, and serialize to the same bytes again
 * (canonical form, R10); its lookups must agree with its items, and no name
 * it accepted may have held a NUL byte.
 *
 * The input as JSON goes to every object decoder: Namespace, ServiceAccount,
 * Secret (whole and metadata only), RoleBinding; the store vtables' memory
 * figures and the index functions run on what they return. Secret payloads are
 * checked against an independent reading: the validity verdict must agree with
 * util/base64 (strict) and json-c on the same data, and a valid secret's
 * registries must be exactly the payload's auths keys.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "model.h"
#include "names.h"
#include "util/base64.h"

/* ---- the link record ---------------------------------------------------- */

static bool md_links_eq(const model_links *a, const model_links *b) {
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->items[i].policy, b->items[i].policy) ||
                    strcmp(a->items[i].secret, b->items[i].secret) ||
                    a->items[i].for_mask != b->items[i].for_mask)
                        return false;
        return true;
}

static void md_check_links(const model_links *l) {
        FUZZ_CHECK(l->n <= MODEL_LINKS_MAX);
        for (size_t i = 0; i < l->n; i++) {
                const model_link *e = &l->items[i];
                FUZZ_CHECK(e->policy && e->secret);
                FUZZ_CHECK(strchr(e->policy, '/') != NULL);
                FUZZ_CHECK(names_is_dns1123_subdomain(e->secret));
                FUZZ_CHECK(e->for_mask != 0 &&
                           (e->for_mask & ~(unsigned)(POLICY_FOR_PULL | POLICY_FOR_MOUNT)) == 0);
                if (i > 0) {
                        int c = strcmp(l->items[i - 1].policy, e->policy);
                        FUZZ_CHECK(c < 0 ||
                                   (c == 0 && strcmp(l->items[i - 1].secret, e->secret) < 0));
                }
                FUZZ_CHECK(model_links_get(l, e->policy, e->secret) == e->for_mask);
                FUZZ_CHECK(model_links_mentions(l, e->policy));
                unsigned others = 0;
                for (size_t j = 0; j < l->n; j++)
                        if (strcmp(l->items[j].secret, e->secret) == 0 &&
                            strcmp(l->items[j].policy, e->policy) != 0)
                                others |= l->items[j].for_mask;
                FUZZ_CHECK(model_links_get_others(l, e->policy, e->secret) == others);
        }
}

/* An accepted record's names were whole: none held a NUL byte (C would cut it short). */
static void md_check_record_no_nul(const char *text, const char *list, const char *const keys[2]) {
        json_object *root = json_tokener_parse(text);
        json_object *arr = json_object_object_get(root, list);
        size_t n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < 2; k++)
                        FUZZ_CHECK(!fuzz_json_has_nul(
                            json_object_object_get(json_object_array_get_idx(arr, i), keys[k])));
        json_object_put(root);
}

static void md_links(const char *text) {
        model_links l;
        int r = model_links_parse(text, &l);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                return;
        }
        md_check_links(&l);
        md_check_record_no_nul(text, "links", (const char *const[]){"policy", "secret"});
        char *s1 = NULL;
        r = model_links_serialize(&l, &s1);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK((s1 == NULL) == (l.n == 0));
                FUZZ_CHECK(!s1 || strlen(s1) <= MODEL_LINKS_TEXT_MAX);
                model_links back;
                r = model_links_parse(s1, &back);
                if (r != 0) fprintf(stderr, "serialized links do not parse (%d): %s\n", r, s1);
                FUZZ_CHECK(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        FUZZ_CHECK(md_links_eq(&l, &back));
                        char *s2 = NULL;
                        if (model_links_serialize(&back, &s2) == 0)
                                FUZZ_CHECK((!s1 && !s2) || (s1 && s2 && strcmp(s1, s2) == 0));
                        free(s2);
                        model_links_done(&back);
                }
        }
        model_links c;
        if (model_links_copy(&l, &c) == 0) {
                FUZZ_CHECK(md_links_eq(&l, &c));
                /* setting a claim to what it is changes nothing; 0 removes it */
                if (c.n > 0) {
                        const model_link e = c.items[0];
                        char *p = strdup(e.policy), *sec = strdup(e.secret);
                        if (!p || !sec) abort();
                        FUZZ_CHECK(model_links_set(&c, p, sec, e.for_mask) == 0);
                        FUZZ_CHECK(md_links_eq(&l, &c));
                        FUZZ_CHECK(model_links_set(&c, p, sec, 0) == 0);
                        FUZZ_CHECK(c.n == l.n - 1);
                        FUZZ_CHECK(model_links_get(&c, p, sec) == 0);
                        free(p);
                        free(sec);
                }
                model_links_done(&c);
        }
        free(s1);
        model_links_done(&l);
        FUZZ_CHECK(l.n == 0 && l.items == NULL);
}

/* ---- the merge record ----------------------------------------------------- */

static bool md_merged_eq(const model_merged *a, const model_merged *b) {
        if (a->n != b->n) return false;
        for (size_t i = 0; i < a->n; i++)
                if (strcmp(a->items[i].policy, b->items[i].policy) ||
                    strcmp(a->items[i].registry, b->items[i].registry))
                        return false;
        return true;
}

static void md_check_merged(const model_merged *m) {
        FUZZ_CHECK(m->n <= MODEL_MERGED_MAX);
        for (size_t i = 0; i < m->n; i++) {
                const model_merged_entry *e = &m->items[i];
                FUZZ_CHECK(e->policy && e->registry && *e->registry);
                FUZZ_CHECK(strlen(e->registry) <= MODEL_REGISTRY_MAX);
                if (i > 0) {
                        int c = strcmp(m->items[i - 1].policy, e->policy);
                        FUZZ_CHECK(c < 0 ||
                                   (c == 0 && strcmp(m->items[i - 1].registry, e->registry) < 0));
                }
                /* one owner per registry */
                const char *o = model_merged_owner(m, e->registry);
                FUZZ_CHECK(o && strcmp(o, e->policy) == 0);
        }
}

static void md_merged(const char *text) {
        model_merged m;
        int r = model_merged_parse(text, &m);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                return;
        }
        md_check_merged(&m);
        md_check_record_no_nul(text, "entries", (const char *const[]){"policy", "registry"});
        char *s1 = NULL;
        r = model_merged_serialize(&m, &s1);
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        if (r == 0) {
                FUZZ_CHECK((s1 == NULL) == (m.n == 0));
                model_merged back;
                r = model_merged_parse(s1, &back);
                if (r != 0) fprintf(stderr, "serialized record does not parse (%d): %s\n", r, s1);
                FUZZ_CHECK(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        FUZZ_CHECK(md_merged_eq(&m, &back));
                        char *s2 = NULL;
                        if (model_merged_serialize(&back, &s2) == 0)
                                FUZZ_CHECK((!s1 && !s2) || (s1 && s2 && strcmp(s1, s2) == 0));
                        free(s2);
                        model_merged_done(&back);
                }
        }
        model_merged c;
        if (model_merged_copy(&m, &c) == 0) {
                FUZZ_CHECK(md_merged_eq(&m, &c));
                model_merged_done(&c);
        }
        free(s1);
        model_merged_done(&m);
}

/* ---- objects -------------------------------------------------------------- */

static json_object *md_member(json_object *o, const char *k) {
        json_object *v = NULL;
        if (!o || !json_object_is_type(o, json_type_object)) return NULL;
        if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
                return NULL;
        return v;
}

static void md_check_index(int r, char **v, size_t n) {
        FUZZ_CHECK(r == 0 || r == -ENOMEM);
        for (size_t i = 0; i < n; i++) {
                FUZZ_CHECK(v[i] != NULL);
                free(v[i]);
        }
        free(v);
}

static void md_namespace(json_object *obj) {
        model_namespace *ns = NULL;
        int r = model_namespace_decode(obj, &ns);
        if (r < 0) {
                FUZZ_CHECK(ns == NULL);
                return;
        }
        FUZZ_CHECK(ns->meta.annotations.n == 0);
        if (ns->meta.deleting) FUZZ_CHECK(ns->terminating);
        FUZZ_CHECK(model_kind_namespace.mem(ns) > 0);
        FUZZ_CHECK(model_kind_namespace.meta(ns) == &ns->meta);
        model_namespace_free(ns);
}

static void md_sa(json_object *obj) {
        model_sa *sa = NULL;
        int r = model_sa_decode(obj, &sa);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(sa == NULL);
                return;
        }
        FUZZ_CHECK(sa->n_secrets <= MODEL_SA_LIST_MAX && sa->n_pull_secrets <= MODEL_SA_LIST_MAX);
        for (size_t i = 0; i < sa->n_secrets; i++) {
                FUZZ_CHECK(sa->secrets[i] && *sa->secrets[i]);
                FUZZ_CHECK(model_sa_has_secret(sa, sa->secrets[i]));
        }
        for (size_t i = 0; i < sa->n_pull_secrets; i++) {
                FUZZ_CHECK(sa->pull_secrets[i] && *sa->pull_secrets[i]);
                FUZZ_CHECK(model_sa_has_pull_secret(sa, sa->pull_secrets[i]));
        }
        /* only the two annotations the controller reads are kept (kube_meta's filter
         * works by prefix, so longer keys that start with them may come along) */
        for (size_t i = 0; i < sa->meta.annotations.n; i++) {
                const char *k = sa->meta.annotations.items[i].key;
                FUZZ_CHECK(strncmp(k, NAMES_ANNOTATION_LINKS, strlen(NAMES_ANNOTATION_LINKS)) ==
                               0 ||
                           strncmp(k, NAMES_ANNOTATION_INTERNAL_REGISTRY,
                                   strlen(NAMES_ANNOTATION_INTERNAL_REGISTRY)) == 0);
        }
        /* the links are the annotation's, or empty with the reason */
        const char *text = kube_meta_annotation(&sa->meta, NAMES_ANNOTATION_LINKS);
        model_links l;
        int lr = model_links_parse(text, &l);
        if (lr != -ENOMEM) {
                FUZZ_CHECK(sa->links_error == (lr < 0 ? lr : 0));
                if (lr == 0) {
                        FUZZ_CHECK(md_links_eq(&l, &sa->links));
                        model_links_done(&l);
                } else {
                        FUZZ_CHECK(sa->links.n == 0);
                }
        }
        (void)model_sa_provisioned(sa);
        (void)model_sa_internal_registry_ref(sa);
        FUZZ_CHECK(model_kind_service_account.mem(sa) > 0);

        char **v = NULL;
        size_t n = 0;
        r = model_index_sa_linked_policies(sa, &v, &n);
        FUZZ_CHECK(n <= sa->links.n);
        for (size_t i = 0; i < n; i++) FUZZ_CHECK(model_links_mentions(&sa->links, v[i]));
        md_check_index(r, v, n);
        r = model_index_marked_policy(&sa->meta, &v, &n);
        FUZZ_CHECK(n <= 1);
        md_check_index(r, v, n);
        model_sa_free(sa);
}

/* What the payload's verdict must be, read independently of model.c. */
static model_secret_validity md_expected_validity(json_object *obj, const char *type,
                                                  json_object **ret_auths) {
        *ret_auths = NULL;
        bool cfgjson = type && strcmp(type, MODEL_SECRET_TYPE_DOCKERCONFIGJSON) == 0;
        bool cfg = type && strcmp(type, MODEL_SECRET_TYPE_DOCKERCFG) == 0;
        if (!cfgjson && !cfg) return MODEL_SECRET_WRONG_TYPE;
        json_object *d =
            md_member(md_member(obj, "data"), cfgjson ? ".dockerconfigjson" : ".dockercfg");
        if (!d || !json_object_is_type(d, json_type_string)) return MODEL_SECRET_NO_DATA;
        void *raw = NULL;
        size_t raw_len = 0;
        int r = base64_decode(json_object_get_string(d), (size_t)json_object_get_string_len(d), 0,
                              MODEL_SECRET_PAYLOAD_MAX, &raw, &raw_len);
        if (r == -E2BIG) return MODEL_SECRET_TOO_BIG;
        if (r < 0) return MODEL_SECRET_BAD_BASE64;
        json_tokener *tok = json_tokener_new_ex(MODEL_JSON_DEPTH);
        if (!tok) abort();
        json_object *root = json_tokener_parse_ex(tok, raw, (int)raw_len);
        bool ok = root && json_tokener_get_error(tok) == json_tokener_success;
        if (ok) {
                /* only JSON whitespace may follow the value */
                for (size_t i = json_tokener_get_parse_end(tok); i < raw_len; i++)
                        if (!strchr(" \t\r\n", ((char *)raw)[i]) || ((char *)raw)[i] == 0)
                                ok = false;
        }
        json_tokener_free(tok);
        base64_free_wiped(raw, raw_len);
        if (!ok || !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                return MODEL_SECRET_BAD_JSON;
        }
        json_object *auths = cfgjson ? md_member(root, "auths") : root;
        model_secret_validity v = MODEL_SECRET_VALID;
        if (!auths || !json_object_is_type(auths, json_type_object)) {
                v = MODEL_SECRET_NO_AUTHS;
        } else if (json_object_object_length(auths) > MODEL_SECRET_REGISTRIES_MAX) {
                v = MODEL_SECRET_TOO_BIG;
        } else {
                json_object_object_foreach(auths, host, entry) {
                        if (!json_object_is_type(entry, json_type_object)) {
                                v = MODEL_SECRET_BAD_ENTRY;
                                break;
                        }
                        size_t hl = strlen(host);
                        bool good = hl > 0 && hl <= MODEL_REGISTRY_MAX;
                        for (size_t i = 0; good && i < hl; i++) {
                                unsigned char c = (unsigned char)host[i];
                                if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\') good = false;
                        }
                        if (!good) {
                                v = MODEL_SECRET_TOO_BIG;
                                break;
                        }
                }
        }
        if (v == MODEL_SECRET_VALID) *ret_auths = json_object_get(auths);
        json_object_put(root);
        return v;
}

static void md_secret(json_object *obj, bool full) {
        model_secret *s = NULL;
        int r = full ? model_secret_decode(obj, &s) : model_secret_decode_meta(obj, &s);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(s == NULL);
                return;
        }
        FUZZ_CHECK(s->full == full);
        for (size_t i = 0; i < s->meta.annotations.n; i++)
                FUZZ_CHECK(strncmp(s->meta.annotations.items[i].key, "pullpolicy.io/", 14) == 0);
        if (s->merged_error == 0)
                md_check_merged(&s->merged);
        else
                FUZZ_CHECK(s->merged.n == 0);
        FUZZ_CHECK(model_secret_validity_to_string(s->validity) != NULL);
        if (!full) {
                FUZZ_CHECK(s->validity == MODEL_SECRET_UNKNOWN && s->type == NULL);
                FUZZ_CHECK(s->n_registries == 0 && s->content_hash == 0);
        } else {
                FUZZ_CHECK(s->type != NULL);
                json_object *auths = NULL;
                model_secret_validity want = md_expected_validity(obj, s->type, &auths);
                if (want != s->validity)
                        fprintf(stderr, "validity %d, expected %d\n", s->validity, want);
                FUZZ_CHECK(want == s->validity);
                if (s->validity != MODEL_SECRET_VALID) FUZZ_CHECK(s->n_registries == 0);
                if (auths) {
                        FUZZ_CHECK((size_t)json_object_object_length(auths) == s->n_registries);
                        json_object_object_foreach(auths, host, entry) {
                                (void)entry;
                                const model_registry *g = model_secret_registry(s, host);
                                FUZZ_CHECK(g && strcmp(g->host, host) == 0);
                        }
                        json_object_put(auths);
                }
                for (size_t i = 1; i < s->n_registries; i++)
                        FUZZ_CHECK(strcmp(s->registries[i - 1].host, s->registries[i].host) < 0);

                /* the apply step's reading agrees with the cache's */
                json_object *pa = NULL;
                model_secret_validity pv = MODEL_SECRET_UNKNOWN;
                r = model_secret_payload_auths(obj, &pa, &pv);
                if (r != -ENOMEM) {
                        FUZZ_CHECK((r == 0) == (s->validity == MODEL_SECRET_VALID));
                        if (md_member(obj, "type")) FUZZ_CHECK(pv == s->validity);
                }
                if (r == 0) {
                        FUZZ_CHECK((size_t)json_object_object_length(pa) == s->n_registries);
                        json_object_put(pa);
                }
        }
        const kube_store_kind *k = full ? &model_kind_secret : &model_kind_secret_meta;
        FUZZ_CHECK(k->mem(s) > 0);
        char **v = NULL;
        size_t n = 0;
        r = model_index_marked_policy(&s->meta, &v, &n);
        md_check_index(r, v, n);
        model_secret_free(s);
}

static void md_role_binding(json_object *obj) {
        model_role_binding *rb = NULL;
        int r = model_role_binding_decode(obj, &rb);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(rb == NULL);
                return;
        }
        FUZZ_CHECK(rb->n_subjects <= MODEL_SUBJECTS_MAX);
        FUZZ_CHECK(rb->meta.annotations.n == 0);
        FUZZ_CHECK(model_kind_role_binding.mem(rb) > 0);
        char **v = NULL;
        size_t n = 0;
        r = model_index_marked_policy(&rb->meta, &v, &n);
        md_check_index(r, v, n);
        model_role_binding_free(rb);
}

int fuzz_model_one(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        md_links(text);
        md_merged(text);
        free(text);

        json_object *obj = fuzz_json(data, size);
        if (!obj) return 0;
        md_namespace(obj);
        md_sa(obj);
        md_secret(obj, true);
        md_secret(obj, false);
        md_role_binding(obj);
        json_object_put(obj);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_model_one(data, size);
}
#endif
