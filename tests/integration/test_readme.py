#!/usr/bin/env python3
"""README.md, executed (TAP): every fenced block, in order, as a user would.

usage: test_readme.py VVD   (VVD: the vvd binary at the root of a meson build)

The blocks run in a temporary working copy W: symlinks to the repository's
top-level files and folders, `build` -> the meson build directory of VVD, and
a fresh HOME (so `~/vvd-env` is made inside W).  Per kind:

- sh/bash (console: the `$ ` lines): `bash -e -o pipefail` in W.  A block
  fails on a non-zero exit status, a timeout, or a problem+json answer in its
  output (curl prints an HTTP error and exits 0).
- A block that is one `build/vvd serve ...` line (a server, "in another
  terminal"): started in the background as written; the daemon the test
  started before is stopped first (SIGTERM); it must answer /health (and /
  with --web-dir).  It is stopped at the end.
- python: ~/vvd-env/bin/python, the venv that the README's own install block
  made with /usr/bin/python3 and `pip install ./python` (PIP_NO_INDEX=1, as
  the package test: nothing downloaded).
- json (job specs): each document submitted with `build/vvctl submit FILE
  --upload` (201, a run id), then stopped at once: a spec is checked, not run.

The port: the README says localhost:8470 and vvd-data.  When 8470 is free
the daemons run there and nothing is substituted.  Otherwise a free port P
is used: VVD_PORT, VVD_LISTEN and VVD_SERVER (read by the quickstart, vvd
serve, vvctl and vvd.Client) are set to it, and in sh blocks the text
`localhost:8470` / `127.0.0.1:8470` becomes port P; nothing else is changed.
The data dir is W/vvd-data, the README's `vvd-data`.

The quickstart (`bash deploy/quickstart.sh`) runs for real, first, with
VVD_LAMBDAS=0.06 (one point of its sweep instead of four: about 100 s on 2
cores, its training included); the model it trains is the one the later
blocks use.  The `kill PID` it prints is then run, as a user would before
starting the README's own `vvd serve`.

Blocks that cannot run inside the suite are listed in LISTED with the reason,
and checked another way (below).  Exits 77 (skip) only when /usr/bin/python3
has no torch; deploy/install-deps.sh installs python3-torch, so CI runs it.
"""

import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from daemon_util import Tap, request  # noqa: E402

VVD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "vvd"))
BUILD = os.path.dirname(VVD)
README = os.path.join(ROOT, "README.md")
LANGS = ("sh", "bash", "console", "python", "json")
t = Tap()

# Blocks that cannot run inside the suite: (a string that finds the block,
# why it is not run, the check made instead).  The checks are defined below.
LISTED = [
    ("tests/run-tests.sh",
     "the test command runs the whole suite, this test included; checked: .ci/run runs it",
     "check_test_command"),
    ("meson setup build-release",
     "a second full build, then `sudo meson install` into /usr/local; checked: `meson install "
     "--destdir` of the suite's build puts every path of the README's table there",
     "check_meson_install"),
    ("dpkg-buildpackage",
     "builds and installs Debian packages (root, minutes); checked by the meson test `package` "
     "(tests/integration/test_package.py), which runs these commands; here: that it does, and "
     "the .deb names",
     "check_debian"),
    ("/usr/local/etc/vvd/token",
     "writes /usr/local/etc as root and enables the unit; checked: its command, run without "
     "sudo into a temporary folder, makes a token vvd accepts",
     "check_token"),
    ("journalctl -u vvd",
     "needs root, systemd as PID 1 and the package installed; checked: the installed unit "
     "says what the README says, and vvd run as it says answers the block's curl and vvctl",
     "check_service"),
]


# ---- README ------------------------------------------------------------------------------


