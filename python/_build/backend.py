"""A minimal PEP 517 / PEP 660 build backend for the vvd package (standard
library only, so that pip builds it offline with nothing to download).

It packs vvd/ (the .py files) into a wheel with the metadata of
pyproject.toml's [project] table; build_editable installs a .pth file that
points at this folder instead.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "vvd"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = f.read()
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib
        except ImportError:
            return _project_fallback(data.decode("utf-8"))
    return tomllib.loads(data.decode("utf-8"))["project"]


def _project_fallback(text):
    """[project]'s simple fields without a TOML library."""
    out, table = {}, None
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.fullmatch(r"\[([^\]]+)\]", line)
        if m:
            table = m.group(1)
            continue
        m = re.fullmatch(r"([A-Za-z0-9_-]+)\s*=\s*(.+)", line)
        if not m:
            continue
        key, value = m.groups()
        if value.startswith('"'):
            value = value.strip('"')
        elif value.startswith("["):
            value = re.findall(r'"([^"]*)"', value)
        if table == "project":
            out[key] = value
        elif table == "project.optional-dependencies":
            out.setdefault("optional-dependencies", {})[key] = value
    return out


def _metadata():
    p = _project()
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"]]
    if p.get("description"):
        lines.append("Summary: " + p["description"])
    if p.get("requires-python"):
        lines.append("Requires-Python: " + p["requires-python"])
    for dep in p.get("dependencies", []):
        lines.append("Requires-Dist: " + dep)
    for extra, deps in (p.get("optional-dependencies") or {}).items():
        lines.append("Provides-Extra: " + extra)
        for dep in deps:
            lines.append('Requires-Dist: %s; extra == "%s"' % (dep, extra))
    body = ""
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return p, "\n".join(lines) + "\n" + body


def _dist_info(p):
    return "%s-%s.dist-info" % (p["name"].replace("-", "_"), p["version"])


def _wheel_name(p):
    return "%s-%s-py3-none-any.whl" % (p["name"].replace("-", "_"), p["version"])


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (name, digest, len(data))


def _write_wheel(wheel_directory, files):
    """files: [(archive name, bytes)]; adds dist-info and RECORD."""
    p, meta = _metadata()
    di = _dist_info(p)
    files = list(files) + [
        (di + "/METADATA", meta.encode("utf-8")),
        (di + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: vvd-backend\nRoot-Is-Purelib: true\n"
                        b"Tag: py3-none-any\n"),
        (di + "/top_level.txt", (PACKAGE + "\n").encode()),
    ]
    record = [_record_line(n, d) for n, d in files] + [di + "/RECORD,,"]
    files.append((di + "/RECORD", ("\n".join(record) + "\n").encode()))
    name = _wheel_name(p)
    path = os.path.join(wheel_directory, name)
    stamp = time.gmtime(max(os.path.getmtime(os.path.join(ROOT, "pyproject.toml")), 315532800))[:6]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in files:
            info = zipfile.ZipInfo(n, date_time=stamp)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, d)
    return name


def _sources():
    out = []
    base = os.path.join(ROOT, PACKAGE)
    for d, dirs, names in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "__pycache__")
        for n in sorted(names):
            if n.endswith(".py") or n == "py.typed":
                full = os.path.join(d, n)
                rel = os.path.relpath(full, ROOT).replace(os.sep, "/")
                with open(full, "rb") as f:
                    out.append((rel, f.read()))
    return out


# ---- PEP 517 hooks ----

def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p, meta = _metadata()
    di = os.path.join(metadata_directory, _dist_info(p))
    os.makedirs(di, exist_ok=True)
    with open(os.path.join(di, "METADATA"), "w", encoding="utf-8") as f:
        f.write(meta)
    return _dist_info(p)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _sources())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = ("_vvd_editable.pth", (ROOT + "\n").encode("utf-8"))
    return _write_wheel(wheel_directory, [pth])


def build_sdist(sdist_directory, config_settings=None):
    p, meta = _metadata()
    base = "%s-%s" % (p["name"], p["version"])
    name = base + ".tar.gz"
    files = _sources() + [("PKG-INFO", meta.encode("utf-8"))]
    for extra in ("pyproject.toml", "README.md", "_build/backend.py"):
        with open(os.path.join(ROOT, extra), "rb") as f:
            files.append((extra, f.read()))
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for n, d in files:
            info = tarfile.TarInfo(base + "/" + n)
            info.size = len(d)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(d))
    return name
