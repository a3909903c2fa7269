#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (C) 2026 The wg-dynamic Authors.
# Runs the kernel scenarios in a virtual machine: Debian 12's kernel (Linux
# 6.1, WireGuard as a module) under qemu, so that the daemons meet kernel
# WireGuard over generic netlink, which build machines do not have.
#
#   tests/kernel/run.sh [NAME...]
#
# NAME picks scenarios from tests/kernel/guest.sh (default: all of them).
# As root, it
#   1. installs qemu-system-x86, cpio, kmod and xz-utils when missing;
#   2. downloads linux-image-amd64, the kernel package it depends on, and
#      busybox-static into tests/kernel/cache/, unless there already;
#   3. extracts vmlinux from vmlinuz (extract-vmlinux.sh) and the modules
#      the VM needs, dependencies first (modules.dep), into the cache;
#   4. assembles an initramfs: busybox, the host's bash, ip, ss, wg, ping,
#      sysctl, pgrep, b2sum, timeout and wireguard-go, the daemons and the
#      end-to-end helpers the scenarios run (built here when missing), their
#      shared libraries, the modules, and tests/kernel/init;
#   5. boots it with the source tree shared read-only over virtio-9p, runs
#      every scenario in that one boot, and prints the time spent.
# Delete tests/kernel/cache/ to start over from fresh downloads.
#
# The guest runs under KVM when /dev/kvm works: the boot is given
# KERNEL_KVM_BOOT_TIMEOUT seconds (default 20) to come up, else it is
# killed and the run starts over under TCG, software emulation, which gets
# KERNEL_BOOT_TIMEOUT (default 120). KERNEL_KVM=0 goes straight to TCG.
# KERNEL_RUN_TIMEOUT (default 1200) bounds the whole VM run.
#
# Exit status: 0 when every scenario passed, 1 otherwise. When qemu cannot
# be installed or run at all, it says so loudly and exits 0: that is the
# only case in which the kernel scenarios may be skipped.
set -u
# A decimal point in EPOCHREALTIME, whatever the locale.
export LC_ALL=C

dir=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$dir/../.." && pwd)
cache=$dir/cache
# The modules the scenarios need; their dependencies come along.
MODULES="virtio_pci 9pnet_virtio 9p wireguard veth tun"
# Host programs the guest runs, beside busybox's applets.
HOST_TOOLS="bash ip ss wg ping sysctl pgrep b2sum timeout wireguard-go"
DAEMONS="server/wg-dynamic-server client/wg-dynamic-client"
# The end-to-end helpers the scenarios run: the stand-in hub, the hostile
# requester, a bare connection, and the engine's stand-in before the
# parent. Built here when missing; the scenarios find them in the tree.
HELPERS="tests/e2e/fakehub tests/e2e/hostile tests/e2e/connect tests/e2e/rogue-engine"
boot_timeout=${KERNEL_BOOT_TIMEOUT:-120}
kvm_boot_timeout=${KERNEL_KVM_BOOT_TIMEOUT:-20}
run_timeout=${KERNEL_RUN_TIMEOUT:-1200}

t_start=$EPOCHREALTIME
stage=
qemu_pid=
tail_pid=

say() {
	printf 'kernel: %s\n' "$*"
}

fatal() {
	say "$*" >&2
	exit 1
}

# Seconds since $1 (an EPOCHREALTIME), with one decimal.
since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

skip_loudly() {
	{
		echo '######################################################################'
		echo "# KERNEL TESTS SKIPPED: $*"
		echo '# qemu cannot start on this machine, so kernel WireGuard went untested.'
		echo '######################################################################'
	} >&2
	exit 0
}

# Stops the VM by its PID. The console reader then ends by itself, within
# a second, after it has shown the last lines.
vm_stop() {
	if [ -n "$qemu_pid" ]; then
		kill -KILL "$qemu_pid" 2>/dev/null
		wait "$qemu_pid" 2>/dev/null
		qemu_pid=
	fi
	if [ -n "$tail_pid" ]; then
		wait "$tail_pid" 2>/dev/null
		tail_pid=
	fi
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT
	trap '' HUP INT TERM
	vm_stop
	[ -n "$stage" ] && rm -rf "$stage" "$stage.cpio"
	exit "$rc"
}

