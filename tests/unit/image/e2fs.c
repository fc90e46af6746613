/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: fork/exec of e2fsprogs with stdout into a pipe and
 * stderr (banners) into /dev/null; the tools are looked up in /sbin then
 * /usr/sbin, where Debian installs them.
 */
#include "e2fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *tool(const char *name, char *buf, size_t size)
{
        snprintf(buf, size, "/sbin/%s", name);
        if (access(buf, X_OK) == 0)
                return buf;
        snprintf(buf, size, "/usr/sbin/%s", name);
        return buf;
}

/* Runs argv; returns the exit status (or -1) and, when out is given, stdout. */
static int run(char *const argv[], char **out)
{
        int pfd[2];
        pid_t pid;
        int status;
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (pipe2(pfd, O_CLOEXEC) < 0)
                abort();
        pid = fork();
        if (pid < 0)
                abort();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                dup2(pfd[1], 1);
                dup2(null, 2);
                execv(argv[0], argv);
                _exit(127);
        }
        close(pfd[1]);
        for (;;) {
                ssize_t k;

                if (cap - len < 65536) {
                        cap = cap ? cap * 2 : 131072;
                        buf = realloc(buf, cap + 1);
                        if (!buf)
                                abort();
                }
                k = read(pfd[0], buf + len, cap - len);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                len += (size_t)k;
        }
        close(pfd[0]);
        buf[len] = '\0';
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        abort();
        if (out)
                *out = buf;
        else
                free(buf);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int e2fs_fsck(const char *image)
{
        char t[64];
        char *argv[] = {(char *)tool("e2fsck", t, sizeof(t)), "-fn", (char *)image, NULL};

        return run(argv, NULL);
}

char *e2fs_debugfs(const char *image, const char *fmt, ...)
{
        char t[64], *req, *out;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&req, fmt, ap) < 0)
                abort();
        va_end(ap);
        char *argv[] = {(char *)tool("debugfs", t, sizeof(t)), "-R", req, (char *)image, NULL};
        run(argv, &out);
        free(req);
        return out;
}

long long e2fs_field(const char *stat, const char *field)
{
        char key[64];
        const char *p;

        snprintf(key, sizeof(key), "%s:", field);
        for (p = stat; (p = strstr(p, key)); p++)
                if (p == stat || p[-1] == ' ' || p[-1] == '\n')
                        return strtoll(p + strlen(key), NULL, strcmp(field, "Mode") == 0 ? 8 : 10);
        return -1;
}

int e2fs_dump(const char *image, const char *path, const char *host_path)
{
        char *out = e2fs_debugfs(image, "dump %s %s", path, host_path);
        struct stat st;

        free(out);
        return stat(host_path, &st);
}

char *e2fs_tmpdir(void)
{
        const char *base = getenv("TMPDIR");
        char *d;

        if (asprintf(&d, "%s/msb-image-test.XXXXXX", base && *base ? base : "/tmp") < 0)
                abort();
        if (!mkdtemp(d))
                abort();
        return d;
}

uint64_t e2fs_disk_usage(const char *path)
{
        struct stat st;

        if (stat(path, &st) < 0)
                return UINT64_MAX;
        return (uint64_t)st.st_blocks * 512;
}
