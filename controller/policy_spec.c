/* SPDX-License-Identifier: Apache-2.0 */
#include "policy_spec.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "util/errmsg.h"
#include "util/jsonutil.h"
#include "util/macro.h"
#include "util/strv.h"

policy_spec *policy_spec_free(policy_spec *s) {
        if (!s) return NULL;
        strv_free(s->namespaces, s->n_namespaces);
        strv_free(s->service_accounts, s->n_service_accounts);
        kube_selector_free(s->namespace_selector);
        kube_selector_free(s->sa_selector);
        free(s->cluster_role);
        for (size_t i = 0; i < s->n_pull_secrets; i++) free(s->pull_secrets[i].name);
        free(s->pull_secrets);
        free(s);
        return NULL;
}

/* json-c keeps "\u0000" inside a string; C would silently see only the part before it. */
static bool has_nul(json_object *str) {
        return strlen(json_object_get_string(str)) != (size_t)json_object_get_string_len(str);
}

/* A list of unique names, each checked by ok(). */
static int parse_names(json_object *arr, const char *path, bool (*ok)(const char *),
                       const char *what, char ***ret, size_t *ret_n, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!json_object_is_type(arr, json_type_array))
                return errmsg_fail(reterr, -EINVAL, "%s must be a list of names", path);
        size_t n = json_object_array_length(arr);
        if (n > POLICY_SPEC_LIST_MAX)
                return errmsg_fail(reterr, -E2BIG, "%s: at most %d names", path,
                                   POLICY_SPEC_LIST_MAX);
        char **v = n ? calloc(n, sizeof(char *)) : NULL;
        if (n && !v) return -ENOMEM;
        int r = 0;
        size_t got = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(arr, i);
                if (!json_object_is_type(e, json_type_string)) {
                        r = errmsg_fail(reterr, -EINVAL, "%s[%zu] must be a string", path, i);
                        goto out;
                }
                const char *s = json_object_get_string(e);
                if (has_nul(e)) {
                        r = errmsg_fail(reterr, -EINVAL, "%s[%zu] holds a NUL byte", path, i);
                        goto out;
                }
                if (!ok(s)) {
                        errmsg_quote(s, q);
                        r = errmsg_fail(reterr, -EINVAL, "%s[%zu]: \"%s\" is not a valid %s", path,
                                        i, q, what);
                        goto out;
                }
                if (strv_contains(v, got, s)) {
                        r = errmsg_fail(reterr, -EINVAL, "%s: \"%s\" is listed twice", path, s);
                        goto out;
                }
                v[got] = strdup(s);
                if (!v[got]) {
                        r = -ENOMEM;
                        goto out;
                }
                got++;
        }
        *ret = v;
        *ret_n = got;
        return 0;
out:
        strv_free(v, got);
        return r;
}

static int parse_selector(json_object *o, const char *path, kube_selector **ret, char **reterr) {
        char *err = NULL;
        int r = kube_selector_parse(o, ret, reterr ? &err : NULL);
        if (r < 0) {
                if (r == -ENOMEM && !err) return r;
                r = errmsg_fail(reterr, r, "%s: %s", path, err ? err : "invalid label selector");
                free(err);
        }
        return r;
}

static int parse_subjects(json_object *subj, policy_spec *s, char **reterr) {
        if (!json_object_is_type(subj, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "spec.subjects must be an object");
        json_object *v;
        int r;
        if ((v = jsonutil_member(subj, "namespaces"))) {
                r = parse_names(v, "spec.subjects.namespaces", names_is_dns1123_label,
                                "namespace name", &s->namespaces, &s->n_namespaces, reterr);
                if (r < 0) return r;
                s->has_namespaces = true;
        }
        if ((v = jsonutil_member(subj, "namespaceSelector"))) {
                r = parse_selector(v, "spec.subjects.namespaceSelector", &s->namespace_selector,
                                   reterr);
                if (r < 0) return r;
        }
        if ((v = jsonutil_member(subj, "serviceAccounts"))) {
                r = parse_names(v, "spec.subjects.serviceAccounts", names_is_dns1123_subdomain,
                                "service account name", &s->service_accounts,
                                &s->n_service_accounts, reterr);
                if (r < 0) return r;
                s->has_service_accounts = true;
        }
        if ((v = jsonutil_member(subj, "serviceAccountSelector"))) {
                r = parse_selector(v, "spec.subjects.serviceAccountSelector", &s->sa_selector,
                                   reterr);
                if (r < 0) return r;
        }
        return 0;
}

static bool role_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > POLICY_SPEC_ROLE_MAX) return false;
        if (streq(s, ".") || streq(s, "..")) return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c < 0x20 || c >= 0x7f || c == '/' || c == '%') return false;
        }
        return true;
}

