/*
 * main.c - the callgate command line: serve (default), demo, check-config,
 * --help, --version. Exit codes: 0 success, 1 runtime failure, 2 bad
 * configuration or usage.
 */
#include "base/fmacros.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "base/config.h"
#include "demo/demo.h"
#include "demo/doctor.h"
#include "base/log.h"
#include "gate/gate.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: callgate [command]\n"
                 "\n"
                 "commands:\n"
                 "  serve         run the gate and the wait-time service (default)\n"
                 "  demo          play a simulated surge of callers (private Redis, no accounts)\n"
                 "  check-config  validate the configuration and print it, secrets masked\n"
                 "  doctor        check the Twilio and Vapi accounts and Redis it points at\n"
                 "                (read-only requests; exit 0 when nothing failed)\n"
                 "  --help        this text and every configuration option\n"
                 "  --version     print the version\n"
                 "\n"
                 "Configuration comes from the environment and from ./.env (the environment\n"
                 "wins). Options:\n\n");
    cg_config_print_help(out);
}

/* Loads the configuration or reports every problem and returns -1. The
 * warnings go to stderr either way, before anything else happens, so that
 * an operator starting callgate by hand sees them first; serve logs them
 * again as JSON for the log pipeline (run()). */
static int load_config(struct cg_config *cfg, struct cg_config_errors *errs)
{
    int rc = cg_config_load(cfg, CG_DOTENV_PATH, errs);
    if (rc == 0 && (cfg->services & CG_SERVICE_GATE) && cg_gate_check_config(cfg, errs) != 0)
        rc = -1;
    for (size_t i = 0; i < errs->nwarnings; i++)
        fprintf(stderr, "callgate: warning: %s\n", errs->warnings[i]);
    if (rc == 0)
        return 0;
    fprintf(stderr, "callgate: invalid configuration (%zu problem%s):\n", errs->n,
            errs->n == 1 ? "" : "s");
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "  %s\n", errs->msgs[i]);
    cg_config_errors_free(errs);
    cg_config_free(cfg);
    return -1;
}

static int cmd_check_config(void)
{
    struct cg_config cfg;
    struct cg_config_errors errs = {0};
    if (load_config(&cfg, &errs) != 0)
        return 2;
    char services[32];
    cg_config_services_text(cfg.services, services, sizeof services);
    printf("configuration OK\n");
    printf("services: %s%s\n", services, errs.nwarnings ? " (see the warnings above)" : "");
    cg_config_print(&cfg, stdout);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    return 0;
}

static int run(const struct cg_config *cfg, const struct cg_config_errors *errs)
{
    cg_log_set_level(cfg->log_level);
    cg_config_register_secrets(cfg);
    for (size_t i = 0; i < errs->nwarnings; i++)
        cg_log_warn("configuration", "warning=%s", errs->warnings[i]);
    /* A peer closing a socket must be an error return, not a dead process. */
    signal(SIGPIPE, SIG_IGN);

    /* The changelist folds the enable/disable pairs a bufferevent (the
     * Redis connection) makes within one turn of the loop into one
     * epoll_ctl (or none). callgate never
     * dup()s a socket, the case where the changelist is documented to
     * misbehave. */
    struct event_config *ecfg = event_config_new();
    if (ecfg == NULL) {
        cg_log_error("cannot create the event loop", "");
        return 1;
    }
    if (event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
        cg_log_warn("event loop flag refused; running without the epoll changelist", "");
    struct event_base *base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    if (base == NULL) {
        cg_log_error("cannot create the event loop", "");
        return 1;
    }
    char err[256] = "";
    struct cg_app *app = cg_app_new(cfg, base, err, sizeof err);
    if (app == NULL || cg_app_start(app, err, sizeof err) != 0) {
        cg_log_error("cannot start", "error=%s", err);
        cg_app_free(app);
        event_base_free(base);
        return 1;
    }
    event_base_dispatch(base);
    int status = cg_app_exit_status(app);
    cg_app_free(app);
    event_base_free(base);
    return status;
}

static int cmd_serve(void)
{
    struct cg_config cfg;
    struct cg_config_errors errs = {0};
    if (load_config(&cfg, &errs) != 0)
        return 2;
    int rc = run(&cfg, &errs);
    cg_config_errors_free(&errs);
    cg_config_free(&cfg);
    return rc;
}

/* The version, the revision it was built from and the libraries it runs
 * with (as loaded, not as compiled against: what a bug report needs). */
static void print_version(void)
{
    printf("callgate %s (%s)\n", CG_VERSION, CG_GIT_REVISION);
    printf("libevent %s, hiredis %d.%d.%d, %s, jansson %s, %s\n", event_get_version(),
           HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH, curl_version(), jansson_version_str(),
           OpenSSL_version(OPENSSL_VERSION));
}

static int cmd_doctor(void)
{
    struct cg_config cfg;
    struct cg_config_errors errs = {0};
    if (load_config(&cfg, &errs) != 0)
        return 2;
    cg_config_errors_free(&errs);
    int rc = cg_doctor_run(&cfg, stdout);
    cg_config_free(&cfg);
    return rc;
}

/* The demo needs nothing but this machine: see demo.h. */
static int cmd_demo(void)
{
    return cg_demo_run();
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "serve";
    if (argc > 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        print_version();
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve();
    if (strcmp(cmd, "check-config") == 0)
        return cmd_check_config();
    if (strcmp(cmd, "demo") == 0)
        return cmd_demo();
    if (strcmp(cmd, "doctor") == 0)
        return cmd_doctor();
    fprintf(stderr, "callgate: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
