#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Writes the uncompressed ELF kernel inside a bzImage (vmlinuz) to OUT.
#
#   tests/kernel/extract-vmlinux.sh VMLINUZ OUT
#
# A bzImage is a small decompressor followed by the compressed kernel. We
# look for each compression format's magic bytes, try to decompress from
# every place they occur, and keep the first result that is an ELF file.
# Under software emulation the uncompressed kernel boots about twice as
# fast, as the guest no longer decompresses itself.
set -eu

[ "$#" -eq 2 ] || { echo "usage: $0 VMLINUZ OUT" >&2; exit 2; }
in=$1
out=$2
tmp=$out.part
trap 'rm -f "$tmp" "$tmp.offsets"' EXIT

# is_elf FILE: whether FILE starts with the ELF magic.
is_elf() {
	[ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]
}

# try MAGIC TOOL...: decompresses from each offset of MAGIC (a grep -P
# pattern) with TOOL, reading standard input. The tail after the compressed
# kernel makes most tools complain, so their status is not what tells.
try() {
	magic=$1
	shift
	command -v "$1" >/dev/null 2>&1 || return 1
	LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1 >"$tmp.offsets" || true
	while read -r off; do
		tail -c "+$((off + 1))" "$in" | "$@" >"$tmp" 2>/dev/null || true
		if [ -s "$tmp" ] && is_elf "$tmp"; then
			mv "$tmp" "$out"
			return 0
		fi
	done <"$tmp.offsets"
	return 1
}

# An uncompressed kernel given as input is its own result.
if is_elf "$in"; then
	cp "$in" "$out"
	exit 0
fi
try '\xfd7zXZ\x00' xz -dc --single-stream ||
	try '\x1f\x8b\x08' gzip -dc ||
	try '\x28\xb5\x2f\xfd' zstd -dcq ||
	try '\x5d\x00\x00\x00' xz -dc --format=lzma ||
	try 'BZh' bzip2 -dc ||
	try '\x02\x21\x4c\x18' lz4 -dc ||
	try '\x89\x4c\x5a\x4f' lzop -dc ||
	{ echo "$0: no compressed ELF kernel found in $in" >&2; exit 1; }
