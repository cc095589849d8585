"""Imports: users from a CSV file, as a job with a report row by row."""
