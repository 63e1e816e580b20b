/*
 * config_load.c - loading a configuration as a whole: the options
 * (config.c), then which services they turn on, with the checks that keep
 * a service from running half-configured, and the spelling help for names
 * callgate does not know.
 *
 * The admission gate is on when SERVICES names it, or (SERVICES=auto) when
 * any of its own options is set: a migrating user's .env from Vapi's queue
 * guide sets VAPI_API_KEY, so the gate is meant, and every option it still
 * lacks is an error naming what it is for. The wait-time service is on
 * when TWILIO_WORKSPACE_SID is set (or SERVICES names it).
 */
#include "base/fmacros.h"

#include "base/config.h"
#include "base/config_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

extern char **environ;

/* Options that belong to the gate alone: any of them set means "gate". */
static const char *const gate_triggers[] = {
    "VAPI_API_KEY",        "VAPI_PHONE_NUMBER_ID", "VAPI_ASSISTANT_ID",
    "VAPI_WEBHOOK_SECRET", "VAPI_HMAC_SECRET",     "TWILIO_QUEUE_SID",
};

/* Options that only tune the gate: set while it is off, they are a sign
 * that the operator expects a gate that will not run. */
static const char *const gate_tuning[] = {
    "MAX_CONCURRENCY", "MAX_QUEUE_SIZE",       "MAX_WAIT_SECONDS",        "OVERFLOW_ACTION",
    "HOLD_MUSIC_URL",  "HANDOFF_WORKFLOW_SID", "TRANSFER_FAILED_MESSAGE", "ROUTES_FILE",
};

struct need {
    const char *name;
    const char *why;
};

static const struct need gate_needs[] = {
    {"TWILIO_ACCOUNT_SID", "the Twilio account (AC...) whose calls the gate connects; Twilio "
                           "console, Account Info"},
    {"TWILIO_AUTH_TOKEN", "the account's primary auth token: it updates calls and checks the "
                          "X-Twilio-Signature of every webhook; Twilio console, Account Info"},
    {"VAPI_API_KEY", "the private Vapi API key that creates the assistant's calls; Vapi "
                     "dashboard, Organization Settings, API Keys"},
    {"VAPI_PHONE_NUMBER_ID", "the id of the phone number imported into Vapi for these calls; "
                             "Vapi dashboard, Phone Numbers"},
    {"VAPI_ASSISTANT_ID", "the id of the assistant callers are connected to; Vapi dashboard, "
                          "Assistants"},
};

static int is_set(const struct cg_config *cfg, const char *name)
{
    const char *v = cg_config_value_if_set(cfg, name);
    return v != NULL && v[0] != '\0';
}

/* With ROUTES_FILE each route names its own assistant and phone number. */
static int routed_need(const struct cg_config *cfg, const char *name)
{
    return is_set(cfg, "ROUTES_FILE") &&
           (strcmp(name, "VAPI_PHONE_NUMBER_ID") == 0 || strcmp(name, "VAPI_ASSISTANT_ID") == 0);
}

static void resolve_services(struct cg_config *cfg, struct cg_config_errors *errs)
{
    unsigned want = CG_SERVICES_AUTO;
    if (cg_config_parse_services(cfg->services_option, &want) != 0)
        return; /* already reported by the option's check */
    const char *trigger = NULL;
    for (size_t i = 0; i < sizeof gate_triggers / sizeof gate_triggers[0] && !trigger; i++)
        if (is_set(cfg, gate_triggers[i]))
            trigger = gate_triggers[i];
    if (want == CG_SERVICES_AUTO) {
        cfg->services = 0;
        if (trigger)
            cfg->services |= CG_SERVICE_GATE;
        if (cfg->twilio_workspace_sid[0] != '\0')
            cfg->services |= CG_SERVICE_WAITTIME;
    } else {
        cfg->services = want;
        if (!(want & CG_SERVICE_GATE) && trigger)
            cg_config_add_warning(errs,
                                  "%s is set but SERVICES=%s: the admission gate stays off "
                                  "(add gate to SERVICES, or remove the gate's options)",
                                  trigger, cfg->services_option);
    }

    if (cfg->services & CG_SERVICE_GATE) {
        const char *because = trigger ? trigger : "SERVICES";
        for (size_t i = 0; i < sizeof gate_needs / sizeof gate_needs[0]; i++)
            if (!is_set(cfg, gate_needs[i].name) && !routed_need(cfg, gate_needs[i].name))
                cg_config_add_error(errs,
                                    "%s: required by the admission gate (on because %s is set): "
                                    "%s",
                                    gate_needs[i].name, because, gate_needs[i].why);
        if (!is_set(cfg, "VAPI_WEBHOOK_SECRET") && !is_set(cfg, "VAPI_HMAC_SECRET"))
            cg_config_add_error(
                errs,
                "VAPI_WEBHOOK_SECRET: required by the admission gate (on because %s is set): "
                "Vapi sends it as x-vapi-secret with the messages to /call-ended that free a "
                "caller's slot, and callgate refuses messages without it. In the Vapi dashboard "
                "open the assistant, Advanced, Server URL: set a Secret (or the assistant's "
                "server.secret through the API) and put the same value here; or set "
                "VAPI_HMAC_SECRET for an HMAC authentication plan",
                because);
        if (is_set(cfg, "VAPI_WEBHOOK_SECRET") && is_set(cfg, "VAPI_HMAC_SECRET") &&
            !cfg->vapi_accept_static_secret)
            cg_config_add_warning(errs, "VAPI_WEBHOOK_SECRET is set but unused: with "
                                        "VAPI_HMAC_SECRET set, messages must be signed; set "
                                        "VAPI_ACCEPT_STATIC_SECRET=1 while assistants switch over");
        if (!is_set(cfg, "PUBLIC_URL"))
            cg_config_add_warning(errs,
                                  "PUBLIC_URL is not set: Twilio's signatures are checked "
                                  "against http://127.0.0.1:%d, which only a local test uses; "
                                  "set it to the https:// URL Twilio calls, or every real "
                                  "webhook is refused with 403",
                                  cfg->port);
    }
    if ((cfg->services & CG_SERVICE_WAITTIME) && !(want == CG_SERVICES_AUTO)) {
        if (cfg->twilio_workspace_sid[0] == '\0')
            cg_config_add_error(errs, "TWILIO_WORKSPACE_SID: required by the wait-time service "
                                      "(SERVICES names it): the TaskRouter workspace (WS...) "
                                      "whose TaskQueues are polled");
    }
    if (cfg->services & CG_SERVICE_WAITTIME) {
        for (size_t i = 0; i < 2; i++)
            if (!is_set(cfg, gate_needs[i].name))
                cg_config_add_error(errs, "%s: required by the wait-time service: %s",
                                    gate_needs[i].name, gate_needs[i].why);
    }
    for (size_t i = 0; i < sizeof gate_tuning / sizeof gate_tuning[0]; i++)
        if (!(cfg->services & CG_SERVICE_GATE) && is_set(cfg, gate_tuning[i]))
            cg_config_add_warning(errs,
                                  "%s is set but the admission gate is off (no VAPI_API_KEY, "
                                  "VAPI_ASSISTANT_ID, ... and SERVICES=%s)",
                                  gate_tuning[i], cfg->services_option);
    if (cfg->services == 0)
        cg_config_add_warning(errs, "no service is on: callgate will answer /health and nothing "
                                    "else; set the admission gate's options (VAPI_API_KEY, ...) "
                                    "or TWILIO_WORKSPACE_SID");
}

