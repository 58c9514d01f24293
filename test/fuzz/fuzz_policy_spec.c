/* SPDX-License-Identifier: Apache-2.0 */
/*
 * policy_spec_parse() and model_policy_decode() on arbitrary JSON.
 *
 * The input is parsed as a spec, decoded as a whole PullPolicy, and decoded
 * again wrapped as the spec of a well-formed PullPolicy. Checks:
 *   - a parsed spec keeps every limit and rule of policy_spec.h (names valid and
 *     unique, masks non-zero, defaults applied, at least one action), and no
 *     name or keyword it accepted held a NUL byte;
 *   - a failure is -EINVAL/-E2BIG/-ENOMEM with a one-line message;
 *   - model_policy_decode() of the wrapped spec records exactly what
 *     policy_spec_parse() said (the spec, or the same error message), and a
 *     decoded status keeps its limits.
 */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "model.h"
#include "names.h"
#include "policy_spec.h"

static void ps_check_unique(char *const *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n; j++) FUZZ_CHECK(strcmp(v[i], v[j]) != 0);
}

static void ps_check_selector(const kube_selector *s) {
        if (!s) return;
        for (size_t i = 0; i < s->n_reqs; i++) {
                FUZZ_CHECK(kube_label_key_validate(s->reqs[i].key) == 0);
                for (size_t j = 0; j < s->reqs[i].n_values; j++)
                        FUZZ_CHECK(kube_label_value_validate(s->reqs[i].values[j]) == 0);
        }
}

static void ps_check_spec(const policy_spec *s) {
        FUZZ_CHECK(s->n_namespaces <= POLICY_SPEC_LIST_MAX);
        if (s->n_namespaces) FUZZ_CHECK(s->has_namespaces);
        for (size_t i = 0; i < s->n_namespaces; i++)
                FUZZ_CHECK(names_is_dns1123_label(s->namespaces[i]));
        ps_check_unique(s->namespaces, s->n_namespaces);
        FUZZ_CHECK(s->n_service_accounts <= POLICY_SPEC_LIST_MAX);
        if (s->n_service_accounts) FUZZ_CHECK(s->has_service_accounts);
        for (size_t i = 0; i < s->n_service_accounts; i++)
                FUZZ_CHECK(names_is_dns1123_subdomain(s->service_accounts[i]));
        ps_check_unique(s->service_accounts, s->n_service_accounts);
        ps_check_selector(s->namespace_selector);
        ps_check_selector(s->sa_selector);

        FUZZ_CHECK(s->image_puller == (s->cluster_role != NULL));
        if (s->cluster_role) {
                size_t n = strlen(s->cluster_role);
                FUZZ_CHECK(n >= 1 && n <= POLICY_SPEC_ROLE_MAX);
                FUZZ_CHECK(!strchr(s->cluster_role, '/') && !strchr(s->cluster_role, '%'));
        }
        FUZZ_CHECK(s->n_pull_secrets <= POLICY_SPEC_SECRETS_MAX);
        for (size_t i = 0; i < s->n_pull_secrets; i++) {
                const policy_pull_secret *p = &s->pull_secrets[i];
                FUZZ_CHECK(names_is_dns1123_subdomain(p->name));
                FUZZ_CHECK(p->for_mask != 0 &&
                           (p->for_mask & ~(unsigned)(POLICY_FOR_PULL | POLICY_FOR_MOUNT)) == 0);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(strcmp(s->pull_secrets[j].name, p->name) != 0);
        }
        FUZZ_CHECK(s->wait == POLICY_WAIT_AUTO || s->wait == POLICY_WAIT_ALWAYS ||
                   s->wait == POLICY_WAIT_NEVER);
        FUZZ_CHECK(policy_wait_to_string(s->wait) != NULL);
        FUZZ_CHECK(s->timeout_seconds >= 0 && s->timeout_seconds <= POLICY_SPEC_TIMEOUT_MAX);
        FUZZ_CHECK(s->image_puller || s->n_pull_secrets > 0 || s->merge);

        FUZZ_CHECK(policy_spec_has_namespace_subjects(s) ==
                   (s->has_namespaces || s->namespace_selector != NULL));
        bool all = policy_spec_all_service_accounts(s);
        if (!s->has_service_accounts && !s->sa_selector) FUZZ_CHECK(all);
        if (s->sa_selector && s->sa_selector->n_reqs > 0) FUZZ_CHECK(!all);
        if (s->has_service_accounts && !s->sa_selector) FUZZ_CHECK(!all);
}

