/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the kernel hands init only the parameters without a
 * dot as environment, so the agent reads its own (msb.*) from /proc/cmdline.
 * The line is split on spaces; each msb.KEY=VALUE is checked strictly, since
 * a wrong value is a host bug that must stop the boot visibly rather than
 * start a half-configured guest. Unknown msb.* keys are ignored (a newer
 * host may pass more). Pure string work, so it is unit-tested on the host.
 */
#include "agent.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

/* RFC 1123 host name: letters, digits, '-' and '.', not starting with either
 * punctuation, 1..64 bytes. */
static bool hostname_valid(const char *s, size_t n)
{
        if (n == 0 || n >= sizeof(((struct agent_bootparams *)0)->hostname))
                return false;
        if (s[0] == '-' || s[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
                        return false;
        return true;
}

/* "SECONDS[.FRACTION]" with up to 9 fraction digits. */
static int parse_time(const char *s, size_t n, struct timespec *ret)
{
        uint64_t sec = 0, nsec = 0;
        size_t i = 0, digits = 0;

        for (; i < n && isdigit((unsigned char)s[i]); i++) {
                if (sec > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                sec = sec * 10 + (uint64_t)(s[i] - '0');
        }
        if (i == 0 || sec > INT64_MAX / 2)
                return -EINVAL;
        if (i < n) {
                if (s[i++] != '.' || i == n)
                        return -EINVAL;
                for (; i < n; i++, digits++) {
                        if (!isdigit((unsigned char)s[i]) || digits == 9)
                                return -EINVAL;
                        nsec = nsec * 10 + (uint64_t)(s[i] - '0');
                }
                for (; digits < 9; digits++)
                        nsec *= 10;
        }
        ret->tv_sec = (time_t)sec;
        ret->tv_nsec = (long)nsec;
        return 0;
}

static bool value_is(const char *v, size_t n, const char *word)
{
        return strlen(word) == n && memcmp(v, word, n) == 0;
}

static int parse_word(const char *w, size_t n, struct agent_bootparams *bp)
{
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        const char *eq = memchr(w, '=', n);
        const char *v;
        size_t klen, vlen;

        if (n < 4 || memcmp(w, "msb.", 4) != 0 || !eq)
                return 0;
        klen = (size_t)(eq - w);
        v = eq + 1;
        vlen = n - klen - 1;
        if (value_is(w, klen, "msb.hostname")) {
                if (!hostname_valid(v, vlen))
                        return -EINVAL;
                memcpy(bp->hostname, v, vlen);
                bp->hostname[vlen] = '\0';
        } else if (value_is(w, klen, "msb.time")) {
                if (parse_time(v, vlen, &bp->time) < 0)
                        return -EINVAL;
                bp->has_time = true;
        } else if (value_is(w, klen, "msb.root")) {
                if (value_is(v, vlen, "overlay"))
                        bp->root = AGENT_ROOT_OVERLAY;
                else if (value_is(v, vlen, "disk"))
                        bp->root = AGENT_ROOT_DISK;
                else
                        return -EINVAL;
        } else if (value_is(w, klen, "msb.log")) {
                size_t i;

                for (i = 0; i < ARRAY_SIZE(levels); i++)
                        if (value_is(v, vlen, levels[i]))
                                break;
                if (i == ARRAY_SIZE(levels))
                        return -EINVAL;
                bp->log_level = (enum log_level)i;
        }
        return 0;
}

int agent_bootparams_parse(const char *cmdline, struct agent_bootparams *ret, const char **ret_bad)
{
        struct agent_bootparams bp = {.root = AGENT_ROOT_OVERLAY, .log_level = LOG_LEVEL_INFO};
        const char *p = cmdline;

        for (;;) {
                size_t n;

                while (isspace((unsigned char)*p))
                        p++;
                if (!*p)
                        break;
                for (n = 0; p[n] && !isspace((unsigned char)p[n]); n++)
                        ;
                if (parse_word(p, n, &bp) < 0) {
                        if (ret_bad)
                                *ret_bad = p;
                        return -EINVAL;
                }
                p += n;
        }
        *ret = bp;
        return 0;
}
