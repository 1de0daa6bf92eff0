#!/bin/sh
# setup USER: the VM owner's account, as a cloud image's default user (cloud-init's
# `users:`): a home, a login shell, sudo without a password.
set -eu
user=$1
useradd --create-home --shell /bin/bash "$user"
echo "$user ALL=(ALL) NOPASSWD:ALL" >"/etc/sudoers.d/90-$user"
chmod 0440 "/etc/sudoers.d/90-$user"
