/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Exec round trips through the C API on a running sandbox: N runs of
 * `true` (msb_exec_collect) and N protocol pings, printed as milliseconds,
 * one per line, prefixed "exec " or "ping ", for bench/exec.sh to summarise.
 * usage: exec-bench NAME N
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "microsandbox.h"

static double now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
        static const char *const cmd[] = {"true"};
        msb_exec_config *cfg;
        msb_sandbox *sb;
        int n;

        if (argc != 3 || (n = atoi(argv[2])) <= 0) {
                fprintf(stderr, "usage: exec-bench NAME N\n");
                return 2;
        }
        cfg = msb_exec_config_new();
        if (!cfg || msb_exec_config_set_argv(cfg, 1, cmd) < 0 ||
            msb_sandbox_open(argv[1], &sb) < 0) {
                fprintf(stderr, "exec-bench: %s\n", msb_errmsg());
                return 1;
        }
        for (int i = 0; i < n; i++) {
                msb_exec_output out;
                uint64_t ns;
                double t0 = now_ms();

                if (msb_exec_collect(sb, cfg, NULL, 0, &out) < 0 || out.exit_code != 0) {
                        fprintf(stderr, "exec-bench: exec failed: %s\n", msb_errmsg());
                        return 1;
                }
                printf("exec %.3f\n", now_ms() - t0);
                msb_exec_output_free(&out);
                if (msb_sandbox_ping(sb, &ns) < 0) {
                        fprintf(stderr, "exec-bench: ping failed: %s\n", msb_errmsg());
                        return 1;
                }
                printf("ping %.3f\n", (double)ns / 1e6);
        }
        msb_sandbox_close(sb);
        msb_exec_config_free(cfg);
        return 0;
}
