/*
 * store.h - the gate's shared state in Redis, one typed C function per Lua
 * script (src/gate/lua; docs/ARCHITECTURE.md describes each). This is the
 * only place script arguments are assembled: the order of each script's
 * ARGV is written once, here, next to the script's own comment, and the
 * scripts' verdict words become enum gate_verdict at this boundary.
 *
 * Every script gets KEYS[1] = the waiting key (it routes the call to the
 * gate's slot on Redis Cluster) and ARGV[1] = the key prefix of keys.h.
 *
 * Callback rules: a function returning 0 calls cb exactly once, later,
 * from the loop (redis.h); one returning -1 (the store is closed, or the
 * connection refused the command) never calls it. The reply passed to cb
 * and everything it points to are valid only during the callback.
 * Passing more arguments than a script call can hold is a programming
 * error and aborts.
 */
#ifndef CG_GATE_STORE_H
#define CG_GATE_STORE_H

#include <stddef.h>

#include "net/redis.h"

struct cg_keys;

/* The words the scripts answer with: verdicts of a step, and the call
 * states (call:<sid> field "state") that enter and position report. */
enum gate_verdict {
    GV_NONE,  /* no reply (failure), or a script that returns no verdict */
    GV_OTHER, /* a word this list does not know */
    GV_FAST,
    GV_WAITING,
    GV_OVERFLOW,
    GV_EXISTING,
    GV_OK,
    GV_ORPHAN,
    GV_CONNECTED,
    GV_ENDING,
    GV_STALE,
    GV_REQUEUED,
    GV_ABANDONED,
    GV_RELEASED,
    GV_RELEASED_ORPHAN,
    GV_GONE,
    GV_DUPLICATE,
    GV_OVERFLOWED,
    GV_UNKNOWN,
    GV_ADMITTING,
    GV_ENDED,
    GV_CALLBACK, /* callback.lua */
    GV_DIAL,
    GV_ADMIT,
    GV_RETRY,
    GV_FAILED,
};

/* The script's word for v ("released-orphan", ...); "" for GV_NONE and
 * GV_OTHER. Static storage. */
const char *gate_verdict_name(enum gate_verdict v);
/* Element i of an array reply as a verdict: GV_NONE when absent. */
enum gate_verdict gate_verdict_at(const redisReply *r, size_t i);

struct gate_reply {
    /* NULL on success; else a transport failure or Redis' error (redis.h). */
    const char *err;
    /* The reply's first element, for the scripts that answer with a word;
     * GV_NONE on failure and for admit, sweep, extend, snapshot, members. */
    enum gate_verdict verdict;
    const redisReply *r; /* the whole reply; NULL on a transport failure */
};
typedef void (*gate_store_cb)(const struct gate_reply *rep, void *arg);

enum gate_script {
    S_ENTER,
    S_ADMIT,
    S_VAPI_CREATED,
    S_CONNECTED,
    S_REQUEUE,
    S_END,
    S_POSITION,
    S_SWEEP,
    S_EXTEND,
    S_SNAPSHOT,
    S_MEMBERS,
    S_CLAIM,
    S_QUEUE,
    S_REPAIR_BEGIN,
    S_REPAIR,
    S_CONTROL,
    S_BOARD,
    S_CALLBACK,
    S_ROUTES,
    S_SLOTS,
    S_OUTBOUND,
    S_ROUTE_FIGURES,
    S_INSTANCES,
    S_COUNT
};

struct gate_store {
    struct cg_redis *redis;
    const struct cg_keys *keys;
    int scripts[S_COUNT];
    int closed; /* gate_store_close: every call returns -1 */
};

/* Registers the scripts on redis. 0, or -1 with err. keys and redis are
 * borrowed and must outlive the store. */
int gate_store_init(struct gate_store *s, struct cg_redis *redis, const struct cg_keys *keys,
                    char *err, size_t errlen);
/* No script runs from now on (teardown). */
void gate_store_close(struct gate_store *s);

/* enter.lua: a caller arrives (/incoming) or is adopted (found in Twilio's
 * queue without a record). Verdicts: fast ([2] the queue context),
 * waiting, overflow, existing. */
struct gate_enter {
    const char *sid;
    const char *from;
    const char *to;
    int adopt;            /* 0: mode 'incoming'; 1: mode 'adopt' */
    long long max_queue;  /* MAX_QUEUE_SIZE */
    long long limit;      /* MAX_CONCURRENCY, unless changed at runtime */
    int fast_ok;          /* admit at once when a slot is free */
    long long lease_ms;   /* admission lease */
    const char *instance; /* who admitted, for the record */
    long long waited_ms;  /* how long Twilio has held an adopted caller */
    const char *route;    /* ROUTES_FILE: the route's name; NULL: one route */
    int vip;              /* the caller is one of the route's VIP numbers */
};
int gate_store_enter(struct gate_store *s, const struct gate_enter *e, gate_store_cb cb, void *arg);

