"""The probe dashboard: explore recordings in a local Dash app (`probe dashboard`)."""

from dashboards.app import build_app

__all__ = ["build_app"]
