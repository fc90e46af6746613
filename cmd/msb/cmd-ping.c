/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb ping: a protocol round trip to a sandbox's agent.
 */
#include <stdio.h>

#include "cli.h"
#include "lib/core/util.h"

int cmd_ping(int argc, char **argv)
{
        msb_sandbox *sb = NULL;
        uint64_t ns;
        int r;

        if (argc != 2 || argv[1][0] == '-') {
                if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                        printf("Usage: msb ping NAME\n\n"
                               "Check that a sandbox's agent answers, and how fast.\n");
                        return 0;
                }
                cli_error("ping needs exactly one sandbox NAME");
                return EXIT_USAGE;
        }
        if (msb_sandbox_open(argv[1], &sb) < 0)
                return cli_api_error();
        r = msb_sandbox_ping(sb, &ns);
        msb_sandbox_close(sb);
        if (r < 0)
                return cli_api_error();
        printf("%s: agent answered in %.2f ms\n", argv[1], (double)ns / 1e6);
        return 0;
}
