/*
 * Fuzz target: TaskRouter pages as the wait-time poller reads them
 * (src/waittime/): cg_wt_parse_stats over TaskQueues/Statistics pages and
 * cg_wt_parse_names over the TaskQueues list, then what is made of each
 * record (the Redis encoding and its decoder, the HTTP API record, the
 * seed's Redis value) and the same-origin check on meta.next_page_url.
 *
 * Invariants: a refused page appends nothing and gives a reason; an
 * accepted one appends at most the limit, keeps what was already there, and
 * every record has a valid WQ SID, figures in range and a finite estimate;
 * a record survives encode then decode; every JSON made of records parses;
 * a next page accepted as same-origin really is on the TaskRouter host.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "base/buf.h"
#include "base/json.h"
#include "base/url.h"
#include "waittime/waittime.h"

#include <math.h>
#include <strings.h>

/* Small, so that a fuzzed page can reach it. */
#define MAX_ITEMS  12
#define TASKROUTER "https://taskrouter.twilio.com"
#define FETCHED_MS 1750183823822ULL

static void check_record(const struct cg_wt_record *r)
{
    FZ_CHECK(cg_wt_sid_valid(r->sid));
    FZ_CHECK(r->wait_s >= 0 && r->wait_s <= 1e12 && r->avg_accept_s >= 0 &&
             r->avg_accept_s <= 1e12 && r->longest_s >= 0 && r->longest_s <= 1e12);
    FZ_CHECK(r->pending >= 0 && r->available >= 0 && r->eligible >= 0);
    FZ_CHECK(r->busy >= 0 && r->busy <= 1000000000L && r->accepted >= 0 && r->canceled >= 0);
    FZ_CHECK(isfinite(r->window_s) && r->window_s >= 0 && r->accept_min_s >= 0 &&
             r->accept_min_s <= 1e12);
    FZ_CHECK(isfinite(r->estimate_s) && r->estimate_s >= 0);
}

static int valid_json(const struct cg_buf *b)
{
    /* Syntax only: the seed's value may repeat a SID that a page repeated. */
    json_error_t e;
    json_t *j = json_loadb(b->data, b->len, 0, &e);
    json_decref(j);
    return j != NULL;
}

/* has_estimate: r comes from a parser, which computed the estimate that the
 * decoder recomputes. */
static void check_round_trip(struct cg_wt_record *r, int stale, int has_estimate)
{
    r->fetched_ms = FETCHED_MS;
    r->stale = stale;
    struct cg_buf b;
    cg_buf_init(&b, CG_BUF_UNBOUNDED);
    FZ_CHECK(cg_wt_record_encode(r, &b) == 0);
    struct cg_wt_record d;
    FZ_CHECK(cg_wt_record_decode(b.data, b.len, &d) == 0);
    FZ_CHECK(strcmp(d.sid, r->sid) == 0 && d.wait_s == r->wait_s &&
             d.wait_in_queue == r->wait_in_queue && d.avg_accept_s == r->avg_accept_s &&
             d.longest_s == r->longest_s && d.pending == r->pending &&
             d.available == r->available && d.eligible == r->eligible && d.busy == r->busy &&
             d.accepted == r->accepted && d.canceled == r->canceled && d.window_s == r->window_s &&
             d.accept_min_s == r->accept_min_s && d.fetched_ms == r->fetched_ms &&
             d.stale == stale);
    FZ_CHECK(!has_estimate || d.estimate_s == r->estimate_s);
    FZ_CHECK((d.name == NULL && r->name == NULL) ||
             (d.name && r->name && strcmp(d.name, r->name) == 0));
    cg_wt_record_clear(&d);

    cg_buf_reset(&b);
    FZ_CHECK(cg_wt_record_json(r, FETCHED_MS + 5000, stale, &b) == 0 && valid_json(&b));
    cg_buf_free(&b);
    char answer[64];
    FZ_CHECK(cg_wt_seed_answer(r->wait_s, answer, sizeof answer) > 0);
}

/* A next page the poller would follow must be on the TaskRouter host: the
 * request carries the account's credentials. */