def read_blocks(text):
    """[(line of the opening fence, language, body)] of every fenced block."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not re.match(r"^```\s*$", lines[j]):
            j += 1
        out.append((i + 1, m.group(1), "\n".join(lines[i + 1:j]) + "\n"))
        i = j + 1
    return out


def prose(text):
    """README text outside fenced blocks."""
    return re.sub(r"^```.*?^```\s*$", "", text, flags=re.M | re.S)


# ---- processes ---------------------------------------------------------------------------


def run(cmd, cwd, env, timeout, stdin=None):
    """(exit status, stdout + stderr); a timeout kills the process group and is 124."""
    p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL if stdin is None else
                         subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(stdin, timeout=timeout)
        return p.returncode, out.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        return 124, out.decode("utf-8", "replace") + "\n[timed out after %d s]" % timeout


def tail(text, n=4000):
    return text if len(text) <= n else "...\n" + text[-n:]


def port_free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_health(port, proc=None, deadline=60.0):
    """Polls /health until it answers 200; False when proc exits or time runs out."""
    t_end = time.monotonic() + deadline
    while time.monotonic() < t_end:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            if request(port, "GET", "/health", timeout=2).status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


class Serve:
    """A `vvd serve` the test started (one at a time)."""

    def __init__(self):
        self.proc = None

    def start(self, argv, cwd, env, log):
        self.stop()
        self.log = open(log, "ab")
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self.proc

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            self.log.close()
        self.proc = None


# ---- the run -------------------------------------------------------------------------------


class Session:
    def __init__(self):
        self.w = tempfile.mkdtemp(prefix="vvd-readme-")
        self.aux = os.path.join(self.w, ".readme")  # block files and logs
        os.mkdir(self.aux)
        self.home = os.path.join(self.w, "home")
        os.mkdir(self.home)
        for name in top_level_names():
            os.symlink(os.path.join(ROOT, name), os.path.join(self.w, name))
        os.symlink(BUILD, os.path.join(self.w, "build"))
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("VVD_") and k != "PYTHONPATH"}
        self.env.update(HOME=self.home, PYTHONDONTWRITEBYTECODE="1", PIP_NO_INDEX="1",
                        PIP_DISABLE_PIP_VERSION_CHECK="1")
        if os.geteuid() == 0:
            # CI runs as root, which OpenMPI refuses unless told (the README says so).
            self.env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.port = 8470
        if not port_free(8470):
            self.port = free_port()
            self.env.update(VVD_PORT=str(self.port), VVD_LISTEN="127.0.0.1:%d" % self.port,
                            VVD_SERVER="http://127.0.0.1:%d" % self.port)
        self.serve = Serve()
        self.quickstart_pid = None

    def subst(self, text):
        if self.port == 8470:
            return text
        return re.sub(r"\b(localhost|127\.0\.0\.1):8470\b", r"\1:%d" % self.port, text)

    def close(self):
        self.serve.stop()
        pid = self.quickstart_pid
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
        if os.environ.get("VV_TEST_KEEP"):
            t.comment("kept %s" % self.w)
        else:
            shutil.rmtree(self.w, ignore_errors=True)

    # -- kinds of block --

    def sh(self, line, body, timeout=300, env=None):
        path = os.path.join(self.aux, "block-%d.sh" % line)
        with open(path, "w") as f:
            f.write(self.subst(body))
        rc, out = run(["bash", "-e", "-o", "pipefail", path], self.w, env or self.env, timeout)
        problem = re.search(r'"type"\s*:\s*"/problems/', out)
        return rc == 0 and not problem, rc, out

    def python(self, line, body):
        py = os.path.join(self.home, "vvd-env", "bin", "python")
        if not os.path.exists(py):
            return False, None, "%s is missing: the README's install block did not make it" % py
        path = os.path.join(self.aux, "block-%d.py" % line)
        with open(path, "w") as f:
            f.write(body)
        rc, out = run([py, path], self.w, self.env, 300)
        return rc == 0, rc, out

    def json(self, line, body):
        dec, pos, docs = json.JSONDecoder(), 0, []
        try:
            while body[pos:].strip():
                pos += len(body[pos:]) - len(body[pos:].lstrip())
                doc, pos = dec.raw_decode(body, pos)
                docs.append(doc)
        except ValueError as e:
            return False, None, "not JSON documents: %s" % e
        out = []
        for i, doc in enumerate(docs):
            path = os.path.join(self.aux, "spec-%d-%d.json" % (line, i))
            with open(path, "w") as f:
                json.dump(doc, f)
            rc, text = run(["build/vvctl", "--json", "submit", path, "--upload"], self.w, self.env,
                           120)
            out.append("$ vvctl submit %s --upload: exit %d\n%s" % (json.dumps(doc), rc, text))
            try:
                rid = json.loads(text.strip().splitlines()[-1])["id"]
            except (ValueError, KeyError, IndexError):
                return False, rc, "\n".join(out)
            run(["build/vvctl", "stop", rid], self.w, self.env, 60)  # checked, not run
        return True, 0, "\n".join(out)

    def serve_block(self, line, cmd):
        log = os.path.join(self.aux, "serve-%d.log" % line)
        proc = self.serve.start(["bash", "-c", "exec " + cmd], self.w, self.env, log)
        ok = wait_health(self.port, proc)
        if ok and "--web-dir" in cmd:
            r = request(self.port, "GET", "/")
            ok = r.status == 200 and b"<html" in r.body.lower()
        with open(log, errors="replace") as f:
            return ok, None, f.read()

    def quickstart(self, line, body):
        env = dict(self.env, VVD_LAMBDAS="0.06")
        ok, rc, out = self.sh(line, body, timeout=600, env=env)
        pidfile = os.path.join(self.w, "vvd-data", "vvd.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as f:
                self.quickstart_pid = int(f.read().strip() or 0) or None
        ok = ok and "(original)" in out and "dashboard:" in out
        # The command it prints to stop vvd, run as printed.
        m = re.search(r"stop it:\s+(kill \d+)\s*$", out, re.M)
        if ok:
            ok = bool(m) and run(["bash", "-c", m.group(1)], self.w, self.env, 30)[0] == 0
            t_end = time.monotonic() + 30
            while ok and self.quickstart_pid and alive(self.quickstart_pid):
                if time.monotonic() > t_end:
                    ok = False
                time.sleep(0.05)
            out += "\n[ran the printed `%s`: vvd %s]" % (
                m.group(1) if m else "kill ?", "stopped" if ok else "did not stop")
        return ok, rc, out


def top_level_names():
    """The repository's top-level files and folders (tracked or not ignored)."""
    p = subprocess.run(["git", "-C", ROOT, "ls-files", "--cached", "--others", "--exclude-standard"],
                       capture_output=True, text=True)
    if p.returncode == 0 and p.stdout.strip():
        names = {line.split("/", 1)[0] for line in p.stdout.splitlines() if line}
    else:  # not a git checkout: everything but build folders and data
        names = {n for n in os.listdir(ROOT) if not n.startswith("build") and n != "vvd-data"}
    return sorted(n for n in names if not n.startswith(".") and n != "build" and
                  os.path.exists(os.path.join(ROOT, n)))


