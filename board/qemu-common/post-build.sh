#!/bin/sh
# Buildroot post-build script for the QEMU camera boards (BR2_ROOTFS_POST_BUILD_SCRIPT), called
# with the target directory as $1 and BR2_EXTERNAL's board directory in BOARD_DIR.
#
# `cargo xtask image` does the same in Rust (tools/firmware/src/image.rs, `post_build`); keep the
# two in step. It assumes the skeleton (board/qemu-common/rootfs) and rootfs-overlay/ are copied
# already (BR2_ROOTFS_OVERLAY="$BR2_EXTERNAL/board/qemu-common/rootfs $BR2_EXTERNAL/rootfs-overlay").
set -eu

TARGET_DIR=${1:?usage: post-build.sh TARGET_DIR}
BOARD_DIR=${BOARD_DIR:-$(dirname "$0")/../qemu-aarch64}
CONF="$BOARD_DIR/board.conf"

conf() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\([^#]*\).*/\1/p" "$CONF" | sed 's/[[:space:]]*$//'; }

board=$(basename "$BOARD_DIR")

# The state partition's device in fstab; the guest's static address.
sed -i "s|@STATE_DEVICE@|$(conf state_device)|" "$TARGET_DIR/etc/fstab"
sed -i -e "s|@ADDRESS@|$(conf address)|" -e "s|@GATEWAY@|$(conf gateway)|" "$TARGET_DIR/etc/default/network"
echo "camera-$board" >"$TARGET_DIR/etc/hostname"

# The mount point of the state partition and the log directory.
mkdir -p "$TARGET_DIR/var/lib/camera-https" "$TARGET_DIR/var/log"

# Module load order (Buildroot builds the kernel itself: list the board's modules by path).
release=$(ls "$TARGET_DIR/lib/modules" | head -n 1)
{
	echo "# Written by post-build.sh from $BOARD_DIR/modules."
	grep -v '^[[:space:]]*\(#\|$\)' "$BOARD_DIR/modules" | while read -r m; do
		find "$TARGET_DIR/lib/modules/$release" -name "$m.ko*" | sed "s|^$TARGET_DIR||" | head -n 1
	done
} >"$TARGET_DIR/etc/modules.load"

# Our programs are links to the one multi-call binary (installed by the package as /usr/bin/camera-https).
for program in cert-provisioner camera-web; do
	ln -sf camera-https "$TARGET_DIR/usr/bin/$program"
done

chmod 0755 "$TARGET_DIR"/etc/init.d/*
