/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Theory of operation: what msb-agentd does as PID 1, before and after the
 * protocol server runs.
 *
 * Boot, in the initramfs: mount devtmpfs/proc/sysfs, log to /dev/kmsg, read
 * msb.* from /proc/cmdline, set the wall clock (no RTC: msb.time plus the
 * boot time elapsed), find the disks by virtio serial (/sys/block/vd* /serial:
 * "msb-base" read-only, "msb-upper" writable), mount them under /msb, build
 * the overlay (upper/ and work/ on the upper disk, or on a tmpfs without one)
 * at /newroot, and move into it the way switch_root does (chdir, mount --move
 * . /, chroot .); the agent keeps running from the initramfs. In the new
 * root: /proc, /sys, /dev, /dev/pts (a private devpts instance), /dev/shm,
 * /sys/fs/cgroup, /run, the /dev/fd links, the hostname, the network (net.c:
 * lo, the NIC, /etc/hosts and /etc/resolv.conf), and the agent port (the
 * virtio port named msb.agent, opened with O_ASYNC so that host connects
 * raise SIGIO). A network the kernel refuses is fatal; an /etc file that
 * cannot be written (the image's business) is only logged.
 *
 * /tmp is not a tmpfs: it stays on the root file system (disk-backed by the
 * upper disk, as in a Docker container), because guest RAM is small; it is
 * only created (1777) when the image lacks it.
 *
 * Any boot failure is fatal and loud: one line at KERN_CRIT in the kernel
 * log (the host keeps the console), then a reboot, which ends QEMU (it runs
 * with -no-reboot and the kernel with reboot=t), so the host sees an exit
 * rather than a hang.
 *
 * Power-off: the server has already stopped every process. The root mount
 * is detached lazily, the agent steps back into the initramfs through a
 * descriptor kept from boot (fchdir + chroot), which drops the last use of
 * the overlay, so the upper ext4 can be unmounted cleanly (else remounted
 * read-only); then sync and reboot.
 */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/core/util.h"

#define BASE_DIR     "/msb/base"
#define UPPER_DIR    "/msb/upper"
#define NEWROOT      "/newroot"
#define PORT_NAME    "msb.agent"
#define PORT_WAIT_MS 10000
#define CMDLINE_MAX  16384
#define OVERLAY_OPTS "lowerdir=" BASE_DIR ",upperdir=" UPPER_DIR "/upper,workdir=" UPPER_DIR "/work"

static int kmsg_fd = -1;
static int old_root_fd = -1;

static void kmsg_write(int prio, const char *msg)
{
        char line[1200];
        int n = snprintf(line, sizeof(line), "<%d>msb-agentd: %s\n", prio, msg);

        if (n > 0)
                (void)!write(kmsg_fd >= 0 ? kmsg_fd : STDERR_FILENO, line,
                             MIN((size_t)n, sizeof(line) - 1));
}

static void kmsg_log(enum log_level level, const char *msg, void *userdata)
{
        static const int prio[] = {3, 4, 6, 7}; /* KERN_ERR, WARNING, INFO, DEBUG */

        kmsg_write(prio[level], msg);
}

void agent_init_fatal(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kmsg_write(2, msg); /* KERN_CRIT: reaches the console at any loglevel */
        kmsg_write(2, "fatal error; stopping the VM");
        sync();
        reboot(RB_AUTOBOOT);
        _exit(1); /* PID 1 exiting panics the kernel; panic=-1 reboots too */
}

/* mkdir -p target, then mount; fatal on failure. */
/* The boot timeline, at debug level (msb.log=debug): where the guest's
 * time between /init and ready goes. */
static void boot_step(const char *done)
{
        log_debug("boot: %s at %llu us", done, (unsigned long long)(now_ns(CLOCK_BOOTTIME) / 1000));
}

static void must_mount(const char *src, const char *target, const char *type, unsigned long flags,
                       const char *data)
{
        int r = mkdir_p(target, 0755);

        if (r >= 0 && mount(src, target, type, flags, data) < 0)
                r = negative_errno();
        if (r < 0)
                agent_init_fatal("mount %s on %s: %s", type, target, strerror(-r));
}

void agent_init_early(void)
{
        if (mkdir_p("/dev", 0755) < 0 ||
            (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") < 0 && errno != EBUSY))
                agent_init_fatal("mount devtmpfs on /dev: %s", strerror(errno));
        kmsg_fd = open("/dev/kmsg", O_WRONLY | O_NOCTTY | O_CLOEXEC);
        log_set_handler(kmsg_log, LOG_LEVEL_INFO, NULL);
        /* without /dev/console in the initramfs, 0..2 would be free: fill them */
        for (int fd = 0; fd < 3; fd++)
                if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR | O_NOCTTY) < 0)
                        agent_init_fatal("open /dev/null: %s", strerror(errno));
        reboot(RB_DISABLE_CAD); /* Ctrl-Alt-Del becomes SIGINT: an orderly stop */
        must_mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
        must_mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
}

static void set_clock(const struct timespec *host)
{
        struct timespec up, now;

        clock_gettime(CLOCK_BOOTTIME, &up);
        now.tv_sec = host->tv_sec + up.tv_sec;
        now.tv_nsec = host->tv_nsec + up.tv_nsec;
        if (now.tv_nsec >= 1000000000L) {
                now.tv_sec++;
                now.tv_nsec -= 1000000000L;
        }
        if (clock_settime(CLOCK_REALTIME, &now) < 0)
                log_warn("setting the clock: %s", strerror(errno));
}

static void strip_trailing_space(char *s)
{
        size_t n = strlen(s);

        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
                s[--n] = '\0';
}

/* Reads a one-line sysfs attribute of a directory entry into a string. */
static int read_attr(const char *dir, const char *entry, const char *attr, char **ret)
{
        _cleanup_free_ char *path = strdup_printf("%s/%s/%s", dir, entry, attr);
        int r;

        if (!path)
                return -ENOMEM;
        r = read_file(path, 256, ret, NULL);
        if (r < 0)
                return r;
        strip_trailing_space(*ret);
        return 0;
}

/* The /dev path of the entry of dir whose attr reads value, or -ENOENT. */
static int find_by_attr(const char *dir, const char *prefix, const char *attr, const char *value,
                        char **ret_dev)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int r = -ENOENT;

        if (!d)
                return negative_errno();
        while ((de = readdir(d))) {
                _cleanup_free_ char *v = NULL;

                if (!startswith(de->d_name, prefix) || read_attr(dir, de->d_name, attr, &v) < 0 ||
                    !streq(v, value))
                        continue;
                *ret_dev = strdup_printf("/dev/%s", de->d_name);
                r = *ret_dev ? 0 : -ENOMEM;
                break;
        }
        closedir(d);
        return r;
}

