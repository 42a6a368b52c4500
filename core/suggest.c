/* suggest.c - "did you mean" (vv/suggest.h). */
#include "vv/suggest.h"

#include <ctype.h>
#include <string.h>

enum { MAXLEN = 64 };

int vv_edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > MAXLEN || m > MAXLEN)
        return MAXLEN + 1;
    /* Three rows of the optimal string alignment table. */
    int prev2[MAXLEN + 1], prev[MAXLEN + 1], cur[MAXLEN + 1];
    for (size_t j = 0; j <= m; j++)
        prev[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = (int)i;
        int ai = tolower((unsigned char)a[i - 1]);
        for (size_t j = 1; j <= m; j++) {
            int bj = tolower((unsigned char)b[j - 1]);
            int c = prev[j - 1] + (ai != bj);
            if (prev[j] + 1 < c)
                c = prev[j] + 1;
            if (cur[j - 1] + 1 < c)
                c = cur[j - 1] + 1;
            if (i > 1 && j > 1 && ai == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == bj && prev2[j - 2] + 1 < c)
                c = prev2[j - 2] + 1;
            cur[j] = c;
        }
        memcpy(prev2, prev, sizeof(int) * (m + 1));
        memcpy(prev, cur, sizeof(int) * (m + 1));
    }
    return prev[m];
}

static int prefix_ci(const char *p, const char *s)
{
    for (; *p; p++, s++)
        if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
            return 0;
    return 1;
}

/* How close cand is to word: a distance, or -1 when it does not qualify. */
static int closeness(const char *word, const char *cand)
{
    size_t wl = strlen(word), cl = strlen(cand);
    if (!wl || !cl)
        return -1;
    int limit = wl >= 9 ? 3 : wl >= 6 ? 2 : 1;
    int d = vv_edit_distance(word, cand);
    if (d <= limit)
        return d;
    size_t shorter = wl < cl ? wl : cl;
    if (shorter >= 3 && (wl < cl ? prefix_ci(word, cand) : prefix_ci(cand, word)))
        return limit + 1; /* after every true near-miss */
    return -1;
}

const char *vv_closest(const char *word, const char *const *cands, int n)
{
    const char *best = NULL;
    int bestd = 1 << 30;
    for (int i = 0; n < 0 ? cands[i] != NULL : i < n; i++) {
        if (!cands[i])
            continue;
        int d = closeness(word, cands[i]);
        if (d >= 0 && d < bestd) {
            best = cands[i];
            bestd = d;
        }
    }
    return best;
}

const char *vv_closest_in_list(const char *word, const char *list, char *out, size_t cap)
{
    int bestd = 1 << 30;
    const char *p = list;
    if (cap)
        out[0] = 0;
    while (*p) {
        while (*p == ',' || *p == ' ' || *p == '|')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '|')
            e++;
        char cand[MAXLEN + 1];
        size_t len = (size_t)(e - p);
        if (len && len <= MAXLEN) {
            memcpy(cand, p, len);
            cand[len] = 0;
            int d = closeness(word, cand);
            if (d >= 0 && d < bestd && len < cap) {
                bestd = d;
                memcpy(out, cand, len + 1);
            }
        }
        p = e;
    }
    return bestd < (1 << 30) ? out : NULL;
}
