"""The compliance gate: numbers, policy, pure rule engine, contact ledger and lists."""
