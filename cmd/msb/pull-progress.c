/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Pull progress for msb pull, run and create: a bar per layer on a terminal
 * (bytes, rate, ETA), redrawn in place at most ten times a second; a line
 * per event when the output is not a terminal; nothing when quiet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

#define REDRAW_NS 100000000ULL /* at most ten frames a second */

enum bar_state {
        BAR_WAITING,
        BAR_DOWNLOADING,
        BAR_DOWNLOADED,
        BAR_CACHED,
        BAR_EXTRACTING,
        BAR_EXTRACTED,
};

struct bar {
        char id[13]; /* the first 12 hex digits of the digest */
        enum bar_state state;
        uint64_t done, total;
        uint64_t started_ns, done_at_start;
};

struct cli_pull_ui {
        FILE *out;
        bool tty;
        bool quiet;
        char *ref; /* canonical, from the first event */
        struct bar *bars;
        size_t n;
        size_t lines; /* lines of the last frame */
        uint64_t last_draw_ns;
};

static uint64_t mono_ns(void)
{
        return now_ns(CLOCK_MONOTONIC);
}

static const char *state_text(enum bar_state s)
{
        static const char *const names[] = {
                [BAR_WAITING] = "Waiting",       [BAR_DOWNLOADING] = "Downloading",
                [BAR_DOWNLOADED] = "Downloaded", [BAR_CACHED] = "Already exists",
                [BAR_EXTRACTING] = "Extracting", [BAR_EXTRACTED] = "Done",
        };

        return names[s];
}

/* "12.3 MiB/s, ETA 5s" for a bar in progress. */
static void rate_text(const struct bar *b, char *buf, size_t size)
{
        uint64_t el = mono_ns() - b->started_ns, moved = b->done - b->done_at_start;
        double rate = el > 0 ? (double)moved * 1e9 / (double)el : 0;
        char r[32];

        buf[0] = '\0';
        if (el < 200000000ULL || rate <= 0)
                return;
        format_bytes((uint64_t)rate, r, sizeof(r));
        if (b->total > b->done)
                snprintf(buf, size, "%s/s, ETA %llus", r,
                         (unsigned long long)((double)(b->total - b->done) / rate + 0.5));
        else
                snprintf(buf, size, "%s/s", r);
}

static void draw_line(const struct cli_pull_ui *ui, const struct bar *b, int width)
{
        char done[32], total[32], rate[64], line[512];
        int bar_w = width - 80, n;

        if (b->state == BAR_DOWNLOADING || b->state == BAR_EXTRACTING) {
                format_bytes(b->done, done, sizeof(done));
                format_bytes(b->total, total, sizeof(total));
                rate_text(b, rate, sizeof(rate));
                n = snprintf(line, sizeof(line), "%s  %-14s ", b->id, state_text(b->state));
                if (bar_w >= 10 && b->total > 0 && n > 0 && (size_t)n < sizeof(line)) {
                        int fill = (int)((double)bar_w * (double)b->done / (double)b->total);

                        fill = MIN(fill, bar_w);
                        line[n++] = '[';
                        for (int i = 0; i < bar_w && (size_t)n < sizeof(line) - 2; i++)
                                line[n++] = i < fill ? '=' : i == fill ? '>' : ' ';
                        line[n++] = ']';
                        line[n] = '\0';
                }
                snprintf(line + strlen(line), sizeof(line) - strlen(line), " %s / %s  %s", done,
                         total, rate);
        } else {
                snprintf(line, sizeof(line), "%s  %s", b->id, state_text(b->state));
        }
        fprintf(ui->out, "\033[2K%.*s\n", width > 1 ? width - 1 : 79, line);
}

