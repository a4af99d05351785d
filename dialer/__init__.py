"""The asyncio predictive dialer for Asterisk: ARI client, pacing, campaigns, agents, HTTP API."""
