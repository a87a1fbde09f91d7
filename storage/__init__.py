"""Storage: SQLAlchemy models and migrations, repositories, Redis alert bus, disk KV store.

Imports nothing from pipeline/ or actors/, and no Ray.
"""
