/*
 * twilio.c - the simulated Twilio as one object: the voice engine
 * (twilio_voice.c) with the 2010 REST API (twilio_rest.c) on top of it.
 * Only this file knows both halves, so the engine never calls up into the
 * REST layer that drives it.
 */
#include "base/fmacros.h"

#include "twilio.h"

struct sim_twilio *sim_twilio_new(struct sim_world *w)
{
    struct sim_twilio *tw = sim_tw_engine_new(w);
    if (w->httpd && sim_twilio_rest_init(tw) < 0) {
        sim_tw_engine_free(tw);
        return NULL;
    }
    /* Vapi sits below the engine: it reports the end of a bridged stream
     * through this hook rather than by calling the engine. */
    w->stream_ended = sim_twilio_stream_ended;
    return tw;
}

void sim_twilio_free(struct sim_twilio *tw)
{
    if (!tw)
        return;
    sim_twilio_rest_shutdown(tw);
    sim_tw_outbound_free(tw);
    sim_tw_engine_free(tw);
}