/* slots.lua: op "take", "renew" or "release" of the lease id (see the
 * script's header for the replies; release replies an admission list from
 * element 3). */
int gate_store_slots(struct gate_store *s, const char *op, const char *id, const char *route,
                     long long ttl_ms, long long limit, long long batch, long long lease_ms,
                     const char *instance, gate_store_cb cb, void *arg);

/* outbound.lua (see the script's header). */
struct gate_outbound_op {
    const char *op; /* create, status, created, failed */
    const char *id;
    const char *route;     /* create */
    const char *number;    /* create */
    const char *variables; /* create: a JSON object */
    long long max_queue;   /* create */
    long long attempt;     /* created, failed */
    const char *vapi_id;   /* created */
    long long lease_ms;    /* created: the call's lease */
    const char *reason;    /* failed */
    int final;             /* failed: no further attempt */
    long long max_attempts;
    long long backoff_ms;
    long long limit, batch, admit_lease_ms; /* create, failed: the admission that follows */
    const char *instance;
};
int gate_store_outbound(struct gate_store *s, const struct gate_outbound_op *o, gate_store_cb cb,
                        void *arg);

/* route_figures.lua: each route's figures (route_figures.h). */
int gate_store_route_figures(struct gate_store *s, gate_store_cb cb, void *arg);

/* routes.lua: publishes n routes (names[i], specs[i] "min max priority")
 * and the outbound order; n 0 removes a publication. Replies the count. */
int gate_store_routes(struct gate_store *s, const char *order, size_t n, const char *const *names,
                      const char *const *specs, gate_store_cb cb, void *arg);

/* instances.lua: the registry of the gate's instances (gate/instances.h).
 * leave 0: announce (every field used); 1: leave (id and ttl_ms only).
 * Replies {lowest limit, live count, then id, version, started, limit,
 * fingerprint, settings per live instance}. */
struct gate_instance_note {
    int leave;
    const char *id;
    long long ttl_ms;
    const char *version;
    long long started_ms;
    long long limit; /* MAX_CONCURRENCY */
    const char *fingerprint;
    const char *settings; /* "NAME=digest,..." */
};
int gate_store_instances(struct gate_store *s, const struct gate_instance_note *n, gate_store_cb cb,
                         void *arg);

/* What an admitted caller brings to the assistant
 * (assistantOverrides.variableValues), as the step that admits them returns
 * it (admission_context in common.lua): no further read before the Vapi
 * call. Strings point into the reply: valid during its callback only. */
struct gate_queue_context {
    int known;                /* 0: the reply carried none (all unknown) */
    long long waited_ms;      /* since entering the queue; -1: unknown */
    long long entry_pos;      /* position on entering; 0: not recorded */
    const char *dialed;       /* the number dialled (Twilio's To); "": unknown */
    int callback;             /* a callback's outbound leg */
    long long enqueued_at_ms; /* Unix ms; 0: unknown */
    const char *route;        /* ROUTES_FILE route; "": none */
};
/* Element i of r (a six-element array) as a queue context; known 0 when
 * absent, empty or malformed. */
void gate_queue_context_at(const redisReply *r, size_t i, struct gate_queue_context *out);

/* The list of callers an admission step admits (admit_batch in
 * common.lua: admit.lua, end.lua and slots.lua release from element 3,
 * outbound.lua, callback.lua failed/expire): GATE_ADMITTED_WIDTH elements
 * per entry, at most the step's batch. */
#define GATE_ADMITTED_WIDTH 4
struct gate_admitted {
    const char *sid;               /* a CallSid, or "o:<id>" for an outbound call */
    const char *from;              /* the caller's number; a reservation's: the callback number */
    long long attempt;             /* < 0: a callback's reserved slot (-attempt) */
    struct gate_queue_context ctx; /* known 0 for reservations, outbound calls */
};
/* The entry at element i of an admission list: 0, or -1 when r has no
 * whole entry there (sid and from NULL when not strings). */
int gate_admitted_at(const redisReply *r, size_t i, struct gate_admitted *out);

/* admit.lua: up to batch callers from the head of the queue into free
 * slots; replies an admission list (gate_admitted_at) from element 0. */
int gate_store_admit(struct gate_store *s, long long limit, long long batch, long long lease_ms,
                     const char *instance, gate_store_cb cb, void *arg);

/* vapi_created.lua: Vapi created call vapi_id for attempt. Verdicts: ok,
 * orphan (the caller left meanwhile; the slot is held for the call). */