void cg_config_services_text(unsigned services, char *out, size_t outlen)
{
    const char *s = services == (CG_SERVICE_GATE | CG_SERVICE_WAITTIME) ? "gate, waittime"
                    : services == CG_SERVICE_GATE                       ? "gate"
                    : services == CG_SERVICE_WAITTIME                   ? "waittime"
                                                                        : "none";
    if (outlen > 0) {
        strncpy(out, s, outlen - 1);
        out[outlen - 1] = '\0';
    }
}

/* ---- names callgate does not know ---- */

/* Edit distance with transpositions (optimal string alignment), capped:
 * names are short, and anything past the cap is no suggestion anyway. */
static size_t distance(const char *a, const char *b)
{
    enum { MAXN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la >= MAXN || lb >= MAXN)
        return (size_t)-1;
    size_t d[MAXN + 1][MAXN + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *cg_config_closest_name(const char *name)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; cg_config_option_name(i) != NULL; i++) {
        size_t d = distance(name, cg_config_option_name(i));
        if (d < best_d) {
            best_d = d;
            best = cg_config_option_name(i);
        }
    }
    /* A suggestion must be close: a quarter of the name, at least 2 edits. */
    size_t limit = strlen(name) / 4;
    if (limit < 2)
        limit = 2;
    return best_d <= limit ? best : NULL;
}

static void warn_unknown(struct cg_config_errors *errs, const char *where, const char *name)
{
    const char *close = cg_config_closest_name(name);
    if (close)
        cg_config_add_warning(errs, "%s: unknown option %s, ignored (did you mean %s?)", where,
                              name, close);
    else
        cg_config_add_warning(errs, "%s: unknown option %s, ignored (callgate --help lists them)",
                              where, name);
}

/* Names in the environment that look meant for callgate but are no option:
 * other software's variables are left alone, so only callgate's and its
 * peers' prefixes count. */
static void warn_unknown_environment(struct cg_config_errors *errs)
{
    static const char *const prefixes[] = {"CALLGATE_", "TWILIO_", "VAPI_", "REDIS_"};
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq == NULL)
            continue;
        size_t len = (size_t)(eq - *e);
        int ours = 0;
        for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
            if (len > strlen(prefixes[i]) && strncmp(*e, prefixes[i], strlen(prefixes[i])) == 0)
                ours = 1;
        if (!ours || cg_config_known(*e, len))
            continue;
        char *name = cg_strndup(*e, len);
        warn_unknown(errs, "environment", name);
        free(name);
    }
}

int cg_config_load(struct cg_config *cfg, const char *dotenv_path, struct cg_config_errors *errs)
{
    struct cg_config_errors local = {0};
    if (errs == NULL)
        errs = &local;
    memset(errs, 0, sizeof *errs);
    struct cg_config_unknown unknown = {NULL, 0};
    cg_config_load_options(cfg, dotenv_path, errs, &unknown);
    for (size_t i = 0; i < unknown.n; i++) {
        warn_unknown(errs, unknown.v[i].where, unknown.v[i].name);
        free(unknown.v[i].where);
        free(unknown.v[i].name);
    }
    free(unknown.v);
    warn_unknown_environment(errs);
    resolve_services(cfg, errs);
    int rc = errs->n ? -1 : 0;
    if (errs == &local)
        cg_config_errors_free(&local);
    return rc;
}