def serve_command(body):
    lines = [l for l in body.splitlines() if l.strip() and not l.strip().startswith("#")]
    if len(lines) == 1 and lines[0].startswith("build/vvd serve"):
        return lines[0]
    return None


def execute(s, blocks):
    """Runs every block in order; returns the listed blocks by key."""
    listed = {}
    for line, lang, body in blocks:
        where = "README.md:%d (%s)" % (line, lang)
        key = next((k for k, _, _ in LISTED if k in body), None)
        if lang not in LANGS:
            t.ok(False, "%s: a block is tagged one of %s" % (where, ", ".join(LANGS)))
            continue
        if key is not None:
            listed.setdefault(key, []).append((line, body))
            continue
        t0 = time.monotonic()
        if lang == "console":
            body = "".join(l[2:] + "\n" for l in body.splitlines() if l.startswith("$ "))
        if lang == "python":
            ok, rc, out = s.python(line, body)
        elif lang == "json":
            ok, rc, out = s.json(line, body)
        elif serve_command(body):
            ok, rc, out = s.serve_block(line, serve_command(body))
        elif "deploy/quickstart.sh" in body:
            ok, rc, out = s.quickstart(line, body)
        else:
            ok, rc, out = s.sh(line, body)
        what = {"json": "is accepted by vvd (vvctl submit --upload)",
                "python": "runs"}.get(lang, "runs")
        if serve_command(body):
            what = "starts vvd serve as written"
        with open(os.path.join(s.aux, "block-%d.out" % line), "w") as f:
            f.write(out)
        t.ok(ok, "%s %s (%.1f s)" % (where, what, time.monotonic() - t0),
             "exit status %s; output:\n%s" % (rc, tail(out)) if not ok else None)
    return listed


# ---- the listed blocks, checked another way --------------------------------------------------


def commands(body):
    return [l.split(" #")[0].strip() for l in body.splitlines()
            if l.strip() and not l.strip().startswith("#")]


