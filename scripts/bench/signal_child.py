#!/usr/bin/env python3
"""Idle child for the supervisor measurements: writes one byte to stdout per SIGUSR1. Dies with
its supervisor (PR_SET_PDEATHSIG), so killing the supervisor never leaves it behind."""
import ctypes, os, signal

PR_SET_PDEATHSIG = 1
ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
signal.signal(signal.SIGUSR1, lambda *_: os.write(1, b"x"))
os.write(1, b"r")
while True:
    signal.pause()
