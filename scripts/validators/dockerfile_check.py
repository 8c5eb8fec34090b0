#!/usr/bin/env python3
"""Check the Dockerfile without a container engine.

    dockerfile_check.py static DOCKERFILE
        Parses the Dockerfile: the final stage is debian:bookworm-slim, runs as a numeric
        non-root USER, copies only /out/ from the build stage, sets LD_LIBRARY_PATH to
        /opt/driftd/libtorch/lib, has ENTRYPOINT /usr/local/bin/driftd; the build stage pins
        torch==2.13.0 and sets LIBTORCH to site-packages/torch; every COPY source from the
        build context exists in the repository.

    dockerfile_check.py tree DRIFTD_BIN LIBTORCH_LIB_DIR WORKDIR
        Rebuilds the runtime image's file tree without Docker: DRIFTD_BIN at
        WORKDIR/usr/local/bin/driftd and, at WORKDIR/opt/driftd/libtorch/lib, the libraries that
        scripts/validators/collect_libs.sh selects (the same script the Dockerfile runs). Then
        asks the dynamic loader, with the binary's build-time RPATH/RUNPATH pointed at a missing
        directory (as it is in the image) and only the tree's library directory on the search
        path (what LD_LIBRARY_PATH gives in the image), how
        every dependency resolves: each must come from the tree or be one of the sonames the
        bookworm-slim base provides (collect_libs.sh --base), and no symbol version may be
        missing. Finally runs `driftd --help` that way.
        This host is Debian 12 (bookworm), so its base libraries are the image's.
"""
import os
import re
import shlex
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECT = os.path.join(HERE, "collect_libs.sh")
LIBDIR = "opt/driftd/libtorch/lib"


def instructions(path):
    text = open(path, encoding="utf-8").read()
    lines, cur = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.startswith("#"):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        op, _, rest = cur.partition(" ")
        lines.append((op.upper(), rest.strip()))
        cur = ""
    return lines


