/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Where a sandbox lives on the host and whether it is alive: the paths of
 * docs/supervisor.md, the state store opened with API errors, and the two
 * locks (`lock`: held by a live supervisor; `op.lock`: held by whoever is
 * creating, starting, stopping or removing the sandbox).
 */
#pragma once

#include <stdbool.h>

#include "lib/store/store.h"

struct sandbox_paths {
        char *home;    /* $MSB_HOME */
        char *dir;     /* $MSB_HOME/sandboxes/<name> */
        char *run_dir; /* $MSB_HOME/run/<name> */
};

/* Fills the paths of sandbox name (which must be valid). API error set. */
int sandbox_paths_init(const char *name, struct sandbox_paths *ret);
void sandbox_paths_clear(struct sandbox_paths *p);

/* Opens the store under $MSB_HOME. API error set on failure. */
int state_open(struct store **ret);

/* True while a supervisor holds dir/lock. */
bool state_supervisor_alive(const char *dir);

/* Takes dir/op.lock (blocking): the fd to close to release it. */
int state_op_lock(const char *dir, int *ret_fd);

/* Reads the record of name and brings it up to date with reality: a
 * sandbox recorded as starting/running/stopping whose supervisor is gone
 * (and that nobody is starting or stopping) is recorded as crashed.
 * -ENOENT (with the API error set) when there is no such sandbox. */
int state_get(struct store *st, const char *name, struct store_sandbox *ret);

/* The start of every API call on a sandbox by name: checks the name, opens
 * the store and reads the record (state_get). On success the caller owns
 * both *ret_st and *ret; on failure neither is left open. */
int state_open_get(const char *name, struct store **ret_st, struct store_sandbox *ret);

/* Connects a stream socket to dir/sock (through /proc/self/fd, so long
 * paths work). 0 and *ret_fd, or -errno. */
int state_connect(const char *dir, const char *sock, int *ret_fd);
