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
kernel = os.path.realpath(os.path.join(build, "guest", "vmlinux"))

accel = os.environ.get("MSB_ACCEL", "auto")
if accel == "auto":
    cpu = open("/proc/cpuinfo").read()
    accel = "kvm" if re.search(r"\b(vmx|svm)\b", cpu) and os.access("/dev/kvm", os.W_OK) else "tcg"
machine = "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=off"
qemu_accel = ["-accel", "kvm", "-cpu", "host"]
if accel == "tcg":
    machine += ",pit=on"
    qemu_accel = ["-accel", "tcg", "-cpu", "max"]
bare_cmd = ["qemu-system-x86_64", "-M", machine, *qemu_accel, "-m", "512", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "null",
            "-kernel", kernel, "-initrd", bare_initrd,
            "-append", "console=ttyS0 reboot=t panic=-1 quiet"]
env = {**os.environ, "MSB_ACCEL": accel}


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


bare, run, ready, guest = [], [], [], []
timed(bare_cmd)  # warm the page cache for both
timed([msb, "run", "-q", "base", "--", "true"])
for _ in range(runs):
    bare.append(timed(bare_cmd)[0])
    t, err = timed([msb, "--log-level", "info", "run", "-q", "base", "--", "true"])
    run.append(t)
    m = re.search(r"ready in (\d+) ms .*agent ready at (\d+) ms", err)
    if m:
        ready.append(int(m.group(1)) / 1000)
        guest.append(int(m.group(2)) / 1000)

med = statistics.median
msb_rss, qemu_rss = memory_per_sandbox()
print(f"boot benchmark: {runs} runs each, accelerator {accel}, 1 vCPU, 512 MiB")
print(f"  bare QEMU boot of the same kernel to /init   median {med(bare) * 1000:6.0f} ms")
print(f"  msb run base -- true (wall, all included)    median {med(run) * 1000:6.0f} ms")
if ready:
    print(f"  msb: start to core.ready                     median {med(ready) * 1000:6.0f} ms")
    print(f"  guest: kernel start to core.ready            median {med(guest) * 1000:6.0f} ms")
print(f"  ratio msb run / bare boot                    {med(run) / med(bare):.2f}x (target <= 1.3x)")
print(f"  host memory per sandbox: msb {msb_rss / 1024:.1f} MiB RSS, "
      f"QEMU {qemu_rss / 1024:.1f} MiB RSS")
