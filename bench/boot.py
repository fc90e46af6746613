# SPDX-License-Identifier: Apache-2.0
"""The measuring half of bench/boot.sh (see there)."""
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


def bare_commands():
    """QEMU exactly as msb starts it (taken from msb's debug log), with an
    initramfs whose /init exits at once instead of the agent. Two variants:
    with the same devices (disks, agent port, RNG) and without any. The
    first is the floor msb's own work is measured against; the second shows
    what the devices cost the kernel."""
    p = subprocess.run([msb, "--log-level", "debug", "run", "-q", "base", "--", "true"],
                       capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    m = re.search(r"qemu: (.*) -kernel (\S+) -initrd \S+ -append (.*?) (-chardev file,\S+) "
                  r"-serial chardev:console (.*)", p.stderr)
    if p.returncode != 0 or not m:
        sys.exit(f"bench: cannot learn msb's QEMU command line: {p.stderr.strip()}")
    append = " ".join(w for w in m.group(3).split() if not w.startswith("msb."))
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
        elif "node-name=disk1" in arg:
            arg = re.sub(r"file.filename=\S+", f"file.filename={upper}", arg)
        devices.append(arg)
    return base + devices, base


bare_cmd, bare_nodev_cmd = bare_commands()
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
    """RSS of msb and of its QEMU while a sandbox idles after boot."""
    p = subprocess.Popen([msb, "run", "-q", "base", "--", "sh", "-c", "echo up; sleep 30"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    p.stdout.readline()
    time.sleep(1)
    children = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
    msb_rss = rss_kib(p.pid)
    qemu_rss = sum(rss_kib(c) for c in children)
    p.terminate()
    p.wait()
    return msb_rss, qemu_rss


bare, nodev, run, ready, guest = [], [], [], [], []
timed(bare_cmd)  # warm the page cache for both
timed([msb, "run", "-q", "base", "--", "true"])
for _ in range(runs):
    bare.append(timed(bare_cmd)[0])
    nodev.append(timed(bare_nodev_cmd)[0])
    t, err = timed([msb, "--log-level", "info", "run", "-q", "base", "--", "true"])
    run.append(t)
    m = re.search(r"ready in (\d+) ms .*agent ready at (\d+) ms", err)
    if m:
        ready.append(int(m.group(1)) / 1000)
        guest.append(int(m.group(2)) / 1000)

med = statistics.median
msb_rss, qemu_rss = memory_per_sandbox()
print(f"boot benchmark: {runs} runs each, accelerator {accel}, 1 vCPU, 512 MiB")
print(f"  bare QEMU to /init, no devices               median {med(nodev) * 1000:6.0f} ms")
print(f"  bare QEMU to /init, msb's devices (baseline) median {med(bare) * 1000:6.0f} ms")
print(f"  msb run base -- true (wall, all included)    median {med(run) * 1000:6.0f} ms")
if ready:
    print(f"  msb: start to core.ready                     median {med(ready) * 1000:6.0f} ms")
    print(f"  guest: kernel start to core.ready            median {med(guest) * 1000:6.0f} ms")
print(f"  ratio msb run / baseline                     {med(run) / med(bare):.2f}x (target <= 1.3x)")
print(f"  ratio msb run / bare boot without devices    {med(run) / med(nodev):.2f}x")
print(f"  host memory per sandbox: msb {msb_rss / 1024:.1f} MiB RSS, "
      f"QEMU {qemu_rss / 1024:.1f} MiB RSS")
