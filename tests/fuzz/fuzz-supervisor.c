/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor's parsers of text other processes write: control requests
 * (any local client of control.sock), config.json (a file a user may edit)
 * and the ready line (read by the launching library). Each must refuse
 * garbage cleanly; whatever parses must format and parse back the same.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/readyline.h"
#include "lib/supervisor/ctlmsg.h"
#include "lib/supervisor/sbconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        struct ctlmsg_request req;
        struct readyline rl, again;
        struct sbconfig cfg;
        char errmsg[256];
        char *line = NULL;

        (void)ctlmsg_parse(text, size, &req);
        if (sbconfig_parse(text, size, &cfg, errmsg, sizeof(errmsg)) == 0)
                sbconfig_clear(&cfg);
        if (readyline_parse(text, size, &rl) == 0 && readyline_format(&rl, &line) == 0) {
                assert(readyline_parse(line, strlen(line), &again) == 0);
                assert(again.ok == rl.ok && again.start_ns == rl.start_ns &&
                       strcmp(again.kind, rl.kind) == 0 && strcmp(again.accel, rl.accel) == 0);
                free(line);
        }
        return 0;
}
