/*
 * snapshot.c - the immutable snapshot every instance serves from: records
 * sorted by SID, an index by friendly name, the version and its ETag; and
 * the SID index a refresh keeps over its working set. Pure data
 * structures, no I/O.
 */
#include "base/fmacros.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "waittime/internal.h"

static int rec_cmp(const void *a, const void *b)
{
    return strcasecmp(((const struct cg_wt_record *)a)->sid, ((const struct cg_wt_record *)b)->sid);
}

static int key_cmp(const void *key, const void *elem)
{
    return strcasecmp(key, ((const struct cg_wt_record *)elem)->sid);
}

static int name_cmp(const void *a, const void *b)
{
    const struct cg_wt_record *x = *(const struct cg_wt_record *const *)a;
    const struct cg_wt_record *y = *(const struct cg_wt_record *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcasecmp(x->sid, y->sid);
}

static int name_key_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(const struct cg_wt_record *const *)elem)->name);
}

void wt_snap_free(struct wt_snap *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->recs[i].name);
    free(s->recs);
    free(s->by_name);
    free(s);
}

/* Takes ownership of recs. When two queues share a friendly name the one
 * with the lower SID answers to it, so every instance picks the same. */
struct wt_snap *wt_snap_build(struct cg_wt_record *recs, size_t n)
{
    struct wt_snap *s = cg_calloc(1, sizeof *s);
    s->recs = recs;
    s->n = n;
    if (n > 1)
        qsort(recs, n, sizeof *recs, rec_cmp);
    s->by_name = cg_calloc(n ? n : 1, sizeof *s->by_name);
    for (size_t i = 0; i < n; i++)
        if (recs[i].name)
            s->by_name[s->nnames++] = &recs[i];
    if (s->nnames > 1)
        qsort(s->by_name, s->nnames, sizeof *s->by_name, name_cmp);
    size_t k = 0;
    for (size_t i = 0; i < s->nnames; i++)
        if (k == 0 || strcmp(s->by_name[k - 1]->name, s->by_name[i]->name) != 0)
            s->by_name[k++] = s->by_name[i];
    s->nnames = k;
    return s;
}

void wt_snap_set_version(struct wt_snap *s, uint64_t version, uint64_t refreshed_ms)
{
    s->version = version;
    s->refreshed_ms = refreshed_ms;
    /* The refresh time tells apart the versions of two Redis lifetimes (the
     * counter starts again at 1 after a Redis loss). */
    snprintf(s->etag, sizeof s->etag, "W/\"%llu-%llx\"", (unsigned long long)version,
             (unsigned long long)refreshed_ms);
}

size_t wt_snap_stale(const struct wt_snap *s)
{
    size_t stale = 0;
    for (size_t i = 0; s != NULL && i < s->n; i++)
        stale += s->recs[i].stale != 0;
    return stale;
}

const struct cg_wt_record *wt_snap_find(const struct wt_snap *s, const char *sid)
{
    if (s == NULL || s->n == 0)
        return NULL;
    return bsearch(sid, s->recs, s->n, sizeof *s->recs, key_cmp);
}

const struct cg_wt_record *wt_snap_find_name(const struct wt_snap *s, const char *name)
{
    if (s == NULL || s->nnames == 0)
        return NULL;
    const struct cg_wt_record *const *p =
        bsearch(name, s->by_name, s->nnames, sizeof *s->by_name, name_key_cmp);
    return p ? *p : NULL;
}

/* ---- the SID index of a refresh ---- */

static uint64_t sid_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (uint64_t)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

void wt_idx_init(struct wt_index *x, size_t entries)
{
    size_t cap = 64;
    while (cap < entries * 2)
        cap *= 2;
    x->slot = cg_calloc(cap, sizeof *x->slot);
    x->mask = cap - 1;
}

long wt_idx_find(const struct wt_index *x, const struct cg_wt_record *recs, const char *sid)
{
    for (size_t i = sid_hash(sid) & x->mask;; i = (i + 1) & x->mask) {
        uint32_t v = x->slot[i];
        if (v == 0)
            return -1;
        if (strcasecmp(recs[v - 1].sid, sid) == 0)
            return (long)v - 1;
    }
}

void wt_idx_free(struct wt_index *x)
{
    free(x->slot);
    x->slot = NULL;
    x->mask = 0;
}

void wt_idx_put(struct wt_index *x, const char *sid, size_t at)
{
    size_t i = sid_hash(sid) & x->mask;
    while (x->slot[i] != 0)
        i = (i + 1) & x->mask;
    x->slot[i] = (uint32_t)at + 1;
}
