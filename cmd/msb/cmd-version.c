/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb version: the client version and the protocol it speaks.
 */
#include <stdio.h>

#include "cli.h"
#include "lib/proto/proto.h"

int cmd_version(int argc, char **argv)
{
        printf("msb version %s (protocol %u)\n", msb_version(), PROTO_VERSION);
        return 0;
}