/* Mounts a block device: ext4 (with ext4_data) first, then every other
 * block file system the kernel knows. Returns the ext4 error if all fail. */
static int mount_block(const char *dev, const char *target, unsigned long flags,
                       const char *ext4_data)
{
        _cleanup_free_ char *list = NULL;
        int first;

        if (mount(dev, target, "ext4", flags, ext4_data) == 0)
                return 0;
        first = negative_errno();
        if (read_file("/proc/filesystems", 65536, &list, NULL) < 0)
                return first;
        for (char *line = list, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                if (startswith(line, "nodev"))
                        continue;
                line += strspn(line, " \t");
                if (*line && !streq(line, "ext4") && mount(dev, target, line, flags, NULL) == 0)
                        return 0;
        }
        return first;
}

/* upper/ and work/ on the upper file system; a new upper/ takes the mode and
 * owner of the base's root, since it becomes the root directory. */
static void prepare_upper(void)
{
        struct stat st;

        if (mkdir(UPPER_DIR "/upper", 0755) == 0) {
                if (stat(BASE_DIR, &st) < 0 || chmod(UPPER_DIR "/upper", st.st_mode & 07777) < 0 ||
                    chown(UPPER_DIR "/upper", st.st_uid, st.st_gid) < 0)
                        log_warn("upper root attributes: %s", strerror(errno));
        } else if (errno != EEXIST) {
                agent_init_fatal("mkdir " UPPER_DIR "/upper: %s", strerror(errno));
        }
        if (mkdir(UPPER_DIR "/work", 0700) < 0 && errno != EEXIST)
                agent_init_fatal("mkdir " UPPER_DIR "/work: %s", strerror(errno));
}

