"""What the tests share besides fixtures (those are in ``tests/conftest.py``): small runs, the tools run as
their scripts run, real processes, deploy servers and clients, models for export parity, the reference
data, and a local weights server."""
