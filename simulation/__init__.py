"""Simulation, apart from production code: the simulated Asterisk (``simpbx``), simulated
agents, the pacing simulator and the one-command demo. The tests, the benchmarks and
``dialer demo`` use it; nothing in ``dialer/`` imports it."""
