/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The supervisor of one sandbox (msb-sandbox): owns the sandbox's QEMU, its
 * agent relay and control socket, and its lifecycle, from the start to the
 * end of one run. The contract with the library is docs/supervisor.md.
 */
#pragma once

struct supervisor_args {
        const char *home; /* $MSB_HOME, an absolute path */
        const char *name; /* the sandbox */
        int ready_fd;     /* where the ready line goes; -1: nowhere */
        int parent_fd;    /* EOF: the launcher is gone; a byte 'D': detach; -1: none */
};

/* Runs the sandbox: takes its lock, boots it, reports on the ready fd,
 * serves until the VM ends, records the end and cleans up. Installs a log
 * handler (lib/core/log.h) that writes to logs/system.log, so it is meant
 * for a process of its own. Returns the process's exit status: 0 after a
 * run that started (whatever ended it), 1 when the start failed (the ready
 * line says why). */
int supervisor_run(const struct supervisor_args *args);