# ---- host tools ----

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	apt_updated=1
	apt-get update -qq
}

# need CMD PKG: installs PKG when CMD is missing.
need() {
	command -v "$1" >/dev/null 2>&1 && return 0
	say "installing $2"
	export DEBIAN_FRONTEND=noninteractive
	apt_update
	apt-get install -y -qq --no-install-recommends "$2" >/dev/null
	command -v "$1" >/dev/null 2>&1
}

host_tools() {
	local t

	need qemu-system-x86_64 qemu-system-x86 || skip_loudly "qemu-system-x86 cannot be installed"
	qemu-system-x86_64 -version >/dev/null 2>&1 || skip_loudly "qemu-system-x86_64 does not run"
	need cpio cpio || fatal "cannot install cpio"
	need depmod kmod || fatal "cannot install kmod"
	need xz xz-utils || fatal "cannot install xz-utils"
	for t in $HOST_TOOLS ldd dpkg-deb; do
		command -v "$t" >/dev/null 2>&1 || fatal "'$t' is missing (run: make deps)"
	done
	for t in $DAEMONS; do
		[ -x "$top/$t" ] || fatal "$t is not built: run make"
	done
	# shellcheck disable=SC2086 # the helpers are words
	make -C "$top" --no-print-directory $HELPERS >/dev/null || fatal "cannot build $HELPERS"
}

# ---- downloads and the kernel ----

# download PKG: its .deb into the cache, once. It goes to a folder of its
# own first, so that an interrupted download leaves nothing in the cache.
download() {
	local f part=$cache/debs.part

	for f in "$cache/debs/$1"_*.deb; do
		[ -f "$f" ] && return 0
	done
	say "downloading $1"
	rm -rf "$part"
	mkdir -p "$part" "$cache/debs"
	# The sandbox user could not write into a root-owned work tree.
	(cd "$part" && apt-get -qq -o APT::Sandbox::User=root download "$1") ||
		{ apt_update && (cd "$part" && apt-get -qq -o APT::Sandbox::User=root download "$1"); } ||
		return 1
	mv "$part"/*.deb "$cache/debs/" && rmdir "$part"
}

# deb PKG: the cached .deb of PKG, the newest when there are several.
deb() {
	local f

	for f in "$cache/debs/$1"_*.deb; do
		[ -f "$f" ] && printf '%s\n' "$f"
	done | sort -V | tail -n 1
}

# load_order MODULES_DEP NAME...: the .ko paths to load, each after the ones
# it needs. modules.dep lists a module's whole closure, the modules needed
# by others last, so the list is walked backwards.
load_order() {
	awk -v want="${*:2}" '
	{
		path = $1
		sub(/:$/, "", path)
		name = path
		sub(/.*\//, "", name)
		sub(/\.ko(\.(xz|zst|gz))?$/, "", name)
		gsub(/-/, "_", name)
		deps[name] = ""
		for (i = NF; i > 1; i--)
			deps[name] = deps[name] " " $i
		file[name] = path
	}
	function add(p) {
		if (!(p in seen)) {
			seen[p] = 1
			print p
		}
	}
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			m = w[i]
			gsub(/-/, "_", m)
			if (!(m in file)) {
				print "no module " m > "/dev/stderr"
				exit 1
			}
			k = split(deps[m], d, " ")
			for (j = 1; j <= k; j++)
				add(d[j])
			add(file[m])
		}
	}' "$1"
}

# The kernel and its modules, from the cached packages into cache/kernel.
kernel_prepare() {
	local meta kpkg kdeb work kver ko name

	if [ -f "$cache/kernel/ready" ] && [ "$(cat "$cache/kernel/ready")" = "$MODULES" ] &&
		[ -f "$cache/busybox" ]; then
		return 0
	fi
	download linux-image-amd64 || fatal "cannot download linux-image-amd64"
	meta=$(deb linux-image-amd64)
	# "linux-image-6.1.0-NN-amd64 (= VERSION)"
	kpkg=$(dpkg-deb -f "$meta" Depends | sed 's/[ ,(|].*//')
	[ -n "$kpkg" ] || fatal "cannot tell which kernel $meta depends on"
	download "$kpkg" || fatal "cannot download $kpkg"
	download busybox-static || fatal "cannot download busybox-static"
	kdeb=$(deb "$kpkg")

	say "extracting $(basename "$kdeb")"
	work=$cache/kernel.tmp
	rm -rf "$work" "$cache/kernel"
	mkdir -p "$work/modules"
	dpkg -x "$kdeb" "$work/root" || fatal "cannot extract $kdeb"
	kver=$(ls "$work/root/lib/modules")
	[ -f "$work/root/boot/vmlinuz-$kver" ] || fatal "$kdeb has no vmlinuz-$kver"
	"$dir/extract-vmlinux.sh" "$work/root/boot/vmlinuz-$kver" "$work/vmlinux" ||
		fatal "cannot extract vmlinux"
	# Debian builds modules.dep at installation, not into the package.
	[ -f "$work/root/lib/modules/$kver/modules.dep" ] || depmod -b "$work/root" "$kver" ||
		fatal "depmod failed"
	# shellcheck disable=SC2086 # the module names are words
	load_order "$work/root/lib/modules/$kver/modules.dep" $MODULES >"$work/order" ||
		fatal "cannot resolve the modules"
	while read -r ko; do
		name=$(basename "$ko")
		case $name in
		*.ko.xz) xz -dc "$work/root/lib/modules/$kver/$ko" >"$work/modules/${name%.xz}" ;;
		*.ko.zst) zstd -dcq "$work/root/lib/modules/$kver/$ko" >"$work/modules/${name%.zst}" ;;
		*.ko.gz) gzip -dc "$work/root/lib/modules/$kver/$ko" >"$work/modules/${name%.gz}" ;;
		*) cp "$work/root/lib/modules/$kver/$ko" "$work/modules/$name" ;;
		esac || fatal "cannot copy $ko"
		basename "$ko" | sed 's/\.ko\..*$/.ko/' >>"$work/modules/load.list"
	done <"$work/order"
	echo "$kver" >"$work/version"
	rm -rf "$work/root" "$work/order"

	work=$cache/busybox.tmp
	rm -rf "$work"
	dpkg -x "$(deb busybox-static)" "$work" || fatal "cannot extract busybox-static"
	mv "$work/bin/busybox" "$cache/busybox"
	rm -rf "$work"

	mv "$cache/kernel.tmp" "$cache/kernel"
	echo "$MODULES" >"$cache/kernel/ready"
}