static void ps_check_no_nul_list(json_object *arr) {
        size_t n =
            arr && json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 0;
        for (size_t i = 0; i < n; i++)
                FUZZ_CHECK(!fuzz_json_has_nul(json_object_array_get_idx(arr, i)));
}

/* No accepted name or keyword held a NUL byte (C would see it cut short). */
static void ps_check_no_nul(json_object *spec) {
        json_object *subj = json_object_object_get(spec, "subjects");
        ps_check_no_nul_list(json_object_object_get(subj, "namespaces"));
        ps_check_no_nul_list(json_object_object_get(subj, "serviceAccounts"));
        FUZZ_CHECK(!fuzz_json_has_nul(
            json_object_object_get(json_object_object_get(spec, "imagePuller"), "clusterRole")));
        FUZZ_CHECK(!fuzz_json_has_nul(
            json_object_object_get(json_object_object_get(spec, "dockercfg"), "wait")));
        json_object *ps = json_object_object_get(spec, "pullSecrets");
        size_t n =
            ps && json_object_is_type(ps, json_type_array) ? json_object_array_length(ps) : 0;
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(ps, i);
                FUZZ_CHECK(!fuzz_json_has_nul(json_object_object_get(e, "name")));
                ps_check_no_nul_list(json_object_object_get(e, "for"));
        }
}

static void ps_check_status(const model_policy_status *st) {
        FUZZ_CHECK(st->n_problems <= MODEL_PROBLEMS_MAX);
        if (!st->has_ready)
                FUZZ_CHECK(!st->ready_status && !st->ready_reason && !st->ready_message &&
                           !st->ready_last_transition && st->ready_observed_generation == -1);
}

/* Decodes a PullPolicy; when spec_err is given, the spec must have fared as it says. */
static void ps_decode_policy(json_object *obj, bool check_spec, int spec_r, const char *spec_err) {
        model_policy *p = NULL;
        int r = model_policy_decode(obj, &p);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(p == NULL);
                return;
        }
        FUZZ_CHECK(p && p->meta.name);
        FUZZ_CHECK((p->spec == NULL) != (p->spec_error == NULL));
        if (p->spec) ps_check_spec(p->spec);
        ps_check_status(&p->status);
        if (check_spec && spec_r != -ENOMEM) {
                FUZZ_CHECK((spec_r == 0) == (p->spec != NULL));
                if (spec_r < 0 && spec_err) FUZZ_CHECK(strcmp(spec_err, p->spec_error) == 0);
        }
        FUZZ_CHECK(model_kind_policy.mem(p) > 0);
        model_policy_free(p);
}

int fuzz_policy_spec_one(const uint8_t *data, size_t size) {
        json_object *obj = fuzz_json(data, size);
        if (!obj) return 0;

        policy_spec *s = NULL;
        char *err = NULL;
        int r = policy_spec_parse(obj, &s, &err);
        if (r == 0) {
                FUZZ_CHECK(s != NULL);
                ps_check_spec(s);
                ps_check_no_nul(obj);
        } else {
                FUZZ_CHECK(r == -EINVAL || r == -E2BIG || r == -ENOMEM);
                FUZZ_CHECK(s == NULL);
                if (r != -ENOMEM) FUZZ_CHECK(err != NULL && strchr(err, '\n') == NULL);
        }

        ps_decode_policy(obj, false, 0, NULL);

        json_object *wrapped = json_object_new_object(), *md = json_object_new_object();
        if (!wrapped || !md) abort();
        json_object_object_add(md, "name", json_object_new_string("p"));
        json_object_object_add(md, "namespace", json_object_new_string("ns"));
        json_object_object_add(wrapped, "metadata", md);
        json_object_object_add(wrapped, "spec", json_object_get(obj));
        ps_decode_policy(wrapped, true, r, err);
        json_object_put(wrapped);

        free(err);
        policy_spec_free(s);
        json_object_put(obj);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_policy_spec_one(data, size);
}
#endif
