/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: the "get" verb of Docker's credential helper
 * protocol. The helper is spawned (posix_spawnp, safe beside other threads)
 * as `docker-credential-NAME get` with the server on its stdin, which is
 * then closed; it answers on stdout with one JSON object {"ServerURL",
 * "Username", "Secret"} and exits 0, or prints why not ("credentials not
 * found in native keychain" when it has none) and exits non-zero. Its
 * stderr stays ours: a helper may ask for a passphrase there.
 *
 * stdin is a socket rather than a pipe, so that a helper that exits without
 * reading costs EPIPE, not SIGPIPE. Its answer is read up to
 * OCI_CREDHELPER_OUT_MAX bytes within the time limit; past it the helper is
 * killed. The answer's secret is wiped from our
 * buffers once copied out.
 */
#include "credhelper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/core/json.h"
#include "lib/core/util.h"

extern char **environ;

#define PROGRAM_PREFIX "docker-credential-"
#define NOT_FOUND      "credentials not found"

static bool plain_name(const char *name)
{
        if (!*name || strlen(name) > 64)
                return false;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return name[0] != '.';
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC ns), at least 0. */
static int ms_left(uint64_t deadline)
{
        uint64_t now = now_ns(CLOCK_MONOTONIC);

        return now >= deadline ? 0 : (int)MIN((deadline - now) / 1000000 + 1, (uint64_t)INT32_MAX);
}

/* Reads fd to EOF, the deadline or max bytes: 0, -ETIMEDOUT or -EMSGSIZE. */
static int read_answer(int fd, uint64_t deadline, char *buf, size_t max, size_t *ret_len)
{
        size_t len = 0;

        for (;;) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                ssize_t n;
                int r = poll(&p, 1, ms_left(deadline));

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return r < 0 ? negative_errno() : -ETIMEDOUT;
                if (len == max)
                        return -EMSGSIZE;
                n = read(fd, buf + len, max - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret_len = len;
        return 0;
}

/* Waits for pid until the deadline, then kills it. Returns its status. */
static int reap(pid_t pid, uint64_t deadline)
{
        const struct timespec tick = {.tv_nsec = 10 * 1000000L};
        int status = 0;

        while (waitpid(pid, &status, WNOHANG) == 0) {
                if (ms_left(deadline) == 0) {
                        kill(pid, SIGKILL);
                        (void)waitpid(pid, &status, 0);
                        return -1;
                }
                nanosleep(&tick, NULL);
        }
        return status;
}

/* Spawns the helper with stdin and stdout on fresh descriptors. */
static int spawn(const char *program, int *ret_in, int *ret_out, pid_t *ret_pid)
{
        _cleanup_close_ int in = -1, child_in = -1, out = -1, child_out = -1;
        char *argv[] = {(char *)program, (char *)"get", NULL};
        posix_spawn_file_actions_t fa;
        int fds[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
                return negative_errno();
        in = fds[0];
        child_in = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        out = fds[0];
        child_out = fds[1];
        r = posix_spawn_file_actions_init(&fa);
        if (r)
                return -r;
        r = posix_spawn_file_actions_adddup2(&fa, child_in, STDIN_FILENO);
        if (!r)
                r = posix_spawn_file_actions_adddup2(&fa, child_out, STDOUT_FILENO);
        if (!r)
                r = posix_spawnp(ret_pid, program, &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r)
                return r == ENOENT ? -ENOPKG : -r;
        *ret_in = TAKE_FD(in);
        *ret_out = TAKE_FD(out);
        return 0;
}

/* The first line of text (at most size - 1 bytes) into why. */
static void first_line(const char *text, size_t len, char *why, size_t size)
{
        size_t n = 0;

        while (n < len && text[n] != '\n' && text[n] != '\r' && text[n] != '\0')
                n++;
        snprintf(why, size, "%.*s", (int)MIN(n, (size_t)INT32_MAX), text);
}

static int parse_answer(const char *text, size_t len, struct oci_cred *ret)
{
        _cleanup_(json_doc_freep) struct json_doc *doc = NULL;
        const struct json_value *root;
        const char *user, *secret;

        if (json_parse(text, len, &doc, &root) < 0)
                return -EBADMSG;
        user = json_string(json_get(root, "Username"), NULL);
        secret = json_string(json_get(root, "Secret"), NULL);
        if (!user || !secret)
                return -EBADMSG;
        if (streq(user, "<token>") || !*user)
                return -ENOENT; /* an identity token, for Docker's OAuth flow */
        ret->username = strdup(user);
        ret->password = strdup(secret);
        if (!ret->username || !ret->password) {
                oci_cred_clear(ret);
                return -ENOMEM;
        }
        return 0;
}

int oci_credhelper_get(const char *name, const char *server, unsigned timeout_ms,
                       struct oci_cred *ret, char *why, size_t why_size)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + timeout_ms * 1000000ull;
        _cleanup_free_ char *program = NULL, *out = NULL;
        _cleanup_close_ int in = -1, outfd = -1;
        size_t len = 0;
        pid_t pid;
        int r, status;

        snprintf(why, why_size, "%s", "");
        if (!plain_name(name)) {
                snprintf(why, why_size, "'%s' is not a program name", name);
                return -EINVAL;
        }
        program = strdup_printf(PROGRAM_PREFIX "%s", name);
        out = malloc(OCI_CREDHELPER_OUT_MAX);
        if (!program || !out)
                return -ENOMEM;
        r = spawn(program, &in, &outfd, &pid);
        if (r < 0) {
                snprintf(why, why_size, "%s: %s", program,
                         r == -ENOPKG ? "not found on PATH" : strerror(-r));
                return r;
        }
        (void)!send(in, server, strlen(server), MSG_NOSIGNAL);
        in = safe_close(in);
        r = read_answer(outfd, deadline, out, OCI_CREDHELPER_OUT_MAX, &len);
        status = reap(pid, r == 0 ? deadline : 0); /* killed at once if reading failed */
        if (r == 0 && status < 0)
                r = -ETIMEDOUT; /* it closed stdout, but did not exit */
        if (r == -ETIMEDOUT) {
                snprintf(why, why_size, "%s gave no answer within %.1f s", program,
                         timeout_ms / 1000.0);
                r = -ETIMEDOUT;
        } else if (r < 0) {
                snprintf(why, why_size, "%s: reading its answer: %s", program, strerror(-r));
                r = r == -EMSGSIZE ? -EBADMSG : r;
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                if (memmem(out, len, NOT_FOUND, strlen(NOT_FOUND))) {
                        r = -ENOENT;
                } else {
                        char line[200];

                        first_line(out, len, line, sizeof(line));
                        snprintf(why, why_size, "%s failed: %s", program,
                                 *line ? line : "no message");
                        r = -EIO;
                }
        } else {
                r = parse_answer(out, len, ret);
                if (r == -EBADMSG)
                        snprintf(why, why_size, "%s gave an answer that is not its JSON", program);
        }
        explicit_bzero(out, len);
        return r;
}
