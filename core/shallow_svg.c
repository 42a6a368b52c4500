/* shallow_svg.c - the figure of experiment 1 (contract in vv/shallow.h):
 * one panel per output, each neuron the output uses drawn at (angle of w_k,
 * b_k / ||w_k||) with area proportional to |v_jk| ||w_k||, in the style of
 * the paper's notebook (matplotlib scatter with s = 5000 |v_jk| ||w_k||). */
#include "vv/err.h"
#include "vv/shallow.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (m < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)m < b->cap) {
            b->len += (size_t)m;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 8192;
        while (nc < b->len + (size_t)m + 1)
            nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = nc;
    }
}

/* Writes s with the five XML specials escaped. */
static void sb_text(sbuf *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': sb_printf(b, "&lt;"); break;
        case '>': sb_printf(b, "&gt;"); break;
        case '&': sb_printf(b, "&amp;"); break;
        case '"': sb_printf(b, "&quot;"); break;
        case '\'': sb_printf(b, "&apos;"); break;
        default: sb_printf(b, "%c", *s);
        }
    }
}

static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

int vv_shallow_svg(const vv_shallow_result *r, const char *title, char **svg)
{
    if (!svg)
        return vv_fail(VV_EINVAL, "vv_shallow_svg: NULL svg");
    *svg = NULL;
    if (!r || !r->w1 || !r->b1 || !r->v || r->width < 1 || r->d_out < 1)
        return vv_fail(VV_EINVAL, "vv_shallow_svg: NULL or empty result");
    if (r->d_in != 2)
        return vv_fail(VV_EINVAL, "vv_shallow_svg: d_in = %d; the figure needs 2 inputs", r->d_in);

    const double pw = 400, ph = 340;             /* plot area of one panel */
    const double ml = 50, mr = 20, mt = 60, mb = 45; /* margins around it */
    const double panel = ml + pw + mr;
    const double tw = panel * r->d_out, th = mt + ph + mb;
    const double two_pi = 2 * M_PI;
    int h = r->width, dd = r->d_out;
    sbuf b = {0};

    sb_printf(&b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
              "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"13\">\n"
              "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              tw, th, tw, th);
    if (title) {
        sb_printf(&b, "<text x=\"%.1f\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">",
                  tw / 2);
        sb_text(&b, title);
        sb_printf(&b, "</text>\n");
    }
    static const char *const xt[] = {"0", "\xcf\x80/2", "\xcf\x80", "3\xcf\x80/2", "2\xcf\x80"};
    for (int j = 0; j < dd; j++) {
        double x0 = j * panel + ml, y0 = mt;
        int used = 0;
        sb_printf(&b, "<g class=\"panel\" id=\"f_%d\">\n", j + 1);
        sb_printf(&b, "<clipPath id=\"clip%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
                      "height=\"%.1f\"/></clipPath>\n",
                  j, x0, y0, pw, ph);
        /* Discs first, the frame on top. */
        sb_printf(&b, "<g clip-path=\"url(#clip%d)\" fill=\"%s\" fill-opacity=\"0.6\" "
                      "stroke=\"%s\" stroke-width=\"0.8\">\n",
                  j, colours[j % 10], colours[j % 10]);
        for (int k = 0; k < h; k++) {
            double w0 = r->w1[(size_t)k * 2], w1 = r->w1[(size_t)k * 2 + 1];
            double wn = sqrt(w0 * w0 + w1 * w1);
            double mag = fabs(r->v[(size_t)j * h + k]) * wn;
            if (!(mag > VV_SHALLOW_ACTIVE_TOL) || !(wn > 0))
                continue;
            double th_k = atan2(w1, w0);
            if (th_k < 0)
                th_k += two_pi;
            double off = r->b1[k] / wn;
            double off_c = off < -3 ? -3 : off > 3 ? 3 : off;
            double cx = x0 + pw * th_k / two_pi, cy = y0 + ph * (3 - off_c) / 6;
            /* matplotlib's s = 5000 * mag is an area in pt^2; 1 unit = 1 pt. */
            double rad = sqrt(5000 * mag / M_PI);
            rad = rad > 80 ? 80 : rad;
            sb_printf(&b,
                      "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\"><title>neuron %d: angle %.4f, "
                      "b/|w| %.4f, |v||w| %.4g</title></circle>\n",
                      cx, cy, rad, k, th_k, off, mag);
            used++;
        }
        sb_printf(&b, "</g>\n");
        sb_printf(&b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                      "stroke=\"black\"/>\n",
                  x0, y0, pw, ph);
        for (int t = 0; t <= 4; t++) {
            double x = x0 + pw * t / 4;
            sb_printf(&b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                      x, y0 + ph, x, y0 + ph + 5, x, y0 + ph + 20, xt[t]);
        }
        for (int t = -3; t <= 3; t++) {
            double y = y0 + ph * (3 - t) / 6;
            sb_printf(&b,
                      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>"
                      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n",
                      x0 - 5, y, x0, y, x0 - 8, y + 4, t);
        }
        sb_printf(&b,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\">f_%d "
                  "(%d neurons)</text>\n",
                  x0 + pw / 2, y0 - 10, j + 1, used);
        sb_printf(&b,
                  "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">angle of w_k</text>\n",
                  x0 + pw / 2, y0 + ph + 38);
        sb_printf(&b,
                  "<text transform=\"translate(%.1f %.1f) rotate(-90)\" "
                  "text-anchor=\"middle\">b_k / |w_k|</text>\n",
                  x0 - 32, y0 + ph / 2);
        sb_printf(&b, "</g>\n");
    }
    sb_printf(&b, "</svg>\n");
    if (b.oom) {
        free(b.p);
        return vv_fail(VV_ENOMEM, "vv_shallow_svg: out of memory");
    }
    *svg = b.p;
    return 0;
}
