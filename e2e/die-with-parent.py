#!/usr/bin/env python3
"""Runs a command that the kernel kills when the process that started this
one ends (PR_SET_PDEATHSIG survives exec). Tests start the operator through
it, so an aborted test run never leaves an operator behind."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1

if len(sys.argv) < 2:
    sys.exit("usage: die-with-parent.py COMMAND [ARGS...]")
ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
os.execvp(sys.argv[1], sys.argv[1:])
