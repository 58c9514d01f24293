/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fuzz corpora as regression tests: every file of test/fuzz/corpus/<name>/
 * and test/fuzz/crashes/<name>/ goes through the same function as in the
 * libFuzzer harness test/fuzz/fuzz_<name>.c, built here without -DFUZZ_MAIN
 * (and without libFuzzer). A harness that finds a broken promise abort()s, so
 * a regression kills this binary, which the runner counts as a failure; the
 * input being run is printed first.
 *
 * The corpus is found under $PULLPOLICY_ROOT, else the current directory (the
 * test runner starts tests from the repository root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../fuzz/fuzz_base64.c"
#include "../../fuzz/fuzz_challenge.c"
#include "../../fuzz/fuzz_flags.c"
#include "../../fuzz/fuzz_kubeconfig.c"
#include "../../fuzz/fuzz_labels.c"
#include "../../fuzz/fuzz_meta.c"
#include "../../fuzz/fuzz_model.c"
#include "../../fuzz/fuzz_policy_spec.c"
#include "../../fuzz/fuzz_status.c"
#include "../../fuzz/fuzz_stream_list.c"
#include "../../fuzz/fuzz_timefmt.c"
#include "../../fuzz/fuzz_yaml_json.c"
/* last: it defines LLVMFuzzerTestOneInput whatever FUZZ_MAIN says */
#include "../../fuzz/fuzz_watch.c"

typedef struct harness {
        const char *name;
        int (*one)(const uint8_t *data, size_t size);
} harness;

static const harness harnesses[] = {
    {"base64", fuzz_base64_one},   {"challenge", fuzz_challenge_one},
    {"flags", fuzz_flags_one},     {"kubeconfig", fuzz_kubeconfig_one},
    {"labels", fuzz_labels_one},   {"meta", fuzz_meta_one},
    {"model", fuzz_model_one},     {"policy_spec", fuzz_policy_spec_one},
    {"status", fuzz_status_one},   {"stream_list", fuzz_stream_list_one},
    {"timefmt", fuzz_timefmt_one}, {"yaml_json", fuzz_yaml_json_one},
    {"watch", fuzz_watch_one},
};

/* The input being run, for the last words of a failing harness. */
static char current[4096];

static void say_current(void) {
        if (current[0]) {
                static const char pre[] = "\n*** fuzz regression: failed on input ";
                ssize_t k = write(STDERR_FILENO, pre, sizeof(pre) - 1);
                k = write(STDERR_FILENO, current, strlen(current));
                k = write(STDERR_FILENO, "\n", 1);
                (void)k;
        }
}

static void on_abort(int sig) {
        say_current();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Sanitizer reports end the process without abort(): ask them to tell us too. */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static const char *root_dir(void) {
        const char *r = getenv("PULLPOLICY_ROOT");
        return r && *r ? r : ".";
}

static int cmp_names(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_all(const char *path, uint8_t **ret, size_t *ret_len) {
        FILE *f = fopen(path, "rbe");
        if (!f) return -errno;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        cap = cap ? cap * 2 : 4096;
                        uint8_t *nb = realloc(buf, cap);
                        if (!nb) {
                                free(buf);
                                fclose(f);
                                return -ENOMEM;
                        }
                        buf = nb;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                len += n;
                if (n == 0) break;
        }
        bool err = ferror(f);
        fclose(f);
        if (err) {
                free(buf);
                return -EIO;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

/* Runs every regular file of dir through h; returns how many, or -1 when dir is missing. */
static long run_dir(const harness *h, const char *dir) {
        DIR *d = opendir(dir);
        if (!d) {
                assert_int_equal(errno, ENOENT);
                return -1;
        }
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.') continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        names = realloc(names, cap * sizeof(char *));
                        assert_non_null(names);
                }
                names[n] = strdup(de->d_name);
                assert_non_null(names[n]);
                n++;
        }
        closedir(d);
        if (n) qsort(names, n, sizeof(char *), cmp_names);
        long ran = 0;
        for (size_t i = 0; i < n; i++) {
                snprintf(current, sizeof(current), "%s/%s", dir, names[i]);
                struct stat st;
                assert_int_equal(stat(current, &st), 0);
                if (S_ISREG(st.st_mode)) {
                        uint8_t *data = NULL;
                        size_t len = 0;
                        int r = read_all(current, &data, &len);
                        if (r < 0) fail_msg("%s: %s", current, strerror(-r));
                        /* a private copy, so that ASan sees any read past the end */
                        uint8_t *copy = malloc(len ? len : 1);
                        assert_non_null(copy);
                        if (len) memcpy(copy, data, len);
                        assert_int_equal(h->one(copy, len), 0);
                        free(copy);
                        free(data);
                        ran++;
                }
                free(names[i]);
        }
        current[0] = 0;
        free(names);
        return ran;
}

static void test_corpus(void **state) {
        const harness *h = *state;
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/test/fuzz/corpus/%s", root_dir(), h->name);
        long corpus = run_dir(h, dir);
        if (corpus < 0)
                fail_msg("%s: not found (run from the repository root or set PULLPOLICY_ROOT)",
                         dir);
        /* every harness ships seeds: an empty corpus would make this test pass vacuously */
        assert_true(corpus > 0);
        snprintf(dir, sizeof(dir), "%s/test/fuzz/crashes/%s", root_dir(), h->name);
        long crashes = run_dir(h, dir);
        print_message("%-12s %ld corpus inputs, %ld crash reproducers\n", h->name, corpus,
                      crashes < 0 ? 0 : crashes);
}

int main(void) {
        signal(SIGABRT, on_abort);
        if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(say_current);
        struct CMUnitTest tests[ARRAY_SIZE(harnesses)];
        for (size_t i = 0; i < ARRAY_SIZE(harnesses); i++)
                tests[i] = (struct CMUnitTest){
                    .name = harnesses[i].name,
                    .test_func = test_corpus,
                    .initial_state = (void *)&harnesses[i],
                };
        return _cmocka_run_group_tests("fuzz_corpus", tests, ARRAY_SIZE(tests), NULL, NULL);
}
