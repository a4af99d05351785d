"""Sample data for the quick start (``dialer sample-run``): policy, campaign, leads, DNC."""