# ---- the initramfs ----

# copy_elf FILE DEST: FILE as DEST under the stage, with its libraries.
copy_elf() {
	local lib

	mkdir -p "$stage/$(dirname "$2")"
	cp -L "$1" "$stage/$2" || fatal "cannot copy $1"
	ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
		while read -r lib; do
			[ -e "$stage$lib" ] && continue
			mkdir -p "$stage$(dirname "$lib")"
			cp -L "$lib" "$stage$lib"
		done
}

initramfs_build() {
	local t applet

	stage=$(mktemp -d "${TMPDIR:-/tmp}/wgd-kernel.XXXXXX") || fatal "cannot make a staging directory"
	mkdir -p "$stage"/{bin,dev,etc,opt/wgd,proc,root,run,src,sys,tmp,usr/bin,var,lib/modules}
	ln -s ../run "$stage/var/run"
	cp "$cache/busybox" "$stage/bin/busybox"
	for applet in $("$cache/busybox" --list); do
		[ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
	done
	for t in $HOST_TOOLS; do
		copy_elf "$(command -v "$t")" "/usr/bin/$t"
	done
	for t in $DAEMONS $HELPERS; do
		copy_elf "$top/$t" "/opt/wgd/$(basename "$t")"
	done
	cp "$cache/kernel/modules/"* "$stage/lib/modules/"
	# The server's engine runs as wg-dynamic; nobody is for tests that
	# name it.
	printf '%s\n' root:x:0:0:root:/root:/bin/sh \
		wg-dynamic:x:999:999:wg-dynamic:/nonexistent:/bin/false \
		nobody:x:65534:65534:nobody:/nonexistent:/bin/false >"$stage/etc/passwd"
	printf '%s\n' root:x:0: wg-dynamic:x:999: nogroup:x:65534: >"$stage/etc/group"
	install -m 0755 "$dir/init" "$stage/init"
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) >"$stage.cpio" ||
		fatal "cannot write the initramfs"
	rm -rf "$stage"
	stage=$stage.cpio
}

