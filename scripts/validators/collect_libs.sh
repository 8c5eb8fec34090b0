#!/bin/sh
# collect_libs.sh BINARY LIBTORCH_LIB_DIR DEST_DIR
#   Copies into DEST_DIR (flat, by soname) every shared library that BINARY loads, directly or
#   through other libraries, except those the debian:bookworm-slim base image already has.
#   Used by the Dockerfile's build stage (libtorch's .so files for the runtime image) and by
#   scripts/validate_deploy.sh (which checks the result without a container engine).
#   Fails if ldd cannot find a library or a symbol version.
# collect_libs.sh --base
#   Prints the sonames that debian:bookworm-slim provides (libc6, libgcc-s1, libstdc++6, zlib1g).
set -eu

base_libs="linux-vdso.so.1 ld-linux-x86-64.so.2 ld-linux-aarch64.so.1 libc.so.6 libm.so.6
libpthread.so.0 libdl.so.2 librt.so.1 libutil.so.1 libresolv.so.2 libanl.so.1
libgcc_s.so.1 libstdc++.so.6 libz.so.1"

if [ "${1:-}" = "--base" ]; then
  printf '%s\n' $base_libs
  exit 0
fi
[ $# -eq 3 ] || { echo "usage: $0 BINARY LIBTORCH_LIB_DIR DEST_DIR | --base" >&2; exit 2; }
bin=$1 libdir=$2 dest=$3

out=$(LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin" 2>&1) || {
  echo "$out" >&2; echo "collect_libs: ldd failed on $bin" >&2; exit 1; }
if echo "$out" | grep -q 'not found'; then
  echo "$out" | grep 'not found' >&2
  echo "collect_libs: unresolved libraries or symbol versions for $bin" >&2
  exit 1
fi

mkdir -p "$dest"
n=0
for pair in $(echo "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $1 "=" $3 }'); do
  soname=${pair%%=*} path=${pair#*=}
  case " $(echo $base_libs) " in *" $soname "*) continue ;; esac
  # A hard link when the tree is on the same file system (multi-GB CUDA builds), else a copy.
  ln -f "$(readlink -f "$path")" "$dest/$soname" 2>/dev/null || cp -fL "$path" "$dest/$soname"
  n=$((n + 1))
done
echo "collect_libs: $n libraries copied to $dest" >&2
