/*
 * documents.c - the overflow treatment's TwiML, and the start-time check
 * that every document the gate pushes by Calls update fits Twilio's limit
 * on the Twiml parameter (CG_TWILIO_UPDATE_MAX_CHARS; longer ones are
 * refused with error 32018, and the caller would be left where they are).
 */
#include "base/fmacros.h"

#include <stdlib.h>

#include "base/config.h"
#include "gate/callback_config.h"
#include "gate/gate.h"
#include "gate/internal.h"
#include "twilio/api.h"
#include "twilio/twiml.h"

char *gate_overflow_twiml_for(const struct cg_config *c)
{
    switch (c->overflow_action) {
    case CG_OVERFLOW_DIAL:
        return cg_twiml_dial(c->overflow_message, c->overflow_dial_number);
    case CG_OVERFLOW_VOICEMAIL:
        return cg_twiml_record(c->overflow_message, NULL, 120);
    case CG_OVERFLOW_MESSAGE:
    default:
        return cg_twiml_say_hangup(c->overflow_message);
    }
}

int cg_gate_check_config(const struct cg_config *cfg, struct cg_config_errors *errs)
{
    int cb = gate_callback_check_config(cfg, errs);
    /* The overflow treatment goes by Calls update to a caller whom Vapi
     * refuses for good; the other documents pushed so are Vapi's own,
     * checked before each push. */
    char *twiml = gate_overflow_twiml_for(cfg);
    size_t chars = cg_twilio_twiml_chars(twiml);
    free(twiml);
    if (chars <= CG_TWILIO_UPDATE_MAX_CHARS)
        return cb;
    cg_config_add_error(errs,
                        "OVERFLOW_MESSAGE: the overflow TwiML it makes is %zu characters, and "
                        "Twilio refuses a call update over %d (error 32018); shorten it by at "
                        "least %zu characters (each & < > \" ' counts as its XML escape)",
                        chars, CG_TWILIO_UPDATE_MAX_CHARS, chars - CG_TWILIO_UPDATE_MAX_CHARS);
    return -1;
}
