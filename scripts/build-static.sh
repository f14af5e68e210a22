#!/usr/bin/env bash
# Builds the shipped binary: static musl, release profile, the standard library rebuilt for
# size, then the unwind tables removed. Prints its path (target/dist/TARGET/entitle).
# Usage: scripts/build-static.sh [TARGET]
#
# Why the standard library is rebuilt (cargo's -Z build-std, with RUSTC_BOOTSTRAP=1 on this
# stable toolchain; needs `rustup component add rust-src`): the prebuilt std carries its
# backtrace symbolizer (gimli, addr2line: never used with panic = "abort" and no debug info) and
# is optimised for speed; rebuilt without the `backtrace` feature, with `optimize_for_size`, and
# under this profile's LTO, the binary is about 315 KiB (9%) smaller. Panics still print their
# message. ENTITLE_BUILD_STD=0 builds with the prebuilt std instead.
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
build_std=()
if [ "${ENTITLE_BUILD_STD:-1}" != 0 ]; then
  export RUSTC_BOOTSTRAP=1
  build_std=(-Z "build-std=std,panic_abort" -Z build-std-features=optimize_for_size)
fi
cargo build --quiet --release --locked --target "$target" -p entitle "${build_std[@]}" >&2
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
