"""Structured logs (Powertools Logger) and EMF metrics (Powertools metrics).

Imports: ``runtime.contract`` only.
"""
