/*
 * Fuzz target: the simulator's TwiML parser (sim/twiml.c sim_twiml_parse),
 * which reads whatever callgate answers Twilio (and Vapi's opaque TwiML). It
 * is built from the simulator's source directly, outside cgcore.
 *
 * Invariants: a refusal leaves the document empty with a message; an
 * accepted one has at most SIM_TWIML_MAX_VERBS verbs of known kinds, with
 * methods "GET" or "POST" and readable strings; freeing empties it.
 */
#include "base/fmacros.h"

#include "fuzz.h"

#include "../../sim/twiml_reader.h"

static int is_method(const char *m)
{
    return m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "POST") == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sim_twiml t;
    char err[256] = "";
    if (sim_twiml_parse((const char *)data, size, &t, err, sizeof err) != 0) {
        FZ_CHECK(t.n == 0 && t.verbs == NULL && err[0] != '\0');
        return 0;
    }
    FZ_CHECK(size <= SIM_TWIML_MAX_BYTES && t.n <= SIM_TWIML_MAX_VERBS);
    for (size_t i = 0; i < t.n; i++) {
        const struct sim_twiml_verb *v = &t.verbs[i];
        FZ_CHECK(v->kind >= SIM_TW_SAY && v->kind <= SIM_TW_REJECT);
        FZ_CHECK(sim_twiml_kind_name(v->kind) != NULL);
        FZ_CHECK(is_method(v->method));
        if (v->kind == SIM_TW_ENQUEUE) {
            FZ_CHECK(is_method(v->wait_url_method));
            FZ_CHECK(v->text != NULL && strlen(v->text) <= SIM_TWIML_MAX_QUEUE_NAME);
        }
        /* Entity decoding never lengthens text. */
        if (v->text != NULL)
            FZ_CHECK(strlen(v->text) <= size);
        if (v->action != NULL)
            FZ_CHECK(strlen(v->action) <= size);
        if (v->wait_url != NULL)
            FZ_CHECK(strlen(v->wait_url) <= size);
    }
    sim_twiml_free(&t);
    FZ_CHECK(t.n == 0 && t.verbs == NULL);
    return 0;
}
