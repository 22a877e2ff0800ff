"""The `run` loop: triggers (file watch, interval, signals), one reconcile at a time, and what
the daemon reports (status server, metrics, logs, source revision).
"""
