#!/usr/bin/env bash
# Builds, from this machine alone, the Rust builder image that the Dockerfile's first stage
# starts FROM, for hosts whose Docker engine cannot pull images (no registry access):
#
#   1. a toolchain image, `docker import`ed from a minimal root filesystem made of this host's
#      own files: the Debian packages a static glibc link needs (gcc, binutils, libc6-dev, a
#      shell and coreutils, with their dependencies, listed by dpkg) plus the active Rust
#      toolchain (cargo, rustc and the host's standard library; no docs, no rustup);
#   2. on top of it, the sources of every crate in Cargo.lock (`cargo vendor`), with a cargo
#      config that makes cargo use them instead of crates.io, so the build needs no network.
#
# The result is tagged as the Dockerfile's default BUILDER_IMAGE (rust:<major.minor>-slim-
# <debian codename>, the official image that provides the same things: cargo, rustc, gcc and
# glibc's static libraries on Debian), so a plain `docker build .` or `docker compose up --build`
# uses it without any flag, and also as faultline-builder:latest.
#
# Both layers are cached: the toolchain image is kept per toolchain version, the vendored
# sources per Cargo.lock hash; a rerun with nothing changed takes a second. --force rebuilds.
#
# usage: docker/builder-image.sh [--force]
# needs: docker, cargo/rustc (rustup-managed or not), dpkg (a Debian-family host), python3
set -euo pipefail
cd "$(dirname "$0")/.."

force=false
case "${1:-}" in
  --force) force=true ;;
  "") ;;
  -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
  *) echo "builder-image.sh: unknown argument '$1' (expected --force or nothing)" >&2; exit 2 ;;
esac
for tool in docker cargo rustc dpkg-query python3; do
  command -v "$tool" >/dev/null || { echo "builder-image.sh: $tool is needed" >&2; exit 1; }
done

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

rust_version=$(rustc -vV | sed -n 's/^release: //p')         # e.g. 1.95.0
host=$(rustc -vV | sed -n 's/^host: //p')                    # e.g. x86_64-unknown-linux-gnu
sysroot=$(rustc --print sysroot)
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
default_tag=$(sed -n 's/^ARG BUILDER_IMAGE=//p' Dockerfile)
compose_tag=$(sed -n 's/.*BUILDER_IMAGE: ${BUILDER_IMAGE:-\(.*\)}$/\1/p' docker-compose.yml)
if [ "$compose_tag" != "$default_tag" ]; then
  echo "builder-image.sh: docker-compose.yml's default BUILDER_IMAGE ($compose_tag) differs from" >&2
  echo "  the Dockerfile's ($default_tag); make them the same." >&2
  exit 1
fi
want_tag="rust:${rust_version%.*}-slim-$codename"
toolchain_tag="faultline-toolchain:$rust_version-$codename"
lock_hash=$(sha256sum Cargo.lock | cut -c1-12)
builder_tag="faultline-builder:lock-$lock_hash-$rust_version"
work=target/docker-builder
mkdir -p "$work"

if [ "$default_tag" != "$want_tag" ]; then
  echo "builder-image.sh: note: the Dockerfile's default BUILDER_IMAGE is $default_tag, but this" >&2
  echo "  host has Rust $rust_version on Debian $codename ($want_tag); tagging as $default_tag anyway." >&2
fi

# --- 1. the toolchain image ----------------------------------------------------------------
if $force || ! have_image "$toolchain_tag"; then
  echo "== $toolchain_tag: root filesystem from this host's packages and $sysroot"
  # The files of the packages a static link needs, their dependencies included (as dpkg
  # records them on this host), and the toolchain under /usr/local/rust. Written as a tar
  # stream straight into `docker import`; paths are canonicalised (this is a merged-/usr
  # system: /lib -> usr/lib) so the archive never writes through a symlink.
  python3 - "$sysroot" "$host" <<'PY' | docker import \
    --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV CARGO_HOME=/usr/local/cargo' \
    --change 'WORKDIR /' \
    --change 'CMD ["/bin/sh"]' \
    --message "faultline builder toolchain: Rust $rust_version and Debian $codename packages from the host" \
    - "$toolchain_tag"
import os, re, subprocess, sys, tarfile, io

sysroot, host = sys.argv[1], sys.argv[2]
roots = ["gcc", "libc6-dev", "binutils", "dash", "bash", "coreutils", "findutils",
         "sed", "grep", "tar", "gzip", "diffutils"]

def installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in r.stdout

def depends(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", pkg],
                       capture_output=True, text=True, check=True)
    out = []
    for group in r.stdout.split(","):
        for alt in group.split("|"):
            name = re.split(r"[ (]", alt.strip())[0].split(":")[0]
            if name and installed(name):
                out.append(name)
                break
    return out

missing = [p for p in roots if not installed(p)]
if missing:
    sys.exit("builder-image.sh: these host packages are needed: %s (apt-get install %s)"
             % (", ".join(missing), " ".join(missing)))
