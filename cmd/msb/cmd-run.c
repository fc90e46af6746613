/* SPDX-License-Identifier: Apache-2.0 */
/*
 * msb run: boot a fresh sandbox, run one command attached to the terminal,
 * remove the sandbox, and exit with the command's exit code.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "lib/core/util.h"

static void run_usage(FILE *f)
{
        fprintf(f,
                "Usage: msb run [OPTIONS] IMAGE [--] [COMMAND [ARG...]]\n"
                "\n"
                "Run a command in a new sandbox, stream its output and exit with its exit\n"
                "code. The sandbox is removed when the command ends.\n"
                "\n"
                "IMAGE is 'base' (the built-in busybox image) or the path of a directory\n"
                "holding a root filesystem. Without COMMAND, runs /bin/sh.\n"
                "\n"
                "Options:\n"
                "  -n, --name NAME            Name of the sandbox (default: generated)\n"
                "  -e, --env KEY=VALUE        Set an environment variable (KEY alone: copy it\n"
                "                             from this environment)\n"
                "  -w, --workdir DIR          Working directory inside the sandbox\n"
                "  -u, --user USER            Run as name, uid, uid:gid or name:group\n"
                "  -t, --tty                  Allocate a terminal (shells, interactive programs)\n"
                "  -i, --interactive          Forward stdin even when it is a terminal\n"
                "  -m, --memory SIZE          Guest memory (default 512M)\n"
                "  -c, --cpus N               Number of vCPUs (default 1)\n"
                "      --root-disk SIZE       Size of the writable root layer (default 4G)\n"
                "      --timeout DURATION     Kill the command after DURATION (exit code 124)\n"
                "      --rlimit NAME=SOFT[:HARD]\n"
                "                             Set a resource limit, e.g. nofile=1024\n"
                "      --accel auto|kvm|tcg   Accelerator (default: auto, or $MSB_ACCEL)\n"
                "      --boot-timeout DURATION\n"
                "                             How long to wait for the guest to boot\n"
                "  -q, --quiet                Print nothing but the command's output\n"
                "  -h, --help                 Show this help\n"
                "\n"
                "Exit status: the command's own; 126 cannot execute, 127 not found, 128+N\n"
                "killed by signal N, 124 timed out, 116-125 msb failed (see docs/cli.md).\n"
                "\n"
                "Examples:\n"
                "  msb run base -- uname -a\n"
                "  echo hello | msb run base -- tr a-z A-Z\n"
                "  msb run -t -m 1G base\n");
}

struct run_args {
        msb_sandbox_config *sb_cfg;
        msb_exec_config *ex_cfg;
        bool tty;
        bool interactive;
        const char *timeout_text;
};

static int set_env(msb_exec_config *cfg, const char *arg)
{
        if (!strchr(arg, '=')) {
                const char *value = getenv(arg);
                _cleanup_free_ char *kv = NULL;

                if (!value)
                        return 0; /* like docker: an unset variable is left out */
                kv = strdup_printf("%s=%s", arg, value);
                if (!kv)
                        return -1;
                return msb_exec_config_add_env(cfg, kv);
        }
        return msb_exec_config_add_env(cfg, arg);
}

/* Parses the options into a; returns optind of IMAGE, or -1 after printing
 * an error, or 0 when help was printed. */
