"""A/B tests: sample size, deterministic assignment, analysis (z-test, Welch, SRM, mSPRT)."""
