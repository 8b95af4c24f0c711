"""Secrets shared by the receiver fixtures and the tests that sign or verify against them (test values only)."""

APP_SECRET = "test-app-secret-0123456789abcdef"
VERIFY_TOKEN = "wa-test-verify-token"
