#!/usr/bin/env bash
# Builds the shipped binary: static musl, release profile, then the unwind tables removed.
# Prints its path (target/dist/TARGET/entitle). Usage: scripts/build-static.sh [TARGET]
#
# Why the objcopy: with panic = "abort" nothing ever unwinds, yet .eh_frame/.eh_frame_hdr are
# about 550 KB (13%) of the file, and rustc keeps emitting them on this target even with
# -C force-unwind-tables=no; musl's crtbegin.o references .eh_frame, so the linker cannot drop
# it. Removing the sections after linking is safe: a panic still prints its message and aborts
# (a backtrace, if asked for, is just empty).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-x86_64-unknown-linux-musl}
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --quiet --release --locked --target "$target" -p entitle >&2
mkdir -p "$target_dir/dist/$target"
out=$target_dir/dist/$target/entitle
objcopy=objcopy
case "$target" in
  x86_64-*) ;;
  *) command -v "${target%%-*}-linux-gnu-objcopy" >/dev/null && objcopy="${target%%-*}-linux-gnu-objcopy" ;;
esac
"$objcopy" --remove-section=.eh_frame --remove-section=.eh_frame_hdr --remove-section=.gcc_except_table \
  "$target_dir/$target/release/entitle" "$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
