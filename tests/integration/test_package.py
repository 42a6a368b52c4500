#!/usr/bin/env python3
"""The Debian packages, built, installed, used and purged on this machine (TAP).

usage: test_package.py SOURCE_ROOT PROJECT_VERSION

Copies the source tree to a temporary folder and builds the binary packages
there with `dpkg-buildpackage -b` (DEB_BUILD_OPTIONS="nocheck parallel=2":
no tests, the suite runs them), runs lintian on them, installs vvd and
libvv-dev with `dpkg -i`, and checks the installed tree: postinst started
nothing, the systemd unit names /usr/bin/vvd and is not enabled;
`/usr/bin/vvd serve --data-dir DATA` (no other flag: its address comes from
VVD_LISTEN, a free loopback port, so that a daemon already on 8470 is left
alone) answers /health with this version and the OpenBLAS kernel this CPU
needs, serves the dashboard and uPlot; a lasso job runs through
/usr/bin/vvctl (files uploaded as blobs) and through `/usr/bin/vvd run`; a
program builds against libvv with pkg-config.  Then it purges both packages
and checks that nothing of them is left but DATA.

Needs root (or sudo without a password) for dpkg.  Exits 77 (skip) only when
dpkg-buildpackage is missing; refuses to run where vvd is already installed
(it would replace and purge it).  Whatever fails, the packages are purged and
the temporary folder removed before it exits.
"""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SRC, VERSION = os.path.abspath(sys.argv[1]), sys.argv[2]
PACKAGES = ["vvd", "libvv-dev"]
# Where the package's files are looked for after the purge (names with vvd).
SCAN_ROOTS = ["/etc", "/usr", "/lib", "/var/lib", "/opt", "/run/systemd"]

count = 0
failures = 0


def ok(cond, desc, diag=None):
    global count, failures
    count += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", count, desc.replace("#", "No.")), flush=True)
    if not cond:
        failures += 1
        if diag:
            for line in str(diag).splitlines()[-40:]:
                print("#   " + line, flush=True)
    return bool(cond)


def skip(desc, why):
    global count
    count += 1
    print("ok %d - %s # SKIP %s" % (count, desc, why), flush=True)


def comment(text):
    for line in str(text).splitlines():
        print("# " + line, flush=True)


def sh(cmd, timeout, stderr=subprocess.STDOUT, **kw):
    """Runs cmd; returns (exit status, stdout + stderr, or stdout alone when
    stderr is another file).  A timeout is exit 124."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True,
                           timeout=timeout, **kw)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out + "\n(timed out after %d s)" % timeout


def wait_for(pred, timeout, step=0.1):
    """Polls pred until it returns a true value or timeout seconds pass."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


SUDO = [] if os.geteuid() == 0 else ["sudo", "-n"]
PRE_PROCESSES = set()  # /usr/bin/vvd processes that were running before the test


def installed(pkg):
    """Whether dpkg knows pkg as anything but not installed (config files count)."""
    rc, out = sh(["dpkg-query", "-W", "-f=${Status}", pkg], 30)
    return rc == 0 and out.split()[-1:] not in (["not-installed"], [])


def vvd_processes():
    """Pids of processes running /usr/bin/vvd (another daemon built elsewhere is not ours)."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink("/proc/%s/exe" % p) == "/usr/bin/vvd":
                    pids.append(int(p))
            except OSError:
                pass
    return pids


def scan_names():
    """Paths under SCAN_ROOTS whose name contains vvd."""
    found = set()
    for root in SCAN_ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            if dirpath.startswith("/proc"):
                continue
            for n in dirnames + filenames:
                if "vvd" in n or n.startswith("libvv") or n == "vv.pc" or n == "vv":
                    found.add(os.path.join(dirpath, n))
    return found


def copy_source(dst):
    """The checkout without its build folders, .git and the browser tests' npm tree."""
    debian_outputs = {"tmp", "vvd", "libvv-dev", "vvd-dbgsym", ".debhelper", "files",
                      "debhelper-build-stamp"}

    def ignore(d, names):
        rel = os.path.relpath(d, SRC)
        out = set()
        for n in names:
            if rel == "." and (n == ".git" or n.startswith("build") or n.startswith("obj-") or
                               n in ("vvd-data", "vvd-out")):
                out.add(n)
            elif rel == "debian" and (n in debian_outputs or n.endswith(".substvars") or
                                      n.endswith(".log")):
                out.add(n)
            elif rel == "tests/web" and n == "node_modules":
                out.add(n)
            elif rel == "bench" and n == "out":
                out.add(n)
            elif n == "__pycache__":
                out.add(n)
        return out

    shutil.copytree(SRC, dst, symlinks=True, ignore=ignore)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http(url, timeout=10):
    """(status, headers, body bytes) of a GET; status 0 when unreachable."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
    except OSError:
        return 0, {}, b""


def wanted_kernel():
    """The OPENBLAS_CORETYPE vvd chooses for this CPU (core/cpu.c), or None."""
    flags = set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def npy_f32(path, rows):
    """A float32 C-order .npy of a list of equal-length rows."""
    import struct
    n, k = len(rows), len(rows[0])
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }" % (n, k)
    header += " " * (63 - (len(header) + 10) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        for r in rows:
            f.write(struct.pack("<%df" % k, *r))


LIBVV_PROGRAM = r"""
#include <stdio.h>
#include <string.h>
#include "vv/blas.h"
#include "vv/cpu.h"
#include "vv/version.h"

