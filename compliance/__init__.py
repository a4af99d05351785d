"""The compliance gate: phone numbers, the policy, the pure rule engine, the contact ledger and lists."""
