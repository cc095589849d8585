"""The console's dashboard: users by status over time, churn levels, the users most at risk."""
