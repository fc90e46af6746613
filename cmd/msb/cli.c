/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the few helpers every subcommand shares. Errors are
 * printed once, here, as "msb: <what went wrong> (<hint>)", and the kind of
 * the API error picks the exit code.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/core/util.h"

bool cli_quiet;

void cli_error(const char *fmt, ...)
{
        va_list ap;

        fputs("msb: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int cli_api_error(void)
{
        static const int codes[] = {
                [MSB_ERR_NONE] = EXIT_SYSTEM,
                [MSB_ERR_INVALID_ARGUMENT] = EXIT_USAGE,
                [MSB_ERR_IMAGE_NOT_FOUND] = EXIT_IMAGE_NOT_FOUND,
                [MSB_ERR_IMAGE_INVALID] = EXIT_IMAGE_INVALID,
                [MSB_ERR_HOST_MISSING] = EXIT_HOST_MISSING,
                [MSB_ERR_ACCEL_UNAVAILABLE] = EXIT_ACCEL,
                [MSB_ERR_BOOT_TIMEOUT] = EXIT_BOOT_TIMEOUT,
                [MSB_ERR_VM_FAILED] = EXIT_VM_FAILED,
                [MSB_ERR_PROTOCOL] = EXIT_PROTOCOL,
                [MSB_ERR_CANCELLED] = EXIT_INTERRUPTED,
                [MSB_ERR_SYSTEM] = EXIT_SYSTEM,
                [MSB_ERR_NOT_FOUND] = EXIT_NOT_FOUND,
                [MSB_ERR_CONFLICT] = EXIT_CONFLICT,
                [MSB_ERR_NOT_RUNNING] = EXIT_NOT_RUNNING,
                [MSB_ERR_REGISTRY] = EXIT_REGISTRY,
        };
        msb_error_kind kind = msb_errkind();

        if (kind != MSB_ERR_CANCELLED)
                cli_error("%s", *msb_errmsg() ? msb_errmsg() : "unknown error");
        if ((size_t)kind >= ARRAY_SIZE(codes))
                return EXIT_SYSTEM;
        return codes[kind];
}

int cli_parse_size(const char *opt, const char *value, uint64_t *ret)
{
        if (parse_size(value, ret) < 0) {
                cli_error("invalid size '%s' for %s: use a number with K, M, G or T (e.g. 512M)",
                          value, opt);
                return -EINVAL;
        }
        return 0;
}

int cli_parse_duration(const char *opt, const char *value, uint64_t *ret_ms)
{
        if (parse_duration_ms(value, ret_ms) < 0) {
                cli_error("invalid duration '%s' for %s: use e.g. 30s, 5m, 1h30m or 500ms", value,
                          opt);
                return -EINVAL;
        }
        return 0;
}

int cli_parse_uint(const char *opt, const char *value, uint32_t min, uint32_t max, uint32_t *ret)
{
        uint64_t v;

        if (parse_u64(value, &v) < 0 || v < min || v > max) {
                cli_error("invalid value '%s' for %s: expected a number from %u to %u", value, opt,
                          min, max);
                return -EINVAL;
        }
        *ret = (uint32_t)v;
        return 0;
}

const char *cli_format_age(int64_t ms, char *buf, size_t size)
{
        static const struct {
                int64_t secs;
                const char *unit;
        } units[] = {{365 * 86400, "year"}, {30 * 86400, "month"}, {7 * 86400, "week"},
                     {86400, "day"},        {3600, "hour"},        {60, "minute"},
                     {1, "second"}};
        int64_t secs = (int64_t)time(NULL) - ms / 1000;

        if (ms <= 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        if (secs < 1)
                secs = 1;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
                if (secs >= units[i].secs) {
                        int64_t n = secs / units[i].secs;
                        snprintf(buf, size, "%lld %s%s", (long long)n, units[i].unit,
                                 n == 1 ? "" : "s");
                        break;
                }
        }
        return buf;
}

const char *cli_format_ago(int64_t ms, char *buf, size_t size)
{
        size_t n;

        cli_format_age(ms, buf, size);
        n = strlen(buf);
        if (ms > 0 && n + 5 <= size)
                memcpy(buf + n, " ago", 5);
        return buf;
}
