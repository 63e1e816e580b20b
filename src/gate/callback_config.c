/*
 * callback_config.c - start-time checks of the callback options
 * (callback_config.h).
 */
#include "base/fmacros.h"

#include "gate/callback_config.h"

#include "base/config.h"

/* Twilio's MachineDetectionTimeout default: the longest detection after
 * an answer. */
#define CB_AMD_MS 30000
/* The answer webhook and the status callback after it. */
#define CB_MARGIN_MS 15000

int gate_callback_hours_of(const struct cg_config *cfg, struct gate_callback_hours *out)
{
    if (cfg->callback_hours == NULL || cfg->callback_hours[0] == '\0')
        return 0;
    char err[160];
    return gate_callback_hours_parse(cfg->callback_hours, out, err, sizeof err) == 0 ? 1 : -1;
}

long long gate_callback_dial_lease_ms(const struct cg_config *cfg)
{
    return (long long)cfg->callback_ring_seconds * 1000 + CB_AMD_MS + CB_MARGIN_MS;
}

int gate_callback_check_config(const struct cg_config *cfg, struct cg_config_errors *errs)
{
    int rc = 0;
    if (cfg->callback_hours[0] != '\0') {
        struct gate_callback_hours h;
        char err[160];
        if (gate_callback_hours_parse(cfg->callback_hours, &h, err, sizeof err) != 0) {
            cg_config_add_error(errs, "%s", err);
            rc = -1;
        }
    }
    if (cfg->callback_offer_seconds == 0) {
        static const char *const names[] = {"CALLBACK_HOURS", "CALLBACK_MACHINE_MESSAGE"};
        const char *const values[] = {cfg->callback_hours, cfg->callback_machine_message};
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
            if (values[i] != NULL && values[i][0] != '\0')
                cg_config_add_warning(errs,
                                      "%s is set but callbacks are off (CALLBACK_OFFER_SECONDS "
                                      "is 0): set CALLBACK_OFFER_SECONDS to the estimated wait "
                                      "above which callbacks are offered, or remove %s",
                                      names[i], names[i]);
        return rc;
    }
    if (cfg->callback_offer_seconds < 10) {
        cg_config_add_error(errs,
                            "CALLBACK_OFFER_SECONDS: %d s would offer a callback to callers "
                            "about to be connected; set it to 10 or more (0 turns callbacks off)",
                            cfg->callback_offer_seconds);
        rc = -1;
    }
    return rc;
}
