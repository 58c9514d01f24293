/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/base64.h"

/* RFC 4648 section 10 test vectors. */
static const struct {
        const char *plain, *enc;
} rfc[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void test_encode_vectors(void **state) {
        for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
                char *out = NULL;
                size_t n = 99;
                assert_int_equal(base64_encode(rfc[i].plain, strlen(rfc[i].plain), 0, &out, &n), 0);
                assert_string_equal(out, rfc[i].enc);
                assert_int_equal(n, strlen(rfc[i].enc));
                assert_int_equal(base64_encoded_len(strlen(rfc[i].plain)), strlen(rfc[i].enc));
                free(out);
        }
        /* bytes that use '+' and '/' and a NUL */
        const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
        char *out = NULL;
        assert_int_equal(base64_encode(bin, sizeof(bin), 0, &out, NULL), 0);
        assert_string_equal(out, "+/+/AD4=");
        free(out);
        /* empty input may be NULL */
        assert_int_equal(base64_encode(NULL, 0, 0, &out, NULL), 0);
        assert_string_equal(out, "");
        free(out);
}

static void test_decode_vectors(void **state) {
        for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
                void *out = NULL;
                size_t n = 99;
                assert_int_equal(base64_decode(rfc[i].enc, strlen(rfc[i].enc), 0, 0, &out, &n), 0);
                assert_int_equal(n, strlen(rfc[i].plain));
                assert_memory_equal(out, rfc[i].plain, n);
                assert_int_equal(((char *)out)[n], 0); /* NUL-terminated */
                free(out);
        }
        void *out = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode("+/+/AD4=", 8, 0, 0, &out, &n), 0);
        const unsigned char bin[] = {0xfb, 0xff, 0xbf, 0x00, 0x3e};
        assert_int_equal(n, sizeof(bin));
        assert_memory_equal(out, bin, n);
        free(out);
}

static void test_roundtrip_all_lengths(void **state) {
        unsigned char buf[300];
        for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (unsigned char)(i * 37 + 11);
        for (size_t len = 0; len <= sizeof(buf); len++) {
                char *enc = NULL;
                size_t elen = 0;
                assert_int_equal(base64_encode(buf, len, 0, &enc, &elen), 0);
                assert_int_equal(elen % 4, 0);
                void *dec = NULL;
                size_t dlen = 0;
                assert_int_equal(base64_decode(enc, elen, 0, 0, &dec, &dlen), 0);
                assert_int_equal(dlen, len);
                if (len) assert_memory_equal(dec, buf, len);
                base64_free_wiped(dec, dlen);
                free(enc);
        }
}

static void test_decode_rejects(void **state) {
        const char *bad[] = {
            "Zg",       /* no padding (strict) */
            "Zg=",      /* short padding */
            "Zg===",    /* too much padding */
            "Z===",     /* a lone character carries 6 bits */
            "Z",        /* same, unpadded */
            "Zm9v=",    /* padding where none is due */
            "Zg==Zg==", /* data after padding */
            "Zm 9v",    /* whitespace (strict) */
            "Zm9v\n",   /* same */
            "Zm-v",     /* URL alphabet is not standard base64 */
            "Zm_v",     "Zm9*", "====",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                void *out = (void *)0x1;
                size_t n = 7;
                assert_int_equal(base64_decode(bad[i], strlen(bad[i]), 0, 0, &out, &n), -EINVAL);
                assert_ptr_equal(out, (void *)0x1); /* untouched on failure */
                assert_int_equal(n, 7);
        }
        /* an embedded NUL is junk, not the end of the input */
        void *out = NULL;
        size_t n = 0;
        assert_int_equal(base64_decode("Zm9v\0Zm9v", 9, 0, 0, &out, &n), -EINVAL);
        /* bad arguments */
        assert_int_equal(base64_decode(NULL, 4, 0, 0, &out, &n), -EINVAL);
        assert_int_equal(base64_decode("Zm9v", 4, 0x80, 0, &out, &n), -EINVAL);
        assert_int_equal(base64_decode("Zm9v", 4, 0, 0, NULL, &n), -EINVAL);
        assert_int_equal(base64_encode(NULL, 3, 0, (char **)&out, NULL), -EINVAL);
}

static void test_decode_flags(void **state) {
        void *out = NULL;
        size_t n = 0;
        const char *spaced = " Zm9v\r\n YmFy\tZg\n==\n";
        assert_int_equal(base64_decode(spaced, strlen(spaced), 0, 0, &out, &n), -EINVAL);
        assert_int_equal(base64_decode(spaced, strlen(spaced), BASE64_IGNORE_SPACE, 0, &out, &n),
                         0);
        assert_int_equal(n, 7);
        assert_memory_equal(out, "foobarf", 7);
        free(out);

        assert_int_equal(base64_decode("Zm8", 3, BASE64_PADDING_OPTIONAL, 0, &out, &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(out, "fo", 2);
        free(out);
        /* optional padding still rejects wrong padding and lone characters */
        assert_int_equal(base64_decode("Zm8==", 5, BASE64_PADDING_OPTIONAL, 0, &out, &n), -EINVAL);
        assert_int_equal(base64_decode("Zm9vY", 5, BASE64_PADDING_OPTIONAL, 0, &out, &n), -EINVAL);
        /* leftover bits of the last group are ignored, like Go's StdEncoding */
        assert_int_equal(base64_decode("Zh==", 4, 0, 0, &out, &n), 0);
        assert_int_equal(n, 1);
        assert_memory_equal(out, "f", 1);
        free(out);
}

static void test_limits(void **state) {
        void *out = NULL;
        size_t n = 0;
        /* "foobar" decodes to 6 bytes: max 6 passes, max 5 fails before decoding */
        assert_int_equal(base64_decode("Zm9vYmFy", 8, 0, 6, &out, &n), 0);
        free(out);
        assert_int_equal(base64_decode("Zm9vYmFy", 8, 0, 5, &out, &n), -E2BIG);
        /* the limit counts decoded bytes, not padding */
        assert_int_equal(base64_decode("Zm9vYg==", 8, 0, 4, &out, &n), 0);
        free(out);
        assert_int_equal(base64_decode("Zm9vYg==", 8, 0, 3, &out, &n), -E2BIG);

        char *enc = NULL;
        assert_int_equal(base64_encode("foobar", 6, 8, &enc, NULL), 0);
        free(enc);
        assert_int_equal(base64_encode("foobar", 6, 7, &enc, NULL), -E2BIG);
        /* a length whose encoding cannot be represented */
        assert_int_equal(base64_encoded_len(SIZE_MAX), 0);
        assert_int_equal(base64_encode("x", SIZE_MAX, 0, &enc, NULL), -E2BIG);
        base64_free_wiped(NULL, 10);
}

int main(void) {
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_encode_vectors),        cmocka_unit_test(test_decode_vectors),
            cmocka_unit_test(test_roundtrip_all_lengths), cmocka_unit_test(test_decode_rejects),
            cmocka_unit_test(test_decode_flags),          cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
