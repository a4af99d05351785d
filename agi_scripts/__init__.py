"""The hardened FastAGI server and one module per AGI script the dialplan calls."""