# ---- the VM ----

# boot ACCEL TIMEOUT: starts the VM and waits for the guest to come up.
# 0 when it did, 1 when it did not in time, 2 when qemu failed to start.
boot() {
	local accel=$1 limit=$2 tests
	local -a cmd

	tests=$(IFS=,; printf '%s' "${names[*]}")
	cmd=(qemu-system-x86_64 -nographic -m 1024 -smp 2 -no-reboot -nic none
		-kernel "$cache/kernel/vmlinux" -initrd "$stage"
		-append "console=ttyS0 quiet panic=-1${tests:+ wgd_tests=$tests}"
		-virtfs "local,path=$top,mount_tag=src,security_model=none,readonly=on")
	if [ "$accel" = kvm ]; then
		cmd+=(-accel kvm -cpu host)
	else
		cmd+=(-accel tcg)
	fi
	log=$cache/console.log
	: >"$log"
	t_boot=$EPOCHREALTIME
	"${cmd[@]}" </dev/null >"$log" 2>&1 &
	qemu_pid=$!
	# The console, less the firmware's escape sequences and carriage returns.
	tail -n +1 -f --pid="$qemu_pid" "$log" |
		sed -u -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1b[a-z]//g' -e 's/\r//g' \
			-e '/^SeaBIOS /d' -e 's/^Booting from ROM\.\.//' &
	tail_pid=$!
	while :; do
		if grep -aq 'wgd-kernel: up after' "$log"; then
			boot_took=$(since "$t_boot")
			return 0
		fi
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			wait "$qemu_pid"
			say "qemu exited with status $? before the guest came up"
			qemu_pid=
			return 2
		fi
		if awk -v a="$t_boot" -v b="$EPOCHREALTIME" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
			say "the guest did not come up within ${limit}s under $accel"
			return 1
		fi
		sleep 0.1
	done
}

# Waits for the result line; the guest's exit status, or 1.
vm_wait() {
	local rc

	while :; do
		rc=$(grep -ao 'wgd-kernel-result: [0-9]*' "$log" | head -n 1)
		if [ -n "$rc" ]; then
			# Give qemu a moment to power off by itself.
			for _ in 1 2 3 4 5 6 7 8 9 10; do
				kill -0 "$qemu_pid" 2>/dev/null || break
				sleep 0.2
			done
			vm_stop
			return "${rc##* }"
		fi
		if ! kill -0 "$qemu_pid" 2>/dev/null; then
			vm_stop
			say "the VM stopped before the tests finished"
			return 1
		fi
		if awk -v a="$t_boot" -v b="$EPOCHREALTIME" -v l="$run_timeout" 'BEGIN { exit !(b - a > l) }'; then
			vm_stop
			say "the VM run took more than ${run_timeout}s; stopped it"
			return 1
		fi
		sleep 0.2
	done
}

# ---- main ----

[ "$(id -u)" -eq 0 ] || fatal "run as root: it installs packages when missing"
names=("$@")
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

host_tools
kernel_prepare
initramfs_build
prep_took=$(since "$t_start")
say "Linux $(cat "$cache/kernel/version"), initramfs of $(($(stat -c %s "$stage") / 1024 / 1024)) MiB, ready after ${prep_took}s"

accel=tcg
if [ "${KERNEL_KVM:-1}" != 0 ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
	accel=kvm
fi
boot "$accel" "$([ "$accel" = kvm ] && echo "$kvm_boot_timeout" || echo "$boot_timeout")"
rc=$?
if [ "$rc" -ne 0 ] && [ "$accel" = kvm ]; then
	vm_stop
	say "KVM did not boot the guest; starting over under TCG"
	accel=tcg
	boot tcg "$boot_timeout"
	rc=$?
fi
if [ "$rc" -ne 0 ]; then
	vm_stop
	fatal "the VM did not boot (console log: tests/kernel/cache/console.log)"
fi
t_up=$EPOCHREALTIME
say "booted under $accel in ${boot_took}s"
vm_wait
rc=$?
say "time spent: $(since "$t_start")s in all; preparation ${prep_took}s," \
	"boot ${boot_took}s ($accel), scenarios $(since "$t_up")s"
exit "$rc"
