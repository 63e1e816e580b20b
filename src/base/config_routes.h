/*
 * config_routes.h - ROUTES_FILE: the lines (routes) of one gate that share
 * the organization's Vapi concurrency limit (MAX_CONCURRENCY). Each route
 * has a name, the dialled numbers it serves (Twilio's To), its Vapi
 * assistant and phone number, its Twilio queue, a cap (max), a guarantee
 * (min: slots kept for it while it has callers waiting), a priority and
 * VIP numbers that go to the head of its line.
 *
 * The file is JSON: {"routes": [{"name", "numbers", "assistantId",
 * "phoneNumberId", "queue", "max", "min", "priority", "vip"}, ...]}.
 * Parsing is strict and names every problem at once ("ROUTES_FILE:
 * routes[1] (sales): ..."), so an operator fixes the file in one pass.
 *
 * Ownership: struct cg_routes owns every string in it; cg_routes_free()
 * releases them. Pure: no I/O but cg_routes_load's read of the file.
 */
#ifndef CG_CONFIG_ROUTES_H
#define CG_CONFIG_ROUTES_H

#include <stddef.h>

struct cg_config_errors;

/* A route's name becomes part of Redis keys, metric labels and log
 * fields: [a-z0-9_-], 1 to CG_ROUTE_NAME_MAX characters. */
#define CG_ROUTE_NAME_MAX 32
/* Routes in one file: every freed slot is decided over all of them. */
#define CG_ROUTES_MAX 1000
/* Numbers (and VIP numbers) per route. */
#define CG_ROUTE_NUMBERS_MAX 1000
/* The largest ROUTES_FILE read. */
#define CG_ROUTES_FILE_MAX (4 * 1024 * 1024)

struct cg_route {
    char *name;
    char **numbers; /* E.164 */
    size_t nnumbers;
    char *assistant_id;
    char *phone_number_id;
    char *queue;  /* Twilio queue name (<Enqueue>) */
    int max;      /* never more live calls than this; default the organization's limit */
    int min;      /* slots kept for it while callers wait; default 0 */
    int priority; /* higher goes first; default 0 */
    char **vip;   /* E.164 numbers put at the head of the route's line */
    size_t nvip;
};

struct cg_routes {
    struct cg_route *v;
    size_t n;
};

/* Parses len bytes of a routes file against the organization's limit
 * org_limit (MAX_CONCURRENCY). Every problem goes to errs (each starting
 * "ROUTES_FILE: "). Returns 0 with *out filled, or -1 with *out empty. */
int cg_routes_parse(const char *buf, size_t len, int org_limit, struct cg_routes *out,
                    struct cg_config_errors *errs);
/* Reads and parses the file at path (at most CG_ROUTES_FILE_MAX bytes). */
int cg_routes_load(const char *path, int org_limit, struct cg_routes *out,
                   struct cg_config_errors *errs);
void cg_routes_free(struct cg_routes *r);

/* The route serving dialled number to (Twilio's To), or NULL. */
const struct cg_route *cg_routes_by_number(const struct cg_routes *r, const char *to);
/* The route named name, or NULL. */
const struct cg_route *cg_routes_by_name(const struct cg_routes *r, const char *name);
/* Whether from is one of the route's VIP numbers. */
int cg_route_is_vip(const struct cg_route *rt, const char *from);
/* Whether s is an E.164 number: '+', a digit 1-9, then 6 to 14 digits. */
int cg_routes_is_e164(const char *s);
/* Whether s is a valid route name. */
int cg_routes_valid_name(const char *s);

#endif
