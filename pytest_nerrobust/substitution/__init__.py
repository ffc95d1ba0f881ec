"""Candidate words and entities for substitution, and label rewriting when a span changes length."""
