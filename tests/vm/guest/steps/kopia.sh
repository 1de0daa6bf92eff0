#!/bin/sh
# kopia NAME ARG...: a kopia command of the VM owner's (with the SSL_CERT_FILE of their
# login profile); its standard output goes to /run/out/NAME.out.
set -eu
name=$1
shift
kopia "$@" >"/run/out/$name.out"
