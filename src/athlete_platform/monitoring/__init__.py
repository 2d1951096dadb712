"""Model monitoring: feature and prediction drift, realised accuracy (issue 14)."""
