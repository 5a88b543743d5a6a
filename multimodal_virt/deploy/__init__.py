"""Deployment helpers (kolla-ansible rendering); not used at runtime."""