def check_test_command(s, body, ctx):
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = commands(f.read())
    readme = commands(body)
    dep = ci.index("bash deploy/install-deps.sh") if "bash deploy/install-deps.sh" in ci else -1
    runs = [i for i, l in enumerate(ci) if re.fullmatch(r"(BUILD_DIR=\S+ )?tests/run-tests\.sh", l)]
    with open(os.path.join(ROOT, "tests", "run-tests.sh")) as f:
        last_line = 'print(f"{passed} passed, {failed} failed")' in f.read()
    t.ok(readme == ["bash deploy/install-deps.sh && tests/run-tests.sh"] and dep >= 0 and
         any(i > dep for i in runs) and last_line,
         "the test command (not run: it is the suite): .ci/run runs `bash deploy/install-deps.sh`, "
         "then `tests/run-tests.sh` (BUILD_DIR set, no arguments), which ends with "
         "`N passed, N failed`", {"readme": readme, "ci": ci})


def check_meson_install(s, body, ctx):
    cmds = commands(body)
    want = ["meson setup build-release --prefix=/usr/local", "ninja -C build-release"]
    opts = json.loads(subprocess.run(["meson", "introspect", BUILD, "--buildoptions"],
                                     capture_output=True, text=True).stdout or "[]")
    opt = {o["name"]: o["value"] for o in opts}
    dest = os.path.join(s.aux, "destdir")
    rc, out = run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest], ROOT,
                  s.env, 300)
    prefix = dest + opt.get("prefix", "/usr/local")
    ctx.update(dest=dest, prefix=opt.get("prefix", "/usr/local"), opt=opt)
    # The table of the section: | `path`, `path` | what |
    with open(README) as f:
        text = f.read()
    sec = text[text.index("### From source, with meson"):text.index("### As a Debian package")]
    paths, missing = [], []
    for row in re.findall(r"^\| (`.*?) \|", sec, re.M):
        last_dir = ""
        for p in re.findall(r"`([^`]+)`", row):
            if "/" not in p:
                p = last_dir + p
            last_dir = p.rsplit("/", 1)[0] + "/"
            paths.append(p)
            pattern = os.path.join(prefix, re.sub(r"<[^>]+>", "*", p))
            if not glob.glob(pattern):
                missing.append(p)
    uplot = glob.glob(os.path.join(prefix, "share/vvd/web/node_modules/uplot/dist/*"))
    t.ok(all(c in cmds for c in want) and any(c.startswith("sudo meson install -C build-release")
                                              for c in cmds) and
         rc == 0 and len(paths) >= 8 and not missing and uplot,
         "from source with meson (not run: a second build and a root install): `meson install "
         "--destdir` of this build puts the table's %d paths under PREFIX, uPlot included"
         % len(paths), {"missing": missing, "commands": cmds, "install": tail(out, 1500)})


def check_debian(s, body, ctx):
    cmds = commands(body)
    with open(os.path.join(ROOT, "tests", "integration", "test_package.py")) as f:
        pkg = f.read()
    with open(os.path.join(ROOT, "tests", "meson.build")) as f:
        mb = f.read()
    with open(os.path.join(ROOT, "debian", "changelog")) as f:
        version = re.match(r"vvd \(([^)]+)\)", f.readline()).group(1)
    rc, vout = run([VVD, "--version"], ROOT, s.env, 30)
    arch = run(["dpkg", "--print-architecture"], ROOT, s.env, 30)[1].strip() \
        if shutil.which("dpkg") else "amd64"
    with open(README) as f:
        text = f.read()
    debs = sorted(set(re.findall(r"([\w.+-]+)_([\w.+~-]+)_(\w+)\.deb", text)))
    bad = [d for d in debs if d[0] not in ("vvd", "libvv-dev") or d[1] != version or d[2] != arch]
    t.ok('DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc' in cmds and
         '"dpkg-buildpackage", "-b", "-us", "-uc"' in pkg and "nocheck parallel=2" in pkg and
         '"dpkg", "-i"' in pkg and "test('package'" in mb and "integration/test_package.py" in mb
         and vout.split() == ["vvd", version] and debs and not bad,
         "as a Debian package (not run: root, minutes): the meson test `package` runs "
         "dpkg-buildpackage -b -us -uc (nocheck parallel=2) and dpkg -i; the README's .deb names "
         "are vvd/libvv-dev_%s_%s.deb" % (version, arch),
         {"commands": cmds, "debs": debs, "version": vout})


