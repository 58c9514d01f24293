/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared by the libFuzzer harnesses (test/fuzz/fuzz_*.c) and the corpus
 * regression test (test/unit/fuzz/test_fuzz_corpus.c).
 *
 * Each harness exports fuzz_<name>_one(): it takes one input, runs it through
 * its parser, checks the parser's promises (FUZZ_CHECK) and frees everything,
 * so that ASan's leak check sees any leak. It returns 0 (libFuzzer's
 * convention). With -DFUZZ_MAIN the harness also defines LLVMFuzzerTestOneInput
 * as a thin wrapper; the regression test includes the harness sources without
 * it and feeds every file of test/fuzz/corpus/<name>/ to fuzz_<name>_one().
 */
#ifndef PP_TEST_FUZZ_H
#define PP_TEST_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int fuzz_kubeconfig_one(const uint8_t *data, size_t size);
int fuzz_yaml_json_one(const uint8_t *data, size_t size);
int fuzz_status_one(const uint8_t *data, size_t size);
int fuzz_meta_one(const uint8_t *data, size_t size);
int fuzz_labels_one(const uint8_t *data, size_t size);
int fuzz_policy_spec_one(const uint8_t *data, size_t size);
int fuzz_model_one(const uint8_t *data, size_t size);
int fuzz_base64_one(const uint8_t *data, size_t size);
int fuzz_timefmt_one(const uint8_t *data, size_t size);
int fuzz_flags_one(const uint8_t *data, size_t size);
int fuzz_stream_list_one(const uint8_t *data, size_t size);
int fuzz_challenge_one(const uint8_t *data, size_t size);
/* defined in test/fuzz/fuzz_watch.c */
int fuzz_watch_one(const uint8_t *data, size_t size);

/*
 * A broken promise: say which and where, then abort() so that libFuzzer
 * saves the input and the regression test's process fails.
 */
#define FUZZ_CHECK(cond)                                                                           \
        do {                                                                                       \
                if (!(cond)) {                                                                     \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
                        abort();                                                                   \
                }                                                                                  \
        } while (0)

/* The input as a NUL-terminated string (it may hold NULs of its own); abort()s on ENOMEM. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s) abort();
        for (size_t i = 0; i < size; i++) s[i] = (char)data[i];
        s[size] = 0;
        return s;
}

/*
 * The input as one JSON value (json-c's default depth, trailing bytes ignored as
 * json_tokener_parse() does), or NULL.
 */
static inline json_object *fuzz_json(const uint8_t *data, size_t size) {
        if (size > INT32_MAX) return NULL;
        json_tokener *tok = json_tokener_new();
        if (!tok) abort();
        json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

/* A JSON string that C would cut short: it holds a NUL byte ("\u0000"). */
static inline bool fuzz_json_has_nul(json_object *s) {
        return s && json_object_is_type(s, json_type_string) &&
               strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s);
}

#endif
