/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb registry login|logout|ls: credentials for private registries, kept in
 * $MSB_HOME/auth.json (mode 0600). The password is read from stdin (without
 * echo on a terminal), never from the command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

#define PASSWORD_MAX 4096

static void registry_usage(FILE *f)
{
        fprintf(f, "Usage: msb registry COMMAND [OPTIONS] [ARG...]\n"
                   "\n"
                   "Manage registry credentials (used by pull and run).\n"
                   "\n"
                   "Commands:\n"
                   "  login REGISTRY -u USER   Store credentials (password read from stdin)\n"
                   "  logout REGISTRY          Forget them\n"
                   "  ls                       List registries with stored credentials\n"
                   "\n"
                   "Examples:\n"
                   "  echo \"$TOKEN\" | msb registry login ghcr.io -u me\n"
                   "  msb registry login docker.io -u me     (asks for the password)\n");
}

/* Reads one line from stdin into buf: without echo when stdin is a
 * terminal. 0, or -1 after printing an error. */
static int read_password(char *buf, size_t size)
{
        struct termios old, quiet;
        bool tty = isatty(STDIN_FILENO) == 1;
        size_t len;

        if (tty) {
                fprintf(stderr, "Password: ");
                fflush(stderr);
                if (tcgetattr(STDIN_FILENO, &old) == 0) {
                        quiet = old;
                        quiet.c_lflag &= ~(tcflag_t)ECHO;
                        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
                } else {
                        tty = false;
                }
        }
        if (!fgets(buf, (int)size, stdin))
                buf[0] = '\0';
        if (tty) {
                tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
                fputc('\n', stderr);
        }
        len = strlen(buf);
        if (len == size - 1 && buf[len - 1] != '\n') {
                cli_error("the password is too long");
                return -1;
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
                buf[--len] = '\0';
        if (len == 0) {
                cli_error("no password on stdin");
                return -1;
        }
        return 0;
}

static int registry_login(int argc, char **argv)
{
        enum { OPT_INSECURE = 256, OPT_CA_CERTS, OPT_NO_VERIFY, OPT_PASSWORD_STDIN };
        static const struct option options[] = {
                {"username", required_argument, NULL, 'u'},
                {"password-stdin", no_argument, NULL, OPT_PASSWORD_STDIN},
                {"insecure", no_argument, NULL, OPT_INSECURE},
                {"ca-certs", required_argument, NULL, OPT_CA_CERTS},
                {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        msb_pull_options *o = msb_pull_options_new();
        const char *user = NULL;
        bool verify = true;
        char password[PASSWORD_MAX];
        int c, code = 0;

        if (!o) {
                cli_error("out of memory");
                return EXIT_SYSTEM;
        }
        optind = 0;
        while ((c = getopt_long(argc, argv, "u:h", options, NULL)) != -1) {
                switch (c) {
                case 'u':
                        user = optarg;
                        break;
                case OPT_PASSWORD_STDIN:
                        break; /* always: the password never comes from the command line */
                case OPT_INSECURE:
                        msb_pull_options_set_insecure(o, 1);
                        break;
                case OPT_CA_CERTS:
                        if (msb_pull_options_set_ca_certs(o, optarg) < 0)
                                code = cli_api_error();
                        break;
                case OPT_NO_VERIFY:
                        verify = false;
                        break;
                case 'h':
                        printf("Usage: msb registry login REGISTRY -u USER [OPTIONS]\n"
                               "\n"
                               "Check the credentials against REGISTRY and store them. The\n"
                               "password (or token) is read from stdin.\n"
                               "\n"
                               "Options:\n"
                               "  -u, --username USER  The user name (required)\n"
                               "      --password-stdin Accepted for Docker compatibility (the\n"
                               "                       password is always read from stdin)\n"
                               "      --insecure       Allow plain HTTP and unverified TLS\n"
                               "      --ca-certs FILE  Also trust the CAs in this PEM file\n"
                               "      --no-verify      Store without checking\n"
                               "  -h, --help           Show this help\n");
                        goto out;
                default:
                        fprintf(stderr, "Run 'msb registry login --help' for usage.\n");
                        code = EXIT_USAGE;
                }
                if (code)
                        goto out;
        }
        if (optind != argc - 1 || !user) {
                cli_error("registry login needs a REGISTRY and -u USER");
                code = EXIT_USAGE;
                goto out;
        }
        if (read_password(password, sizeof(password)) < 0) {
                code = EXIT_USAGE;
                goto out;
        }
        if (msb_registry_login(argv[optind], user, password, verify ? o : NULL) < 0)
                code = cli_api_error();
        else
                printf("Login succeeded: %s\n", argv[optind]);
        explicit_bzero(password, sizeof(password));
out:
        msb_pull_options_free(o);
        return code;
}

static int registry_logout(int argc, char **argv)
{
        if (argc != 2 || argv[1][0] == '-') {
                if (argc == 2 && (streq(argv[1], "-h") || streq(argv[1], "--help"))) {
                        printf("Usage: msb registry logout REGISTRY\n");
                        return 0;
                }
                cli_error("registry logout needs a REGISTRY");
                return EXIT_USAGE;
        }
        if (msb_registry_logout(argv[1]) < 0)
                return cli_api_error();
        printf("Removed credentials for %s\n", argv[1]);
        return 0;
}

static int registry_ls(int argc, char **argv)
{
        char **regs = NULL, **users = NULL;
        size_t n = 0;

        if (argc > 1) {
                if (streq(argv[1], "-h") || streq(argv[1], "--help")) {
                        printf("Usage: msb registry ls\n");
                        return 0;
                }
                cli_error("registry ls takes no arguments");
                return EXIT_USAGE;
        }
        if (msb_registry_list(&regs, &users, &n) < 0)
                return cli_api_error();
        printf("%-40s %s\n", "REGISTRY", "USER");
        for (size_t i = 0; i < n; i++)
                printf("%-40s %s\n", regs[i], users[i]);
        msb_strv_free(regs);
        msb_strv_free(users);
        return 0;
}

int cmd_registry(int argc, char **argv)
{
        if (argc < 2 || streq(argv[1], "-h") || streq(argv[1], "--help")) {
                registry_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? EXIT_USAGE : 0;
        }
        if (streq(argv[1], "login"))
                return registry_login(argc - 1, argv + 1);
        if (streq(argv[1], "logout"))
                return registry_logout(argc - 1, argv + 1);
        if (streq(argv[1], "ls") || streq(argv[1], "list"))
                return registry_ls(argc - 1, argv + 1);
        cli_error("unknown registry command '%s'", argv[1]);
        fprintf(stderr, "Run 'msb registry --help' for usage.\n");
        return EXIT_USAGE;
}