static void check_next_url(const char *next)
{
    FZ_CHECK(next[0] != '\0' && strlen(next) <= CG_WT_MAX_URL);
    int same = cg_url_same_origin(TASKROUTER, next);
    FZ_CHECK(same == cg_url_same_origin(next, TASKROUTER));
    if (!same)
        return;
    /* Up to the path (base URLs carry no query), as url.c reads it. */
    size_t cut = strcspn(next, "?#");
    char *base = malloc(cut + 1);
    FZ_CHECK(base != NULL);
    memcpy(base, next, cut);
    base[cut] = '\0';
    struct cg_base_url u;
    if (cg_base_url_parse(base, &u, NULL, 0) == 0) {
        FZ_CHECK(strcmp(u.scheme, "https") == 0 &&
                 strcasecmp(u.host, "taskrouter.twilio.com") == 0 &&
                 (u.port == 0 || u.port == 443));
        cg_base_url_free(&u);
    }
    free(base);
}

static void fuzz_stats(const char *body, size_t len)
{
    struct cg_wt_record *recs = NULL;
    size_t n = 0, skipped = 0;
    char *next = NULL;
    char err[160] = "";
    if (cg_wt_parse_stats(body, len, MAX_ITEMS, &recs, &n, &skipped, &next, err, sizeof err) != 0) {
        FZ_CHECK(n == 0 && next == NULL && err[0] != '\0');
        free(recs);
        return;
    }
    FZ_CHECK(n <= MAX_ITEMS);
    for (size_t i = 0; i < n; i++)
        check_record(&recs[i]);
    if (next != NULL)
        check_next_url(next);

    /* The same page again, as a second page appended to the first. */
    size_t first = n, skipped2 = 0;
    struct cg_wt_record copy0;
    if (first > 0)
        memcpy(&copy0, &recs[0], sizeof copy0);
    char *next2 = NULL;
    FZ_CHECK(cg_wt_parse_stats(body, len, MAX_ITEMS, &recs, &n, &skipped2, &next2, err,
                               sizeof err) == 0);
    FZ_CHECK(n >= first && n <= MAX_ITEMS);
    if (first > 0)
        FZ_CHECK(memcmp(&copy0, &recs[0], sizeof copy0) == 0);
    free(next2);

    for (size_t i = 0; i < n && i < 4; i++)
        check_round_trip(&recs[i], (int)(i & 1), 1);
    struct cg_buf seed;
    cg_buf_init(&seed, CG_BUF_UNBOUNDED);
    FZ_CHECK(cg_wt_seed_json(recs, n, &seed) == 0 && valid_json(&seed));
    cg_buf_free(&seed);

    for (size_t i = 0; i < n; i++)
        cg_wt_record_clear(&recs[i]);
    free(recs);
    free(next);
}

static void fuzz_names(const char *body, size_t len)
{
    struct cg_wt_name *names = NULL;
    size_t n = 0;
    char *next = NULL;
    char err[160] = "";
    if (cg_wt_parse_names(body, len, MAX_ITEMS, &names, &n, &next, err, sizeof err) != 0) {
        FZ_CHECK(n == 0 && next == NULL && err[0] != '\0');
        free(names);
        return;
    }
    FZ_CHECK(n <= MAX_ITEMS);
    for (size_t i = 0; i < n; i++) {
        FZ_CHECK(cg_wt_sid_valid(names[i].sid));
        size_t nl = strlen(names[i].name);
        FZ_CHECK(nl > 0 && nl <= CG_WT_MAX_NAME);
        if (i < 2) {
            /* A named record survives the Redis round trip too. */
            struct cg_wt_record r = {0};
            memcpy(r.sid, names[i].sid, sizeof r.sid);
            r.name = names[i].name;
            check_round_trip(&r, 0, 0);
        }
    }
    if (next != NULL)
        check_next_url(next);
    for (size_t i = 0; i < n; i++)
        free(names[i].name);
    free(names);
    free(next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_stats((const char *)data, size);
    fuzz_names((const char *)data, size);
    return 0;
}