static int parse_image_puller(json_object *ip, policy_spec *s, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!json_object_is_type(ip, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "spec.imagePuller must be an object");
        json_object *v = jsonutil_member(ip, "clusterRole");
        const char *role = POLICY_SPEC_DEFAULT_ROLE;
        if (v) {
                if (!json_object_is_type(v, json_type_string))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.imagePuller.clusterRole must be a "
                                           "string");
                role = json_object_get_string(v);
                if (has_nul(v))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.imagePuller.clusterRole holds a NUL byte");
                if (!role_name_ok(role)) {
                        errmsg_quote(role, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.imagePuller.clusterRole: \"%s\" is "
                                           "not a valid ClusterRole name",
                                           q);
                }
        }
        s->cluster_role = strdup(role);
        if (!s->cluster_role) return -ENOMEM;
        s->image_puller = true;
        return 0;
}

static int parse_for(json_object *f, size_t idx, unsigned *ret, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!f) {
                *ret = POLICY_FOR_PULL;
                return 0;
        }
        if (!json_object_is_type(f, json_type_array))
                return errmsg_fail(reterr, -EINVAL,
                                   "spec.pullSecrets[%zu].for must be a list of "
                                   "pull and mount",
                                   idx);
        size_t n = json_object_array_length(f);
        if (n == 0)
                return errmsg_fail(reterr, -EINVAL,
                                   "spec.pullSecrets[%zu].for must not be empty "
                                   "(use pull, mount or both)",
                                   idx);
        if (n > 2)
                return errmsg_fail(reterr, -EINVAL,
                                   "spec.pullSecrets[%zu].for: each of pull and "
                                   "mount may appear only once",
                                   idx);
        unsigned m = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(f, i);
                if (!json_object_is_type(e, json_type_string))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].for[%zu] must be "
                                           "pull or mount",
                                           idx, i);
                const char *v = json_object_get_string(e);
                unsigned bit;
                if (has_nul(e))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].for[%zu] holds a NUL byte", idx,
                                           i);
                if (streq(v, "pull"))
                        bit = POLICY_FOR_PULL;
                else if (streq(v, "mount"))
                        bit = POLICY_FOR_MOUNT;
                else {
                        errmsg_quote(v, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].for[%zu]: \"%s\" "
                                           "is neither pull nor mount",
                                           idx, i, q);
                }
                if (m & bit)
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].for: each of pull "
                                           "and mount may appear only once",
                                           idx);
                m |= bit;
        }
        *ret = m;
        return 0;
}

static int parse_pull_secrets(json_object *ps, policy_spec *s, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!json_object_is_type(ps, json_type_array))
                return errmsg_fail(reterr, -EINVAL, "spec.pullSecrets must be a list");
        size_t n = json_object_array_length(ps);
        if (n > POLICY_SPEC_SECRETS_MAX)
                return errmsg_fail(reterr, -E2BIG, "spec.pullSecrets: at most %d secrets",
                                   POLICY_SPEC_SECRETS_MAX);
        if (n == 0) return 0;
        s->pull_secrets = calloc(n, sizeof(policy_pull_secret));
        if (!s->pull_secrets) return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(ps, i);
                if (!json_object_is_type(e, json_type_object))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu] must be an object "
                                           "with a name",
                                           i);
                json_object *nm = jsonutil_member(e, "name");
                if (!nm || !json_object_is_type(nm, json_type_string))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].name is required", i);
                const char *name = json_object_get_string(nm);
                if (has_nul(nm))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].name holds a NUL byte", i);
                if (!names_is_dns1123_subdomain(name)) {
                        errmsg_quote(name, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.pullSecrets[%zu].name: \"%s\" is not "
                                           "a valid secret name",
                                           i, q);
                }
                for (size_t j = 0; j < s->n_pull_secrets; j++)
                        if (streq(s->pull_secrets[j].name, name))
                                return errmsg_fail(reterr, -EINVAL,
                                                   "spec.pullSecrets: each secret name "
                                                   "may appear only once (\"%s\")",
                                                   name);
                unsigned m = 0;
                int r = parse_for(jsonutil_member(e, "for"), i, &m, reterr);
                if (r < 0) return r;
                char *d = strdup(name);
                if (!d) return -ENOMEM;
                s->pull_secrets[s->n_pull_secrets++] = (policy_pull_secret){d, m};
        }
        return 0;
}

