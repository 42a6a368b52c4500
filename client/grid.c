/* grid.c - vvctl's grid syntax for sweeps and the Pareto front of a sweep.
 *
 * A grid argument is "field=values": values is either a comma list of
 * numbers, true/false and strings ("0.01,0.03", "fista,bcd"), or a range
 * "a:b:lin:n" / "a:b:log:n" of n >= 2 points including both ends (log:
 * geometric, a and b > 0).  Range points are rounded to 12 significant
 * digits so that they print readably; the ends are exactly a and b.
 */
#include "vvctl.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_POINTS = 10000 }; /* the daemon's limit for a whole sweep */

static double round12(double v)
{
    char b[64];
    snprintf(b, sizeof b, "%.12g", v);
    return strtod(b, NULL);
}

static cJSON *parse_range(const char *text, char *err, size_t errsz)
{
    char tmp[256];
    if (strlen(text) >= sizeof tmp) {
        snprintf(err, errsz, "range '%.40s...' is too long", text);
        return NULL;
    }
    strcpy(tmp, text);
    char *part[5];
    int np = 0;
    for (char *p = tmp; np < 5;) {
        part[np++] = p;
        char *c = strchr(p, ':');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    if (np != 4 || (strcmp(part[2], "lin") && strcmp(part[2], "log"))) {
        snprintf(err, errsz, "bad range '%s': expected a:b:lin:n or a:b:log:n", text);
        return NULL;
    }
    double a, b;
    long n;
    if (vc_parse_double(part[0], &a) || vc_parse_double(part[1], &b)) {
        snprintf(err, errsz, "bad range '%s': '%s' is not a number", text,
                 vc_parse_double(part[0], &a) ? part[0] : part[1]);
        return NULL;
    }
    if (vc_parse_long(part[3], &n) || n < 2 || n > MAX_POINTS) {
        snprintf(err, errsz,
                 "bad range '%s': the number of points '%s' must be an integer from 2 "
                 "to %d",
                 text, part[3], MAX_POINTS);
        return NULL;
    }
    int lg = !strcmp(part[2], "log");
    if (lg && (a <= 0 || b <= 0)) {
        snprintf(err, errsz, "bad range '%s': a log range needs both ends > 0", text);
        return NULL;
    }
    cJSON *arr = cJSON_CreateArray();
    for (long i = 0; i < n; i++) {
        double f = (double)i / (double)(n - 1), v;
        if (i == 0)
            v = a;
        else if (i == n - 1)
            v = b;
        else if (lg)
            v = round12(exp(log(a) + (log(b) - log(a)) * f));
        else
            v = round12(a + (b - a) * f);
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
    }
    return arr;
}

cJSON *vc_grid_values(const char *text, char *err, size_t errsz)
{
    if (!text[0]) {
        snprintf(err, errsz, "no values");
        return NULL;
    }
    if (strchr(text, ':'))
        return parse_range(text, err, errsz);
    cJSON *arr = cJSON_CreateArray();
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0) {
            snprintf(err, errsz, "empty value in list '%s'", text);
            cJSON_Delete(arr);
            return NULL;
        }
        char *item = strndup(p, n);
        double v;
        if (!item) {
            snprintf(err, errsz, "out of memory");
            cJSON_Delete(arr);
            return NULL;
        }
        if (!vc_parse_double(item, &v))
            cJSON_AddItemToArray(arr, cJSON_CreateNumber(v));
        else if (!strcmp(item, "true") || !strcmp(item, "false"))
            cJSON_AddItemToArray(arr, cJSON_CreateBool(item[0] == 't'));
        else if (isdigit((unsigned char)item[0]) || item[0] == '-' || item[0] == '+' ||
                 item[0] == '.') {
            /* Looks like a number but is not one: a typo, not a string. */
            snprintf(err, errsz, "'%s' is not a number", item);
            free(item);
            cJSON_Delete(arr);
            return NULL;
        } else
            cJSON_AddItemToArray(arr, cJSON_CreateString(item));
        free(item);
        if (!e)
            break;
        p = e + 1;
    }
    if (cJSON_GetArraySize(arr) > MAX_POINTS) {
        snprintf(err, errsz, "more than %d values", MAX_POINTS);
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

int vc_grid_parse(const char *arg, char **field, cJSON **values, char *err, size_t errsz)
{
    const char *eq = strchr(arg, '=');
    char sub[200];
    if (!eq || eq == arg) {
        snprintf(err, errsz,
                 "bad grid '%s': expected FIELD=VALUES (e.g. lambda=1e-3:1e-1:log:8 "
                 "or mu=0.01,0.03)",
                 arg);
        return -1;
    }
    for (const char *p = arg; p < eq; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            snprintf(err, errsz, "bad grid '%s': '%.*s' is not a field name", arg, (int)(eq - arg),
                     arg);
            return -1;
        }
    cJSON *v = vc_grid_values(eq + 1, sub, sizeof sub);
    if (!v) {
        snprintf(err, errsz, "bad grid '%s': %s", arg, sub);
        return -1;
    }
    *field = strndup(arg, (size_t)(eq - arg));
    *values = v;
    return 0;
}

void vc_pareto(const double *active, const double *mse, const int *eligible, int n, int *optimal)
{
    for (int i = 0; i < n; i++) {
        optimal[i] = eligible[i] && isfinite(active[i]) && isfinite(mse[i]);
        for (int j = 0; j < n && optimal[i]; j++) {
            if (j == i || !eligible[j] || !isfinite(active[j]) || !isfinite(mse[j]))
                continue;
            if (active[j] <= active[i] && mse[j] <= mse[i] &&
                (active[j] < active[i] || mse[j] < mse[i]))
                optimal[i] = 0;
        }
    }
}
