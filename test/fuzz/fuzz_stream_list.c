/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer harness for a streamed LIST (pkg/kube/reflector.c, opts.watch_list):
 * the input is the body of a watch with initial events, fed to a reflector
 * (fake transport) that hands the events to a store of Namespaces
 * (kube_store_replace_begin/add/commit), and the same stream goes on as the
 * watch after the initial-events-end bookmark.
 *
 * The first two input bytes seed the chunking; the rest is the stream, fed
 * once in one piece and once in pseudo-random chunks: both runs must end with
 * the same store, the same counts and the same outcome, and nothing may stay
 * staged once the stream ended (committed or dropped). Small limits (events of
 * 4 KiB, 64 items) make the refusal paths reachable.
 *
 * `FUZZ_ONLY=stream_list make fuzz` builds and runs it (hack/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "fuzz.h"
#include "kube/reflector.h"
#include "kube/store.h"
#include "model.h"

#define SL_MAX_RECORD (1 << 20)

typedef struct sl_fake {
        kube_request_opts o;
        bool open;
        unsigned requests;
} sl_fake;

static int sl_request(void *ctx, const kube_request_opts *o, kube_request **ret) {
        sl_fake *f = ctx;
        f->o = *o;
        f->o.path = NULL; /* not kept: the reflector frees it */
        f->o.accept = NULL;
        f->open = true;
        f->requests++;
        *ret = (kube_request *)f;
        return 0;
}

static void sl_cancel(void *ctx, kube_request *req) {
        ((sl_fake *)ctx)->open = false;
}

static int sl_begin(void *ud) {
        return kube_store_replace_begin(ud);
}

static int sl_page(void *ud, json_object *items) {
        return kube_store_replace_add(ud, items);
}

static int sl_end(void *ud, const char *rv) {
        int r = kube_store_replace_commit(ud);
        return r < 0 ? r : 0;
}

static void sl_abort(void *ud) {
        kube_store_replace_abort(ud);
}

static int sl_event(void *ud, kube_event_type type, json_object *obj) {
        int r = kube_store_apply(ud, type, obj);
        return r < 0 ? r : 0;
}

static int sl_visit(const void *obj, void *ud) {
        char **rec = ud;
        const kube_meta_core *m = model_kind_namespace.meta(obj);
        size_t have = strlen(*rec);
        size_t add = strlen(m->name) + (m->resource_version ? strlen(m->resource_version) : 0) + 3;
        if (have + add > SL_MAX_RECORD) return 1;
        char *n = realloc(*rec, have + add + 1);
        if (!n) abort();
        sprintf(n + have, "%s=%s;", m->name, m->resource_version ? m->resource_version : "");
        *rec = n;
        return 0;
}

/* Runs the stream; returns a description of the outcome (the caller frees it). */
static char *sl_run(const uint8_t *data, size_t size, uint32_t seed, bool chunked) {
        struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
        sl_fake f = {0};
        kube_store *store = NULL;
        kube_reflector *r = NULL;
        kube_reflector_transport tr = {sl_request, sl_cancel, &f};
        kube_reflector_opts o = {
            .resource = &KUBE_RES_NAMESPACES,
            .watch_list = true,
            .max_event = 4096,
            .max_items = 64,
            .idle_timeout = -1,
            .backoff_jitter = -1,
            .loop = loop,
            .transport = &tr,
        };
        kube_reflector_handlers h = {.on_event = sl_event};
        kube_reflector_list_handlers lh = {sl_begin, sl_page, sl_end, sl_abort};
        if (!loop || kube_store_new(&model_kind_namespace, &store) < 0 ||
            kube_reflector_new(NULL, &o, &h, store, &r) < 0 ||
            kube_reflector_set_list_handlers(r, &lh) < 0 || kube_reflector_start(r) < 0)
                abort();
        for (int i = 0; i < 100 && !f.open; i++) ev_run(loop, EVRUN_NOWAIT);
        FUZZ_CHECK(f.open && f.requests == 1);

        int k = 0;
        size_t off = 0;
        while (off < size && f.open) {
                size_t n = size - off;
                if (chunked) {
                        seed = seed * 1103515245u + 12345u;
                        size_t c = (seed >> 16) % 65;
                        if ((seed & 0xff) == 7) c = 4096;
                        if (c < n) n = c;
                }
                k = f.o.on_data(NULL, (const char *)data + off, n, f.o.userdata);
                off += n;
                if (k < 0) {
                        f.open = false;
                        kube_response resp = {.http_status = 200, .error = k};
                        f.o.on_done(NULL, &resp, f.o.userdata);
                }
        }
        if (f.open) {
                f.open = false;
                kube_response resp = {.http_status = 200};
                f.o.on_done(NULL, &resp, f.o.userdata);
        }

        kube_reflector_stats s;
        kube_reflector_get_stats(r, &s);
        kube_store_stats st;
        kube_store_get_stats(store, &st);
        FUZZ_CHECK(st.staged == 0); /* committed or dropped once the stream ended */
        FUZZ_CHECK(!s.synced || s.lists_done == 1);
        FUZZ_CHECK(s.synced == kube_store_has_synced(store));
        FUZZ_CHECK(kube_store_count(store) <= 64 + s.events);

        char *rec = NULL;
        if (asprintf(&rec, "k=%d synced=%d done=%lu fallbacks=%lu events=%lu rv=%s store:", k < 0,
                     s.synced, s.lists_done, s.watch_list_fallbacks, s.events,
                     s.resource_version) < 0)
                abort();
        const void **objs = NULL;
        size_t n = 0;
        if (kube_store_list(store, NULL, NULL, &objs, &n) < 0) abort();
        for (size_t i = 0; i < n && sl_visit(objs[i], &rec) == 0; i++)
                ;
        free(objs);
        kube_reflector_free(r);
        kube_store_free(store);
        ev_loop_destroy(loop);
        return rec;
}

int fuzz_stream_list_one(const uint8_t *data, size_t size) {
        if (size < 2) return 0;
        uint32_t seed = (uint32_t)data[0] << 8 | data[1];
        char *a = sl_run(data + 2, size - 2, seed, false);
        char *b = sl_run(data + 2, size - 2, seed, true);
        if (strcmp(a, b) != 0) {
                fprintf(stderr, "whole:   %s\nchunked: %s\n", a, b);
                FUZZ_CHECK(!"chunking changed the outcome");
        }
        free(a);
        free(b);
        return 0;
}

#ifdef FUZZ_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        return fuzz_stream_list_one(data, size);
}
#endif
