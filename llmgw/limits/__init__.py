"""Rate limits and budgets per key and team, in a Litestar store shared by every replica that uses it."""
