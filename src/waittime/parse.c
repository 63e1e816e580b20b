/*
 * parse.c - TaskRouter's v1 pages: one page of TaskQueues/Statistics into
 * records (cg_wt_parse_stats), one page of the TaskQueues list into
 * friendly names (cg_wt_parse_names), each with the page's
 * meta.next_page_url. Pure functions, no I/O: fuzz targets.
 */
#include "base/fmacros.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "waittime/internal.h"

/* The length of the cumulative window, 0 when the dates are missing or
 * make no sense (the estimator then assumes TaskRouter's default). */
static double window_of(const json_t *it)
{
    double from = cg_iso8601_parse(cg_json_str(it, "cumulative.start_time"));
    double to = cg_iso8601_parse(cg_json_str(it, "cumulative.end_time"));
    return from >= 0 && to > from ? to - from : 0;
}

/* The list of a v1 page: the array named by meta.key, else dflt_key; and
 * meta.next_page_url. -1 when the page does not have that shape. */
static int page_shape(const json_t *root, const char *dflt_key, const json_t **list,
                      char **next_url, char *err, size_t errlen)
{
    if (!json_is_object(root)) {
        cg_err_set(err, errlen, "page is not a JSON object");
        return -1;
    }
    const json_t *meta = json_object_get(root, "meta");
    if (meta != NULL && !json_is_object(meta)) {
        cg_err_set(err, errlen, "meta is not an object");
        return -1;
    }
    const char *key = meta ? cg_json_str(meta, "key") : NULL;
    if (key == NULL)
        key = dflt_key;
    *list = json_object_get(root, key);
    if (!json_is_array(*list)) {
        cg_err_set(err, errlen, "no %s array in the page", key);
        return -1;
    }
    const json_t *next = meta ? json_object_get(meta, "next_page_url") : NULL;
    if (next != NULL && !json_is_null(next) && !json_is_string(next)) {
        cg_err_set(err, errlen, "meta.next_page_url is not a string");
        return -1;
    }
    const char *s = json_is_string(next) ? json_string_value(next) : NULL;
    if (s != NULL && strlen(s) > CG_WT_MAX_URL) {
        cg_err_set(err, errlen, "meta.next_page_url is too long");
        return -1;
    }
    *next_url = s != NULL && s[0] ? cg_strdup(s) : NULL;
    return 0;
}

/* A v1 page parsed, with its list and next page URL; NULL (err set) when
 * it is not JSON or not that shape. The caller drops the returned root. */
static json_t *open_page(const char *body, size_t len, const char *dflt_key, const json_t **list,
                         char **next_url, char *err, size_t errlen)
{
    *next_url = NULL;
    json_t *root = cg_json_parse(body, len, CG_JSON_MAX_DEPTH, err, errlen);
    if (root != NULL && page_shape(root, dflt_key, list, next_url, err, errlen) != 0) {
        json_decref(root);
        return NULL;
    }
    return root;
}

int cg_wt_parse_stats(const char *body, size_t len, size_t max_items, struct cg_wt_record **items,
                      size_t *n, size_t *skipped, char **next_url, char *err, size_t errlen)
{
    const json_t *list;
    json_t *root = open_page(body, len, "task_queues_statistics", &list, next_url, err, errlen);
    if (root == NULL)
        return -1;
    size_t count = json_array_size(list);
    if (count > 0)
        *items = cg_realloc(*items, (*n + count) * sizeof **items);
    for (size_t i = 0; i < count; i++) {
        const json_t *it = json_array_get(list, i);
        const char *sid = json_is_object(it) ? cg_json_str(it, "task_queue_sid") : NULL;
        if (sid == NULL || !cg_wt_sid_valid(sid) || *n >= max_items) {
            (*skipped)++;
            continue;
        }
        struct cg_wt_record *r = &(*items)[(*n)++];
        memset(r, 0, sizeof *r);
        memcpy(r->sid, sid, CG_WT_SID_LEN + 1);
        double v;
        if (cg_json_num(it, "cumulative.wait_duration_in_queue_until_accepted.avg", &v) == 0) {
            r->wait_in_queue = 1;
            r->wait_s = wt_fig(it, "cumulative.wait_duration_in_queue_until_accepted.avg");
        } else {
            r->wait_s = wt_fig(it, "cumulative.avg_task_acceptance_time");
        }
        r->avg_accept_s = wt_fig(it, "cumulative.avg_task_acceptance_time");
        r->longest_s = wt_fig(it, "realtime.longest_task_waiting_age");
        r->pending = wt_count_fig(it, "realtime.tasks_by_status.pending");
        r->available = wt_count_fig(it, "realtime.total_available_workers");
        r->eligible = wt_count_fig(it, "realtime.total_eligible_workers");
        long busy = wt_count_fig(it, "realtime.tasks_by_status.assigned") +
                    wt_count_fig(it, "realtime.tasks_by_status.reserved") +
                    wt_count_fig(it, "realtime.tasks_by_status.wrapping");
        /* Within what a count reads back as from Redis. */
        r->busy = busy > 1000000000L ? 1000000000L : busy;
        r->accepted = wt_count_fig(it, "cumulative.reservations_accepted");
        r->canceled = wt_count_fig(it, "cumulative.tasks_canceled");
        r->window_s = window_of(it);
        if (cg_json_num(it, "cumulative.wait_duration_until_accepted.min", &v) == 0)
            r->accept_min_s = wt_fig(it, "cumulative.wait_duration_until_accepted.min");
        else
            r->accept_min_s = wt_fig(it, "cumulative.wait_duration_in_queue_until_accepted.min");
        wt_estimate(r);
    }
    json_decref(root);
    return 0;
}

int cg_wt_parse_names(const char *body, size_t len, size_t max_items, struct cg_wt_name **items,
                      size_t *n, char **next_url, char *err, size_t errlen)
{
    const json_t *list;
    json_t *root = open_page(body, len, "task_queues", &list, next_url, err, errlen);
    if (root == NULL)
        return -1;
    size_t count = json_array_size(list);
    if (count > 0)
        *items = cg_realloc(*items, (*n + count) * sizeof **items);
    for (size_t i = 0; i < count && *n < max_items; i++) {
        const json_t *it = json_array_get(list, i);
        const char *sid = json_is_object(it) ? cg_json_str(it, "sid") : NULL;
        const char *name = sid ? cg_json_str(it, "friendly_name") : NULL;
        /* A name that is absent or absurdly long is left out rather than cut:
         * a cut name would never match what an operator types. */
        if (sid == NULL || !cg_wt_sid_valid(sid) || name == NULL || name[0] == '\0' ||
            strlen(name) > CG_WT_MAX_NAME)
            continue;
        struct cg_wt_name *nm = &(*items)[(*n)++];
        memcpy(nm->sid, sid, CG_WT_SID_LEN + 1);
        nm->name = cg_strdup(name);
    }
    json_decref(root);
    return 0;
}
