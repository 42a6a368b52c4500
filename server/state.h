/* state.h - run states and stop reasons, one X-macro table each.
 *
 * The store keeps their names (schema/sql), the API shows them; in C they
 * are enums, named only through these tables.
 */
#ifndef VV_STATE_H
#define VV_STATE_H

/* clang-format off */
/*      enum            name        final */
#define RUN_STATE_TABLE(X)              \
    X(RUN_QUEUED,   "QUEUED",   0)      \
    X(RUN_RUNNING,  "RUNNING",  0)      \
    X(RUN_FINISHED, "FINISHED", 1)      \
    X(RUN_STOPPED,  "STOPPED",  1)      \
    X(RUN_FAILED,   "FAILED",   1)      \
    X(RUN_CRASHED,  "CRASHED",  1)
/* clang-format on */

typedef enum {
#define RUN_STATE_ENUM(e, name, final) e,
    RUN_STATE_TABLE(RUN_STATE_ENUM)
#undef RUN_STATE_ENUM
    RUN_STATE_COUNT
} run_state;

/* Why a run ended: "" (none: QUEUED, RUNNING, FAILED, CRASHED), the
 * solvers' reasons, a user's stop, the daemon's shutdown. */
/* clang-format off */
#define STOP_REASON_TABLE(X)            \
    X(STOP_NONE,        "")             \
    X(STOP_CONVERGED,   "converged")    \
    X(STOP_MAX_ITER,    "max_iter")     \
    X(STOP_MAX_SECONDS, "max_seconds")  \
    X(STOP_USER,        "user")         \
    X(STOP_SHUTDOWN,    "shutdown")     \
    X(STOP_NUMERICAL,   "numerical")
/* clang-format on */

typedef enum {
#define STOP_REASON_ENUM(e, name) e,
    STOP_REASON_TABLE(STOP_REASON_ENUM)
#undef STOP_REASON_ENUM
    STOP_REASON_COUNT
} stop_reason;

/* The state's name ("FINISHED"); "?" out of range. */
const char *run_state_name(run_state s);
/* The state named name, or -1. */
int run_state_parse(const char *name);
/* A state a run never leaves. */
int run_state_final(run_state s);

/* The reason's name ("" for STOP_NONE); NULL for STOP_NONE where a
 * nullable column or member wants it. */
const char *stop_reason_name(stop_reason r);
const char *stop_reason_or_null(stop_reason r);
/* The reason named name (NULL or "" is STOP_NONE), or -1. */
int stop_reason_parse(const char *name);

#endif