seen, todo = set(), list(roots)
while todo:
    p = todo.pop()
    if p not in seen:
        seen.add(p)
        todo += depends(p)

def canonical(path):
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))

files = set()
for p in sorted(seen):
    listing = subprocess.run(["dpkg-query", "-L", p], capture_output=True, text=True).stdout
    for f in listing.splitlines():
        if f.startswith("/usr/share/doc") or f.startswith("/usr/share/man") \
                or f.startswith("/usr/share/info") or f.startswith("/usr/share/locale"):
            continue
        if os.path.islink(f) or os.path.isfile(f):
            files.add(canonical(f))

out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|")
def add_dir(name, mode=0o755):
    t = tarfile.TarInfo(name); t.type = tarfile.DIRTYPE; t.mode = mode; out.addfile(t)
def add_link(name, target):
    t = tarfile.TarInfo(name); t.type = tarfile.SYMTYPE; t.linkname = target; out.addfile(t)
def add_file(name, text, mode=0o644):
    data = text.encode(); t = tarfile.TarInfo(name); t.size = len(data); t.mode = mode
    out.addfile(t, io.BytesIO(data))

for d in ["usr", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "root", "usr/local",
          "usr/local/bin", "usr/local/cargo", "usr/local/cargo/bin", "usr/local/rust", "src"]:
    add_dir(d)
add_dir("tmp", 0o1777)
for top in ["bin", "sbin", "lib", "lib64"]:
    add_link(top, "usr/" + top)
add_link("usr/bin/cc", "gcc")       # Debian sets this up through update-alternatives
add_file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532::/:/bin/false\n")
add_file("etc/group", "root:x:0:\nnonroot:x:65532:\n")
# cargo looks for $CARGO_HOME/config.toml: every crates.io dependency comes from the vendored
# sources the second layer adds (none are downloaded).
add_file("usr/local/cargo/config.toml",
         '[source.crates-io]\nreplace-with = "vendored-sources"\n\n'
         '[source.vendored-sources]\ndirectory = "/usr/local/cargo/vendor"\n\n'
         '[net]\noffline = true\n')
# The merged-/usr links and the files written above come first; a package's own entry for
# the same path (coreutils lists /bin, for example) is skipped.
written = {"bin", "sbin", "lib", "lib64", "usr/bin/cc", "etc/passwd", "etc/group"}
for f in sorted(files):
    name = f.lstrip("/")
    if name not in written:
        written.add(name)
        out.add(f, arcname=name, recursive=False)

# The toolchain: cargo and rustc, their shared libraries, the host's standard library and
# linker helpers. Docs, sources, rustup and other targets stay out.
for b in ["cargo", "rustc"]:
    out.add(os.path.join(sysroot, "bin", b), arcname="usr/local/rust/bin/" + b)
lib = os.path.join(sysroot, "lib")
for entry in sorted(os.listdir(lib)):
    path = os.path.join(lib, entry)
    if entry != "rustlib":
        out.add(path, arcname="usr/local/rust/lib/" + entry)
rustlib = os.path.join(lib, "rustlib")
for entry in sorted(os.listdir(rustlib)):
    path = os.path.join(rustlib, entry)
    if os.path.isfile(path) or entry in (host, "etc"):
        out.add(path, arcname="usr/local/rust/lib/rustlib/" + entry)
out.close()
PY
else
  echo "== $toolchain_tag: cached"
fi

# --- 2. the vendored dependency sources ----------------------------------------------------
if $force || ! have_image "$builder_tag"; then
  echo "== $builder_tag: cargo vendor (Cargo.lock $lock_hash)"
  rm -rf "$work/context"
  mkdir -p "$work/context"
  # --locked: vendor exactly what Cargo.lock says; crates already in ~/.cargo are not fetched.
  cargo vendor --locked --quiet "$work/context/vendor" >/dev/null
  cat >"$work/context/Dockerfile" <<EOF
FROM $toolchain_tag
COPY vendor /usr/local/cargo/vendor
LABEL org.faultline.cargo-lock-sha256-12="$lock_hash" org.faultline.rust="$rust_version"
EOF
  docker build -q -t "$builder_tag" "$work/context" >/dev/null
  rm -rf "$work/context"
else
  echo "== $builder_tag: cached"
fi

docker tag "$builder_tag" "$default_tag"
docker tag "$builder_tag" faultline-builder:latest
# Builder images of older Cargo.lock versions are no longer needed.
docker image ls --format '{{.Repository}}:{{.Tag}}' faultline-builder |
  grep -v -e ":latest$" -e ":lock-$lock_hash-" | xargs -r docker rmi >/dev/null 2>&1 || true
size=$(docker image inspect -f '{{.Size}}' "$builder_tag")
echo "== builder image ready: $default_tag = faultline-builder:latest = $builder_tag ($((size / 1000000)) MB)"
