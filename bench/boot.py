# SPDX-License-Identifier: Apache-2.0
"""The measuring half of bench/boot.sh (see there)."""
import json
import os
import re
import statistics
import subprocess
import sys
import time

build, bare_initrd, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
msb = os.path.join(build, "cmd", "msb", "msb")

accel = os.environ.get("MSB_ACCEL", "auto")
env = {**os.environ, "MSB_ACCEL": accel}


def qemu_command_line():
    """QEMU's command line as msb's supervisor runs it: from the debug log of
    a sandbox created for the purpose."""
    name = "boot-bench-probe"
    subprocess.run([msb, "rm", "-f", "-q", name], capture_output=True, env=env)
    p = subprocess.run([msb, "create", "-q", "--name", name, "base"], capture_output=True,
                       text=True, env={**env, "MSB_LOG": "debug"}, stdin=subprocess.DEVNULL)
    log = os.path.join(os.environ["MSB_HOME"], "sandboxes", name, "logs", "system.log")
    line = None
    if p.returncode == 0:
        for entry in map(json.loads, open(log)):
            if entry.get("message", "").startswith("qemu: "):
                line = entry["message"][len("qemu: "):]
    subprocess.run([msb, "rm", "-f", "-q", name], capture_output=True, env=env)
    if not line:
        sys.exit(f"bench: cannot learn msb's QEMU command line: {p.stderr.strip()}")
    return line


# The kernel parameters msb adds under TCG to skip the kernel's timer
# calibrations (lib/vm/argv.c); a plain QEMU boot goes without them.
TCG_TUNING = ("tsc_early_khz=", "tsc=reliable", "no_timer_check", "noreplace-smp", "noapictimer")


def bare_commands():
    """QEMU exactly as msb starts it, with an initramfs whose /init exits at
    once instead of the agent. Three variants: with the same devices (disks,
    agent port, NIC, RNG) and kernel parameters, the floor msb's own work is
    measured against; the same without msb's TCG timing parameters, a plain
    boot of this kernel; and without any device, what the devices cost the
    kernel."""
    m = re.search(r"(.*) -kernel (\S+) -initrd \S+ -append (.*?) (-chardev socket,\S+) "
                  r"-serial chardev:console (.*)", qemu_command_line())
    if not m:
        sys.exit("bench: msb's QEMU command line has an unexpected shape")
    append = " ".join(w for w in m.group(3).split() if not w.startswith("msb."))
    plain = " ".join(w for w in append.split() if not w.startswith(TCG_TUNING))
    base = [*m.group(1).split(), "-kernel", m.group(2), "-initrd", bare_initrd,
            "-append", append, "-chardev", "file,id=console,path=/dev/null",
            "-serial", "chardev:console"]
    devices = []
    upper = os.path.join(os.path.dirname(bare_initrd), "upper.raw")
    with open(upper, "wb") as f:
        f.truncate(4 << 30)
    for arg in m.group(5).split():
        if arg.startswith("socket,id=agent"):
            arg = "null,id=agent"
        elif arg.startswith("stream,id=net0"):
            arg = "hubport,id=net0,hubid=0"  # the same NIC, its frames going nowhere
        elif "node-name=disk1" in arg:
            arg = re.sub(r"file.filename=\S+", f"file.filename={upper}", arg)
        devices.append(arg)
    plain_cmd = base + devices
    plain_cmd[plain_cmd.index("-append") + 1] = plain
    return base + devices, plain_cmd, base


bare_cmd, bare_plain_cmd, bare_nodev_cmd = bare_commands()
accel = "tcg" if "tcg" in " ".join(bare_cmd) else "kvm"



def timed(cmd):
    t = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:3])} failed ({p.returncode}): {p.stderr.strip()}")
    return time.monotonic() - t, p.stderr


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def memory_per_sandbox():
    """RSS of a sandbox's supervisor and of its QEMU while it idles after boot."""
    name = "boot-bench-mem"
    subprocess.run([msb, "create", "-q", "--name", name, "base"], check=True,
                   capture_output=True, env=env, stdin=subprocess.DEVNULL)
    time.sleep(1)
    sup = qemu = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"msb-sandbox") and name.encode() in args:
            sup = int(pid)
    if sup:
        children = open(f"/proc/{sup}/task/{sup}/children").read().split()
        qemu = sum(rss_kib(c) for c in children)
        sup = rss_kib(sup)
    subprocess.run([msb, "rm", "-f", "-q", name], capture_output=True, env=env)
    return sup, qemu


bare, plain, nodev, run, ready, guest = [], [], [], [], [], []
timed(bare_cmd)  # warm the page cache for both
timed([msb, "run", "-q", "base", "--", "true"])
for _ in range(runs):
    bare.append(timed(bare_cmd)[0])
    plain.append(timed(bare_plain_cmd)[0])
    nodev.append(timed(bare_nodev_cmd)[0])
    t, err = timed([msb, "--log-level", "info", "run", "-q", "base", "--", "true"])
    run.append(t)
    m = re.search(r"ready in (\d+) ms .*agent ready at (\d+) ms", err)
    if m:
        ready.append(int(m.group(1)) / 1000)
        guest.append(int(m.group(2)) / 1000)

med = statistics.median
sup_rss, qemu_rss = memory_per_sandbox()
print(f"boot benchmark: {runs} runs each, accelerator {accel}, 1 vCPU, 512 MiB")
print(f"  bare QEMU to /init, msb's devices and kernel parameters (baseline) "
      f"median {med(bare) * 1000:6.0f} ms")
if accel == "tcg":
    print(f"  bare QEMU to /init, msb's devices, plain kernel parameters        "
          f"median {med(plain) * 1000:6.0f} ms")
print(f"  bare QEMU to /init, no devices                                    "
      f"median {med(nodev) * 1000:6.0f} ms")
print(f"  msb run base -- true (wall, all included)                         "
      f"median {med(run) * 1000:6.0f} ms")
if ready:
    print(f"  msb: start to core.ready                                          "
          f"median {med(ready) * 1000:6.0f} ms")
    print(f"  guest: kernel start to core.ready                                 "
          f"median {med(guest) * 1000:6.0f} ms")
print(f"  msb's own work (msb run - baseline)                               "
      f"       {(med(run) - med(bare)) * 1000:6.0f} ms")
print(f"  ratio msb run / baseline                      {med(run) / med(bare):.2f}x "
      f"(target <= 1.3x)")
if accel == "tcg":
    print(f"  ratio msb run / plain bare boot               {med(run) / med(plain):.2f}x")
print(f"  ratio msb run / bare boot without devices     {med(run) / med(nodev):.2f}x")
print(f"  host memory per idle sandbox: supervisor {sup_rss / 1024:.1f} MiB RSS, "
      f"QEMU {qemu_rss / 1024:.1f} MiB RSS")
