"""Triggers: turn HTTP calls, dropped files and schedules into orchestrations."""