VV_BLAS_PREINIT;

int main(void)
{
    double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {0};
    vv_dgemm(0, 0, 2, 2, 2, 1.0, a, 2, b, 2, 0.0, c, 2);
    int good = c[0] == 19 && c[1] == 22 && c[2] == 43 && c[3] == 50;
    printf("%s %s %s\n", VV_VERSION, vv_blas_corename(), good ? "dgemm-ok" : "dgemm-wrong");
    return good ? 0 : 1;
}
"""


def build(tmp):
    src = os.path.join(tmp, "vvd-%s" % VERSION)
    copy_source(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck parallel=2", LC_ALL="C.UTF-8")
    t0 = time.monotonic()
    rc, out = sh(["dpkg-buildpackage", "-b", "-us", "-uc"], 900, cwd=src, env=env)
    comment("dpkg-buildpackage -b: exit %d in %.0f s" % (rc, time.monotonic() - t0))
    debs = {p: os.path.join(tmp, "%s_%s_%s.deb" % (p, VERSION, arch())) for p in PACKAGES}
    ok(rc == 0 and all(os.path.exists(d) for d in debs.values()),
       "dpkg-buildpackage -b builds %s" % " and ".join(PACKAGES), out)
    if rc != 0:
        return None, None
    rc, cl = sh(["dpkg-parsechangelog", "-S", "Version"], 30, cwd=src)
    ok(rc == 0 and cl.strip() == VERSION,
       "debian/changelog's version is meson's project version (%s)" % VERSION, cl)
    return debs, src


def arch():
    rc, out = sh(["dpkg", "--print-architecture"], 30)
    return out.strip()


def lintian(tmp):
    if not shutil.which("lintian"):
        skip("lintian reports no errors", "lintian is not installed")
        return
    changes = os.path.join(tmp, "vvd_%s_%s.changes" % (VERSION, arch()))
    t0 = time.monotonic()
    rc, out = sh(["lintian", "--fail-on", "error", "--info", changes], 600)
    comment("lintian %s (%.0f s, exit %d):" % (os.path.basename(changes), time.monotonic() - t0, rc))
    comment("\n".join(l for l in out.splitlines() if l.strip()
                      and "running with root privileges" not in l) or "(nothing to report)")
    errors = [l for l in out.splitlines() if l.startswith("E: ")]
    ok(rc == 0 and not errors, "lintian reports no errors", out)


def check_installed(tmp, debs):
    rc, dep = sh(["dpkg-deb", "-f", debs["vvd"], "Depends"], 30)
    ok(re.search(r"\blibopenblas0\b", dep) is not None,
       "the vvd package depends on OpenBLAS (dpkg-shlibdeps saw the link)", dep)
    ok(not set(vvd_processes()) - PRE_PROCESSES, "postinst started no vvd")
    token = "/etc/vvd/token"
    st = os.stat(token) if os.path.exists(token) else None
    ok(st is not None and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0 and
       st.st_size > 32, "postinst made the service's token, root's alone (%s)" % token,
       st and oct(st.st_mode))
    unit = "/lib/systemd/system/vvd.service"
    text = open(unit).read() if os.path.exists(unit) else ""
    ok("ExecStart=/usr/bin/vvd serve\n" in text and "StateDirectory=vvd\n" in text and
       "Environment=VVD_WEB_DIR=/usr/share/vvd/web\n" in text and
       "LoadCredential=token:/etc/vvd/token\n" in text,
       "the unit runs /usr/bin/vvd with the dashboard, /var/lib/vvd and /etc/vvd/token", text)
    enabled = [p for p in ("/etc/systemd/system/multi-user.target.wants/vvd.service",)
               if os.path.lexists(p)]
    ok(not enabled, "the unit is installed but not enabled", enabled)
    rc, out = sh(["/usr/bin/vvd", "--version"], 30)
    rc2, out2 = sh(["/usr/bin/vvctl", "--version"], 30)
    ok(out.strip() == "vvd " + VERSION and out2.strip() == "vvctl " + VERSION,
       "vvd --version and vvctl --version say %s" % VERSION, out + out2)
    rc, out = sh(["man", "-w", "vvd"], 30)
    rc2, out2 = sh(["man", "-w", "vvctl"], 30)
    if shutil.which("man"):
        ok(rc == 0 and rc2 == 0, "man pages vvd(1) and vvctl(1) are installed", out + out2)
    else:
        ok(os.path.exists("/usr/share/man/man1/vvd.1.gz") and
           os.path.exists("/usr/share/man/man1/vvctl.1.gz"),
           "man pages vvd(1) and vvctl(1) are installed")
    ok(os.path.exists("/usr/share/vvd/schema/lasso.schema.json"), "the JSON Schemas are installed")


def check_libvv(tmp):
    prog = os.path.join(tmp, "uses_libvv.c")
    with open(prog, "w") as f:
        f.write(LIBVV_PROGRAM)
    rc, flags = sh(["pkg-config", "--cflags", "--libs", "vv"], 30)
    exe = os.path.join(tmp, "uses_libvv")
    rc2, out = sh(["cc", "-std=gnu11", prog, "-o", exe] + flags.split(), 120) if rc == 0 else (1, flags)
    rc3, run = sh([exe], 60, env={k: v for k, v in os.environ.items()
                                 if k not in ("OPENBLAS_CORETYPE", "VV_OPENBLAS_CORETYPE")}) \
        if rc2 == 0 else (1, "")
    want = wanted_kernel()
    ok(rc3 == 0 and run.split()[:1] == [VERSION] and "dgemm-ok" in run and
       (want is None or run.split()[1] == want),
       "a program builds against libvv with pkg-config and gets the kernels vvd chooses",
       "%s\n%s\n%s" % (flags, out, run))


def check_daemon(tmp):
    data = os.path.join(tmp, "data")
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VVD_") and k not in ("OPENBLAS_CORETYPE", "VV_OPENBLAS_CORETYPE")}
    env["VVD_LISTEN"] = "127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "vvd.log"), "w")
    proc = subprocess.Popen(["/usr/bin/vvd", "serve", "--data-dir", data], stdout=log,
                            stderr=subprocess.STDOUT, env=env, cwd=tmp)
    url = "http://127.0.0.1:%d" % port
    try:
        health = wait_for(lambda: proc.poll() is None and http(url + "/health")[0] == 200 or
                          proc.poll() is not None, 60)
        logtext = lambda: open(os.path.join(tmp, "vvd.log")).read()
        st, _, body = http(url + "/health")
        h = json.loads(body) if st == 200 else {}
        ok(st == 200 and h.get("status") == "ok" and h.get("version") == VERSION,
           "/usr/bin/vvd serve --data-dir DATA: /health answers ok, version %s" % VERSION,
           "health %s %r\n%s" % (st, body[:300], logtext()))
        m = re.search(r"OpenBLAS kernel (\S+) \((.*)\)", logtext())
        want = wanted_kernel()
        comment("start-up log: " + (m.group(0) if m else "(no OpenBLAS line)"))
        ok(m is not None and (want is None or (m.group(1) == want and
                                               "OPENBLAS_CORETYPE=%s chosen by vvd" % want in m.group(2)))
           and h.get("blas") == (m.group(1) if m else None),
           "the installed vvd starts with the OpenBLAS kernel this CPU needs (%s)" % (want or "own choice"),
           logtext())
        st, hdr, page = http(url + "/")
        want_page = open("/usr/share/vvd/web/index.html", "rb").read()
        ok(st == 200 and page == want_page and hdr.get("Content-Type", "").startswith("text/html"),
           "the dashboard is served at / by default (%s)" % "/usr/share/vvd/web", "%s %r" % (st, page[:200]))
        st, hdr, js = http(url + "/node_modules/uplot/dist/uPlot.esm.js")
        st2, hdr2, css = http(url + "/node_modules/uplot/dist/uPlot.min.css")
        ok(st == 200 and b"uPlot" in js and hdr.get("Content-Type", "").startswith("text/javascript")
           and st2 == 200 and len(css) > 100, "uPlot is served from the installed tree",
           "%s %s" % (st, st2))

        # A lasso job through vvctl: local files uploaded as blobs, watched to the end.
        n, k, d = 400, 16, 3
        phi = [[abs(((i * 7 + j * 13) % 17) - 8) / 8.0 + 0.01 * ((i * j) % 5) for j in range(k)]
               for i in range(n)]
        psi = [[sum(r[j] * ((j + c) % 4 == 0) for j in range(k)) + 0.001 * ((i + c) % 3)
                for c in range(d)] for i, r in enumerate(phi)]
        npy_f32(os.path.join(tmp, "feats.npy"), phi)
        npy_f32(os.path.join(tmp, "outs.npy"), psi)
        cenv = dict(env, VVD_SERVER=url)
        rc, out = sh(["/usr/bin/vvctl", "lasso", "--phi", os.path.join(tmp, "feats.npy"), "--psi",
                      os.path.join(tmp, "outs.npy"), "--lambda-ratio", "0.1", "--upload", "--watch"],
                     180, env=cenv, cwd=tmp, stderr=None)
        rid = out.split()[0] if out.strip() else ""
        rc2, shown = sh(["/usr/bin/vvctl", "--json", "show", rid], 60, env=cenv) if rid else (1, "")
        run = json.loads(shown) if rc2 == 0 else {}
        ok(rc == 0 and run.get("state") == "FINISHED" and run.get("stop_reason") == "converged" and
           os.path.exists(os.path.join(data, "blobs", "feats.npy")) and
           os.path.exists(os.path.join(data, "runs", rid, "V.npy")),
           "a lasso job from /usr/bin/vvctl (uploaded blobs) finishes converged, V.npy in DATA",
           out + shown[:2000] + logtext()[-2000:])

        # The same kind of job in-process through the installed binary.
        spec = os.path.join(tmp, "spec.json")
        with open(spec, "w") as f:
            json.dump({"kind": "lasso", "generate": {"n": 2000, "k": 32, "d": 4, "seed": 1},
                       "lambda_ratio": 0.1}, f)
        rc, out = sh(["/usr/bin/vvd", "run", spec, "--out", os.path.join(tmp, "run-out")], 180,
                     env=env, cwd=tmp)
        last = {}
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                try:
                    last = json.loads(line)
                except ValueError:
                    pass
                break
        ok(rc == 0 and last.get("state") == "FINISHED" and
           os.path.exists(os.path.join(tmp, "run-out", "V.npy")),
           "/usr/bin/vvd run runs a lasso spec in-process", out[-2000:])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
    ok(proc.returncode == 0, "vvd serve stops on SIGTERM with status 0", proc.returncode)
    return data


def purge():
    return sh(SUDO + ["dpkg", "--purge"] + PACKAGES, 300)


def main():
    if not shutil.which("dpkg-buildpackage"):
        print("1..0 # SKIP dpkg-buildpackage is missing (apt-get install dpkg-dev debhelper)")
        return 77
    # One run at a time on this machine (dpkg and its database are shared).
    lock = open(os.path.join(tempfile.gettempdir(), "vvd-test-package.lock"), "w")
    if not wait_for(lambda: try_lock(lock), 300, step=1):
        ok(False, "another package test held the lock for 5 minutes")
        return finish()
    already = [p for p in PACKAGES if installed(p)]
    if already:
        ok(False, "%s not installed here before the test (it would replace and purge it)"
           % " and ".join(already))
        return finish()
    if SUDO and sh(SUDO + ["true"], 30)[0] != 0:
        ok(False, "root or passwordless sudo for dpkg -i")
        return finish()
    global PRE_PROCESSES
    PRE_PROCESSES = set(vvd_processes())
    had_etc = os.path.exists("/etc/vvd")
    tmp = tempfile.mkdtemp(prefix="vvd-package-")
    was_installed = False
    try:
        t0 = time.monotonic()
        debs, src = build(tmp)
        if not debs:
            return finish()
        lintian(tmp)
        before = scan_names()
        rc, out = sh(SUDO + ["dpkg", "-i", debs["vvd"], debs["libvv-dev"]], 300)
        was_installed = True
        ok(rc == 0 and all(installed(p) for p in PACKAGES), "dpkg -i installs the packages", out)
        if rc != 0:
            return finish()
        files = set()
        for p in PACKAGES:
            files |= set(sh(["dpkg", "-L", p], 30)[1].split("\n")) - {"", "/."}
        check_installed(tmp, debs)
        check_libvv(tmp)
        data = check_daemon(tmp)
        rc, out = purge()
        was_installed = False
        ok(rc == 0 and not any(installed(p) for p in PACKAGES), "dpkg --purge removes the packages",
           out)
        left = sorted(f for f in files if os.path.lexists(f) and not os.path.isdir(f))
        new = sorted(scan_names() - before)
        ok(not left and not new and not os.path.exists("/etc/vvd") and
           not set(vvd_processes()) - PRE_PROCESSES,
           "nothing of the packages is left (files, /etc/vvd, names with vvd, processes)",
           "\n".join(left + new))
        ok(os.path.exists(os.path.join(data, "vvd.db")), "the data dir is left as it was")
        comment("package test: %.0f s" % (time.monotonic() - t0))
    finally:
        if was_installed or any(installed(p) for p in PACKAGES):
            purge()
        # What a faulty postrm left (reported above): the machine as it was.
        if not had_etc and os.path.exists("/etc/vvd"):
            sh(SUDO + ["rm", "-rf", "/etc/vvd"], 60)
        shutil.rmtree(tmp, ignore_errors=True)
    return finish()


def try_lock(f):
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def finish():
    print("1..%d" % count, flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