static int parse_options(int argc, char **argv, struct run_args *a)
{
        enum {
                OPT_ROOT_DISK = 256,
                OPT_TIMEOUT,
                OPT_RLIMIT,
                OPT_ACCEL,
                OPT_BOOT_TIMEOUT,
        };
        static const struct option options[] = {
                {"name", required_argument, NULL, 'n'},
                {"env", required_argument, NULL, 'e'},
                {"workdir", required_argument, NULL, 'w'},
                {"user", required_argument, NULL, 'u'},
                {"tty", no_argument, NULL, 't'},
                {"interactive", no_argument, NULL, 'i'},
                {"memory", required_argument, NULL, 'm'},
                {"cpus", required_argument, NULL, 'c'},
                {"root-disk", required_argument, NULL, OPT_ROOT_DISK},
                {"timeout", required_argument, NULL, OPT_TIMEOUT},
                {"rlimit", required_argument, NULL, OPT_RLIMIT},
                {"accel", required_argument, NULL, OPT_ACCEL},
                {"boot-timeout", required_argument, NULL, OPT_BOOT_TIMEOUT},
                {"quiet", no_argument, NULL, 'q'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        uint64_t bytes, ms;
        uint32_t n;
        int c, r = 0;

        while ((c = getopt_long(argc, argv, "+n:e:w:u:tim:c:qh", options, NULL)) != -1) {
                switch (c) {
                case 'n':
                        r = msb_sandbox_config_set_name(a->sb_cfg, optarg);
                        break;
                case 'e':
                        r = set_env(a->ex_cfg, optarg);
                        break;
                case 'w':
                        r = msb_exec_config_set_cwd(a->ex_cfg, optarg);
                        break;
                case 'u':
                        r = msb_exec_config_set_user(a->ex_cfg, optarg);
                        break;
                case 't':
                        a->tty = true;
                        break;
                case 'i':
                        a->interactive = true;
                        break;
                case 'm':
                        if (cli_parse_size("--memory", optarg, &bytes) < 0)
                                return -1;
                        if (!strpbrk(optarg, "KkMmGgTtPpBb"))
                                bytes <<= 20; /* a bare number means MiB */
                        r = msb_sandbox_config_set_memory_mib(
                                a->sb_cfg, (uint32_t)MIN(bytes >> 20, (uint64_t)UINT32_MAX));
                        break;
                case 'c':
                        if (cli_parse_uint("--cpus", optarg, 1, 64, &n) < 0)
                                return -1;
                        r = msb_sandbox_config_set_cpus(a->sb_cfg, n);
                        break;
                case OPT_ROOT_DISK:
                        if (cli_parse_size("--root-disk", optarg, &bytes) < 0)
                                return -1;
                        r = msb_sandbox_config_set_root_disk_size(a->sb_cfg, bytes);
                        break;
                case OPT_TIMEOUT:
                        if (cli_parse_duration("--timeout", optarg, &ms) < 0)
                                return -1;
                        if (ms == 0) {
                                cli_error("--timeout must be more than 0");
                                return -1;
                        }
                        a->timeout_text = optarg;
                        r = msb_exec_config_set_timeout_ms(a->ex_cfg, ms);
                        break;
                case OPT_RLIMIT:
                        r = msb_exec_config_add_rlimit(a->ex_cfg, optarg);
                        break;
                case OPT_ACCEL:
                        r = msb_sandbox_config_set_accel(a->sb_cfg, optarg);
                        break;
                case OPT_BOOT_TIMEOUT:
                        if (cli_parse_duration("--boot-timeout", optarg, &ms) < 0)
                                return -1;
                        r = msb_sandbox_config_set_boot_timeout_ms(a->sb_cfg, ms);
                        break;
                case 'q':
                        cli_quiet = true;
                        break;
                case 'h':
                        run_usage(stdout);
                        return 0;
                default:
                        fprintf(stderr, "Run 'msb run --help' for usage.\n");
                        return -1;
                }
                if (r < 0) {
                        cli_api_error();
                        return -1;
                }
        }
        if (optind >= argc) {
                cli_error("run needs an IMAGE: 'base' or a root filesystem directory");
                fprintf(stderr, "Run 'msb run --help' for usage.\n");
                return -1;
        }
        return optind;
}

static int set_command(struct run_args *a, int argc, char **argv, int image_index)
{
        static const char *const default_cmd[] = {"/bin/sh"};
        int first = image_index + 1;
        uint16_t rows = 24, cols = 80;
        struct winsize ws;
        bool stdin_tty = isatty(STDIN_FILENO);

        if (first < argc && streq(argv[first], "--"))
                first++;
        if (first < argc) {
                if (msb_exec_config_set_argv(a->ex_cfg, (size_t)(argc - first),
                                             (const char *const *)argv + first) < 0)
                        return -1;
        } else if (msb_exec_config_set_argv(a->ex_cfg, 1, default_cmd) < 0) {
                return -1;
        }
        if (a->tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
                rows = ws.ws_row;
                cols = ws.ws_col;
        }
        msb_exec_config_set_tty(a->ex_cfg, a->tty, rows, cols);
        /* Like docker: a terminal on stdin is only read with -t or -i; a pipe
         * or file always is. */
        a->interactive = a->interactive || a->tty || !stdin_tty;
        msb_exec_config_set_stdin(a->ex_cfg, a->interactive);
        return 0;
}

int cmd_run(int argc, char **argv)
{
        struct run_args a = {0};
        struct cli_signals sigs = {-1, -1};
        msb_sandbox *sb = NULL;
        msb_exec *ex = NULL;
        msb_boot_info info;
        int idx, code;

        a.sb_cfg = msb_sandbox_config_new();
        a.ex_cfg = msb_exec_config_new();
        if (!a.sb_cfg || !a.ex_cfg) {
                cli_error("out of memory");
                code = EXIT_SYSTEM;
                goto out;
        }
        idx = parse_options(argc, argv, &a);
        if (idx <= 0) {
                code = idx == 0 ? 0 : EXIT_USAGE;
                goto out;
        }
        if (msb_sandbox_config_set_image(a.sb_cfg, argv[idx]) < 0 ||
            set_command(&a, argc, argv, idx) < 0) {
                code = cli_api_error();
                goto out;
        }
        if (cli_signals_open(&sigs) < 0) {
                code = EXIT_SYSTEM;
                goto out;
        }
        msb_sandbox_config_set_cancel_fd(a.sb_cfg, sigs.stop_fd);
        if (msb_sandbox_create(a.sb_cfg, &sb) < 0) {
                code = cli_api_error();
                goto out;
        }
        msb_sandbox_boot_info(sb, &info);
        if (!cli_quiet && *info.accel_notice)
                cli_error("warning: %s", info.accel_notice);
        if (msb_exec_start(sb, a.ex_cfg, &ex) < 0) {
                code = cli_api_error();
                goto out;
        }
        code = cli_attach(ex, &(struct cli_attach_opts){
                                      .tty = a.tty,
                                      .forward_stdin = a.interactive,
                                      .timeout_text = a.timeout_text,
                                      .signals = &sigs,
                              });
out:
        msb_exec_free(ex);
        msb_sandbox_destroy(sb);
        msb_exec_config_free(a.ex_cfg);
        msb_sandbox_config_free(a.sb_cfg);
        cli_signals_close(&sigs);
        return code;
}
