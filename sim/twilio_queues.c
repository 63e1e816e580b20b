/*
 * twilio_queues.c - the simulated Twilio's queues: lookup by SID and by
 * name, creation and deletion (Queues REST), a member's position and the
 * members' average wait (the figures the waitUrl request and Members list
 * carry). The members themselves are put in and taken out by the voice
 * engine (twilio_voice.c), which owns the calls.
 */
#include "base/fmacros.h"

#include "twilio.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/list.h"
#include "rng.h"
#include "sim.h"

struct sim_queue *sim_tw_find_queue(struct sim_twilio *tw, const char *sid)
{
    for (struct cg_list *it = tw->queues.next; it != &tw->queues; it = it->next)
        if (strcmp(sim_tw_queue_of(it)->sid, sid) == 0)
            return sim_tw_queue_of(it);
    return NULL;
}

struct sim_queue *sim_tw_queue_by_name(struct sim_twilio *tw, const char *name)
{
    for (struct cg_list *it = tw->queues.next; it != &tw->queues; it = it->next)
        if (strcmp(sim_tw_queue_of(it)->name, name) == 0)
            return sim_tw_queue_of(it);
    return NULL;
}

struct sim_queue *sim_tw_queue_create(struct sim_twilio *tw, const char *name, int max_size)
{
    struct sim_queue *q = cg_calloc(1, sizeof(*q));
    q->sid[0] = 'Q';
    q->sid[1] = 'U';
    sim_rng_hex(tw->sid_rng, q->sid + 2, 32);
    q->name = cg_strdup(name);
    q->max_size = max_size;
    q->created_ms = q->updated_ms = cg_wall_ms();
    cg_list_push_back(&tw->queues, &q->link);
    tw->nqueues++;
    return q;
}

void sim_tw_queue_free(struct sim_queue *q)
{
    free(q->name);
    free(q->members);
    free(q);
}

int sim_tw_queue_delete(struct sim_twilio *tw, struct sim_queue *q)
{
    if (q->n > 0)
        return -1;
    cg_list_remove(&q->link);
    tw->nqueues--;
    /* A call that left this queue must not point at it any more. */
    for (struct cg_list *it = tw->calls.next; it != &tw->calls; it = it->next)
        if (sim_tw_call_of(it)->left_queue == q)
            sim_tw_call_of(it)->left_queue = NULL;
    sim_tw_queue_free(q);
    return 0;
}

size_t sim_tw_queue_position(const struct sim_queue *q, const struct sim_call *c)
{
    for (size_t i = 0; i < q->n; i++)
        if (q->members[i] == c)
            return i + 1;
    return 0;
}

long sim_tw_queue_avg_wait(const struct sim_queue *q)
{
    if (q->n == 0)
        return 0;
    /* One clock reading for the whole queue (as sim_tw_call_queue_time()
     * per member, but without a clock call each): every waitUrl request
     * asks for this, and with thousands waiting the per-member calls made
     * the simulator, not the gate, the slowest part of a storm. */
    double now = sim_now_s(q->members[0]->tw->w);
    double sum = 0;
    for (size_t i = 0; i < q->n; i++) {
        const struct sim_call *c = q->members[i];
        double t = c->queue ? now - c->enq_s : 0;
        sum += t > 0 ? (double)(long)t : 0;
    }
    return (long)(sum / (double)q->n);
}