static int parse_dockercfg(json_object *dc, policy_spec *s, char **reterr) {
        char q[ERRMSG_QUOTE_SIZE];
        if (!json_object_is_type(dc, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "spec.dockercfg must be an object");
        json_object *w = jsonutil_member(dc, "wait");
        if (w) {
                bool str = json_object_is_type(w, json_type_string) && !has_nul(w);
                const char *v = str ? json_object_get_string(w) : "";
                if (streq(v, "Auto"))
                        s->wait = POLICY_WAIT_AUTO;
                else if (streq(v, "Always"))
                        s->wait = POLICY_WAIT_ALWAYS;
                else if (streq(v, "Never"))
                        s->wait = POLICY_WAIT_NEVER;
                else {
                        errmsg_quote(v, q);
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.dockercfg.wait: \"%s\" is not one of "
                                           "Auto, Always, Never",
                                           q);
                }
        }
        json_object *t = jsonutil_member(dc, "timeoutSeconds");
        if (t) {
                /* json-c keeps integers as int64; a double like 3.5 is no integer */
                if (!json_object_is_type(t, json_type_int))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.dockercfg.timeoutSeconds must be an "
                                           "integer");
                int64_t v = json_object_get_int64(t);
                if (v < 0 || v > POLICY_SPEC_TIMEOUT_MAX)
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.dockercfg.timeoutSeconds must be "
                                           "between 0 and %d",
                                           POLICY_SPEC_TIMEOUT_MAX);
                s->timeout_seconds = (int)v;
        }
        return 0;
}

static int parse_global(json_object *g, policy_spec *s, char **reterr) {
        if (!json_object_is_type(g, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "spec.globalPullSecret must be an object");
        json_object *m = jsonutil_member(g, "merge");
        if (m) {
                if (!json_object_is_type(m, json_type_boolean))
                        return errmsg_fail(reterr, -EINVAL,
                                           "spec.globalPullSecret.merge must be true "
                                           "or false");
                s->merge = json_object_get_boolean(m);
        }
        return 0;
}

static int parse_opt_in(json_object *spec, const char *name, bool *ret, char **reterr) {
        json_object *v = jsonutil_member(spec, name);
        if (!v) return 0;
        if (!json_object_is_type(v, json_type_boolean))
                return errmsg_fail(reterr, -EINVAL, "spec.%s must be true or false", name);
        *ret = json_object_get_boolean(v);
        return 0;
}

int policy_spec_parse(json_object *spec, policy_spec **ret, char **reterr) {
        if (!ret) return -EINVAL;
        /* absent, or JSON null (json-c's NULL) */
        if (!spec) return errmsg_fail(reterr, -EINVAL, "spec is required");
        if (!json_object_is_type(spec, json_type_object))
                return errmsg_fail(reterr, -EINVAL, "spec must be an object");

        _cleanup_(policy_spec_freep) policy_spec *s = calloc(1, sizeof(*s));
        if (!s) return -ENOMEM;
        s->wait = POLICY_WAIT_AUTO;
        s->timeout_seconds = POLICY_SPEC_DEFAULT_TIMEOUT;

        json_object *v;
        int r;
        if ((v = jsonutil_member(spec, "subjects")) && (r = parse_subjects(v, s, reterr)) < 0)
                return r;
        if ((v = jsonutil_member(spec, "imagePuller")) &&
            (r = parse_image_puller(v, s, reterr)) < 0)
                return r;
        if ((v = jsonutil_member(spec, "pullSecrets")) &&
            (r = parse_pull_secrets(v, s, reterr)) < 0)
                return r;
        if ((v = jsonutil_member(spec, "dockercfg")) && (r = parse_dockercfg(v, s, reterr)) < 0)
                return r;
        if ((v = jsonutil_member(spec, "globalPullSecret")) && (r = parse_global(v, s, reterr)) < 0)
                return r;
        if ((r = parse_opt_in(spec, "verifyCredentials", &s->verify_credentials, reterr)) < 0 ||
            (r = parse_opt_in(spec, "restartStalePods", &s->restart_stale_pods, reterr)) < 0)
                return r;

        if (!s->image_puller && s->n_pull_secrets == 0 && !s->merge)
                return errmsg_fail(reterr, -EINVAL,
                                   "spec: at least one of imagePuller, pullSecrets, "
                                   "globalPullSecret.merge must be set");
        *ret = TAKE_PTR(s);
        return 0;
}

bool policy_spec_has_namespace_subjects(const policy_spec *s) {
        return s && (s->has_namespaces || s->namespace_selector);
}

bool policy_spec_all_service_accounts(const policy_spec *s) {
        if (!s) return false;
        if (!s->has_service_accounts && !s->sa_selector) return true;
        return kube_selector_is_empty(s->sa_selector);
}

const char *policy_wait_to_string(policy_wait w) {
        switch (w) {
        case POLICY_WAIT_AUTO:
                return "Auto";
        case POLICY_WAIT_ALWAYS:
                return "Always";
        case POLICY_WAIT_NEVER:
                return "Never";
        }
        return NULL;
}
