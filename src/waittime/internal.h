/*
 * internal.h - what the files of the wait-time service share. Not for other
 * modules: waittime.h is the service's interface.
 *
 * The files and what each owns:
 *   record.c     one TaskQueue's figures and their formats: the seed's
 *                queue-times value and answer, the HTTP API record, the
 *                Redis record
 *   parse.c      TaskRouter's pages: TaskQueues/Statistics and the
 *                TaskQueues list
 *   snapshot.c   the immutable snapshot every instance serves from, and the
 *                SID index of a refresh's working set
 *   waittime.c   the service: lock, refresh, HTTP, life cycle
 */
#ifndef CG_WT_INTERNAL_H
#define CG_WT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "waittime/waittime.h"

/* ---- record.c ---- */

/* A figure from TaskRouter or a record: any JSON number; absent, null,
 * negative or absurd values read as 0. */
double wt_fig(const json_t *o, const char *path);
/* The same as a count, at most 10^9. */
long wt_count_fig(const json_t *o, const char *path);
/* Fills r->estimate_s from r's other figures (cg_tq_estimate_seconds). */
void wt_estimate(struct cg_wt_record *r);

/* ---- snapshot.c ---- */

struct wt_snap {
    struct cg_wt_record *recs; /* sorted by SID, case-insensitively */
    size_t n;
    const struct cg_wt_record **by_name; /* sorted by name, one per name */
    size_t nnames;
    uint64_t version;
    uint64_t refreshed_ms; /* wall clock of the write */
    uint64_t next_ms;      /* wall clock of the next scheduled refresh */
    char etag[64];
};

/* Takes ownership of recs (n of them; may be NULL when n is 0). */
struct wt_snap *wt_snap_build(struct cg_wt_record *recs, size_t n);
void wt_snap_free(struct wt_snap *s); /* NULL is a no-op */
/* Sets the version and the refresh time, and the ETag made of both. */
void wt_snap_set_version(struct wt_snap *s, uint64_t version, uint64_t refreshed_ms);
/* Lookups; NULL when s is NULL or has no such queue. */
const struct cg_wt_record *wt_snap_find(const struct wt_snap *s, const char *sid);
const struct cg_wt_record *wt_snap_find_name(const struct wt_snap *s, const char *name);
/* Records marked stale. */
size_t wt_snap_stale(const struct wt_snap *s);

/* SID -> index into a record array (open addressing, never shrinks). */
struct wt_index {
    uint32_t *slot; /* record index + 1; 0 is empty */
    size_t mask;
};
void wt_idx_init(struct wt_index *x, size_t entries);
void wt_idx_free(struct wt_index *x);
/* The index of sid in recs, or -1. */
long wt_idx_find(const struct wt_index *x, const struct cg_wt_record *recs, const char *sid);
void wt_idx_put(struct wt_index *x, const char *sid, size_t at);

#endif
