"""Alert rules (pure), their evaluation with cooldown, the DB-first relay and webhooks."""