static void draw(struct cli_pull_ui *ui, bool force)
{
        struct winsize ws;
        int width = 80;
        uint64_t now = mono_ns();

        if (!force && now - ui->last_draw_ns < REDRAW_NS)
                return;
        ui->last_draw_ns = now;
        if (ioctl(fileno(ui->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                width = ws.ws_col;
        if (ui->lines > 0)
                fprintf(ui->out, "\033[%zuA", ui->lines);
        for (size_t i = 0; i < ui->n; i++)
                draw_line(ui, &ui->bars[i], width);
        ui->lines = ui->n;
        fflush(ui->out);
}

static void set_state(struct bar *b, enum bar_state s, uint64_t done, uint64_t total)
{
        if (b->state != s) {
                b->state = s;
                b->started_ns = mono_ns();
                b->done_at_start = done;
        }
        b->done = done;
        b->total = total;
}

void cli_pull_progress(const msb_pull_event *ev, void *userdata)
{
        struct cli_pull_ui *ui = userdata;
        struct bar *b = ev->layer < ui->n ? &ui->bars[ev->layer] : NULL;
        char size[32];

        if (!ui->ref)
                ui->ref = strdup(ev->ref);
        if (ui->quiet)
                return;
        switch (ev->phase) {
        case MSB_PULL_RESOLVED:
                free(ui->bars);
                ui->bars = calloc(ev->n_layers + 1, sizeof(*ui->bars));
                ui->n = ui->bars ? ev->n_layers : 0;
                fprintf(ui->out, "Pulling %s\n", ev->ref);
                if (!ui->tty)
                        fprintf(ui->out, "%s: %zu layer%s\n", ev->ref, ev->n_layers,
                                ev->n_layers == 1 ? "" : "s");
                fflush(ui->out);
                return;
        case MSB_PULL_LAYER:
                if (!b)
                        return;
                if (b->state != BAR_DOWNLOADING && !ui->tty)
                        fprintf(ui->out, "layer %zu/%zu %.19s: downloading\n", ev->layer + 1,
                                ev->n_layers, ev->digest);
                set_state(b, BAR_DOWNLOADING, ev->done, ev->total);
                break;
        case MSB_PULL_LAYER_DONE:
                if (!b)
                        return;
                snprintf(b->id, sizeof(b->id), "%.12s", ev->digest + 7);
                set_state(b, ev->cached ? BAR_CACHED : BAR_DOWNLOADED, ev->done, ev->total);
                if (!ui->tty)
                        fprintf(ui->out, "layer %zu/%zu %.19s: %s (%s)\n", ev->layer + 1,
                                ev->n_layers, ev->digest,
                                ev->cached ? "already exists" : "downloaded",
                                format_bytes(ev->total, size, sizeof(size)));
                break;
        case MSB_PULL_MATERIALIZE:
                if (!b)
                        return;
                if (b->state != BAR_EXTRACTING && !ui->tty)
                        fprintf(ui->out, "layer %zu/%zu %.19s: extracting\n", ev->layer + 1,
                                ev->n_layers, ev->digest);
                set_state(b, ev->done >= ev->total ? BAR_EXTRACTED : BAR_EXTRACTING, ev->done,
                          ev->total);
                break;
        case MSB_PULL_COMPLETE:
                if (ui->tty)
                        draw(ui, true);
                fprintf(ui->out, "Digest: %s\n", ev->digest);
                fflush(ui->out);
                return;
        }
        if (b && !b->id[0])
                snprintf(b->id, sizeof(b->id), "%.12s", ev->digest + 7);
        if (ui->tty)
                draw(ui, ev->phase == MSB_PULL_LAYER_DONE);
        else
                fflush(ui->out);
}

struct cli_pull_ui *cli_pull_ui_new(FILE *out, bool quiet)
{
        struct cli_pull_ui *ui = calloc(1, sizeof(*ui));

        if (!ui)
                return NULL;
        ui->out = out;
        ui->tty = isatty(fileno(out)) == 1;
        ui->quiet = quiet;
        return ui;
}

const char *cli_pull_ui_ref(const struct cli_pull_ui *ui)
{
        return ui->ref;
}

void cli_pull_ui_free(struct cli_pull_ui *ui)
{
        if (!ui)
                return;
        free(ui->ref);
        free(ui->bars);
        free(ui);
}
