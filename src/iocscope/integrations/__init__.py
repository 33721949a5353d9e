"""Bridges from iocscope to case-management tools (TheHive)."""