int gate_store_vapi_created(struct gate_store *s, const char *sid, long long attempt,
                            const char *vapi_id, long long orphan_hold_ms, gate_store_cb cb,
                            void *arg);

/* connected.lua: Twilio took the assistant's TwiML. Verdicts: connected
 * (element [1]: the wait in ms), ending, stale. */
int gate_store_connected(struct gate_store *s, const char *sid, long long attempt,
                         long long lease_ms, long long end_grace_ms, gate_store_cb cb, void *arg);

/* requeue.lua: an admission failed. Verdicts: requeued, abandoned,
 * overflow, stale. */
struct gate_requeue {
    const char *sid;
    long long attempt;
    const char *reason;
    int overlimit;              /* Vapi over its limit: lower the cap */
    long long backoff_ms;       /* pause admission this long (0: none) */
    long long limit;            /* MAX_CONCURRENCY */
    const char *orphan_vapi_id; /* a Vapi call left without caller, or NULL */
    long long orphan_hold_ms;
    long long overlimit_hold_ms;
    int permanent; /* counts toward max_attempts */
    long long max_attempts;
};
int gate_store_requeue(struct gate_store *s, const struct gate_requeue *q, gate_store_cb cb,
                       void *arg);

/* end.lua: one end signal (kinds vapi, twilio, lease, expire-admission,
 * overflow) and admission into freed slots. Verdicts: released,
 * released-orphan, requeued, abandoned, gone, ending, overflowed, stale,
 * duplicate, unknown; [1] the sid, [2] a detail (end.lua: the connected
 * ms of a release, "<wait ms>:<position>" of a waiting caller's abandon
 * or overflow), then from [3] on an admission list. */
struct gate_end_signal {
    const char *kind;
    const char *id;
    const char *reason;
    long long end_grace_ms;
    long long limit;
    long long batch; /* 0: admit nobody */
    long long lease_ms;
    const char *instance;
    const char *ewma_alpha;
    const char *signal; /* label for stats and the log */
    long long orphan_hold_ms;
};
int gate_store_end(struct gate_store *s, const struct gate_end_signal *e, gate_store_cb cb,
                   void *arg);

/* position.lua: a waiting caller's place and the wait estimate's inputs.
 * Verdict: waiting, overflow, unknown, or another call state. */
int gate_store_position(struct gate_store *s, const char *sid, long long max_wait_ms,
                        long long announce_ms, long long limit, gate_store_cb cb, void *arg);

/* sweep.lua: claims up to batch expired leases for claim_ms; replies six
 * elements per entry (member, state, vapi id, connected_at, -, attempt). */
int gate_store_sweep(struct gate_store *s, long long batch, long long claim_ms, gate_store_cb cb,
                     void *arg);

/* extend.lua: renews member's lease by ms. */
int gate_store_extend(struct gate_store *s, const char *member, long long ms, gate_store_cb cb,
                      void *arg);

/* snapshot.lua: active, waiting, limit, effective limit, backoff left,
 * the longest-waiting caller's wait in ms (0: nobody waits),
 * then the stats hash's field, value pairs. */
int gate_store_snapshot(struct gate_store *s, long long limit, gate_store_cb cb, void *arg);

/* members.lua: every waiting sid with its enqueue time (pairs). */
int gate_store_members(struct gate_store *s, gate_store_cb cb, void *arg);
/* members.lua for one route's callers (ROUTES_FILE). */
int gate_store_members_route(struct gate_store *s, const char *route, gate_store_cb cb, void *arg);

/* queue.lua: the operator's view (GET /queue) in one read: the figures,
 * then up to max_listed slots (seven elements each) and up to max_listed
 * waiting callers in order (four each); the script's header has the
 * layout. Numbers come back as their last four digits only. */
int gate_store_queue(struct gate_store *s, long long limit, long long max_listed, gate_store_cb cb,
                     void *arg);

/* claim.lua: takes or renews this gate's claim on its Twilio queue for
 * ttl_ms. The one script whose KEYS[1] is not the waiting key: the claim
 * belongs to the queue (claim_key, keys.h), not to a gate. The reply is
 * nil when the claim is this gate's, else [owner's prefix, ms left]. */
int gate_store_claim(struct gate_store *s, const char *claim_key, long long ttl_ms,
                     gate_store_cb cb, void *arg);

/* repair_begin.lua: {"intact"}, {"begin"} (this caller holds the repair
 * claim, token, for hold_ms) or {"busy"}. lost: the slots are suspect (this
 * instance reconnected): the marker is dropped first. */
int gate_store_repair_begin(struct gate_store *s, const char *token, long long hold_ms, int lost,
                            gate_store_cb cb, void *arg);

/* repair.lua: the live calls (lines "<vapi id>\t<CallSid>\t<attempt>\t<0|1>",
 * 1: streaming)
 * counted again; {"repaired", callers, orphans, already held} or
 * {"stale"}. force: admission resumes without a list (Vapi unreadable). */
