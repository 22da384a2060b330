"""Customer analytics: KPIs, RFM, lifetime value, churn prediction, recommendations."""
