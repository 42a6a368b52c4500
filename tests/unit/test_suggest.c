/* test_suggest.c - "did you mean" (core/suggest.c): the edit distance
 * against a textbook recursive definition on random short words, and the
 * choice of the closest name on the cases users meet. */
#include "tap.h"
#include "vv/suggest.h"

#include <ctype.h>
#include <string.h>

/* Optimal string alignment distance by its recursive definition (Damerau's
 * restricted edit distance): exponential, fine for words of up to 6. */
static int osa_ref(const char *a, int i, const char *b, int j)
{
    if (i == 0)
        return j;
    if (j == 0)
        return i;
    int same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
    int d = osa_ref(a, i - 1, b, j - 1) + !same;
    int del = osa_ref(a, i - 1, b, j) + 1, ins = osa_ref(a, i, b, j - 1) + 1;
    if (del < d)
        d = del;
    if (ins < d)
        d = ins;
    if (i > 1 && j > 1 && tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 2]) &&
        tolower((unsigned char)a[i - 2]) == tolower((unsigned char)b[j - 1])) {
        int tr = osa_ref(a, i - 2, b, j - 2) + 1;
        if (tr < d)
            d = tr;
    }
    return d;
}

int main(void)
{
    uint64_t x = 88172645463325252ull;
    int bad = 0, pairs = 0;
    for (int t = 0; t < 3000; t++) {
        char a[8], b[8];
        int la, lb;
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        la = (int)(x % 7), lb = (int)((x >> 8) % 7);
        for (int i = 0; i < la; i++)
            a[i] = "abAB"[(x >> (16 + 2 * i)) & 3];
        for (int i = 0; i < lb; i++)
            b[i] = "abAB"[(x >> (40 + 2 * i)) & 3];
        a[la] = b[lb] = 0;
        pairs++;
        if (vv_edit_distance(a, b) != osa_ref(a, la, b, lb))
            bad++;
    }
    CHECKF(bad == 0, "edit distance equals the recursive definition on %d random pairs (%d differ)",
           pairs, bad);
    CHECK(vv_edit_distance("kitten", "sitting") == 3, "kitten -> sitting: 3");
    CHECK(vv_edit_distance("ca", "ac") == 1, "a transposition counts 1");
    CHECK(vv_edit_distance("", "abc") == 3 && vv_edit_distance("abc", "") == 3, "empty words");
    CHECK(vv_edit_distance("Lambda", "lambda") == 0, "case is ignored");
    char longw[80];
    memset(longw, 'a', 70);
    longw[70] = 0;
    CHECK(vv_edit_distance(longw, "a") > 64, "a word over 64 bytes is far from everything");

    const char *c;
    static const char *const cmds[] = {"submit", "lasso",   "watch",  "stop",  "ls",
                                       "show",   "metrics", "get",    "sweep", "upload",
                                       "models", "help",    "status", "stats", NULL};
    CHECK(vv_closest("lsit", cmds, -1) == NULL,
          "lsit: nothing (ls is 2 edits away, too far for a 4-letter word)");
    c = vv_closest("sl", cmds, -1);
    CHECK(c && strcmp(c, "ls") == 0, "sl -> ls");
    c = vv_closest("statsu", cmds, -1);
    CHECK(c && strcmp(c, "status") == 0, "statsu -> status (a transposition beats stats)");
    c = vv_closest("submti", cmds, -1);
    CHECK(c && strcmp(c, "submit") == 0, "submti -> submit");
    c = vv_closest("wacth", cmds, -1);
    CHECK(c && strcmp(c, "watch") == 0, "wacth -> watch");
    c = vv_closest("metric", cmds, -1);
    CHECK(c && strcmp(c, "metrics") == 0, "metric -> metrics");
    CHECK(vv_closest("zzzz", cmds, -1) == NULL, "zzzz: nothing close");
    CHECK(vv_closest("x", cmds, -1) == NULL, "one letter: nothing close");
    c = vv_closest("mod", cmds, -1);
    CHECK(c && strcmp(c, "models") == 0, "mod -> models (a prefix of 3 or more)");
    c = vv_closest("sto", (const char *const[]){"stop", "store"}, 2);
    CHECK(c && strcmp(c, "stop") == 0, "ties go to the earlier candidate");

    char out[64];
    const char *l = vv_closest_in_list("lamda", "kind, lambda, lambda_ratio, tol", out, sizeof out);
    CHECK(l == out && strcmp(out, "lambda") == 0, "lamda -> lambda from a written list");
    l = vv_closest_in_list("lambda_ration", "lambda, lambda_ratio, lambda_paper", out, sizeof out);
    CHECK(l && strcmp(out, "lambda_ratio") == 0, "lambda_ration -> lambda_ratio");
    l = vv_closest_in_list("epoch", "epochs|optimizer|lr", out, sizeof out);
    CHECK(l && strcmp(out, "epochs") == 0, "'|' separates too");
    l = vv_closest_in_list("qqqqqq", "epochs, lr", out, sizeof out);
    CHECK(l == NULL && out[0] == 0, "nothing close: NULL and an empty out");
    return tap_done();
}
