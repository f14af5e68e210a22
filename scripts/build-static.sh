#!/usr/bin/env bash
# Builds the shipped binary: static musl, release profile, then the unwind tables removed.
# Prints its path (target/dist/TARGET/entitle). Usage: scripts/build-static.sh [TARGET]
#
# Why the objcopy: with panic = "abort" nothing ever unwinds, yet .eh_frame/.eh_frame_hdr are
# about 550 KB (13%) of the file, and rustc keeps emitting them on this target even with
# -C force-unwind-tables=no; musl's crtbegin.o references .eh_frame, so the linker cannot drop
# it. Removing the sections after linking is safe: a panic still prints its message and aborts
# (a backtrace, if asked for, is just empty).
#
# Cross-building aarch64 on an x86_64 machine (Debian's gcc-aarch64-linux-gnu): when the target's
# CPU is not this machine's and CC_<target> / CARGO_TARGET_<TARGET>_LINKER are unset, they default
# to <arch>-linux-gnu-gcc if it is installed (ring's C and assembly, and the final link; Rust's
# self-contained musl crt and libc are used, not glibc). A native build (the Dockerfile's build
# stage, also under emulation) uses the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-x86_64-unknown-linux-musl}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
arch=${target%%-*}
if [ "$arch" != "$(uname -m)" ] && command -v "$arch-linux-gnu-gcc" >/dev/null; then
  target_env=${target//-/_}
  cc_var=CC_$target_env
  linker_var=CARGO_TARGET_${target_env^^}_LINKER
  [ -n "${!cc_var:-}" ] || export "$cc_var=$arch-linux-gnu-gcc"
  [ -n "${!linker_var:-}" ] || export "$linker_var=$arch-linux-gnu-gcc"
fi
cargo build --quiet --release --locked --target "$target" -p entitle >&2
mkdir -p "$target_dir/dist/$target"
out=$target_dir/dist/$target/entitle
objcopy=objcopy
if [ "$arch" != "$(uname -m)" ] && command -v "$arch-linux-gnu-objcopy" >/dev/null; then
  objcopy=$arch-linux-gnu-objcopy
fi
"$objcopy" --remove-section=.eh_frame --remove-section=.eh_frame_hdr --remove-section=.gcc_except_table \
  "$target_dir/$target/release/entitle" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
