/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for the watch framer (pkg/kube/watch.c).
 *
 * The first two input bytes seed the chunking; the rest is the stream. The
 * stream is framed twice, once in one piece and once in pseudo-random chunks
 * (sizes 0..64 and the odd large one), and both runs must agree on every
 * event and on the final result: chunking must never change what comes out.
 * A small event cap makes the -EMSGSIZE path reachable.
 *
 * `FUZZ_ONLY=watch make fuzz` builds and runs it (hack/fuzz.sh); by hand:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ipkg -I/usr/include/json-c \
 *         test/fuzz/fuzz_watch.c pkg/kube/watch.c pkg/kube/types.c -ljson-c -o build/fuzz_watch
 *   ./build/fuzz_watch -max_total_time=60 test/fuzz/corpus/watch
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kube/watch.h"

#define WATCH_CAP        4096
#define WATCH_MAX_RECORD (1 << 20)

typedef struct watch_rec {
        char *buf; /* one line per event: type, code, reason, serialized object */
        size_t len;
} watch_rec;

static int watch_on_event(const kube_watch_event *ev, void *ud) {
        watch_rec *r = ud;
        const char *obj = json_object_to_json_string_ext(ev->object, JSON_C_TO_STRING_PLAIN);
        char head[64];
        int n = snprintf(head, sizeof(head), "%d %d %d ", (int)ev->type, ev->status_code,
                         kube_watch_event_is_gone(ev));
        size_t add =
            (size_t)n + strlen(obj) + (ev->status_reason ? strlen(ev->status_reason) : 0) + 2;
        if (ev->type < 0 || ev->type >= _KUBE_EVENT_TYPE_MAX || !ev->object) abort();
        if (r->len + add > WATCH_MAX_RECORD)
                return 0; /* keep memory bounded; both runs cut alike */
        char *nb = realloc(r->buf, r->len + add + 1);
        if (!nb) abort();
        r->buf = nb;
        r->len += (size_t)sprintf(r->buf + r->len, "%s%s %s\n", head,
                                  ev->status_reason ? ev->status_reason : "", obj);
        (void)kube_watch_object_resource_version(ev->object);
        return 0;
}

static int watch_frame(const uint8_t *data, size_t size, uint32_t seed, bool chunked,
                       watch_rec *r) {
        kube_watch_framer *f = NULL;
        kube_watch_framer_opts o = {.max_event = WATCH_CAP};
        if (kube_watch_framer_new(&o, watch_on_event, r, &f) < 0) abort();
        int k = 0;
        size_t off = 0;
        while (off < size && k == 0) {
                size_t n = size - off;
                if (chunked) {
                        seed = seed * 1103515245u + 12345u;
                        size_t want = (seed >> 16) % 65;
                        if ((seed & 0xff) == 0) want = WATCH_CAP + 7;
                        if (want < n) n = want;
                }
                k = kube_watch_framer_feed(f, (const char *)data + off, n);
                off += n;
        }
        if (k == 0) k = kube_watch_framer_finish(f);
        if (kube_watch_framer_pending(f) > WATCH_CAP) abort();
        kube_watch_framer_free(f);
        return k;
}

int fuzz_watch_one(const uint8_t *data, size_t size);
int fuzz_watch_one(const uint8_t *data, size_t size) {
        uint32_t seed = 1;
        if (size >= 2) {
                seed = (uint32_t)data[0] << 8 | data[1];
                data += 2;
                size -= 2;
        }
        watch_rec a = {0}, b = {0};
        int ka = watch_frame(data, size, seed, false, &a);
        int kb = watch_frame(data, size, seed, true, &b);
        if (ka != kb) abort();
        if (a.len != b.len || (a.len && memcmp(a.buf, b.buf, a.len) != 0)) abort();
        free(a.buf);
        free(b.buf);
        return 0;
}

/*
 * Defined whatever FUZZ_MAIN says: test/unit/fuzz/test_fuzz_corpus.c calls it
 * by this name (fuzz_watch_one() is the name the other harnesses' convention
 * would give it).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_watch_one(data, size);
}
