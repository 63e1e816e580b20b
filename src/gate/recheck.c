/*
 * recheck.c - a second GET /call/{id} after GATE_RECHECK_DELAY_MS, for the
 * lease sweep's doubtful answers (recheck.h).
 */
#include "base/fmacros.h"

#include "gate/recheck.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "base/list.h"
#include "gate/internal.h"

struct recheck {
    struct cg_gate *g;
    struct event *timer;
    char vapi_id[CG_VAPI_MAX_ID + 1];
    cg_vapi_get_cb cb;
    void *arg;
    struct cg_list link; /* in g->rechecks while the timer runs */
};

static void finish(struct recheck *rc)
{
    cg_list_remove(&rc->link);
    event_free(rc->timer);
    free(rc);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct recheck *rc = arg;
    cg_vapi_get_cb cb = rc->cb;
    void *cb_arg = rc->arg;
    struct cg_gate *g = rc->g;
    char id[sizeof rc->vapi_id];
    snprintf(id, sizeof id, "%s", rc->vapi_id);
    finish(rc);
    if (g->closing || cg_vapi_get_call(g->vapi, id, cb, cb_arg) != 0) {
        struct cg_vapi_get_result res = {.state = CG_VAPI_CALL_UNAVAILABLE};
        cb(&res, cb_arg);
    }
}

int gate_recheck_later(struct cg_gate *g, const char *vapi_id, cg_vapi_get_cb cb, void *arg)
{
    if (g->closing || vapi_id == NULL || cb == NULL)
        return -1;
    struct recheck *rc = cg_calloc(1, sizeof *rc);
    rc->g = g;
    rc->cb = cb;
    rc->arg = arg;
    snprintf(rc->vapi_id, sizeof rc->vapi_id, "%s", vapi_id);
    rc->timer = evtimer_new(g->base, on_timer, rc);
    struct timeval tv = {.tv_sec = GATE_RECHECK_DELAY_MS / 1000,
                         .tv_usec = (GATE_RECHECK_DELAY_MS % 1000) * 1000};
    if (rc->timer == NULL || evtimer_add(rc->timer, &tv) != 0) {
        if (rc->timer)
            event_free(rc->timer);
        free(rc);
        return -1;
    }
    cg_list_push_front(&g->rechecks, &rc->link);
    return 0;
}

void gate_recheck_cancel_all(struct cg_gate *g)
{
    struct cg_list *it;
    while ((it = cg_list_first(&g->rechecks)) != NULL) {
        struct recheck *rc = cg_list_entry(it, struct recheck, link);
        cg_vapi_get_cb cb = rc->cb;
        void *arg = rc->arg;
        finish(rc);
        struct cg_vapi_get_result res = {.state = CG_VAPI_CALL_UNAVAILABLE};
        cb(&res, arg);
    }
}
