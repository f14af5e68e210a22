#!/usr/bin/env python3
"""Idle child for the supervisor measurements: writes one byte to stdout per SIGUSR1."""
import os, signal, sys

signal.signal(signal.SIGUSR1, lambda *_: os.write(1, b"x"))
os.write(1, b"r")
while True:
    signal.pause()
