/* state.c - names of run states and stop reasons. */
#include "state.h"

#include <string.h>

static const struct {
    const char *name;
    int final;
} states[] = {
#define RUN_STATE_ROW(e, name, final) {name, final},
    RUN_STATE_TABLE(RUN_STATE_ROW)
#undef RUN_STATE_ROW
};

static const char *const reasons[] = {
#define STOP_REASON_ROW(e, name) name,
    STOP_REASON_TABLE(STOP_REASON_ROW)
#undef STOP_REASON_ROW
};

const char *run_state_name(run_state s)
{
    return (unsigned)s < RUN_STATE_COUNT ? states[s].name : "?";
}

int run_state_parse(const char *name)
{
    for (int i = 0; name && i < RUN_STATE_COUNT; i++)
        if (!strcmp(name, states[i].name))
            return i;
    return -1;
}

int run_state_final(run_state s)
{
    return (unsigned)s < RUN_STATE_COUNT && states[s].final;
}

const char *stop_reason_name(stop_reason r)
{
    return (unsigned)r < STOP_REASON_COUNT ? reasons[r] : "?";
}

const char *stop_reason_or_null(stop_reason r)
{
    return r == STOP_NONE || (unsigned)r >= STOP_REASON_COUNT ? NULL : reasons[r];
}

int stop_reason_parse(const char *name)
{
    if (!name || !name[0])
        return STOP_NONE;
    for (int i = 1; i < STOP_REASON_COUNT; i++)
        if (!strcmp(name, reasons[i]))
            return i;
    return -1;
}
