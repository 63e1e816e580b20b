/*
 * fakescript.c - the scripted JSON API fake of fakescript.h, on fakesrv.
 */
#include "base/fmacros.h"

#include "fakescript.h"

#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "base/alloc.h"
#include "fakesrv.h"
#include "harness.h"

static void on_request(struct evhttp_request *req, void *arg)
{
    struct cgt_script *s = arg;
    s->nreq++;
    if (s->nseen < CGT_MAX_SEEN) {
        struct cgt_srv_req r;
        cgt_srv_parse(req, &r);
        struct evkeyvalq *in = evhttp_request_get_input_headers(req);
        struct cgt_seen *w = &s->seen[s->nseen++];
        w->method = cg_strdup(r.cmd == EVHTTP_REQ_POST  ? "POST"
                              : r.cmd == EVHTTP_REQ_GET ? "GET"
                                                        : "?");
        w->path = cgt_strdup_or_null(r.path);
        w->query = cgt_strdup_or_null(r.query);
        w->authorization = cgt_strdup_or_null(r.auth);
        w->content_type = cgt_strdup_or_null(evhttp_find_header(in, "Content-Type"));
        w->accept = cgt_strdup_or_null(evhttp_find_header(in, "Accept"));
        w->body = cgt_srv_body(req);
    }
    struct cgt_step st = {.status = 500, .body = s->unscripted};
    if (s->next < s->nsteps) {
        st = s->steps[s->next];
        if (!st.sticky)
            s->next++;
    }
    if (st.hang)
        return; /* evhttp_free() or the client's hang-up frees it */
    cgt_srv_header(req, "Content-Type", "application/json; charset=utf-8");
    if (st.retry_after)
        cgt_srv_header(req, "Retry-After", st.retry_after);
    cgt_srv_send(req, st.status, st.body);
}

void cgt_script_start(struct cgt_script *s, struct event_base *base, const char *name,
                      const char *unscripted)
{
    memset(s, 0, sizeof *s);
    s->unscripted = unscripted;
    s->srv = cgt_srv_new_on(base, name, EVHTTP_REQ_GET | EVHTTP_REQ_POST, on_request, s);
    s->base_url = cgt_srv_url(s->srv);
}

void cgt_script_stop(struct cgt_script *s)
{
    cgt_srv_stop(s->srv);
    s->srv = NULL;
    s->base_url = NULL;
    for (int i = 0; i < s->nseen; i++) {
        struct cgt_seen *w = &s->seen[i];
        free(w->method);
        free(w->path);
        free(w->query);
        free(w->authorization);
        free(w->content_type);
        free(w->accept);
        free(w->body);
    }
    s->nseen = 0;
}

void cgt_script(struct cgt_script *s, int status, const char *body)
{
    cgt_script_step(s, (struct cgt_step){.status = status, .body = body});
}

void cgt_script_step(struct cgt_script *s, struct cgt_step st)
{
    assert_true(s->nsteps < CGT_MAX_STEPS);
    s->steps[s->nsteps++] = st;
}

int cgt_script_wait_seen(struct cgt_script *s, struct event_base *base, int n)
{
    for (int i = 0; i < 200 && s->nseen < n; i++)
        cgt_run_for(base, 10);
    return s->nseen >= n;
}
