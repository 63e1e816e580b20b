#include "base/fmacros.h"

#include "waittime/hold.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "net/httpd.h"
#include "twilio/twiml.h"
#include "waittime/waittime.h"

void cg_waittime_hold_reply(const struct cg_config *cfg, struct cg_waittime *wt,
                            struct cg_http_req *req, const char *queue_sid)
{
    double ewt = -1;
    char *twiml = wt ? cg_waittime_hold_twiml(wt, queue_sid, &ewt) : NULL;
    if (twiml == NULL) {
        /* Unknown queue or nothing known yet: hold music, no promise. */
        struct cg_twiml_wait w = {.hold_music_url = cfg->hold_music_url,
                                  .pause_s = cfg->announce_interval_seconds};
        twiml = cg_twiml_wait(&w);
    } else if (ewt >= 0) {
        char hdr[32];
        snprintf(hdr, sizeof hdr, "%.0f", ewt);
        cg_http_set_header(req, "X-Callgate-Estimated-Wait", hdr);
    }
    cg_http_reply(req, 200, "text/xml", twiml, strlen(twiml));
    free(twiml);
}