def cmd_static(path):
    ins = instructions(path)
    errs = []
    args = {}
    stages = []
    for op, rest in ins:
        if op == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        if op == "FROM":
            image = rest.split()[0]
            image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
            name = rest.split()[-1] if " AS " in rest.upper() else None
            stages.append({"image": image, "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((op, rest))
    if len(stages) < 2:
        errs.append("expected a multi-stage build")
    build, final = stages[0], stages[-1]
    if final["image"] != "debian:bookworm-slim":
        errs.append(f"final stage is {final['image']}, expected debian:bookworm-slim")
    if not build["image"].startswith("rust:"):
        errs.append(f"build stage is {build['image']}, expected rust:*")
    btext = " ".join(r for _, r in build["ins"])
    if 'torch==${TORCH_VERSION}' in btext:
        m = [r for o, r in build["ins"] if o == "ARG" and r.startswith("TORCH_VERSION=")]
        if not m or m[0] != "TORCH_VERSION=2.13.0":
            errs.append("TORCH_VERSION must default to 2.13.0")
    elif "torch==2.13.0" not in btext:
        errs.append("the build stage must pip install torch==2.13.0")
    if not re.search(r"LIBTORCH=\S*/site-packages/torch\b", btext):
        errs.append("LIBTORCH must point at site-packages/torch")
    if "collect-libs" not in btext and "collect_libs.sh" not in btext:
        errs.append("the build stage must select libraries with collect_libs.sh")
    users = [r for o, r in final["ins"] if o == "USER"]
    if not users or not re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", users[-1]):
        errs.append(f"final stage USER {users[-1] if users else None!r} must be a numeric non-root uid[:gid]")
    copies = [r for o, r in final["ins"] if o == "COPY"]
    for c in copies:
        if not c.startswith(f"--from={build['name']} /out/ /"):
            errs.append(f"final stage COPY {c!r}: only the build stage's /out/ should be copied")
    env = " ".join(r for o, r in final["ins"] if o == "ENV")
    if f"LD_LIBRARY_PATH=/{LIBDIR}" not in env:
        errs.append(f"final stage must set LD_LIBRARY_PATH=/{LIBDIR}")
    ep = [r for o, r in final["ins"] if o == "ENTRYPOINT"]
    if not ep or ep[-1] != '["/usr/local/bin/driftd"]':
        errs.append("ENTRYPOINT must be [\"/usr/local/bin/driftd\"]")
    for st in stages:
        for op, rest in st["ins"]:
            if op != "COPY" or rest.startswith("--from"):
                continue
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            for src in parts[:-1]:
                if not os.path.exists(os.path.join(ROOT, src)):
                    errs.append(f"COPY source {src} does not exist in the repository")
    for e in errs:
        print(e)
    if not errs:
        print(f"{len(stages)} stages ({' -> '.join(s['image'] for s in stages)}), non-root USER {users[-1]}, COPY sources present")
    return 1 if errs else 0


def loader():
    for p in ("/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"):
        if os.path.exists(p):
            return p
    sys.exit("dockerfile_check: no dynamic loader found")


def blank_rpath(path):
    """Point the binary's RPATH/RUNPATH at a directory that does not exist, in place.

    In the image, the rpath that build.rs embeds (the build stage's site-packages/torch/lib)
    does not exist, so the loader falls through to LD_LIBRARY_PATH. On this host the same
    path may well exist (a binary built against the local venv), and a DT_RPATH of the main
    program cannot be ignored with ld.so --inhibit-rpath; so the tree's copy gets each
    rpath string in .dynstr overwritten by a same-length path under /nonexistent.
    Returns the rpath strings replaced.
    """
    data = bytearray(open(path, "rb").read())
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit("dockerfile_check: DRIFTD_BIN is not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link = struct.unpack_from("<IIQQQQI", data, shoff + i * shentsize)
        sections.append((name, typ, off, size, link))
    dyn = [s for s in sections if s[1] == 6]          # SHT_DYNAMIC
    if not dyn:
        return []
    _, _, doff, dsize, link = dyn[0]
    _, _, stroff, strsize, _ = sections[link]
    replaced = []
    for i in range(0, dsize, 16):
        tag, val = struct.unpack_from("<qQ", data, doff + i)
        if tag in (15, 29):                              # DT_RPATH, DT_RUNPATH
            start = stroff + val
            end = data.index(0, start)
            old = bytes(data[start:end])
            new = (b"/nonexistent/" + b"x" * len(old))[: len(old)]
            data[start:end] = new
            replaced.append(old.decode())
    open(path, "wb").write(data)
    return replaced


def cmd_tree(binary, libtorch_lib, work):
    binpath = os.path.join(work, "usr", "local", "bin", "driftd")
    libdir = os.path.join(work, LIBDIR)
    os.makedirs(os.path.dirname(binpath), exist_ok=True)
    subprocess.run(["install", "-m", "0755", binary, binpath], check=True)
    r = subprocess.run(["sh", COLLECT, binpath, libtorch_lib, libdir], capture_output=True, text=True)
    if r.returncode:
        print(r.stdout + r.stderr)
        print("dockerfile_check: collect_libs.sh failed")
        return 1
    rpaths = blank_rpath(binpath)
    base = set(subprocess.run(["sh", COLLECT, "--base"], capture_output=True, text=True, check=True).stdout.split())
    ld = loader()
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH" and k != "LD_PRELOAD"}
    cmd = [ld, "--library-path", libdir]
    r = subprocess.run(cmd + ["--list", binpath], capture_output=True, text=True, env=env)
    out = r.stdout + r.stderr
    errs = []
    if r.returncode:
        errs.append(f"loader --list failed (rc {r.returncode})")
    n_tree = n_base = 0
    for line in out.splitlines():
        line = line.strip()
        if "not found" in line:
            errs.append(f"unresolved: {line}")
            continue
        m = re.match(r"(\S+) => (\S+)", line)
        if not m:
            continue
        soname, path = m.groups()
        if path.startswith(libdir + "/"):
            n_tree += 1
        elif soname in base and (path.startswith("/lib/") or path.startswith("/usr/lib/") or path.startswith("/lib64/")):
            n_base += 1
        else:
            errs.append(f"{soname} resolves to {path}: neither in the image's libtorch directory nor a bookworm-slim base library")
    r2 = subprocess.run(cmd + [binpath, "--help"], capture_output=True, text=True, env=env)
    if r2.returncode:
        errs.append(f"`driftd --help` from the tree failed (rc {r2.returncode}): {(r2.stdout + r2.stderr).strip()[-500:]}")
    size = sum(os.path.getsize(os.path.join(libdir, f)) for f in os.listdir(libdir))
    for e in errs:
        print(e)
    if errs:
        print(out)
        return 1
    print(f"{n_tree} libraries ({size / 2**20:.0f} MiB) from the image tree, {n_base} from the base image, "
          f"`driftd --help` runs; build rpath {', '.join(rpaths) or 'none'} ignored; "
          f"tree: {', '.join(sorted(os.listdir(libdir)))}")
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "static":
        sys.exit(cmd_static(sys.argv[2]))
    if len(sys.argv) == 5 and sys.argv[1] == "tree":
        sys.exit(cmd_tree(*sys.argv[2:]))
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