int gate_store_repair(struct gate_store *s, const char *token, long long lease_ms,
                      long long orphan_hold_ms, const char *calls, int force, gate_store_cb cb,
                      void *arg);
/* control.lua, mode 'check': the call that carries Vapi call vapi_id,
 * claimed for 30 s when connected. Reply {state, sid, waited_ms, ai_ms};
 * the verdict is the call's state word, or unknown / stale / duplicate (a
 * repeated message within the claim). */
int gate_store_control_check(struct gate_store *s, const char *vapi_id, gate_store_cb cb,
                             void *arg);
/* control.lua, mode 'record': Twilio took the transfer (action forward,
 * queue, hang-up or failed; dest for the log): the call goes to ending with
 * its lease cut to end_grace_ms, TRANSFER or HANGUP in the queue log.
 * Verdicts: ok, ended, duplicate, unknown, stale; [2] the ms with the
 * assistant. */
int gate_store_control_record(struct gate_store *s, const char *vapi_id, const char *action,
                              const char *dest, long long end_grace_ms, gate_store_cb cb,
                              void *arg);
/* board.lua: the board's tick (gate/board.h): an occupancy sample, the
 * log's retention, log entries from log_start (an XRANGE id, inclusive) and occupancy sums from
 * first_minute on. */
struct gate_board_read {
    long long limit; /* MAX_CONCURRENCY */
    const char *log_start;
    long long log_count;
    long long first_minute;
    long long retention_ms;
    long long max_entries;
};
int gate_store_board(struct gate_store *s, const struct gate_board_read *b, gate_store_cb cb,
                     void *arg);

/* ---- callback.lua (docs/ARCHITECTURE.md, "Callbacks") ---- */

/* request: a waiting caller keeps their ticket in state callback.
 * Verdicts: callback, existing ([1] the position), stale ([1] the state). */
struct gate_callback_request {
    const char *sid;
    const char *number;  /* where to call back (E.164, checked by the caller) */
    long long est_ms;    /* the estimate the caller was given */
    long long max_dials; /* CALLBACK_ATTEMPTS */
    long long retry_ms;  /* CALLBACK_RETRY_SECONDS */
    long long lease_ms;  /* the slot held while one dial rings */
};
int gate_store_callback_request(struct gate_store *s, const struct gate_callback_request *q,
                                gate_store_cb cb, void *arg);
/* dial: the claim of one dial for attempt (admit's -attempt). Verdicts:
 * dial {dial, number, from (the number the caller dialled), dial count},
 * stale. Dial only on dial. */
int gate_store_callback_dial(struct gate_store *s, const char *sid, long long attempt,
                             gate_store_cb cb, void *arg);
/* ringing: Twilio created the outbound leg. Verdicts: ok, stale. */
int gate_store_callback_ringing(struct gate_store *s, const char *sid, long long attempt,
                                const char *leg, gate_store_cb cb, void *arg);
/* answered: a person answered leg; it becomes a caller being admitted in
 * the reserved slot. Verdicts: admit {admit, leg, number, 1, queue context}
 * (then the admission as for any caller), existing ([1] the leg's state),
 * stale. */
int gate_store_callback_answered(struct gate_store *s, const char *sid, long long attempt,
                                 const char *leg, long long admit_lease_ms, const char *instance,
                                 gate_store_cb cb, void *arg);
/* failed (Twilio's outcome, a refused create) or expire (the sweep): the
 * slot freed and refilled. Verdicts: retry, failed, requeued, stale; from
 * [3] on an admission list. */
struct gate_callback_outcome {
    int expire; /* 0: op failed; 1: op expire */
    const char *sid;
    long long attempt;
    const char *leg; /* NULL or "": unknown */
    const char *reason;
    int final; /* 1: no retry */
    long long limit;
    long long batch;
    long long lease_ms; /* admission lease of whoever takes the slot */
    const char *instance;
};
int gate_store_callback_outcome(struct gate_store *s, const struct gate_callback_outcome *o,
                                gate_store_cb cb, void *arg);
/* lookup: the callback pending for number (a caller calling again).
 * Replies {pending, sid, position, state} or {none} (verdict GV_OTHER:
 * read element 0). */
int gate_store_callback_lookup(struct gate_store *s, const char *number, gate_store_cb cb,
                               void *arg);
/* resume: the caller of new_sid waits on the line in the place of the
 * pending callback sid, which ends. Replies {resumed, position} or
 * {stale, state}. */
int gate_store_callback_resume(struct gate_store *s, const char *sid, const char *new_sid,
                               const char *from, const char *to, gate_store_cb cb, void *arg);

#endif
