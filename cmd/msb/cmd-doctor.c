/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb doctor: what this host has for running sandboxes, and what is missing.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/core/util.h"

int cmd_doctor(int argc, char **argv)
{
        msb_doctor_check checks[32];
        int n, problems = 0;

        if (argc > 1 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                printf("Usage: msb doctor\n\n"
                       "Check that this host can run sandboxes: QEMU, the guest kernel, the\n"
                       "initramfs, the base image and the accelerator (KVM or TCG).\n"
                       "Exits 0 when sandboxes can run, 1 otherwise.\n");
                return 0;
        }
        n = msb_doctor(checks, ARRAY_SIZE(checks));
        for (int i = 0; i < n; i++) {
                const char *mark = checks[i].ok > 0 ? "ok" : checks[i].ok == 0 ? "FAIL" : "info";
                printf("%-5s %-12s %s\n", mark, checks[i].name, checks[i].detail);
                problems += checks[i].ok == 0;
        }
        if (problems) {
                printf("\n%d problem%s found: sandboxes cannot run until %s fixed.\n", problems,
                       problems == 1 ? "" : "s", problems == 1 ? "it is" : "they are");
                return 1;
        }
        printf("\nThis host can run sandboxes.\n");
        return 0;
}