def check_token(s, body, ctx):
    cmd = next(c for c in commands(body) if "/usr/local/etc/vvd/token" in c)
    argv = shlex.split(cmd)
    etc = os.path.join(s.aux, "etc")
    script = argv[argv.index("-c") + 1].replace("/usr/local/etc", etc) if argv[:3] == \
        ["sudo", "sh", "-c"] else ""
    rc, out = run(["sh", "-c", script], ROOT, s.env, 30)
    tok = os.path.join(etc, "vvd", "token")
    text = open(tok).read() if os.path.exists(tok) else ""
    mode = os.stat(tok).st_mode & 0o777 if text else None
    ctx["token"] = tok
    t.ok(rc == 0 and re.fullmatch(r"[0-9a-f]{48}", text) and mode == 0o600,
         "the token command (not run: root), without sudo into a temporary etc: 48 hex digits, "
         "mode 600", {"script": script, "out": out, "token": text, "mode": mode})


def check_service(s, body, ctx):
    if "prefix" not in ctx or "token" not in ctx:
        t.ok(False, "the systemd block: the install and token checks ran first")
        return
    prefix, dest, opt = ctx["prefix"], ctx["dest"], ctx["opt"]
    unit_path = glob.glob(os.path.join(dest + prefix, "lib/systemd/system/vvd.service")) or \
        glob.glob(os.path.join(dest, "**", "vvd.service"), recursive=True)
    unit = open(unit_path[0]).read() if unit_path else ""
    lines = [l.strip() for l in unit.splitlines()]
    envs = dict(l[len("Environment="):].split("=", 1) for l in lines
                if l.startswith("Environment=") and "=" in l[len("Environment="):])
    sysconf = opt.get("sysconfdir", "etc")
    sysconf = sysconf if sysconf.startswith("/") else prefix + "/" + sysconf
    bindir = opt.get("bindir", "bin")
    bindir = bindir if bindir.startswith("/") else prefix + "/" + bindir
    expect = ["ExecStart=%s/vvd serve" % bindir, "DynamicUser=yes", "StateDirectory=vvd",
              "LoadCredential=token:%s/vvd/token" % sysconf, "Restart=on-failure"]
    miss = [e for e in expect if e not in lines]
    if envs.get("VVD_DATA_DIR") != "/var/lib/vvd" or envs.get("VVD_LISTEN") != "127.0.0.1:8470":
        miss.append("VVD_DATA_DIR=/var/lib/vvd, VVD_LISTEN=127.0.0.1:8470")
    t.ok(unit and not miss, "the systemd block (not run: root, systemd, the package): the "
         "installed unit runs `vvd serve` as a dynamic user with /var/lib/vvd, 127.0.0.1:8470, "
         "the token as a credential, restarted on failure", {"missing": miss, "unit": unit})
    # vvd as the unit runs it (its environment; data, port, web dir and
    # token file moved into the temporary folder), asked the block's questions.
    port = free_port()
    data = os.path.join(s.aux, "service-data")
    env = dict(s.env, VVD_DATA_DIR=data, VVD_LISTEN="127.0.0.1:%d" % port,
               VVD_WEB_DIR=dest + envs.get("VVD_WEB_DIR", prefix + "/share/vvd/web"),
               VVD_TOKEN_FILE=ctx["token"])
    log = os.path.join(s.aux, "service.log")
    srv = Serve()
    try:
        proc = srv.start([VVD, "serve"], s.w, env, log)
        up = wait_health(port, proc)
        health = request(port, "GET", "/health").json() if up else {}
        anon = request(port, "GET", "/v1/runs").status if up else None
        page = request(port, "GET", "/").status if up else None
        with open(ctx["token"]) as f:
            vv_env = dict(s.env, VVD_TOKEN=f.read().strip(), VVD_SERVER="http://127.0.0.1:%d" % port)
        rc, out = run(["build/vvctl", "ls"], s.w, vv_env, 60) if up else (None, "")
    finally:
        srv.stop()
    logtext = open(log, errors="replace").read() if os.path.exists(log) else ""
    t.ok(up and "device" in health and "blas" in health and anon == 401 and page == 200 and
         rc == 0 and "OpenBLAS kernel" in logtext and "device" in logtext,
         "the systemd block's commands against vvd started as the unit starts it: /health "
         "without the token (device, blas), /v1/runs refused without it (401), the dashboard, "
         "`vvctl ls` with VVD_TOKEN from the token file; the log names the device and the "
         "OpenBLAS kernel", {"health": health, "anonymous /v1/runs": anon, "/": page,
                             "vvctl": out, "log": tail(logtext, 1500)})


