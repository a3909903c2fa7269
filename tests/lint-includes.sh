#!/bin/sh
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Fails on an include cycle between the program's modules. A module is a .c
# file and its .h, so a.c including b.h while b.c includes a.h is a cycle,
# as is a.h -> b.h -> a.h. A header without a .c of its own that only one
# module includes is that module's private header (rtnl-parse.h, the
# parsers of rtnl.c for the tests) and counts as part of it. Only quoted
# includes inside protocol/, common/, server/ and client/ count. With
# directories as arguments, looks at those instead. Each run first checks
# that a made-up cycle is caught.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
scan() {
	files=
	for d in "$@"; do
		for f in "$d"/*.c "$d"/*.h; do
			[ -e "$f" ] && files="$files $f"
		done
	done
	[ -n "$files" ] || { echo "lint-includes: no source files in $*" >&2; return 1; }

	# shellcheck disable=SC2086 # the list splits on spaces; no name here holds one
	awk '
	function module(path) {
		sub(/\.[ch]$/, "", path)
		return path
	}
	# The path of name, included from a file in dir, with . and .. resolved.
	function resolve(dir, name,    parts, n, i, out, k, res) {
		n = split(dir "/" name, parts, "/")
		k = 0
		for (i = 1; i <= n; i++) {
			if (parts[i] == "" || parts[i] == ".")
				continue
			if (parts[i] == ".." && k > 0 && out[k] != "..") {
				k--
				continue
			}
			out[++k] = parts[i]
		}
		res = substr(dir, 1, 1) == "/" ? "/" : ""
		for (i = 1; i <= k; i++)
			res = res (i > 1 ? "/" : "") out[i]
		return res
	}
	FNR == 1 {
		known[module(FILENAME)] = 1
		if (FILENAME ~ /\.c$/)
			has_c[module(FILENAME)] = 1
		dir = FILENAME
		sub(/\/[^\/]*$/, "", dir)
	}
	/^[ \t]*#[ \t]*include[ \t]*"/ {
		name = $0
		sub(/^[^"]*"/, "", name)
		sub(/".*$/, "", name)
		from = module(FILENAME)
		to = module(resolve(dir, name))
		if (from != to && !((from, to) in raw)) {
			raw[from, to] = 1
			users[to, ++n_users[to]] = from
		}
	}
	function owner(m) {
		return (m in alias) ? alias[m] : m
	}
	# Depth-first; a module met again while still on the path closes a cycle.
	function visit(m,    list, n, i, to, j, cyc) {
		state[m] = 1
		path[++depth] = m
		n = split(adj[m], list, " ")
		for (i = 1; i <= n; i++) {
			to = list[i]
			if (!(to in known) || (to in alias))
				continue
			if (state[to] == 1) {
				for (j = depth; path[j] != to; j--)
					;
				cyc = ""
				for (; j <= depth; j++)
					cyc = cyc path[j] " -> "
				printf "lint-includes: include cycle: %s%s\n", cyc, to
				found++
			} else if (!state[to]) {
				visit(to)
			}
		}
		depth--
		state[m] = 2
	}
	END {
		for (m in known)
			if (!(m in has_c) && n_users[m] == 1)
				alias[m] = users[m, 1]
		for (k in raw) {
			split(k, fromto, SUBSEP)
			from = owner(fromto[1])
			to = owner(fromto[2])
			if (from != to && !((from, to) in edge)) {
				edge[from, to] = 1
				adj[from] = adj[from] " " to
			}
		}
		for (m in known)
			if (!(m in alias))
				n_mod++
		for (m in known)
			if (!(m in alias) && !state[m])
				visit(m)
		if (found) {
			print "lint-includes: break the cycle: move what both sides need into a module of its own, or pass it in" > "/dev/stderr"
			exit 1
		}
		printf "lint-includes: %d modules, no include cycle\n", n_mod
	}
	' $files
}

# The lint must fail on a cycle: a.c includes b.h, and b.c includes a.h.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#include "b.h"\n' >"$tmp/a.c"
printf '#include "a.h"\n' >"$tmp/b.c"
: >"$tmp/a.h"
: >"$tmp/b.h"
if scan "$tmp" >/dev/null 2>&1; then
	echo "lint-includes: a made-up cycle went unseen; the lint is broken" >&2
	exit 1
fi

[ "$#" -gt 0 ] || set -- protocol common server client
scan "$@"
