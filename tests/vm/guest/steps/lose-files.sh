#!/bin/sh
# The loss: the VM owner deletes a folder by mistake.
set -eu
rm -r "$HOME/projects"
[ ! -e "$HOME/projects" ]
