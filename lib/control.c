/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: a blocking exchange with a deadline; answers are
 * small, so a bounded buffer holds the whole line.
 */
#include "control.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "state.h"
#include "lib/core/util.h"

#define ANSWER_MAX (64u * 1024u)

int control_call(const char *run_dir, const char *request, int timeout_ms, char **ret_answer)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + (uint64_t)timeout_ms * 1000000ULL;
        _cleanup_free_ char *line = strdup_printf("%s\n", request);
        _cleanup_free_ char *answer = malloc(ANSWER_MAX);
        _cleanup_close_ int fd = -1;
        size_t len = 0;
        int r;

        if (!line || !answer)
                return -ENOMEM;
        r = state_connect(run_dir, "control.sock", &fd);
        if (r < 0)
                return r;
        if (send(fd, line, strlen(line), MSG_NOSIGNAL) != (ssize_t)strlen(line))
                return -EPIPE;
        for (;;) {
                uint64_t now = now_ns(CLOCK_MONOTONIC);
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                char *nl;
                ssize_t n;

                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, (int)MIN((deadline - now) / 1000000ULL + 1, 60000));
                if (r < 0 && errno != EINTR)
                        return negative_errno();
                if (r <= 0)
                        continue;
                n = recv(fd, answer + len, ANSWER_MAX - 1 - len, 0);
                if (n < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n == 0)
                        return -EPIPE;
                len += (size_t)n;
                answer[len] = '\0';
                nl = strchr(answer, '\n');
                if (nl) {
                        *nl = '\0';
                        *ret_answer = TAKE_PTR(answer);
                        return 0;
                }
                if (len == ANSWER_MAX - 1)
                        return -EMSGSIZE;
        }
}