def check_listed(s, listed):
    ctx = {}
    for key, why, fn in LISTED:
        found = listed.get(key, [])
        if len(found) != 1:
            t.ok(False, "exactly one README block holds %r (found %d): update LISTED"
                 % (key, len(found)))
            continue
        line, body = found[0]
        t.comment("README.md:%d not run: %s" % (line, why))
        try:
            globals()[fn](s, body, ctx)
        except Exception as e:  # a check that breaks is a failure, with its reason
            import traceback
            t.ok(False, "README.md:%d: %s ran" % (line, fn), traceback.format_exc())


# ---- files the README names -------------------------------------------------------------------


def check_names():
    """Every repository path the README's prose names exists."""
    with open(README) as f:
        text = prose(f.read()).replace("\n", " ")  # a code span may wrap
    top = set(top_level_names())
    missing, seen = [], set()
    for span in re.findall(r"`([^`]+)`", text):
        for tok in re.split(r"[\s,;()]+", span):
            tok = tok.strip("'\"").rstrip(".:")
            if not tok or "{" in tok or "..." in tok or tok in seen:
                continue
            seen.add(tok)
            first = tok.split("/", 1)[0]
            if tok.startswith("build/"):
                # Build outputs: the programs the README runs (web-shots is made by the web test).
                if not tok.startswith("build/web-shots") and \
                        not glob.glob(os.path.join(BUILD, tok[6:])):
                    missing.append(tok)
            elif "/" in tok and first in top:
                if not glob.glob(os.path.join(ROOT, re.sub(r"<[^>]+>", "*", tok))):
                    missing.append(tok)
            elif re.fullmatch(r"[A-Z][A-Z_]*(\.md)?", tok) and len(tok) > 4 and \
                    (tok.endswith(".md") or tok == "LICENSE"):
                if not os.path.exists(os.path.join(ROOT, tok)):
                    missing.append(tok)
    t.ok(not missing, "every repository file and folder the README names exists (%d names "
         "checked)" % len(seen), missing)


def check_line_count(text, blocks):
    """"is N lines", said of the README's Python example, stays true."""
    m = re.search(r"\bis\s+(\d+)\s+lines\b", text)
    line = text.count("\n", 0, m.start()) + 1 if m else 0
    block = next((b for b in blocks if b[1] == "python" and b[0] > line), None)
    n = sum(1 for l in block[2].splitlines() if l.strip()) if block else None
    t.ok(m and n == int(m.group(1)), "README.md:%d says the Python example is %s lines: it is %s"
         " (non-blank lines of the block at line %s)" % (line, m.group(1) if m else "?", n,
                                                        block[0] if block else "?"))


# ---- main ----------------------------------------------------------------------------------------


def main():
    p = subprocess.run(["/usr/bin/python3", "-c", "import torch"], capture_output=True)
    if p.returncode != 0:
        print("1..0 # SKIP /usr/bin/python3 has no torch (Debian: apt-get install python3-torch)")
        return 77
    with open(README) as f:
        text = f.read()
    blocks = read_blocks(text)
    s = Session()
    t0 = time.monotonic()
    t.comment("working copy %s; port %d%s" % (s.w, s.port, "" if s.port == 8470 else
                                              " (8470 is taken: substituted)"))
    try:
        listed = execute(s, blocks)
        s.serve.stop()
        check_listed(s, listed)
        check_names()
        check_line_count(text, blocks)
    finally:
        s.close()
    kinds = {}
    for _, lang, _ in blocks:
        kinds[lang] = kinds.get(lang, 0) + 1
    t.comment("%d blocks (%s), %d checked another way; %.0f s" % (
        len(blocks), ", ".join("%d %s" % (n, k) for k, n in sorted(kinds.items())),
        len(LISTED), time.monotonic() - t0))
    return t.done()


if __name__ == "__main__":
    sys.exit(main())
