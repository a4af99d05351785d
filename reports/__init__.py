"""Reports for the supervisor's floor: the appendix-4 model and the art. 46 KPIs by day, hour,
agent, campaign, list and caller ID; anomalies; CSV and SVG charts; staffing (Erlang C and
the outbound planner)."""