static void assemble_root(const struct agent_bootparams *bp)
{
        _cleanup_free_ char *base = NULL, *upper = NULL;
        int r;

        if (find_by_attr("/sys/block", "vd", "serial", "msb-base", &base) < 0)
                agent_init_fatal("no root disk: no virtio disk has serial msb-base");
        if (mkdir_p(NEWROOT, 0755) < 0)
                agent_init_fatal("mkdir " NEWROOT ": %s", strerror(errno));
        if (bp->root == AGENT_ROOT_DISK) {
                r = mount_block(base, NEWROOT, 0, NULL);
                if (r < 0)
                        agent_init_fatal("mount root disk %s: %s", base, strerror(-r));
                return;
        }
        if (mkdir_p(BASE_DIR, 0755) < 0 || mkdir_p(UPPER_DIR, 0755) < 0)
                agent_init_fatal("mkdir /msb: %s", strerror(errno));
        r = mount_block(base, BASE_DIR, MS_RDONLY, "noload");
        if (r < 0)
                agent_init_fatal("mount base disk %s: %s", base, strerror(-r));
        boot_step("base disk mounted");
        if (find_by_attr("/sys/block", "vd", "serial", "msb-upper", &upper) == 0) {
                r = mount_block(upper, UPPER_DIR, 0, "noinit_itable");
                if (r < 0)
                        agent_init_fatal("mount upper disk %s: %s", upper, strerror(-r));
                boot_step("upper disk mounted");
        } else {
                log_info("no upper disk: changes stay in memory");
                must_mount("tmpfs", UPPER_DIR, "tmpfs", 0, "mode=0755");
        }
        prepare_upper();
        must_mount("overlay", NEWROOT, "overlay", 0, OVERLAY_OPTS);
}

static void switch_root(void)
{
        old_root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (old_root_fd < 0)
                agent_init_fatal("open /: %s", strerror(errno));
        if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
            chdir("/") < 0)
                agent_init_fatal("switch to the new root: %s", strerror(errno));
}

