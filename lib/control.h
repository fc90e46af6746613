/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client of a supervisor's control socket (docs/supervisor.md): one JSON
 * line out, one JSON line back.
 */
#pragma once

/* Sends request (a JSON object, no newline) to run_dir/control.sock and
 * returns the answer line (without its newline) in *ret_answer (free it).
 * -ECONNREFUSED/-ENOENT when no supervisor listens, -ETIMEDOUT, -EPIPE if it
 * hung up without answering. */
int control_call(const char *run_dir, const char *request, int timeout_ms, char **ret_answer);
