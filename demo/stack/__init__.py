"""Launchers for the real components the demo and the tests run on loopback.

Each launcher (nats.py, prometheus.py, haproxy.py, …) builds on
``process.ManagedProcess`` and ``ports.free_port`` so that every component is
started on a free port in its own directory, waited for until it answers, and
stopped (SIGTERM, then SIGKILL) leaving no process behind.
"""