static void mount_api_filesystems(void)
{
        static const struct {
                const char *type, *target, *data;
                unsigned long flags;
        } mounts[] = {
                {"proc", "/proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
                {"sysfs", "/sys", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
                {"devtmpfs", "/dev", "mode=0755", MS_NOSUID},
                {"devpts", "/dev/pts", "newinstance,ptmxmode=0666,mode=0620,gid=5",
                 MS_NOSUID | MS_NOEXEC},
                {"tmpfs", "/dev/shm", "mode=1777", MS_NOSUID | MS_NODEV},
                {"cgroup2", "/sys/fs/cgroup", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC},
                {"tmpfs", "/run", "mode=0755", MS_NOSUID | MS_NODEV},
        };
        static const char *const links[][2] = {
                {"/proc/self/fd", "/dev/fd"},
                {"/proc/self/fd/0", "/dev/stdin"},
                {"/proc/self/fd/1", "/dev/stdout"},
                {"/proc/self/fd/2", "/dev/stderr"},
        };

        for (size_t i = 0; i < ARRAY_SIZE(mounts); i++)
                must_mount(mounts[i].type, mounts[i].target, mounts[i].type, mounts[i].flags,
                           mounts[i].data);
        for (size_t i = 0; i < ARRAY_SIZE(links); i++)
                if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
                        log_warn("symlink %s: %s", links[i][1], strerror(errno));
        if (mkdir("/tmp", 01777) == 0)
                chmod("/tmp", 01777); /* mkdir applies the umask */
        else if (errno != EEXIST)
                log_warn("mkdir /tmp: %s", strerror(errno));
}

static void setup_hostname(const char *name)
{
        if (name[0] && sethostname(name, strlen(name)) < 0)
                log_warn("sethostname: %s", strerror(errno));
}

static void setup_network(const struct agent_bootparams *bp)
{
        char err[256] = "";
        int r;

        r = agent_net_configure(&bp->net, err, sizeof(err));
        if (r < 0)
                agent_init_fatal("network: %s: %s", err, strerror(-r));
        boot_step("network up");
        r = agent_net_write_etc(bp, "/etc", err, sizeof(err));
        if (r < 0)
                log_error("network: %s: %s", err, strerror(-r));
}

/* Virtio ports appear through control messages after the device probe, so
 * the port may come a little after init starts: poll for it, bounded. */
static int open_port(void)
{
        uint64_t deadline = now_ns(CLOCK_MONOTONIC) + PORT_WAIT_MS * 1000000ull;

        for (;;) {
                _cleanup_free_ char *dev = NULL;
                const struct timespec pause = {.tv_nsec = 5 * 1000000L};

                if (find_by_attr("/sys/class/virtio-ports", "vport", "name", PORT_NAME, &dev) ==
                    0) {
                        int fd = open(dev, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

                        if (fd >= 0) {
                                if (fcntl(fd, F_SETOWN, getpid()) < 0 ||
                                    fcntl(fd, F_SETFL, O_RDWR | O_NONBLOCK | O_ASYNC) < 0)
                                        agent_init_fatal("agent port %s: fcntl: %s", dev,
                                                         strerror(errno));
                                log_debug("agent port: %s", dev);
                                return fd;
                        }
                        if (errno != ENOENT)
                                agent_init_fatal("open agent port %s: %s", dev, strerror(errno));
                }
                if (now_ns(CLOCK_MONOTONIC) > deadline)
                        agent_init_fatal("no virtio port named " PORT_NAME);
                nanosleep(&pause, NULL);
        }
}

int agent_init_boot(uint64_t boot_ns)
{
        _cleanup_free_ char *cmdline = NULL;
        struct agent_bootparams bp;
        const char *bad = "";
        int r;

        r = read_file("/proc/cmdline", CMDLINE_MAX, &cmdline, NULL);
        if (r < 0)
                agent_init_fatal("read /proc/cmdline: %s", strerror(-r));
        if (agent_bootparams_parse(cmdline, &bp, &bad) < 0)
                agent_init_fatal("bad boot parameter: %.*s", (int)strcspn(bad, " \n"), bad);
        log_set_handler(kmsg_log, bp.log_level, NULL);
        log_debug("boot: /init started at %llu us", (unsigned long long)(boot_ns / 1000));
        boot_step("early mounts");
        if (bp.has_time)
                set_clock(&bp.time);
        assemble_root(&bp);
        boot_step("root assembled");
        switch_root();
        mount_api_filesystems();
        setup_hostname(bp.hostname);
        boot_step("in the new root");
        setup_network(&bp);
        boot_step("network");
        r = open_port();
        boot_step("agent port");
        return r;
}

static void release_disk(const char *dir)
{
        if (umount2(dir, 0) == 0 || errno == EINVAL || errno == ENOENT)
                return;
        log_warn("unmount %s: %s; remounting it read-only", dir, strerror(errno));
        if (mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
                log_error("remount %s read-only: %s", dir, strerror(errno));
}

void agent_init_poweroff(void)
{
        sync();
        if (umount2("/", MNT_DETACH) < 0)
                log_warn("detach the root: %s", strerror(errno));
        if (fchdir(old_root_fd) < 0 || chroot(".") < 0 || chdir("/") < 0) {
                log_error("back to the initramfs: %s", strerror(errno));
        } else {
                release_disk(UPPER_DIR);
                release_disk(BASE_DIR);
        }
        sync();
        log_info("power off");
        reboot(RB_AUTOBOOT);
        agent_init_fatal("reboot: %s", strerror(errno));
}
