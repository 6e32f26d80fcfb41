"""Evaluation: likelihood metrics (metrics) and the sample-quality judges (judges)."""
