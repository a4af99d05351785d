"""Compliance casework: complaint cases (appendix 3), quality checks (part 5), the audit view."""
